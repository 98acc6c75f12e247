"""Entries and matches: insert once (the database decides), read back for people."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, bindparam, select, update
from sqlalchemy.orm import Session

from watcher.store.db import dialect_insert
from watcher.store.models import Delivery, DigestRun, EntryKey, EntryRow, Feed, MatchRow
from watcher.store.retention import day_number, key_hash
from watcher.values import Entry, Score, StoredItem

# Built once: a poll of a changed feed runs these with new values only (no statement to build
# and no cache key to compute each time; IN lists are expanding parameters).
_STORED_KEYS = select(EntryRow.entry_key).where(
    EntryRow.feed_id == bindparam("feed_id"), EntryRow.entry_key.in_(bindparam("keys", expanding=True))
)
_KEY_RECORDS = select(EntryKey.key_hash, EntryKey.last_seen).where(
    EntryKey.feed_id == bindparam("feed_id"), EntryKey.key_hash.in_(bindparam("hashes", expanding=True))
)
_MATCHED_ELSEWHERE = (
    select(EntryRow.link, MatchRow.profile)
    .join(MatchRow, MatchRow.entry_id == EntryRow.id)
    .where(EntryRow.link.in_(bindparam("links", expanding=True)), EntryRow.feed_id != bindparam("feed_id"))
)


def known_keys(engine: Engine, feed_id: int, keys: Sequence[str], now: datetime | None = None) -> set[str]:
    """Keys of this feed already stored, so a re-poll does not even score old items.

    Items pruned by retention count too, through their key records; with ``now``, the key
    records found are marked as still carried by the feed today (at most one write a day each).
    """
    found: set[str] = set()
    stale: list[int] = []
    today = day_number(now) if now is not None else None
    with engine.connect() as conn:
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            found.update(conn.execute(_STORED_KEYS, {"feed_id": feed_id, "keys": chunk}).scalars())
            # Entries first, key records second: pruning moves an item from the first to the
            # second in one transaction, so it cannot slip between the two reads.
            hashes = {key_hash(k): k for k in chunk if k not in found}
            if not hashes:
                continue
            for h, last_seen in conn.execute(_KEY_RECORDS, {"feed_id": feed_id, "hashes": list(hashes)}):
                found.add(hashes[h])
                if today is not None and last_seen < today:
                    stale.append(h)
    if stale:
        with engine.begin() as conn:
            for i in range(0, len(stale), 500):
                conn.execute(
                    update(EntryKey)
                    .where(EntryKey.feed_id == feed_id, EntryKey.key_hash.in_(stale[i : i + 500]))
                    .values(last_seen=today)
                )
    return found


def store_entries(
    engine: Engine,
    feed_id: int,
    scored: Iterable[tuple[Entry, Sequence[Score]]],
    now: datetime,
) -> tuple[int, Counter[str]]:
    """Insert new entries and their matches in one transaction.

    An entry whose canonical link already matched a profile through another feed gets no
    second match for that profile: cross-feed copies of one story are sent once.

    ON CONFLICT DO NOTHING on (feed_id, entry_key) and (entry_id, profile) makes a
    concurrent duplicate a no-op instead of an error. Returns the number of new entries and
    the new matches by profile (what was really inserted, not what was scored).
    """
    pairs = list(scored)
    if not pairs:
        return 0, Counter()
    by_key = {e.key: (e, s) for e, s in pairs}
    rows = [
        {
            "feed_id": feed_id,
            "entry_key": e.key,
            "title": e.title,
            "summary": e.summary,
            "link": e.link,
            "source": e.source,
            "author": e.author,
            "published": e.published,
            "fetched_at": now,
        }
        for e, _ in by_key.values()
    ]
    with engine.begin() as conn:
        ins = (
            dialect_insert(engine, EntryRow.__table__)
            .on_conflict_do_nothing(index_elements=["feed_id", "entry_key"])
            .returning(EntryRow.id, EntryRow.entry_key)
        )
        inserted = conn.execute(ins, rows).all() if len(rows) > 1 else conn.execute(ins.values(rows[0])).all()
        told = _already_matched(conn, feed_id, [e.link for e, _ in by_key.values() if e.link])
        match_rows = []
        for entry_id, key in inserted:
            link = by_key[key][0].link
            for s in by_key[key][1]:
                # The same story (same canonical link) from another feed is stored, not matched again,
                # so no digest carries it twice.
                if s.matched and (link, s.profile) not in told:
                    match_rows.append(
                        {
                            "entry_id": entry_id,
                            "profile": s.profile,
                            "score": s.score,
                            "terms": [[t, round(w, 4)] for t, w in s.hits],
                            "created_at": now,
                        }
                    )
        matched: Counter[str] = Counter()
        if match_rows:
            ins_matches = (
                dialect_insert(engine, MatchRow.__table__)
                .on_conflict_do_nothing(index_elements=["entry_id", "profile"])
                .returning(MatchRow.profile)
            )
            matched.update(conn.execute(ins_matches, match_rows).scalars())
    return len(inserted), matched


def _already_matched(conn: Connection, feed_id: int, links: Sequence[str]) -> set[tuple[str, str]]:
    """(link, profile) pairs already matched through entries of other feeds."""
    found: set[tuple[str, str]] = set()
    for i in range(0, len(links), 500):
        params = {"links": list(links[i : i + 500]), "feed_id": feed_id}
        found.update((link, profile) for link, profile in conn.execute(_MATCHED_ELSEWHERE, params))
    return found


@dataclass(frozen=True, slots=True)
class MatchView:
    id: int
    profile: str
    score: float
    terms: list[list[object]]
    created: datetime
    title: str
    link: str | None
    source: str | None
    published: datetime
    delivered: str  # e.g. "email-digest: sent", "-" when not yet part of any digest
    withheld: str | None = None  # why a queued match is not sent: the profile in force no longer matches it


def recent_matches(engine: Engine, limit: int = 50, profile: str | None = None) -> list[MatchView]:
    q = (
        select(
            MatchRow,
            EntryRow.title,
            EntryRow.link,
            EntryRow.source,
            EntryRow.published,
            Feed.name,
            Feed.title,
        )
        .join(EntryRow, EntryRow.id == MatchRow.entry_id)
        .join(Feed, Feed.id == EntryRow.feed_id)
        .order_by(MatchRow.created_at.desc(), MatchRow.score.desc())
        .limit(limit)
    )
    if profile:
        q = q.where(MatchRow.profile == profile)
    with Session(engine) as conn:
        rows = conn.execute(q).all()
        ids = [r[0].id for r in rows]
        status: dict[int, list[str]] = {}
        if ids:
            dq = (
                select(Delivery.match_id, Delivery.digest, DigestRun.status)
                .join(DigestRun, DigestRun.id == Delivery.run_id)
                .where(Delivery.match_id.in_(ids))
            )
            for mid, digest, st in conn.execute(dq):
                status.setdefault(mid, []).append(f"{digest}: {st}")
    out = []
    for r in rows:
        m = r[0]
        out.append(
            MatchView(
                id=m.id,
                profile=m.profile,
                score=m.score,
                terms=m.terms,
                created=m.created_at,
                title=r[1],
                link=r[2],
                source=r[3] or r[5] or r[6],
                published=r[4],
                delivered=", ".join(sorted(status.get(m.id, [])))
                or (f"withheld: {m.withheld_reason}" if m.withheld_reason else "-"),
                withheld=m.withheld_reason,
            )
        )
    return out


def recent_texts(engine: Engine, profile: str, limit: int = 2000) -> tuple[list[str], list[str]]:
    """Titles and summaries of recent entries, split into (matched by ``profile``, not matched).

    The news stream itself, for `watcher profile suggest`.
    """
    matched = (
        select(MatchRow.id).where(MatchRow.entry_id == EntryRow.id, MatchRow.profile == profile).exists()
    )
    q = select(EntryRow.title, EntryRow.summary, matched).order_by(
        EntryRow.fetched_at.desc(), EntryRow.id.desc()
    )
    hits: list[str] = []
    rest: list[str] = []
    with engine.connect() as conn:
        for title, summary, hit in conn.execute(q.limit(limit)):
            (hits if hit else rest).append(f"{title}\n{summary}")
    return hits, rest


def stored_items(
    engine: Engine,
    profile: str,
    *,
    since: datetime | None = None,
    limit: int | None = 50_000,
    judged: bool = False,
) -> list[StoredItem]:
    """Entries stored since ``since`` (newest first), each with ``profile``'s match and verdict if any.

    ``judged=True``: only the entries with a reader's verdict for ``profile`` (whatever their age).

    What `watcher profile diff`, `profile suggest` and the web backtest re-score.
    """
    from watcher.store.models import VerdictRow

    match = MatchRow.__table__.alias("m")
    q = (
        select(
            EntryRow.id,
            EntryRow.title,
            EntryRow.summary,
            EntryRow.source,
            EntryRow.link,
            EntryRow.published,
            match.c.id,
            match.c.score,
            VerdictRow.verdict,
        )
        .outerjoin(match, and_(match.c.entry_id == EntryRow.id, match.c.profile == profile))
        .outerjoin(VerdictRow, VerdictRow.match_id == match.c.id)
        .order_by(EntryRow.fetched_at.desc(), EntryRow.id.desc())
    )
    if judged:
        q = q.where(VerdictRow.id.is_not(None))
    if since is not None:
        q = q.where(EntryRow.fetched_at >= since)
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        return [StoredItem(*row) for row in conn.execute(q)]
