"""Small typed values that flow between pipeline stages.

Stages never reach into each other's internals; they hand these over instead.
All values are immutable so pure stages can share them freely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed item, normalized by :mod:`watcher.parse`."""

    key: str  # stable per feed: guid, else canonical link, else hash of title+date
    title: str  # plain text, never empty (falls back to the summary)
    summary: str  # plain text, HTML stripped, entities decoded
    link: str | None  # canonical: tracking parameters removed
    published: datetime  # timezone-aware UTC
    author: str | None = None
    source: str | None = None  # the feed's title


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What :func:`watcher.parse.parse_feed` makes of one body."""

    title: str | None
    link: str | None
    entries: tuple[Entry, ...]
    problem: str | None = None  # a parse problem worth showing (even if entries were found)
    ttl_minutes: int | None = None  # the feed's own hint (ttl / sy:updatePeriod)
    alternates: tuple[str, ...] = ()  # feed links found when the body is an HTML page


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


@dataclass(frozen=True, slots=True)
class FeedbackLinks:
    """A digest item's two signed feedback links (see :mod:`watcher.web.tokens`)."""

    relevant: str
    not_relevant: str


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One story in a digest; duplicates from other feeds fold into ``also``."""

    match_id: int
    profile: str
    title: str
    link: str | None
    source: str | None
    published: datetime
    excerpt: str  # plain text, already shortened
    score: float
    terms: tuple[str, ...]
    also: tuple[tuple[str, str | None], ...] = ()  # (source, link) of the same story elsewhere
    extra_match_ids: tuple[int, ...] = ()  # matches folded into this item
    feedback: FeedbackLinks | None = None  # set when the web side is configured


@dataclass(frozen=True, slots=True)
class Digest:
    """A rendered-to-be digest: what one send carries."""

    name: str
    key: str  # idempotency key, stable across retries
    created: datetime
    items: tuple[DigestItem, ...]
    profiles: tuple[str, ...] = field(default=())
    timezone: str = "UTC"  # the digest's own: dates are shown to readers in it

    def with_feedback(self, links: Callable[[int], FeedbackLinks] | None) -> Digest:
        """The same digest with each item's feedback links (by its match id); unchanged when None."""
        if links is None:
            return self
        items = tuple(replace(it, feedback=links(it.match_id)) for it in self.items)
        return replace(self, items=items)

    @property
    def match_ids(self) -> tuple[int, ...]:
        out: list[int] = []
        for item in self.items:
            out.append(item.match_id)
            out.extend(item.extra_match_ids)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A stored entry as one profile saw it: what a backtest re-scores (see watcher.profiles.backtest)."""

    id: int  # entry id
    title: str
    summary: str
    source: str | None  # as the scorer got it (the feed's title), for exclude_sources
    link: str | None
    published: datetime
    match_id: int | None = None  # this profile's stored match, None when it did not match
    stored_score: float | None = None  # the match's score when it was stored
    verdict: str | None = None  # a reader's verdict on that match: relevant | not_relevant

    @property
    def matched(self) -> bool:
        return self.match_id is not None
