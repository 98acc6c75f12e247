"""SQLAlchemy 2 models. Uniqueness lives here, in the database, not in Python."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass UTC-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(16), default="config")  # config | cli
    interval_s: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | error | backoff | gone
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    ttl_minutes: Mapped[int | None] = mapped_column(Integer)
    poll_interval_s: Mapped[float | None] = mapped_column(Float)  # the adaptive interval in force
    # UTC day number of the last poll that read the feed's items: key records last seen before
    # that day are no longer in the feed (a 304 carries the same items, so it does not count).
    parsed_day: Mapped[int | None] = mapped_column(Integer)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EntryRow(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("feed_id", "entry_key", name="uq_entries_feed_key"),
        Index("ix_entries_link", "link"),
        Index("ix_entries_fetched_at", "fetched_at"),  # retention walks items by first-seen time
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2048))
    source: Mapped[str | None] = mapped_column(String(500))
    author: Mapped[str | None] = mapped_column(String(500))
    published: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EntryKey(Base):
    """What stays of an item pruned by retention: enough to recognise it if its feed carries it again.

    A 64-bit hash of the entry key and two day numbers (days since 1970-01-01, UTC) instead of
    the key text and timestamps: a few dozen bytes a row, so keeping them for months costs
    little. WITHOUT ROWID on SQLite: the primary key is the table.
    """

    __tablename__ = "entry_keys"
    __table_args__ = (Index("ix_entry_keys_first_seen", "first_seen"), {"sqlite_with_rowid": False})

    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    key_hash: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seen: Mapped[int] = mapped_column(Integer)  # the day the item was first stored
    last_seen: Mapped[int] = mapped_column(Integer)  # the last day its feed was seen carrying it


class MatchRow(Base):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("entry_id", "profile", name="uq_matches_entry_profile"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    profile: Mapped[str] = mapped_column(String(100), index=True)
    score: Mapped[float] = mapped_column(Float)
    terms: Mapped[list[list[Any]]] = mapped_column(JSON)  # [[term, contribution], ...]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set when the profile in force no longer matches this queued match (an exclude, a higher
    # threshold…): it is kept, with the reason, but no digest carries it.
    withheld_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withheld_reason: Mapped[str | None] = mapped_column(Text)


class DigestRun(Base):
    """The outbox: one row per digest to send, committed with its deliveries before any send."""

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)  # idempotency key
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DigestSchedule(Base):
    """When a cron digest last fired (or, until its first fire, when its schedule was first seen)."""

    __tablename__ = "digest_schedules"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("digest", "match_id", name="uq_deliveries_digest_match"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("digest_runs.id", ondelete="CASCADE"), index=True)


class VerdictRow(Base):
    """A reader's verdict on one match: one per match, a later verdict replaces the earlier."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), unique=True)
    verdict: Mapped[str] = mapped_column(String(16))  # relevant | not_relevant
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    via: Mapped[str] = mapped_column(String(16))  # web | cli | …


class SuggestionRow(Base):
    """A proposal of `watcher profile suggest`, kept so `watcher profile apply ID` knows what was accepted."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[str] = mapped_column(String(100), index=True)
    base: Mapped[str] = mapped_column(String(64))  # fingerprint of the profile the proposal was measured on
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{key, kind, value, weight, effect…}]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
