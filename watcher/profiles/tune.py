"""Propose profile changes from readers' verdicts, each with its measured effect.

Pure: verdict items, stored items and labeled items in; tweaks and numbers out.

* **exclusions**: a word or two-word phrase found in at least two items judged
  not relevant and in none judged relevant (greedy: each next one must cover
  items the previous ones did not), or a source all such items came from;
* **terms**: a word in at least two items judged relevant and in none judged not
  relevant, not yet in the profile, as a context term (it can never make an
  item match on its own);
* **threshold**: the raise that best separates the judged items (F1 on the
  verdicts, relevant as the positive class), after the proposed exclusions.

Every tweak is measured alone and all together against the profile as it
stands: precision and relevant items kept on the verdicts, items added or
dropped among the stored ones, and precision/recall/F1 on labeled items when
given. Nothing is applied here: ``watcher profile apply`` does that.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.profiles.backtest import VerdictStats, backtest, distinct_stories
from watcher.profiles.evaluate import LabeledItem
from watcher.profiles.scorer import compile_profiles
from watcher.profiles.spec import ProfileSpec
from watcher.profiles.text import fold, normalize, normalize_term, singular, zipf
from watcher.values import StoredItem

KINDS = ("exclude", "exclude_source", "term", "threshold")
MIN_SUPPORT = 2  # a word seen in one judged item says too little
MAX_ZIPF = 5.3  # common words ("said", "people") are never proposed
MAX_TERM_ZIPF = 4.5  # a context term must be rarer still ("yesterday" says nothing about a story)
TERM_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class Tweak:
    key: str  # short id within one suggestion: x1, s1, t1, th
    kind: str  # exclude | exclude_source | term | threshold
    value: str | float
    why: str
    weight: float | None = None  # for a term

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "value": self.value,
            "weight": self.weight,
            "why": self.why,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Tweak:
        if obj.get("kind") not in KINDS:
            raise ValueError(f"unknown change kind {obj.get('kind')!r}")
        return cls(obj["key"], obj["kind"], obj["value"], obj.get("why", ""), obj.get("weight"))

    def describe(self) -> str:
        if self.kind == "threshold":
            return f"threshold = {self.value:g}"
        if self.kind == "term":
            return f"terms: add {self.value!r} = {self.weight:g}"
        field = "exclude" if self.kind == "exclude" else "exclude_sources"
        return f"{field}: add {self.value!r}"


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float
    recall: float
    f1: float
    matched: int


@dataclass(frozen=True, slots=True)
class Effect:
    """One tweak (or all together, ``key == "all"``) measured against the profile as it stands."""

    key: str
    before: VerdictStats
    after: VerdictStats
    added: int  # stored items that would newly match
    dropped: int  # stored items that would no longer match
    labeled_before: PRF | None = None
    labeled_after: PRF | None = None


def fingerprint(spec: ProfileSpec) -> str:
    """Changes when the profile's meaning changes (not its comments or layout)."""
    blob = json.dumps(spec.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def apply_tweaks(spec: ProfileSpec, tweaks: Iterable[Tweak]) -> ProfileSpec:
    data = spec.model_dump()
    for t in tweaks:
        if t.kind == "exclude" and t.value not in data["exclude"]:
            data["exclude"] = [*data["exclude"], t.value]
        elif t.kind == "exclude_source" and t.value not in data["exclude_sources"]:
            data["exclude_sources"] = [*data["exclude_sources"], t.value]
        elif t.kind == "term":
            data["terms"] = {**data["terms"], str(t.value): float(t.weight or TERM_WEIGHT)}
        elif t.kind == "threshold":
            data["threshold"] = float(t.value)
    return ProfileSpec.model_validate(data)


def _words(item: StoredItem) -> set[str]:
    """Words and adjacent pairs of an item, normalized as the scorer sees them."""
    toks = normalize(f"{item.title}\n{item.summary}").split()
    # Singular, as the scorer matches singular and plural alike: "migrant" also excludes "migrants".
    out = {singular(t) for t in toks if len(t) >= 3 and t.isalpha()}
    out.update(f"{a} {b}" for a, b in itertools.pairwise(toks) if a.isalpha() and b.isalpha())
    return out


def _known(spec: ProfileSpec) -> tuple[set[str], tuple[str, ...]]:
    words = {*spec.anchors, *spec.terms, *(normalize_term(x) for x in spec.exclude)}
    prefixes = tuple(t[:-1] for t in words if t.endswith("*"))
    return words, prefixes


def _usable(word: str, known: set[str], prefixes: tuple[str, ...], max_zipf: float = MAX_ZIPF) -> bool:
    if word in known or any(p in known for p in word.split()):
        return False
    if prefixes and any(part.startswith(prefixes) for part in word.split()):
        return False
    padded = f" {word} "
    if any(padded in f" {k} " for k in known if " " in k):  # part of a phrase the profile has
        return False
    return zipf(word) < max_zipf


def _f1(items: Sequence[tuple[bool, float]], threshold: float) -> float:
    tp = sum(1 for rel, s in items if rel and s >= threshold)
    fp = sum(1 for rel, s in items if not rel and s >= threshold)
    fn = sum(1 for rel, s in items if rel and s < threshold)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def propose(
    spec: ProfileSpec, judged: Sequence[StoredItem], *, max_excludes: int = 3, max_terms: int = 3
) -> list[Tweak]:
    """Tweaks suggested by the verdicts on ``judged`` items (see the module docstring)."""
    judged = [it for it in distinct_stories(judged) if it.verdict]
    good = [it for it in judged if it.verdict == "relevant"]
    bad = [it for it in judged if it.verdict == "not_relevant"]
    known, prefixes = _known(spec)
    words = {it.id: _words(it) for it in judged}
    in_good: Counter[str] = Counter(w for it in good for w in words[it.id])
    tweaks: list[Tweak] = []

    # Exclusions: greedy cover of the not-relevant items, never touching a relevant one.
    left = list(bad)
    for n in range(1, max_excludes + 1):
        counts: Counter[str] = Counter(w for it in left for w in words[it.id] if not in_good[w])
        ranked = sorted(
            (w for w, c in counts.items() if c >= MIN_SUPPORT and _usable(w, known, prefixes)),
            key=lambda w: (-counts[w], zipf(w), -len(w), w),
        )
        if not ranked:
            break
        best = ranked[0]
        covered = [it for it in left if best in words[it.id]]
        tweaks.append(
            Tweak(
                f"x{n}",
                "exclude",
                best,
                f"in {len(covered)} item(s) judged not relevant, none judged relevant",
            )
        )
        known.add(best)
        left = [it for it in left if best not in words[it.id]]
    # A source that brought only not-relevant items.
    bad_src = Counter(it.source for it in left if it.source)
    good_src = {fold(it.source) for it in good if it.source}
    n = 0
    for src, c in sorted(bad_src.items(), key=lambda kv: (-kv[1], kv[0])):
        if c >= MIN_SUPPORT and fold(src) not in good_src and src not in spec.exclude_sources:
            n += 1
            tweaks.append(
                Tweak(f"s{n}", "exclude_source", src, f"{c} item(s) judged not relevant, none relevant")
            )
    # Context terms from the relevant items.
    in_bad: Counter[str] = Counter(w for it in bad for w in words[it.id])
    cands = sorted(
        (
            w
            for w, c in in_good.items()
            if c >= MIN_SUPPORT and not in_bad[w] and _usable(w, known, prefixes, MAX_TERM_ZIPF)
        ),
        key=lambda w: (-in_good[w], zipf(w), w),
    )
    picked: list[str] = []
    for w in cands:
        if any(w in p.split() or p in w.split() for p in picked):  # a pair and its own word: one is enough
            continue
        picked.append(w)
        if len(picked) >= max_terms:
            break
    for i, w in enumerate(picked, 1):
        tweaks.append(
            Tweak(
                f"t{i}",
                "term",
                w,
                f"in {in_good[w]} item(s) judged relevant, none judged not relevant",
                weight=TERM_WEIGHT,
            )
        )
    # Threshold: after the exclusions, the raise that best separates what readers judged.
    excl = apply_tweaks(spec, [t for t in tweaks if t.kind in ("exclude", "exclude_source")])
    scorer = compile_profiles({"p": excl})
    scored = []
    for it in judged:
        (s,) = scorer.score(it.title, it.summary, it.source)
        if s.matched:
            scored.append((it.verdict == "relevant", s.score))
    if scored:
        current = _f1(scored, excl.threshold)
        levels = sorted({s for _, s in scored})
        best_t, best_f1 = None, current
        for lo, hi in itertools.pairwise(levels):
            t = round((lo + hi) / 2, 2)
            f1 = _f1(scored, t)
            if t > excl.threshold and f1 > best_f1 + 1e-9:
                best_t, best_f1 = t, f1
        if best_t is not None:
            tweaks.append(
                Tweak(
                    "th",
                    "threshold",
                    best_t,
                    f"F1 on the verdicts {current:.2f} → {best_f1:.2f} (from {excl.threshold:g})",
                )
            )
    return tweaks


def labeled_prf(spec: ProfileSpec, labeled: Sequence[LabeledItem]) -> PRF:
    """Precision, recall and F1 of ``matched`` on labeled items (grade ≥ 1 is relevant)."""
    scorer = compile_profiles({"p": spec})
    tp = fp = fn = 0
    for it in labeled:
        (s,) = scorer.score(it.title, it.summary, it.source)
        rel = it.grade >= 1
        tp += s.matched and rel
        fp += s.matched and not rel
        fn += (not s.matched) and rel
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return PRF(round(p, 4), round(r, 4), round(f1, 4), tp + fp)


def measure(
    spec: ProfileSpec,
    tweaks: Sequence[Tweak],
    judged: Sequence[StoredItem],
    stream: Sequence[StoredItem] = (),
    labeled: Sequence[LabeledItem] = (),
) -> list[Effect]:
    """The effect of each tweak alone, then of all together (key ``all``)."""
    base_prf = labeled_prf(spec, labeled) if labeled else None
    groups = [(t.key, [t]) for t in tweaks]
    if len(tweaks) > 1:
        groups.append(("all", list(tweaks)))
    out = []
    for key, group in groups:
        proposed = apply_tweaks(spec, group)
        on_verdicts = backtest(judged, proposed, baseline=spec)
        on_stream = backtest(stream, proposed, baseline=spec)
        out.append(
            Effect(
                key=key,
                before=on_verdicts.before,
                after=on_verdicts.after,
                added=len(on_stream.added),
                dropped=len(on_stream.dropped),
                labeled_before=base_prf,
                labeled_after=labeled_prf(proposed, labeled) if labeled else None,
            )
        )
    return out
