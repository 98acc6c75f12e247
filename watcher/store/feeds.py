"""Feed rows: sync from config, add/remove, claim due feeds with a lease, record poll outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from watcher.store.db import dialect_insert
from watcher.store.models import EntryRow, Feed

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


@dataclass(frozen=True, slots=True)
class FeedView:
    id: int
    url: str
    name: str | None
    title: str | None
    origin: str
    status: str
    entries: int
    last_success: datetime | None
    last_error: str | None
    error_count: int
    next_poll: datetime | None


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


def sync_config_feeds(
    engine: Engine, feeds: Iterable[tuple[str, str | None, float | None]], now: datetime
) -> None:
    """Make the config's feeds exist; config feeds dropped from the file stop being polled."""
    wanted = {url: (name, interval) for url, name, interval in feeds}
    with engine.begin() as conn:
        rows = conn.execute(
            select(Feed.id, Feed.url, Feed.origin, Feed.status, Feed.name, Feed.interval_s)
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
                    update(Feed)
                    .where(Feed.id == row.id)
                    .values(name=name, interval_s=interval, origin="config", status=status)
                )
        if missing:
            # Workers starting together sync the same list: the database keeps the first insert.
            conn.execute(
                dialect_insert(engine, Feed.__table__).on_conflict_do_nothing(index_elements=["url"]), missing
            )
        for url, row in have.items():
            if row.origin == "config" and url not in wanted and row.status != "removed":
                conn.execute(update(Feed).where(Feed.id == row.id).values(status="removed"))


def add_feed(engine: Engine, url: str, name: str | None, interval: float | None, now: datetime) -> bool:
    """Add a feed from the command line; False when it is already followed."""
    try:
        with engine.begin() as conn:
            existing = conn.execute(select(Feed.id, Feed.status).where(Feed.url == url)).first()
            if existing is not None:
                if existing.status != "removed":
                    return False
                conn.execute(
                    update(Feed)
                    .where(Feed.id == existing.id)
                    .values(status="ok", origin="cli", name=name, interval_s=interval, next_poll_at=now)
                )
                return True
            conn.execute(
                Feed.__table__.insert().values(
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
            select(Feed.id, Feed.origin).where(Feed.url == url, Feed.status != "removed")
        ).first()
        if row is None:
            return None
        conn.execute(update(Feed).where(Feed.id == row.id).values(status="removed"))
        return row.origin


def list_feeds(engine: Engine) -> list[FeedView]:
    counts = select(EntryRow.feed_id, func.count().label("n")).group_by(EntryRow.feed_id).subquery()
    q = (
        select(Feed, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.feed_id == Feed.id)
        .where(Feed.status != "removed")
        .order_by(Feed.id)
    )
    with Session(engine) as session:
        return [
            FeedView(
                id=f.id,
                url=f.url,
                name=f.name,
                title=f.title,
                origin=f.origin,
                status=_shown_status(f.status, f.last_polled_at),
                entries=int(n),
                last_success=f.last_success_at,
                last_error=f.last_error,
                error_count=f.error_count,
                next_poll=None if f.status == "gone" else f.next_poll_at,
            )
            for f, n in session.execute(q)
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
        select(Feed.id)
        .where(
            Feed.status.in_(ACTIVE),
            Feed.next_poll_at <= (due_by or now),
            or_(Feed.lease_until.is_(None), Feed.lease_until < now),
        )
        .order_by(Feed.next_poll_at, Feed.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(Feed)
        .where(Feed.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
        .returning(
            Feed.id,
            Feed.url,
            Feed.name,
            Feed.interval_s,
            Feed.etag,
            Feed.last_modified,
            Feed.body_sha256,
            Feed.error_count,
            Feed.ttl_minutes,
            Feed.poll_interval_s,
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
    table = Feed.__table__
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
                conn.execute(update(Feed).where(Feed.id == claim.id).values(url=new_url))
        except IntegrityError:
            pass  # the new URL is already followed as its own feed; keep both rows as they are


@dataclass(frozen=True, slots=True)
class Health:
    feeds: dict[str, int]  # status -> count (removed feeds left out)
    due: int  # active feeds whose next poll has come
    last_poll: datetime | None


def followed_count(engine: Engine) -> int:
    """Feeds followed, whether from the config or added on the command line."""
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(Feed).where(Feed.status != "removed")).scalar_one()
        )


def _shown_status(status: str, last_polled: datetime | None) -> str:
    """A feed never polled yet is ``new``, not ``ok``: nothing is known about it."""
    return "new" if status == "ok" and last_polled is None else status


def health(engine: Engine, now: datetime) -> Health:
    with engine.connect() as conn:
        shown = case(
            (and_(Feed.status == "ok", Feed.last_polled_at.is_(None)), literal("new")), else_=Feed.status
        )
        by_status = dict(
            conn.execute(select(shown, func.count()).where(Feed.status != "removed").group_by(shown)).all()
        )
        due = conn.execute(
            select(func.count()).select_from(Feed).where(Feed.status.in_(ACTIVE), Feed.next_poll_at <= now)
        ).scalar_one()
        last = conn.execute(
            select(Feed.last_polled_at)
            .where(Feed.last_polled_at.is_not(None))
            .order_by(Feed.last_polled_at.desc())
        ).scalar()
    return Health(feeds={k: int(v) for k, v in by_status.items()}, due=int(due), last_poll=last)
