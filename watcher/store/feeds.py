"""Feed rows: sync from config, add/remove, claim due feeds with a lease, record poll outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from watcher.imports import lazy_exports
from watcher.store.db import dialect_insert
from watcher.store.tables import entries as entry_table
from watcher.store.tables import feeds as feed_table

if TYPE_CHECKING:  # what the listing and health commands get, defined when they ask
    from watcher.store.feed_views import FeedView, Health
    from watcher.values_polled import PollOutcome

ACTIVE = ("ok", "error", "backoff")


@dataclass(frozen=True, slots=True)
class FeedClaim:
    """What a worker needs to poll one feed; handed out under a lease."""

    id: int
    url: str
    name: str | None
    interval_s: float | None
    etag: str | None
    last_modified: str | None
    body_sha256: str | None
    error_count: int
    ttl_minutes: int | None
    poll_interval_s: float | None = None


def sync_config_feeds(
    engine: Engine, feeds: Iterable[tuple[str, str | None, float | None]], now: datetime
) -> None:
    """Make the config's feeds exist; config feeds dropped from the file stop being polled."""
    wanted = {url: (name, interval) for url, name, interval in feeds}
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                feed_table.c.id,
                feed_table.c.url,
                feed_table.c.origin,
                feed_table.c.status,
                feed_table.c.name,
                feed_table.c.interval_s,
            )
        ).all()
        have = {r.url: r for r in rows}
        missing: list[dict[str, object]] = []
        for url, (name, interval) in wanted.items():
            row = have.get(url)
            if row is None:
                missing.append(
                    {
                        "url": url,
                        "name": name,
                        "interval_s": interval,
                        "origin": "config",
                        "status": "ok",
                        "error_count": 0,
                        "next_poll_at": now,
                        "created_at": now,
                    }
                )
            elif (row.name, row.interval_s, row.origin) != (
                name,
                interval,
                "config",
            ) or row.status == "removed":
                status = "ok" if row.status == "removed" else row.status
                conn.execute(
                    update(feed_table)
                    .where(feed_table.c.id == row.id)
                    .values(name=name, interval_s=interval, origin="config", status=status)
                )
        if missing:
            # Workers starting together sync the same list: the database keeps the first insert.
            conn.execute(
                dialect_insert(engine, feed_table).on_conflict_do_nothing(index_elements=["url"]), missing
            )
        for url, row in have.items():
            if row.origin == "config" and url not in wanted and row.status != "removed":
                conn.execute(update(feed_table).where(feed_table.c.id == row.id).values(status="removed"))


def add_feed(engine: Engine, url: str, name: str | None, interval: float | None, now: datetime) -> bool:
    """Add a feed from the command line; False when it is already followed."""
    try:
        with engine.begin() as conn:
            existing = conn.execute(
                select(feed_table.c.id, feed_table.c.status).where(feed_table.c.url == url)
            ).first()
            if existing is not None:
                if existing.status != "removed":
                    return False
                conn.execute(
                    update(feed_table)
                    .where(feed_table.c.id == existing.id)
                    .values(status="ok", origin="cli", name=name, interval_s=interval, next_poll_at=now)
                )
                return True
            conn.execute(
                feed_table.insert().values(
                    url=url,
                    name=name,
                    interval_s=interval,
                    origin="cli",
                    status="ok",
                    error_count=0,
                    next_poll_at=now,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def remove_feed(engine: Engine, url: str) -> str | None:
    """Stop following a feed. Returns its origin, or None when unknown. Stored items are kept."""
    with engine.begin() as conn:
        row = conn.execute(
            select(feed_table.c.id, feed_table.c.origin).where(
                feed_table.c.url == url, feed_table.c.status != "removed"
            )
        ).first()
        if row is None:
            return None
        conn.execute(update(feed_table).where(feed_table.c.id == row.id).values(status="removed"))
        return row.origin


def list_feeds(engine: Engine) -> list[FeedView]:
    from watcher.store.feed_views import FeedView

    e = entry_table.c
    counts = select(e.feed_id, func.count().label("n")).group_by(e.feed_id).subquery()
    f = feed_table.c
    q = (
        select(feed_table, func.coalesce(counts.c.n, 0).label("entries"))
        .outerjoin(counts, counts.c.feed_id == f.id)
        .where(f.status != "removed")
        .order_by(f.id)
    )
    with engine.connect() as conn:
        return [
            FeedView(
                id=r.id,
                url=r.url,
                name=r.name,
                title=r.title,
                origin=r.origin,
                status=_shown_status(r.status, r.last_polled_at),
                entries=int(r.entries),
                last_success=r.last_success_at,
                last_error=r.last_error,
                error_count=r.error_count,
                next_poll=None if r.status == "gone" else r.next_poll_at,
            )
            for r in conn.execute(q)
        ]


def claim_due_feeds(
    engine: Engine, owner: str, now: datetime, limit: int, lease_s: float, due_by: datetime | None = None
) -> list[FeedClaim]:
    """Lease up to ``limit`` due feeds to ``owner``.

    On PostgreSQL the inner SELECT takes row locks with SKIP LOCKED, so concurrent workers
    never claim the same feed; the lease lets another worker take over a dead worker's feeds.
    SQLite ignores FOR UPDATE (it has a single worker, enforced at start). ``due_by`` (default
    ``now``) lets a caller take only what was due when its pass began, so a pass always ends.
    """
    due = (
        select(feed_table.c.id)
        .where(
            feed_table.c.status.in_(ACTIVE),
            feed_table.c.next_poll_at <= (due_by or now),
            or_(feed_table.c.lease_until.is_(None), feed_table.c.lease_until < now),
        )
        .order_by(feed_table.c.next_poll_at, feed_table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(feed_table)
        .where(feed_table.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
        .returning(
            feed_table.c.id,
            feed_table.c.url,
            feed_table.c.name,
            feed_table.c.interval_s,
            feed_table.c.etag,
            feed_table.c.last_modified,
            feed_table.c.body_sha256,
            feed_table.c.error_count,
            feed_table.c.ttl_minutes,
            feed_table.c.poll_interval_s,
        )
    )
    with engine.begin() as conn:
        rows = conn.execute(stmt).all()
    return sorted((FeedClaim(*r) for r in rows), key=lambda c: c.id)


def record_outcome(engine: Engine, claim: FeedClaim, owner: str, outcome: PollOutcome) -> None:
    """Write one poll's outcome and release the lease (only if we still hold it)."""
    record_outcomes(engine, owner, [(claim, outcome)])


_OK_FIELDS = ("etag", "last_modified", "body_sha256", "title", "ttl_minutes", "poll_interval_s", "parsed_day")


def _outcome_values(outcome: PollOutcome) -> dict[str, object]:
    values: dict[str, object] = {
        "status": outcome.status,
        "next_poll_at": outcome.next_poll_at,
        "last_polled_at": outcome.polled_at,
    }
    if outcome.status == "ok":
        values.update(last_success_at=outcome.polled_at)
        for key in _OK_FIELDS:
            value = getattr(outcome, key)
            if value is not None:
                values[key] = value
    else:
        values["last_error"] = outcome.error
    return values


def record_outcomes(engine: Engine, owner: str, outcomes: Iterable[tuple[FeedClaim, PollOutcome]]) -> None:
    """Write many polls' outcomes in one transaction, each releasing its lease if still ours.

    Outcomes that set the same columns share one UPDATE statement run with many parameter sets
    (executemany), so a cycle pays for one statement per batch instead of one per feed.
    """
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    moved: list[tuple[FeedClaim, str]] = []
    for claim, outcome in outcomes:
        # Parameter names must differ from the column names in an UPDATE's SET clause.
        values = {f"v_{k}": v for k, v in _outcome_values(outcome).items()}
        values["b_id"] = claim.id
        groups.setdefault(tuple(sorted(values)), []).append(values)
        if outcome.new_url and outcome.new_url != claim.url:
            moved.append((claim, outcome.new_url))
    if not groups:
        return
    table = feed_table
    with engine.begin() as conn:
        for keys, rows in groups.items():
            sets: dict[str, object] = {
                k[2:]: bindparam(k, type_=table.c[k[2:]].type) for k in keys if k != "b_id"
            }
            sets.update(lease_owner=None, lease_until=None)
            if "v_last_error" in keys:  # a failure
                sets["error_count"] = table.c.error_count + 1
            else:
                sets.update(error_count=0, last_error=None)
            where = and_(
                table.c.id == bindparam("b_id"),
                or_(table.c.lease_owner == owner, table.c.lease_owner.is_(None)),
            )
            conn.execute(update(table).where(where).values(sets), rows)
    for claim, new_url in moved:
        try:
            with engine.begin() as conn:
                conn.execute(update(feed_table).where(feed_table.c.id == claim.id).values(url=new_url))
        except IntegrityError:
            pass  # the new URL is already followed as its own feed; keep both rows as they are


def followed_count(engine: Engine) -> int:
    """Feeds followed, whether from the config or added on the command line."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(feed_table).where(feed_table.c.status != "removed")
            ).scalar_one()
        )


def _shown_status(status: str, last_polled: datetime | None) -> str:
    """A feed never polled yet is ``new``, not ``ok``: nothing is known about it."""
    return "new" if status == "ok" and last_polled is None else status


def health(engine: Engine, now: datetime) -> Health:
    from watcher.store.feed_views import Health

    with engine.connect() as conn:
        shown = case(
            (and_(feed_table.c.status == "ok", feed_table.c.last_polled_at.is_(None)), literal("new")),
            else_=feed_table.c.status,
        )
        by_status = dict(
            conn.execute(
                select(shown, func.count()).where(feed_table.c.status != "removed").group_by(shown)
            ).all()
        )
        due = conn.execute(
            select(func.count())
            .select_from(feed_table)
            .where(feed_table.c.status.in_(ACTIVE), feed_table.c.next_poll_at <= now)
        ).scalar_one()
        last = conn.execute(
            select(feed_table.c.last_polled_at)
            .where(feed_table.c.last_polled_at.is_not(None))
            .order_by(feed_table.c.last_polled_at.desc())
        ).scalar()
    return Health(feeds={k: int(v) for k, v in by_status.items()}, due=int(due), last_poll=last)


# PollOutcome is made once a poll's request is under way: defined in watcher.values_polled.
__getattr__ = lazy_exports(__name__, {"PollOutcome": "watcher.values_polled"})
