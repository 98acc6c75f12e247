"""What each part of a derived profile is worth: the profile from seeds/ on both dev splits, whole and
with one part taken out at a time (an aboutness signal, the gazetteer places, the generic thread words).

    .venv/bin/python benchmarks/bench_aboutness.py

One line per variant and split: P, R, F1, AP(rel), AP(core), core recall, confuser false alarms.
A part earns its place when taking it out makes a figure worse. Not run by the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watcher.profiles import ProfileSpec, compile_profiles, derive_profile
from watcher.profiles.aboutness import SIGNAL_NAMES
from watcher.profiles.evaluate import compute_metrics, load_labeled

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"
SPLITS = ("dev.jsonl", "dev-early.jsonl")


def variants(spec: ProfileSpec) -> list[tuple[str, ProfileSpec]]:
    out = [("derived profile", spec)]
    for name in SIGNAL_NAMES:
        weights = {**spec.signal_weights(), name: 0.0}
        out.append((f"without signal {name}", spec.model_copy(update={"aboutness": weights})))
    off = dict.fromkeys(SIGNAL_NAMES, 0.0)
    out.append(("without any aboutness signal", spec.model_copy(update={"aboutness": off})))
    places = set(spec.origin.get("gazetteer", ())) - set(spec.origin.get("seed", ()))
    anchors = {t: w for t, w in spec.anchors.items() if t not in places}
    ambiguous = {t: v for t, v in spec.ambiguous.items() if t in anchors or t in spec.terms}
    out.append(
        ("without gazetteer places", spec.model_copy(update={"anchors": anchors, "ambiguous": ambiguous}))
    )
    generic = set(spec.origin.get("generic", ()))
    terms = {t: w for t, w in spec.terms.items() if t not in generic}
    out.append(("without generic thread words", spec.model_copy(update={"terms": terms})))
    return out


def main(argv: list[str] | None = None) -> None:
    seeds = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
    spec = derive_profile(seeds)
    splits = [(name, load_labeled(EVAL / name)) for name in SPLITS if (EVAL / name).exists()]
    head = f"{'variant':32s} {'split':16s}" + "".join(
        f"{c:>9s}" for c in ("P", "R", "F1", "AP(rel)", "AP(core)", "core-R", "FA")
    )
    print(head)
    for label, variant in variants(spec):
        scorer = compile_profiles({"p": variant})
        for split, items in splits:
            scores = [scorer.score(it.title, it.summary, it.source)[0] for it in items]
            m = compute_metrics(label, items, [s.score for s in scores], [s.matched for s in scores])
            figures = (m.precision, m.recall, m.f1, m.ap_related, m.ap_core, m.core_recall)
            cells = "".join(f"{v:9.3f}" for v in figures) + f"{m.confuser_fa:>5d}/{m.confusers}"
            print(f"{label:32s} {split:16s}{cells}")


if __name__ == "__main__":
    main()
