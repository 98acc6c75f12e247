"""Fingerprint every `Score` of many profiles over the dev splits: run it before and after a change
to scoring, and the digests must be the same.

    .venv/bin/python -m benchmarks.score_hash [--dev FILE ...]

Profiles: the seeds' derived profile, 99 derived from groups of four random dev items (as in
bench_score), the other seeds' derived profile, and hand-written ones that take every path of the
scorer (ambiguous anchors and their vetoes, excluded words, phrases and patterns, excluded sources,
own signal weights, prefixes, negative and generic terms, no context cap, phrases over their words).
Every item is scored with its own source and again as from an excluded source. Prints one digest
per profile group and one over all; not run by the tests (it needs the shared dev splits).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_score import derived_profiles
from watcher.profiles import ProfileSpec, compile_profiles, derive_profile

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"


def profiles(rows: list[dict]) -> dict[str, ProfileSpec]:
    other = [
        p.read_text(encoding="utf-8") for p in sorted((REPO / "tests" / "data" / "seeds_other").glob("*.txt"))
    ]
    specs = derived_profiles(rows)  # the same profiles as bench_score
    specs["other"] = derive_profile(other)
    libya = specs["p000"]
    hand = {
        "anchors": {"libya": 3.0, "tripoli": 2.0, "haftar*": 2.0, "benghazi": 2.0, "misrata": 1.5},
        "terms": {
            "ceasefire": 1.0,
            "oil": 0.5,
            "united nations": 1.0,
            "nations": 0.7,
            "football": -1.0,
            "militia*": 0.6,
            "war": 0.4,
            "election": 0.8,
        },
        "ambiguous": {"tripoli": ["lebanon", "lebanese"], "misrata": ["football club"]},
        "threshold": 2.5,
        "context_cap": 1.5,
        "origin": {"generic": ["war"], "gazetteer": ["libya", "tripoli", "benghazi", "misrata"]},
    }
    specs["hand"] = ProfileSpec(**hand)
    specs["hand-excl"] = ProfileSpec(
        **hand,
        exclude=["oil price", "re:(?i)\\bsport", "tripoli lebanon"],
        exclude_sources=["HuffPost", "Reuters"],
    )
    specs["hand-weights"] = ProfileSpec(
        **{**hand, "aboutness": {"lead": 1.0, "list": -1.0, "foreign": -0.25, "late": 0.0, "offshore": -2.0}}
    )
    specs["libya-strict"] = libya.model_copy(update={"threshold": 4.0, "context_cap": 0.5})
    specs["libya-weights"] = libya.model_copy(update={"aboutness": {"lead": 2.0, "border": -0.5}})
    specs["trump"] = ProfileSpec(
        anchors={"trump": 2.5, "white house": 1.5, "president trump": 3.0},
        terms={"election": 1.0, "senate": 0.5, "tweet*": 0.5, "golf": -0.5},
        ambiguous={"trump": ["card", "cards"]},
        context_cap=0.0,
    )
    specs["china"] = ProfileSpec(
        anchors={"china": 2.0, "beijing": 2.0, "chinese": 1.0, "xi jinping": 3.0, "hong kong": 1.0},
        terms={"trade": 1.0, "tariff*": 1.0, "taiwan": 0.5, "trade war": 1.5, "sport": -2.0},
        exclude=["re:\\bpanda"],
        origin={"gazetteer": ["china", "beijing", "hong kong"], "generic": ["trade"]},
        threshold=2.0,
    )
    specs["empty-terms"] = ProfileSpec(anchors={"iran": 2.0, "iraq": 2.0, "syria": 2.0})
    return specs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dev", type=Path, action="append")
    args = parser.parse_args(argv)
    files = args.dev or [EVAL / "dev.jsonl", EVAL / "dev-early.jsonl"]
    base = [json.loads(line) for line in (EVAL / "dev.jsonl").open(encoding="utf-8")]
    specs = profiles(base)
    scorer = compile_profiles(specs)
    groups = {"derived": hashlib.sha256(), "hand": hashlib.sha256(), "all": hashlib.sha256()}
    counts = {"scores": 0, "nonzero": 0, "matched": 0, "signals": 0, "excluded": 0, "ruled out": 0}
    for path in files:
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            title, summary = row.get("title") or "", row.get("summary") or ""
            for source in (row.get("source"), "Reuters wire"):
                for score in scorer.score(title, summary, source):
                    blob = repr(score).encode()
                    groups["all"].update(blob)
                    group = "derived" if score.profile.startswith("p") or score.profile == "other" else "hand"
                    groups[group].update(blob)
                    counts["scores"] += 1
                    counts["nonzero"] += bool(score.hits or score.reason != "no anchor term")
                    counts["matched"] += score.matched
                    counts["signals"] += bool(score.signals)
                    counts["excluded"] += bool(score.reason and score.reason.startswith("excluded"))
                    counts["ruled out"] += bool(score.reason and "ruled out" in score.reason)
    print(", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for name, h in groups.items():
        print(f"{name:8s} {h.hexdigest()}")


if __name__ == "__main__":
    main()
