"""Retention: prune what nobody keeps, in small batches, and keep what recognises it.

An item that matched nothing is deleted ``items`` after it was first seen; a key record
(feed, 64-bit hash of the entry key, first and last day seen) takes its place, so when its
feed carries it again it is known and neither scored, matched nor sent again. A key record
goes once it is ``keys`` old *and* its feed no longer carries the item (or the feed is no
longer followed). Matches and their delivery records are kept unless ``matches`` is set; a
match with a reader's verdict stays as long as its verdict (``verdicts``, default forever).

Every batch is one short transaction (at most ``batch`` rows), so pruning never holds a
lock for long beside a running service; on PostgreSQL an advisory lock lets one worker
prune at a time. On SQLite freed pages are given back to the file system (incremental
auto-vacuum) a slice at a time.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, exists, func, or_, select, text
from sqlalchemy.exc import OperationalError

from watcher.config import RetentionSettings
from watcher.store.db import dialect_insert, is_sqlite
from watcher.store.models import Delivery, DigestRun, EntryKey, EntryRow, Feed, MatchRow, VerdictRow

PRUNE_LOCK = 0x77617464  # the PostgreSQL advisory lock held by the worker that prunes
ACTIVE = ("ok", "error", "backoff")
VACUUM_PAGES = 2048  # pages given back per incremental-vacuum step (8 MiB at 4 KiB pages)


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 (UTC): the granularity of key records."""
    return int(moment.timestamp() // 86400)


def key_hash(entry_key: str) -> int:
    """A signed 64-bit hash of an entry key (BIGINT on both backends).

    A collision within one feed would take a new item for a known one; at 64 bits and even a
    million keys in one feed, the odds are about one in 36 million.
    """
    digest = hashlib.blake2b(entry_key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, slots=True)
class Policy:
    items: float  # seconds
    keys: float  # seconds
    matches: float | None = None  # seconds; None keeps them
    verdicts: float | None = None  # a match with a verdict stays as long as its verdict; None: forever
    batch: int = 500

    @classmethod
    def of(cls, r: RetentionSettings) -> Policy:
        return cls(items=r.items, keys=r.keys, matches=r.matches, verdicts=r.verdicts, batch=r.batch)


@dataclass
class PruneReport:
    items: int = 0  # unmatched items deleted (each leaving a key record)
    keys: int = 0  # key records expired
    matches: int = 0
    verdicts: int = 0
    deliveries: int = 0
    runs: int = 0  # digest runs left without any delivery record
    freed_bytes: int = 0  # given back to the file system (SQLite)
    complete: bool = True  # False: stopped early (time budget, shutdown, or another worker prunes)

    @property
    def removed(self) -> int:
        return self.items + self.keys + self.matches + self.verdicts + self.deliveries + self.runs

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    def summary(self) -> str:
        parts = [
            f"{self.items} items that matched nothing (their key records stay)",
            f"{self.keys} expired key records",
        ]
        if self.matches or self.deliveries or self.runs:
            parts.append(
                f"{self.matches} matches ({self.verdicts} with a verdict), {self.deliveries} delivery "
                f"records, {self.runs} digest runs"
            )
        line = "removed " + ", ".join(parts)
        if self.freed_bytes:
            line += f"; gave back {self.freed_bytes / 1048576:.1f} MiB"
        return line


class _Stop(Exception):
    pass


class _Pruner:
    def __init__(
        self,
        engine: Engine,
        policy: Policy,
        now: datetime,
        deadline: float | None,
        pause: float,
        stop: Callable[[], bool] | None,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.now = now
        self.today = day_number(now)
        self.deadline = deadline
        self.pause = pause
        self.stop = stop
        self.report = PruneReport()

    def check(self) -> None:
        if (self.stop and self.stop()) or (self.deadline is not None and time.monotonic() > self.deadline):
            raise _Stop

    def batch(self, work: Callable[[Connection], int]) -> int:
        """One transaction; on PostgreSQL only while holding the prune lock."""
        self.check()
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PRUNE_LOCK}).scalar()
                if not got:
                    raise _Stop  # another worker is pruning right now
            n = work(conn)
        if self.pause and n:
            time.sleep(self.pause)  # let the service's own writes in between batches
        return n

    # -- matches (only when the user asked) ---------------------------------------------------
    def matches(self) -> None:
        if self.policy.matches is None:
            return
        cutoff = self.now - timedelta(seconds=self.policy.matches)
        in_pending_run = (
            select(Delivery.id)
            .join(DigestRun, DigestRun.id == Delivery.run_id)
            .where(Delivery.match_id == MatchRow.id, DigestRun.status == "pending")
            .exists()
        )
        kept_verdict = select(VerdictRow.id).where(VerdictRow.match_id == MatchRow.id)
        if self.policy.verdicts is not None:
            kept_verdict = kept_verdict.where(
                VerdictRow.at >= self.now - timedelta(seconds=self.policy.verdicts)
            )
        q = (
            select(MatchRow.id)
            .where(MatchRow.created_at < cutoff, ~in_pending_run, ~kept_verdict.exists())
            .order_by(MatchRow.id)
            .limit(self.policy.batch)
        )

        def one(conn: Connection) -> int:
            ids = list(conn.execute(q).scalars())
            if ids:
                self.report.deliveries += conn.execute(
                    delete(Delivery).where(Delivery.match_id.in_(ids))
                ).rowcount
                self.report.verdicts += conn.execute(
                    delete(VerdictRow).where(VerdictRow.match_id.in_(ids))
                ).rowcount
                self.report.matches += conn.execute(delete(MatchRow).where(MatchRow.id.in_(ids))).rowcount
            return len(ids)

        while self.batch(one):
            pass
        empty_run = (
            select(DigestRun.id)
            .where(
                DigestRun.status != "pending",
                DigestRun.created_at < cutoff,
                ~exists().where(Delivery.run_id == DigestRun.id),
            )
            .order_by(DigestRun.id)
            .limit(self.policy.batch)
        )

        def runs(conn: Connection) -> int:
            ids = list(conn.execute(empty_run).scalars())
            if ids:
                self.report.runs += conn.execute(delete(DigestRun).where(DigestRun.id.in_(ids))).rowcount
            return len(ids)

        while self.batch(runs):
            pass

    # -- items that matched nothing -----------------------------------------------------------
    def items(self) -> None:
        cutoff = self.now - timedelta(seconds=self.policy.items)
        unmatched = ~exists().where(MatchRow.entry_id == EntryRow.id)
        after: tuple[datetime, int] | None = None

        def one(conn: Connection) -> int:
            nonlocal after
            q = select(EntryRow.id, EntryRow.feed_id, EntryRow.entry_key, EntryRow.fetched_at).where(
                EntryRow.fetched_at < cutoff, unmatched
            )
            if after is not None:  # keyset: matched items (kept) are not scanned again
                q = q.where(
                    or_(
                        EntryRow.fetched_at > after[0],
                        and_(EntryRow.fetched_at == after[0], EntryRow.id > after[1]),
                    )
                )
            rows = conn.execute(q.order_by(EntryRow.fetched_at, EntryRow.id).limit(self.policy.batch)).all()
            if not rows:
                return 0
            after = (rows[-1].fetched_at, rows[-1].id)
            records = {
                (r.feed_id, key_hash(r.entry_key)): {
                    "feed_id": r.feed_id,
                    "key_hash": key_hash(r.entry_key),
                    "first_seen": day_number(r.fetched_at),
                    # Whether the feed still carries it is learnt at its next read; until then,
                    # count it as carried today.
                    "last_seen": self.today,
                }
                for r in rows
            }
            conn.execute(
                dialect_insert(self.engine, EntryKey.__table__).on_conflict_do_nothing(
                    index_elements=["feed_id", "key_hash"]
                ),
                list(records.values()),
            )
            ids = [r.id for r in rows]
            # Guarded again inside the transaction: an item that matched meanwhile stays.
            self.report.items += conn.execute(
                delete(EntryRow).where(EntryRow.id.in_(ids), unmatched)
            ).rowcount
            return len(rows)

        while self.batch(one):
            pass

    # -- key records whose time is up --------------------------------------------------------
    def keys(self) -> None:
        cutoff_day = day_number(self.now - timedelta(seconds=self.policy.keys))
        not_carried = or_(
            Feed.status.not_in(ACTIVE), Feed.parsed_day.is_(None), EntryKey.last_seen < Feed.parsed_day
        )
        after: tuple[int, int, int] | None = None

        def one(conn: Connection) -> int:
            nonlocal after
            q = (
                select(EntryKey.first_seen, EntryKey.feed_id, EntryKey.key_hash, not_carried)
                .join(Feed, Feed.id == EntryKey.feed_id)
                .where(EntryKey.first_seen < cutoff_day)
            )
            if after is not None:  # keyset (first_seen, feed_id, key_hash): carried keys are read once
                f, fid, h = after
                q = q.where(
                    or_(
                        EntryKey.first_seen > f,
                        and_(EntryKey.first_seen == f, EntryKey.feed_id > fid),
                        and_(EntryKey.first_seen == f, EntryKey.feed_id == fid, EntryKey.key_hash > h),
                    )
                )
            q = q.order_by(EntryKey.first_seen, EntryKey.feed_id, EntryKey.key_hash).limit(self.policy.batch)
            rows = conn.execute(q).all()
            if not rows:
                return 0
            after = (rows[-1][0], rows[-1][1], rows[-1][2])
            by_feed: dict[int, list[int]] = defaultdict(list)
            for _first, fid, h, gone in rows:
                if gone:
                    by_feed[fid].append(h)
            for fid, hashes in by_feed.items():
                self.report.keys += conn.execute(
                    delete(EntryKey).where(EntryKey.feed_id == fid, EntryKey.key_hash.in_(hashes))
                ).rowcount
            return len(rows)

        while self.batch(one):
            pass

    # -- give the space back (SQLite) ---------------------------------------------------------
    def vacuum(self) -> None:
        if not is_sqlite(self.engine):
            return  # PostgreSQL: autovacuum makes deleted rows' space reusable
        with self.engine.connect() as conn:
            if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != 2:  # 2 = INCREMENTAL
                return
            page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 4096)
        while True:
            self.check()
            with self.engine.connect() as conn:
                free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
                if not free:
                    break
                step = min(free, VACUUM_PAGES)
                # executescript steps the pragma to the end: a plain execute frees one page only.
                conn.connection.dbapi_connection.executescript(f"PRAGMA incremental_vacuum({step});")
                self.report.freed_bytes += step * page_size
            if self.pause:
                time.sleep(self.pause)


def prune(
    engine: Engine,
    policy: Policy,
    now: datetime,
    *,
    budget_s: float | None = None,
    pause: float = 0.0,
    stop: Callable[[], bool] | None = None,
) -> PruneReport:
    """Prune what is due at ``now``, batch by batch, within ``budget_s`` seconds (None: all).

    ``pause`` sleeps between batches (the service passes a little, so its polls get the
    database in between); ``stop`` is checked between batches (a shutdown).
    """
    deadline = None if budget_s is None else time.monotonic() + budget_s
    p = _Pruner(engine, policy, now, deadline, pause, stop)
    try:
        p.matches()
        p.items()
        p.keys()
        p.vacuum()
    except _Stop:
        p.report.complete = False
    except OperationalError as exc:
        if "locked" not in str(exc).lower():
            raise
        p.report.complete = False  # SQLite busy for longer than its timeout: the next round goes on
    return p.report


@dataclass(frozen=True, slots=True)
class StorageCounts:
    feeds: int
    items: int
    key_records: int
    matches: int
    verdicts: int
    deliveries: int
    digest_runs: int


def counts(engine: Engine) -> StorageCounts:
    models: Sequence[type] = (Feed, EntryRow, EntryKey, MatchRow, VerdictRow, Delivery, DigestRun)
    with engine.connect() as conn:
        n = [int(conn.execute(select(func.count()).select_from(m)).scalar_one()) for m in models]
    return StorageCounts(*n)


def sqlite_space(engine: Engine) -> tuple[int, int, int]:
    """(file bytes in use by pages, free pages' bytes, auto_vacuum mode) of a SQLite database."""
    with engine.connect() as conn:
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
        mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() or 0)
    return pages * page, free * page, mode


def vacuum_full(engine: Engine) -> int:
    """A full VACUUM (SQLite), switching the file to incremental auto-vacuum on the way.

    Needs the database to itself for a moment and up to twice its size free on disk; returns
    the bytes given back.
    """
    before, _, _ = sqlite_space(engine)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
        conn.exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all()
    after, _, _ = sqlite_space(engine)
    return max(before - after, 0)
