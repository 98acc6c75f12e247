"""Read-only views for the web side and /metrics: matches with filters, and counts of everything.

Nothing here writes. Every query is bounded (a limit, or an aggregate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, func, select

from watcher.digest.text import as_utc
from watcher.store.models import Delivery, DigestRun, EntryRow, Feed, MatchRow, VerdictRow


@dataclass(frozen=True, slots=True)
class Counts:
    feeds: dict[str, int]  # status -> feeds (removed left out)
    due: int
    items: int
    matches: dict[str, int]  # profile -> stored matches
    runs: dict[tuple[str, str], int]  # (digest, status) -> runs
    verdicts: dict[tuple[str, str], int]  # (profile, verdict) -> verdicts
    last_poll: datetime | None


def counts(engine: Engine, now: datetime | None = None) -> Counts:
    from watcher.store.feeds import health

    h = health(engine, now or datetime.now(UTC))
    by_profile = select(MatchRow.profile, func.count()).group_by(MatchRow.profile)
    by_verdict = (
        select(MatchRow.profile, VerdictRow.verdict, func.count())
        .join(MatchRow, MatchRow.id == VerdictRow.match_id)
        .group_by(MatchRow.profile, VerdictRow.verdict)
    )
    by_run = select(DigestRun.digest, DigestRun.status, func.count()).group_by(
        DigestRun.digest, DigestRun.status
    )
    with engine.connect() as conn:
        items = conn.execute(select(func.count()).select_from(EntryRow)).scalar_one()
        matches = {p: int(n) for p, n in conn.execute(by_profile)}
        verdicts = {(p, v): int(n) for p, v, n in conn.execute(by_verdict)}
        runs = {(d, st): int(n) for d, st, n in conn.execute(by_run)}
    return Counts(
        feeds=h.feeds,
        due=h.due,
        items=int(items),
        matches=matches,
        runs=runs,
        verdicts=verdicts,
        last_poll=h.last_poll,
    )


@dataclass(frozen=True, slots=True)
class MatchFilter:
    profile: str | None = None
    day: date | None = None  # UTC day the match was found
    verdict: str | None = None  # relevant | not_relevant | none (no verdict yet)
    limit: int = 100


@dataclass(frozen=True, slots=True)
class MatchItem:
    id: int
    profile: str
    score: float
    terms: tuple[tuple[str, float], ...]  # why it matched: (term, contribution), largest first
    found: datetime
    title: str
    summary: str
    link: str | None
    source: str | None  # the item's source, else the feed's name or title
    feed_url: str
    published: datetime
    digests: tuple[str, ...]  # "name: status" of the digest runs that carry it
    withheld: str | None  # why no digest carries it: the profile in force no longer matches it
    verdict: str | None  # a reader's verdict: relevant | not_relevant
    note: str | None
    verdict_at: datetime | None


def _terms(raw: Sequence[Sequence[object]]) -> tuple[tuple[str, float], ...]:
    out = []
    for pair in raw or ():
        try:
            out.append((str(pair[0]), float(pair[1])))  # type: ignore[arg-type]
        except (IndexError, TypeError, ValueError):
            continue
    return tuple(out)


_COLUMNS = (
    MatchRow.id,
    MatchRow.profile,
    MatchRow.score,
    MatchRow.terms,
    MatchRow.created_at,
    MatchRow.withheld_reason,
    EntryRow.title,
    EntryRow.summary,
    EntryRow.link,
    EntryRow.source,
    EntryRow.published,
    Feed.name.label("feed_name"),
    Feed.title.label("feed_title"),
    Feed.url.label("feed_url"),
    VerdictRow.verdict,
    VerdictRow.note,
    VerdictRow.at.label("verdict_at"),
)


def _base():  # type: ignore[no-untyped-def]
    return (
        select(*_COLUMNS)
        .join(EntryRow, EntryRow.id == MatchRow.entry_id)
        .join(Feed, Feed.id == EntryRow.feed_id)
        .outerjoin(VerdictRow, VerdictRow.match_id == MatchRow.id)
    )


def _load(engine: Engine, q) -> list[MatchItem]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        carried: dict[int, list[str]] = {}
        ids = [r.id for r in rows]
        if ids:
            dq = (
                select(Delivery.match_id, Delivery.digest, DigestRun.status)
                .join(DigestRun, DigestRun.id == Delivery.run_id)
                .where(Delivery.match_id.in_(ids))
            )
            for mid, digest, status in conn.execute(dq):
                carried.setdefault(mid, []).append(f"{digest}: {status}")
    return [
        MatchItem(
            id=r.id,
            profile=r.profile,
            score=float(r.score),
            terms=_terms(r.terms),
            found=as_utc(r.created_at),
            title=r.title,
            summary=r.summary,
            link=r.link,
            source=r.source or r.feed_name or r.feed_title,
            feed_url=r.feed_url,
            published=as_utc(r.published),
            digests=tuple(sorted(carried.get(r.id, ()))),
            withheld=r.withheld_reason,
            verdict=r.verdict,
            note=r.note,
            verdict_at=as_utc(r.verdict_at) if r.verdict_at else None,
        )
        for r in rows
    ]


def list_matches(engine: Engine, f: MatchFilter) -> list[MatchItem]:
    """Newest matches first, filtered by profile, UTC day and verdict."""
    q = _base()
    if f.profile:
        q = q.where(MatchRow.profile == f.profile)
    if f.day:
        start = datetime.combine(f.day, time(), tzinfo=UTC)
        q = q.where(MatchRow.created_at >= start, MatchRow.created_at < start + timedelta(days=1))
    if f.verdict == "none":
        q = q.where(VerdictRow.id.is_(None))
    elif f.verdict:
        q = q.where(VerdictRow.verdict == f.verdict)
    q = q.order_by(MatchRow.created_at.desc(), MatchRow.score.desc(), MatchRow.id.desc()).limit(f.limit)
    return _load(engine, q)


def get_match(engine: Engine, match_id: int) -> MatchItem | None:
    found = _load(engine, _base().where(MatchRow.id == match_id))
    return found[0] if found else None


def profiles_with_matches(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(MatchRow.profile).distinct().order_by(MatchRow.profile)).scalars())


def oldest_overdue(engine: Engine, now: datetime) -> datetime | None:
    """The next-poll time of the longest-waiting due feed that no worker holds (None: none waits)."""
    from watcher.store.feeds import ACTIVE

    q = select(func.min(Feed.next_poll_at)).where(
        Feed.status.in_(ACTIVE),
        Feed.next_poll_at <= now,
        (Feed.lease_until.is_(None)) | (Feed.lease_until < now),
    )
    with engine.connect() as conn:
        found = conn.execute(q).scalar()
    return as_utc(found) if found else None
