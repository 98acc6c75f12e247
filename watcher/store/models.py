"""SQLAlchemy 2 ORM classes, mapped onto the Core tables of :mod:`watcher.store.tables`.

The schema (columns, uniqueness, indexes) is defined once, there; the annotations here give the
attributes their Python types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped

from watcher.store import tables, tables_rest  # noqa: F401  (every table on the metadata)
from watcher.store.tables import NAMING, UTCDateTime

__all__ = [
    "NAMING",
    "Base",
    "Delivery",
    "DigestRun",
    "DigestSchedule",
    "EntryKey",
    "EntryRow",
    "Feed",
    "MatchRow",
    "SuggestionRow",
    "UTCDateTime",
    "VerdictRow",
]


class Base(DeclarativeBase):
    metadata = tables.metadata


class Feed(Base):
    __table__ = tables.feeds

    id: Mapped[int]
    url: Mapped[str]
    name: Mapped[str | None]
    title: Mapped[str | None]
    origin: Mapped[str]  # config | cli
    interval_s: Mapped[float | None]
    status: Mapped[str]  # ok | error | backoff | gone
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    body_sha256: Mapped[str | None]
    ttl_minutes: Mapped[int | None]
    poll_interval_s: Mapped[float | None]  # the adaptive interval in force
    parsed_day: Mapped[int | None]  # UTC day number of the last poll that read the feed's items
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    error_count: Mapped[int]
    next_poll_at: Mapped[datetime]
    lease_owner: Mapped[str | None]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]


class EntryRow(Base):
    __table__ = tables.entries

    id: Mapped[int]
    feed_id: Mapped[int]
    entry_key: Mapped[str]
    title: Mapped[str]
    summary: Mapped[str]
    link: Mapped[str | None]
    source: Mapped[str | None]
    author: Mapped[str | None]
    published: Mapped[datetime]
    fetched_at: Mapped[datetime]


class EntryKey(Base):
    """What stays of an item pruned by retention: enough to recognise it if its feed carries it again.

    A 64-bit hash of the entry key and two day numbers (days since 1970-01-01, UTC) instead of
    the key text and timestamps: a few dozen bytes a row, so keeping them for months costs
    little. WITHOUT ROWID on SQLite: the primary key is the table.
    """

    __table__ = tables.entry_keys

    feed_id: Mapped[int]
    key_hash: Mapped[int]
    first_seen: Mapped[int]  # the day the item was first stored
    last_seen: Mapped[int]  # the last day its feed was seen carrying it


class MatchRow(Base):
    __table__ = tables.matches

    id: Mapped[int]
    entry_id: Mapped[int]
    profile: Mapped[str]
    score: Mapped[float]
    terms: Mapped[list[list[Any]]]  # [[term, contribution], ...]
    created_at: Mapped[datetime]
    withheld_at: Mapped[datetime | None]  # the profile in force no longer matches it: kept, not sent
    withheld_reason: Mapped[str | None]


class DigestRun(Base):
    """The outbox: one row per digest to send, committed with its deliveries before any send."""

    __table__ = tables.digest_runs

    id: Mapped[int]
    digest: Mapped[str]
    key: Mapped[str]  # idempotency key
    status: Mapped[str]  # pending | sent | failed
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None]
    lease_until: Mapped[datetime | None]


class DigestSchedule(Base):
    """When a cron digest last fired (or, until its first fire, when its schedule was first seen)."""

    __table__ = tables.digest_schedules

    digest: Mapped[str]
    schedule: Mapped[str]
    timezone: Mapped[str]
    fired_at: Mapped[datetime]


class Delivery(Base):
    __table__ = tables.deliveries

    id: Mapped[int]
    digest: Mapped[str]
    match_id: Mapped[int]
    run_id: Mapped[int]


class VerdictRow(Base):
    """A reader's verdict on one match: one per match, a later verdict replaces the earlier."""

    __table__ = tables.verdicts

    id: Mapped[int]
    match_id: Mapped[int]
    verdict: Mapped[str]  # relevant | not_relevant
    note: Mapped[str | None]
    at: Mapped[datetime]
    via: Mapped[str]  # web | cli | …


class SuggestionRow(Base):
    """A proposal of `watcher profile suggest`, kept so `watcher profile apply ID` knows what was accepted."""

    __table__ = tables.suggestions

    id: Mapped[int]
    profile: Mapped[str]
    base: Mapped[str]  # fingerprint of the profile the proposal was measured on
    changes: Mapped[list[dict[str, Any]]]  # [{key, kind, value, weight, effect…}]
    created_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
