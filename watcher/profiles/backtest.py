"""Backtest a profile change on stored items: what would be added, dropped, kept.

Pure: values in, a frozen value out. The API the web side and the CLI share::

    result = backtest(items, proposed, profile="libya")                 # vs what was stored
    result = backtest(items, proposed, profile="libya", baseline=spec)  # vs another spec
    result = backtest(items, with_threshold(spec, 3.0), profile="libya")

``items`` are `StoredItem` values (``watcher.store.items.stored_items``): each
carries the profile's stored match (score) and a reader's verdict, if any.
Without ``baseline`` "before" is what the store holds (an item matched when it
has a match row); with it, "before" is ``baseline`` re-scored, so two specs can
be compared on the same items.

Copies of one story from several feeds count once, as the store sends them once.
Precision is measured on the items that carry a verdict: of those the profile
matches, the share judged relevant; ``relevant_kept`` says how many items judged
relevant the profile still matches (what a change would cost).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watcher.profiles.explain import explain_text
from watcher.profiles.scorer import compile_profiles
from watcher.profiles.spec import ProfileSpec
from watcher.values import Score, StoredItem

RELEVANT = "relevant"


@dataclass(frozen=True, slots=True)
class Change:
    """One item under the proposed profile: its score before and after, and why."""

    item: StoredItem
    before: float | None  # score before (None: it did not match before and no score was kept)
    after: Score  # the proposed profile's score, with the terms that fired and the reason
    explain: str  # `explain_text` of ``after``


@dataclass(frozen=True, slots=True)
class VerdictStats:
    """How a profile fares on the items readers judged."""

    matched: int  # judged items the profile matches
    relevant: int  # of those, judged relevant
    relevant_total: int  # all judged relevant (matched or not)
    judged: int  # all judged items

    @property
    def precision(self) -> float | None:
        return self.relevant / self.matched if self.matched else None

    @property
    def relevant_kept(self) -> float | None:
        """Share of the items judged relevant that the profile matches (recall on verdicts)."""
        return self.relevant / self.relevant_total if self.relevant_total else None

    @property
    def not_relevant_matched(self) -> int:
        return self.matched - self.relevant


@dataclass(frozen=True, slots=True)
class BacktestResult:
    profile: str
    items: int  # distinct stories considered
    added: tuple[Change, ...]  # matched after, not before (best score first)
    dropped: tuple[Change, ...]  # matched before, not after (best former score first)
    kept: tuple[Change, ...]  # matched before and after
    before: VerdictStats
    after: VerdictStats


def with_threshold(spec: ProfileSpec, threshold: float) -> ProfileSpec:
    """``spec`` with another threshold (validated like a config value)."""
    return ProfileSpec.model_validate({**spec.model_dump(), "threshold": threshold})


def distinct_stories(items: Iterable[StoredItem]) -> list[StoredItem]:
    """Copies of one story count once, as the store sends them once.

    Among items sharing a link, those holding a match are distinct items (a feed may give
    several items one page, as a daily round-up does); a copy without a match, beside one
    with a match, is a copy from another feed and goes. With no match, one per title stays.
    """
    groups: dict[object, list[StoredItem]] = {}
    for it in items:
        groups.setdefault(it.link if it.link else ("id", it.id), []).append(it)
    out: list[StoredItem] = []
    for group in groups.values():
        matched = [it for it in group if it.matched]
        if matched:
            out.extend(matched)
            continue
        titles: set[str] = set()
        for it in group:
            key = " ".join(it.title.lower().split())
            if key not in titles:
                titles.add(key)
                out.append(it)
    return out


def _stats(items: Sequence[StoredItem], matched: Sequence[bool]) -> VerdictStats:
    judged = [(it, m) for it, m in zip(items, matched, strict=True) if it.verdict]
    return VerdictStats(
        matched=sum(1 for _, m in judged if m),
        relevant=sum(1 for it, m in judged if m and it.verdict == RELEVANT),
        relevant_total=sum(1 for it, _ in judged if it.verdict == RELEVANT),
        judged=len(judged),
    )


def backtest(
    items: Iterable[StoredItem],
    proposed: ProfileSpec,
    *,
    profile: str = "profile",
    baseline: ProfileSpec | None = None,
) -> BacktestResult:
    """Re-score ``items`` with ``proposed``; see the module docstring."""
    stories = distinct_stories(items)
    scorer = compile_profiles({profile: proposed})
    base_scorer = compile_profiles({profile: baseline}) if baseline is not None else None
    added: list[Change] = []
    dropped: list[Change] = []
    kept: list[Change] = []
    was: list[bool] = []
    now: list[bool] = []
    for it in stories:
        (after,) = scorer.score(it.title, it.summary, it.source)
        if base_scorer is None:
            before_matched, before = it.matched, it.stored_score
        else:
            (b,) = base_scorer.score(it.title, it.summary, it.source)
            before_matched, before = b.matched, b.score
        was.append(before_matched)
        now.append(after.matched)
        if not (before_matched or after.matched):
            continue
        change = Change(it, before, after, explain_text(after, proposed.threshold))
        if before_matched and after.matched:
            kept.append(change)
        elif after.matched:
            added.append(change)
        else:
            dropped.append(change)
    added.sort(key=lambda c: (-c.after.score, c.item.id))
    dropped.sort(key=lambda c: (-(c.before or 0.0), c.item.id))
    kept.sort(key=lambda c: (-c.after.score, c.item.id))
    return BacktestResult(
        profile=profile,
        items=len(stories),
        added=tuple(added),
        dropped=tuple(dropped),
        kept=tuple(kept),
        before=_stats(stories, was),
        after=_stats(stories, now),
    )
