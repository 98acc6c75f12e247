"""Small typed values that flow between pipeline stages.

Stages never reach into each other's internals; they hand these over instead.
All values are immutable so pure stages can share them freely.

The values of digests and of stored items (``FeedbackLinks``, ``DigestItem``, ``Digest``,
``StoredItem``) are defined in :mod:`watcher.values_stored`, a parsed feed's (``Entry``,
``ParsedFeed``) in :mod:`watcher.values_polled`, and exported here on first use (PEP 562):
`watcher run` reaches its first fetch without defining them (each frozen dataclass compiles its
generated methods when defined, ~1 ms apiece).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from watcher.imports import lazy_exports

if TYPE_CHECKING:
    from watcher.values_polled import Entry, ParsedFeed
    from watcher.values_stored import Digest, DigestItem, FeedbackLinks, StoredItem


@dataclass(frozen=True, slots=True)
class Score:
    """An entry scored against one profile."""

    profile: str
    score: float
    matched: bool
    hits: tuple[tuple[str, float], ...] = ()  # (term, contribution), largest first
    reason: str | None = None  # why it did not match, e.g. "no anchor term"
    signals: tuple[tuple[str, float], ...] = ()  # aboutness signals that fired: (label, contribution)

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.hits)


def _score_builder() -> Callable[
    [str, float, bool, tuple[tuple[str, float], ...], str | None, tuple[tuple[str, float], ...]], Score
]:
    """`Score`'s own slots filled in order, without the frozen dataclass's ``__init__``.

    That ``__init__`` sets each field through ``object.__setattr__`` (about 1 us a Score); the
    scorer builds one per anchored profile and item. Each slot's descriptor is what that call
    ends in, so the Score is the same and stays frozen (its ``__setattr__`` still refuses).
    """
    new = object.__new__
    setters = [getattr(Score, f.name).__set__ for f in fields(Score)]
    set_profile, set_score, set_matched, set_hits, set_reason, set_signals = setters

    def build(
        profile: str,
        score: float,
        matched: bool,
        hits: tuple[tuple[str, float], ...],
        reason: str | None,
        signals: tuple[tuple[str, float], ...],
    ) -> Score:
        built = new(Score)
        set_profile(built, profile)
        set_score(built, score)
        set_matched(built, matched)
        set_hits(built, hits)
        set_reason(built, reason)
        set_signals(built, signals)
        return built

    return build


# Score(profile, score, matched, hits, reason, signals) with every field given, for hot loops.
new_score = _score_builder()


# Defined apart, exported here on first use: name -> module.
_LATER = {
    "FeedbackLinks": "watcher.values_stored",
    "DigestItem": "watcher.values_stored",
    "Digest": "watcher.values_stored",
    "StoredItem": "watcher.values_stored",
    "Entry": "watcher.values_polled",
    "ParsedFeed": "watcher.values_polled",
}

__all__ = ["Digest", "DigestItem", "Entry", "FeedbackLinks", "ParsedFeed", "Score", "StoredItem", "new_score"]

__getattr__ = lazy_exports(__name__, _LATER)
