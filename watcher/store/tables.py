"""The schema as SQLAlchemy Core tables. Uniqueness lives here, in the database, not in Python.

The ORM classes of :mod:`watcher.store.models` are mapped onto these tables. Code on the service's
start-up path (syncing and claiming feeds, digest schedules) uses the tables directly, so
`watcher run` reaches its first fetch without importing the ORM. The other tables (kept keys,
matches, digest runs and deliveries, verdicts, suggestions) are defined on the same metadata in
:mod:`watcher.store.tables_rest` and exported here on first use (PEP 562): defining them is ~0.7 %
of the start-up (issue 14). The models import them all, so the ORM's metadata is whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from watcher.imports import lazy_exports


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

metadata = MetaData(naming_convention=NAMING)


def _required(name: str, *args: Any, **kw: Any) -> Column[Any]:
    """A NOT NULL column (what the models' non-optional ``Mapped[...]`` types said)."""
    return Column(name, *args, nullable=False, **kw)


feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("url", String(2048), unique=True),
    Column("name", String(300)),
    Column("title", String(500)),
    _required("origin", String(16), default="config"),  # config | cli
    Column("interval_s", Float),
    _required("status", String(16), default="ok"),  # ok | error | backoff | gone | removed
    Column("etag", String(500)),
    Column("last_modified", String(100)),
    Column("body_sha256", String(64)),
    Column("ttl_minutes", Integer),
    Column("poll_interval_s", Float),  # the adaptive interval in force
    # UTC day number of the last poll that read the feed's items: key records last seen before
    # that day are no longer in the feed (a 304 carries the same items, so it does not count).
    Column("parsed_day", Integer),
    Column("last_polled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    _required("error_count", Integer, default=0),
    _required("next_poll_at", UTCDateTime, index=True),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
    _required("created_at", UTCDateTime),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE")),
    _required("entry_key", String(1024)),
    _required("title", Text),
    _required("summary", Text),
    Column("link", String(2048)),
    Column("source", String(500)),
    Column("author", String(500)),
    _required("published", UTCDateTime),
    _required("fetched_at", UTCDateTime),
    UniqueConstraint("feed_id", "entry_key", name="uq_entries_feed_key"),
    Index("ix_entries_link", "link"),
    Index("ix_entries_fetched_at", "fetched_at"),  # retention walks items by first-seen time
)


digest_schedules = Table(
    "digest_schedules",
    metadata,
    Column("digest", String(64), primary_key=True),
    _required("schedule", String(200)),
    _required("timezone", String(64)),
    _required("fired_at", UTCDateTime),
)

# The tables no step before the first fetch reads, defined in watcher.store.tables_rest (on this
# metadata) when one is first named; the ORM's models import them all.
__getattr__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ("entry_keys", "matches", "digest_runs", "deliveries", "verdicts", "suggestions"),
        "watcher.store.tables_rest",
    ),
)
