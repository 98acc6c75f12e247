"""The values of digests and of stored items, exported by :mod:`watcher.values` (see there).

Defined apart so that `watcher run` reaches its first fetch without them; import them from
:mod:`watcher.values`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime


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
