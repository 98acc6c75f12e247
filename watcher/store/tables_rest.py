"""The tables of :mod:`watcher.store.tables` that no step before `watcher run`'s first fetch reads.

Defined on that module's metadata (the same schema, the same naming convention) and exported by
it on first use; import them from there.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from watcher.store.tables import UTCDateTime, _required, metadata

# What stays of an item pruned by retention: see models.EntryKey.
entry_keys = Table(
    "entry_keys",
    metadata,
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    Column("key_hash", BigInteger, primary_key=True, autoincrement=False),
    _required("first_seen", Integer),  # the day the item was first stored
    _required("last_seen", Integer),  # the last day its feed was seen carrying it
    Index("ix_entry_keys_first_seen", "first_seen"),
    sqlite_with_rowid=False,
)

matches = Table(
    "matches",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("entry_id", Integer, ForeignKey("entries.id", ondelete="CASCADE")),
    _required("profile", String(100), index=True),
    _required("score", Float),
    _required("terms", JSON),  # [[term, contribution], ...]
    _required("created_at", UTCDateTime, index=True),
    # Set when the profile in force no longer matches this queued match (an exclude, a higher
    # threshold…): it is kept, with the reason, but no digest carries it.
    Column("withheld_at", UTCDateTime),
    Column("withheld_reason", Text),
    UniqueConstraint("entry_id", "profile", name="uq_matches_entry_profile"),
)

digest_runs = Table(
    "digest_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("digest", String(64), index=True),
    _required("key", String(100), unique=True),  # idempotency key
    _required("status", String(16), default="pending"),  # pending | sent | failed
    _required("attempts", Integer, default=0),
    _required("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    _required("created_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("digest", String(64)),
    _required("match_id", Integer, ForeignKey("matches.id", ondelete="CASCADE")),
    _required("run_id", Integer, ForeignKey("digest_runs.id", ondelete="CASCADE"), index=True),
    UniqueConstraint("digest", "match_id", name="uq_deliveries_digest_match"),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("match_id", Integer, ForeignKey("matches.id", ondelete="CASCADE"), unique=True),
    _required("verdict", String(16)),  # relevant | not_relevant
    Column("note", Text),
    _required("at", UTCDateTime, index=True),
    _required("via", String(16)),  # web | cli | …
)

suggestions = Table(
    "suggestions",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("profile", String(100), index=True),
    _required("base", String(64)),  # fingerprint of the profile the proposal was measured on
    _required("changes", JSON),  # [{key, kind, value, weight, effect…}]
    _required("created_at", UTCDateTime),
    Column("applied_at", UTCDateTime),
)
