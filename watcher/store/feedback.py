"""Readers' verdicts on matches: the data half of the feedback loop.

Contract (the web side and the CLI both code against it):

* ``record_verdict(engine, match_id, verdict, *, note, now, via) -> Verdict``
  stores ``relevant`` or ``not_relevant`` for one match. One verdict per match:
  recording again replaces the earlier verdict (idempotent upsert, safe when
  two requests race, on SQLite and PostgreSQL). Raises ``LookupError`` when the
  match does not exist and ``ValueError`` for a bad verdict, note (longer than
  ``NOTE_MAX`` characters) or ``via``. ``now`` must be timezone-aware.
* ``list_verdicts(engine, *, profile=None, since=None, limit=None)``: newest first.
* ``verdicts_for(engine, match_ids) -> {match_id: verdict}`` for pages and digests.
* ``find_match(engine, link, profile) -> list[MatchRef]``: the matches of the item
  at ``link`` (canonicalized as the parser does), for ``watcher feedback add``.
  Raises ``ValueError`` when ``link`` is not an http(s) URL.

Verdicts are user data: retention keeps them with their matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from watcher.parse import canonical_link
from watcher.store.db import dialect_insert
from watcher.store.models import EntryRow, Feed, MatchRow, VerdictRow

RELEVANT = "relevant"
NOT_RELEVANT = "not_relevant"
VERDICTS = (RELEVANT, NOT_RELEVANT)
NOTE_MAX = 1000
VIA_MAX = 16


@dataclass(frozen=True, slots=True)
class Verdict:
    match_id: int
    entry_id: int
    link: str | None
    title: str
    source: str | None
    profile: str
    verdict: str  # relevant | not_relevant
    note: str | None
    at: datetime  # UTC
    score: float  # the match's stored score
    via: str  # web | cli | …

    def to_json(self) -> dict[str, Any]:
        """The `watcher feedback list --json` line: the contract fields first."""
        return {
            "link": self.link,
            "title": self.title,
            "profile": self.profile,
            "verdict": self.verdict,
            "at": self.at.isoformat(),
            "note": self.note,
            "score": self.score,
            "via": self.via,
            "match_id": self.match_id,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class MatchRef:
    """A stored match of one item, as `find_match` reports it."""

    match_id: int
    profile: str
    title: str
    link: str | None
    score: float
    created: datetime


def _clean_note(note: str | None) -> str | None:
    if note is None:
        return None
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ValueError(f"note is {len(note)} characters long; at most {NOTE_MAX} are kept")
    return note or None


def record_verdict(
    engine: Engine, match_id: int, verdict: str, *, note: str | None, now: datetime, via: str
) -> Verdict:
    """Store (or replace) the verdict on ``match_id``; see the module docstring."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    if not via or len(via) > VIA_MAX:
        raise ValueError(f"via must be a short label such as 'web' or 'cli', not {via!r}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    note = _clean_note(note)
    values = {"match_id": match_id, "verdict": verdict, "note": note, "at": now, "via": via}
    ins = dialect_insert(engine, VerdictRow.__table__).values(values)
    # The database settles a race: two verdicts at once on one match leave one row, the last writer's.
    upsert = ins.on_conflict_do_update(
        index_elements=["match_id"],
        set_={
            "verdict": ins.excluded.verdict,
            "note": ins.excluded.note,
            "at": ins.excluded.at,
            "via": ins.excluded.via,
        },
    )
    try:
        # A single statement, no read first: on SQLite a read-then-write transaction can lose a race
        # with another writer outright, while one write waits for the lock (busy_timeout).
        with engine.begin() as conn:
            conn.execute(upsert)
    except IntegrityError:  # the foreign key: no such match
        raise LookupError(f"no match with id {match_id}") from None
    found = _select_verdicts(engine, VerdictRow.match_id == match_id)
    if not found:  # deleted right after being written (pruned): report it as gone
        raise LookupError(f"no match with id {match_id}")
    return found[0]


def _select_verdicts(engine: Engine, *where: Any, limit: int | None = None) -> list[Verdict]:
    q = (
        select(
            VerdictRow.match_id,
            VerdictRow.verdict,
            VerdictRow.note,
            VerdictRow.at,
            VerdictRow.via,
            MatchRow.entry_id,
            MatchRow.profile,
            MatchRow.score,
            EntryRow.title,
            EntryRow.link,
            EntryRow.source,
            Feed.name,
            Feed.title,
        )
        .join(MatchRow, MatchRow.id == VerdictRow.match_id)
        .join(EntryRow, EntryRow.id == MatchRow.entry_id)
        .join(Feed, Feed.id == EntryRow.feed_id)
        .where(*where)
        .order_by(VerdictRow.at.desc(), VerdictRow.id.desc())
    )
    if limit is not None:
        q = q.limit(limit)
    out = []
    with engine.connect() as conn:
        for row in conn.execute(q):
            (
                match_id,
                verdict,
                note,
                at,
                via,
                entry_id,
                profile,
                score,
                title,
                link,
                source,
                feed_name,
                feed_title,
            ) = row
            out.append(
                Verdict(
                    match_id=match_id,
                    entry_id=entry_id,
                    link=link,
                    title=title,
                    source=source or feed_name or feed_title,
                    profile=profile,
                    verdict=verdict,
                    note=note,
                    at=at,
                    score=score,
                    via=via,
                )
            )
    return out


def list_verdicts(
    engine: Engine, *, profile: str | None = None, since: datetime | None = None, limit: int | None = None
) -> list[Verdict]:
    """Recorded verdicts, newest first."""
    where = []
    if profile is not None:
        where.append(MatchRow.profile == profile)
    if since is not None:
        where.append(VerdictRow.at >= since)
    return _select_verdicts(engine, *where, limit=limit)


def verdicts_for(engine: Engine, match_ids: Iterable[int]) -> dict[int, str]:
    """``{match_id: verdict}`` for those of ``match_ids`` that have one."""
    ids = sorted(set(match_ids))
    out: dict[int, str] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = select(VerdictRow.match_id, VerdictRow.verdict).where(
                VerdictRow.match_id.in_(ids[i : i + 500])
            )
            out.update({mid: v for mid, v in conn.execute(q)})
    return out


def find_match(engine: Engine, link: str, profile: str | None = None) -> list[MatchRef]:
    """Matches of the item at ``link`` (any feed), optionally of one profile; oldest first."""
    canon = canonical_link(link)
    if canon is None:
        raise ValueError(f"{link!r} is not an http(s) link")
    q = (
        select(
            MatchRow.id, MatchRow.profile, EntryRow.title, EntryRow.link, MatchRow.score, MatchRow.created_at
        )
        .join(EntryRow, EntryRow.id == MatchRow.entry_id)
        .where(EntryRow.link == canon)
        .order_by(MatchRow.created_at, MatchRow.id)
    )
    if profile is not None:
        q = q.where(MatchRow.profile == profile)
    with engine.connect() as conn:
        return [MatchRef(*row) for row in conn.execute(q)]


def link_is_stored(engine: Engine, link: str) -> bool:
    """Whether any feed brought an item at ``link`` (to tell 'unknown' from 'not matched')."""
    canon = canonical_link(link)
    if canon is None:
        return False
    with engine.connect() as conn:
        return conn.execute(select(EntryRow.id).where(EntryRow.link == canon).limit(1)).first() is not None
