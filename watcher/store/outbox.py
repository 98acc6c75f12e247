"""The digest outbox.

A digest run and the deliveries it carries are committed together *before*
anything is sent. A run keeps its idempotency key for life, so a retry after a
crash is the same message to the receiver. Sending is claimed with a lease so
only one worker sends a run at a time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Select, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from watcher.config import DigestSettings
from watcher.profiles import Scorer
from watcher.store.models import Delivery, DigestRun, EntryRow, Feed, MatchRow
from watcher.values import Digest, DigestItem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    digest: str
    key: str
    status: str
    attempts: int
    items: int
    created: datetime
    sent: datetime | None
    next_attempt: datetime | None
    last_error: str | None


def _undelivered(digest: str, profiles: Sequence[str]):  # type: ignore[no-untyped-def]
    delivered = exists().where(and_(Delivery.digest == digest, Delivery.match_id == MatchRow.id))
    return and_(MatchRow.profile.in_(list(profiles)), ~delivered, MatchRow.withheld_at.is_(None))


def _recheck(conn: Connection, digest: str, profiles: Sequence[str], scorer: Scorer, now: datetime) -> int:
    """Re-score this digest's queued matches with the profiles in force, inside the caller's transaction.

    A queued match its profile no longer matches (the user added an exclude, raised the
    threshold…) is withheld with the reason, not deleted; a withheld one the profile matches
    again (the edit was undone) is queued again. Returns how many were withheld now.
    """
    delivered = exists().where(and_(Delivery.digest == digest, Delivery.match_id == MatchRow.id))
    q = (
        select(
            MatchRow.id,
            MatchRow.profile,
            MatchRow.withheld_at,
            EntryRow.title,
            EntryRow.summary,
            EntryRow.source,
        )
        .join(EntryRow, EntryRow.id == MatchRow.entry_id)
        .where(MatchRow.profile.in_([p for p in profiles if p in scorer.names]), ~delivered)
    )
    withhold: list[dict[str, object]] = []
    readmit: list[int] = []
    for mid, profile, withheld_at, title, summary, source in conn.execute(q):
        score = next(s for s in scorer.score(title, summary, source) if s.profile == profile)
        if not score.matched and withheld_at is None:
            withhold.append({"mid": mid, "why": f"no longer matches profile {profile}: {score.reason}"})
        elif score.matched and withheld_at is not None:
            readmit.append(mid)
    if withhold:
        conn.execute(
            update(MatchRow.__table__)
            .where(MatchRow.__table__.c.id == bindparam("mid"))
            .values(withheld_at=now, withheld_reason=bindparam("why")),
            withhold,
        )
    if readmit:
        conn.execute(
            update(MatchRow).where(MatchRow.id.in_(readmit)).values(withheld_at=None, withheld_reason=None)
        )
    if withhold or readmit:
        log.info(
            "digest %s: %d queued match(es) withheld (the profile no longer matches them), %d queued again",
            digest,
            len(withhold),
            len(readmit),
        )
    return len(withhold)


def _next_batch(digest: str, profiles: Sequence[str], max_items: int) -> Select[tuple[int]]:
    return (
        select(MatchRow.id)
        .where(_undelivered(digest, profiles))
        .order_by(MatchRow.score.desc(), MatchRow.id)
        .limit(max_items)
    )


def _insert_run(conn: Connection, digest: str, key: str, match_ids: Sequence[int], now: datetime) -> int:
    """A pending run and its deliveries, inside the caller's transaction."""
    run_id = conn.execute(
        DigestRun.__table__.insert()
        .values(digest=digest, key=key, status="pending", attempts=0, next_attempt_at=now, created_at=now)
        .returning(DigestRun.id)
    ).scalar_one()
    if match_ids:
        conn.execute(
            Delivery.__table__.insert(),
            [{"digest": digest, "match_id": m, "run_id": run_id} for m in match_ids],
        )
    return int(run_id)


def create_run(
    engine: Engine,
    digest: str,
    profiles: Sequence[str],
    max_items: int,
    now: datetime,
    *,
    send_empty: bool = False,
    scorer: Scorer | None = None,
) -> int | None:
    """Commit a new run with the best undelivered matches (at most ``max_items``; the rest wait).

    With ``scorer`` (the profiles in force), queued matches are re-checked first (`_recheck`).

    Returns None when there is nothing to send. Two workers racing here cannot both take a
    match: (digest, match_id) is unique, and the loser's transaction rolls back whole.
    """
    q = _next_batch(digest, profiles, max_items)
    try:
        with engine.begin() as conn:
            if scorer is not None:
                _recheck(conn, digest, profiles, scorer, now)
            ids = list(conn.execute(q).scalars())
            if not ids and not send_empty:
                return None
            return _insert_run(conn, digest, f"{digest}-{uuid.uuid4().hex}", ids, now)
    except IntegrityError:
        return None


def claim_runs(engine: Engine, digest: str, owner: str, now: datetime, lease_s: float = 300) -> list[int]:
    """Lease this digest's due pending runs (oldest first) to ``owner``."""
    due = (
        select(DigestRun.id)
        .where(
            DigestRun.digest == digest,
            DigestRun.status == "pending",
            DigestRun.next_attempt_at <= now,
            or_(DigestRun.lease_until.is_(None), DigestRun.lease_until < now),
        )
        .order_by(DigestRun.id)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(DigestRun)
        .where(DigestRun.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner, lease_until=now + timedelta(seconds=lease_s), attempts=DigestRun.attempts + 1
        )
        .returning(DigestRun.id)
    )
    with engine.begin() as conn:
        return sorted(conn.execute(stmt).scalars())


def has_pending(engine: Engine, digest: str, now: datetime | None = None) -> bool:
    """A run of this digest waits to be sent (or retried).

    With ``now``, runs that another worker holds under a live lease do not count: that worker
    is sending them, and new matches may go out in a run of their own meanwhile.
    """
    q = select(DigestRun.id).where(DigestRun.digest == digest, DigestRun.status == "pending")
    if now is not None:
        q = q.where(or_(DigestRun.lease_until.is_(None), DigestRun.lease_until < now))
    with engine.connect() as conn:
        return conn.execute(q.limit(1)).first() is not None


def load_digest(
    engine: Engine, run_id: int, profiles: Sequence[str], excerpt_chars: int = 400, *, timezone: str = "UTC"
) -> Digest:
    """The values a renderer needs, straight from the committed run."""
    with engine.connect() as conn:
        return _load(conn, run_id, profiles, excerpt_chars, timezone=timezone)


def _load(
    conn: Connection, run_id: int, profiles: Sequence[str], excerpt_chars: int = 400, *, timezone: str = "UTC"
) -> Digest:
    run = conn.execute(
        select(DigestRun.digest, DigestRun.key, DigestRun.created_at).where(DigestRun.id == run_id)
    ).one()
    q = (
        select(
            MatchRow.id,
            MatchRow.profile,
            MatchRow.score,
            MatchRow.terms,
            EntryRow.title,
            EntryRow.link,
            EntryRow.source,
            Feed.name,
            Feed.title,
            EntryRow.published,
            EntryRow.summary,
        )
        .join(Delivery, Delivery.match_id == MatchRow.id)
        .join(EntryRow, EntryRow.id == MatchRow.entry_id)
        .join(Feed, Feed.id == EntryRow.feed_id)
        .where(Delivery.run_id == run_id)
        .order_by(MatchRow.score.desc(), MatchRow.id)
    )
    rows = conn.execute(q).all()
    items = tuple(
        DigestItem(
            match_id=mid,
            profile=profile,
            title=title,
            link=link,
            source=source or fname or ftitle,
            published=published,
            excerpt=summary[:excerpt_chars],
            score=round(score, 3),
            terms=tuple(str(t[0]) for t in terms),
        )
        for mid, profile, score, terms, title, link, source, fname, ftitle, published, summary in rows
    )
    return Digest(
        name=run.digest,
        key=run.key,
        created=run.created_at,
        items=items,
        profiles=tuple(profiles),
        timezone=timezone,
    )


def mark_sent(engine: Engine, run_id: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(DigestRun)
            .where(DigestRun.id == run_id)
            .values(status="sent", sent_at=now, last_error=None, lease_owner=None, lease_until=None)
        )


def mark_failed(engine: Engine, run_id: int, error: str, *, retry_at: datetime | None) -> None:
    """Temporary failure: back to pending with a retry time. Permanent (retry_at None): failed."""
    values: dict[str, object] = {"last_error": error[:2000], "lease_owner": None, "lease_until": None}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    with engine.begin() as conn:
        conn.execute(update(DigestRun).where(DigestRun.id == run_id).values(**values))


def split_run(
    engine: Engine, run_id: int, groups: Sequence[Sequence[int]], error: str, now: datetime
) -> list[int]:
    """Move the matches of each group out of ``run_id`` into a new pending run of its own.

    The way out of a permanent refusal (too large, or one item the receiver rejects): the halves
    go out on their own, so the good items are delivered and a bad one ends alone. What stays in
    ``run_id`` was delivered already (parts a receiver accepted): the run is "sent" if anything
    stays, else "failed" with the reason and where its items went.
    """
    groups = [list(g) for g in groups if g]
    with engine.begin() as conn:
        run = conn.execute(select(DigestRun.digest, DigestRun.key).where(DigestRun.id == run_id)).one()
        new_ids = []
        for n, group in enumerate(groups, 1):
            new_id = conn.execute(
                DigestRun.__table__.insert()
                .values(
                    digest=run.digest,
                    key=f"{run.key[:60]}-s{uuid.uuid4().hex[:12]}{n}",
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                .returning(DigestRun.id)
            ).scalar_one()
            conn.execute(
                update(Delivery)
                .where(Delivery.run_id == run_id, Delivery.match_id.in_(group))
                .values(run_id=new_id)
            )
            new_ids.append(int(new_id))
        left = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.run_id == run_id)
        ).scalar()
        note = f"{error}; its other items were moved to runs {', '.join(map(str, new_ids))}"
        values: dict[str, object] = {"last_error": note[:2000], "lease_owner": None, "lease_until": None}
        values.update({"status": "sent", "sent_at": now} if left else {"status": "failed"})
        conn.execute(update(DigestRun).where(DigestRun.id == run_id).values(**values))
    return new_ids


def list_runs(engine: Engine, digest: str | None = None, limit: int = 50) -> list[RunView]:
    counts = select(Delivery.run_id, func.count().label("n")).group_by(Delivery.run_id).subquery()
    q = (
        select(DigestRun, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.run_id == DigestRun.id)
        .order_by(DigestRun.id.desc())
        .limit(limit)
    )
    if digest:
        q = q.where(DigestRun.digest == digest)
    with Session(engine) as session:
        return [
            RunView(
                id=r.id,
                digest=r.digest,
                key=r.key,
                status=r.status,
                attempts=r.attempts,
                items=int(n),
                created=r.created_at,
                sent=r.sent_at,
                next_attempt=r.next_attempt_at if r.status == "pending" else None,
                last_error=r.last_error,
            )
            for r, n in session.execute(q)
        ]


def attempts(engine: Engine, run_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(DigestRun.attempts).where(DigestRun.id == run_id)).scalar_one())


def preview_digest(engine: Engine, d: DigestSettings, now: datetime, scorer: Scorer | None = None) -> Digest:
    """What the next run would carry, built inside a transaction that is rolled back."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if scorer is not None:
                _recheck(conn, d.name, d.profiles, scorer, now)
            ids = list(conn.execute(_next_batch(d.name, d.profiles, d.max_items)).scalars())
            run_id = _insert_run(conn, d.name, f"{d.name}-preview", ids, now)
            return _load(conn, run_id, d.profiles, timezone=d.timezone)
        finally:
            trans.rollback()


def run_counts(engine: Engine) -> dict[str, int]:
    """Digest runs by status (pending, sent, failed)."""
    with engine.connect() as conn:
        rows = conn.execute(select(DigestRun.status, func.count()).group_by(DigestRun.status)).all()
    return {status: int(n) for status, n in rows}
