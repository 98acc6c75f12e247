"""The values a poll makes once its request is under way, and what a cycle reports.

Each is exported on first use (PEP 562) by the module of its stage, where it is documented and
imported from: :class:`FetchResult` by :mod:`watcher.fetch`, :class:`PollOutcome` by
:mod:`watcher.store.feeds`, :class:`Entry` and :class:`ParsedFeed` by :mod:`watcher.values`,
:class:`FeedResult` and :class:`DigestResult` by :mod:`watcher.pipeline`, :class:`CycleReport` by
:mod:`watcher.service`. Defined apart so that `watcher run` sends its first feed request without
defining them: a dataclass compiles its generated methods when it is defined (~2.5-7.5 M
instructions each, ~1.7 % of the start-up together; issue 14).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from watcher.store.retention import PruneReport


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    url: str  # after redirects
    body: bytes | None  # None when not modified
    etag: str | None
    last_modified: str | None
    not_modified: bool
    permanent_redirect: str | None  # the new URL when every hop was a 301/308
    content_type: str | None
    body_sha256: str | None  # lets the caller skip parsing an unchanged body
    elapsed: float  # seconds


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """The result of one poll, to be written back in one statement."""

    status: str  # ok | error | backoff | gone
    next_poll_at: datetime
    polled_at: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    title: str | None = None
    ttl_minutes: int | None = None
    poll_interval_s: float | None = None
    new_url: str | None = None  # a permanent redirect moved the feed
    parsed_day: int | None = None  # set when the body was read (not on a 304 or the same bytes)


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


@dataclass
class FeedResult:
    url: str
    status: str  # ok | not_modified | unchanged | error | gone
    new_entries: int = 0
    matches: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    kind: str | None = None  # the kind of failure (timeout, http, parse, …), for metrics


@dataclass
class DigestResult:
    digest: str
    run_id: int
    items: int
    status: str  # sent | retry | failed | split (refused; its undelivered items moved to new runs)
    error: str | None = None
    files: list[Path] = field(default_factory=list)


@dataclass
class CycleReport:
    feeds: list[FeedResult] = field(default_factory=list)
    digests: list[DigestResult] = field(default_factory=list)
    pruned: PruneReport | None = None
    storage_fault: str | None = None  # the database refused writes: nothing was lost, but nothing stored

    @property
    def new_entries(self) -> int:
        return sum(f.new_entries for f in self.feeds)

    @property
    def matches(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.feeds:
            total.update(f.matches)
        return total

    @property
    def failed_feeds(self) -> list[FeedResult]:
        return [f for f in self.feeds if f.status in ("error", "gone")]
