"""Verdict storage on SQLite and PostgreSQL: one verdict per match, replaced not duplicated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from watcher.store import feedback, items, open_store
from watcher.store import feeds as fs
from watcher.store.models import EntryRow, MatchRow, VerdictRow
from watcher.values import Entry, Score

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def _store(engine: Engine, *specs: tuple[str, str, list[str]]) -> dict[tuple[str, str], int]:
    """Store entries (key, title, profiles matched); returns {(key, profile): match_id}."""
    fs.sync_config_feeds(engine, [("https://a.example/feed", "A", None)], NOW)
    (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
    rows = []
    for key, title, profiles in specs:
        e = Entry(key=key, title=title, summary="s", link=f"https://x.example/{key}", published=NOW)
        rows.append((e, [Score(p, 3.5, True, (("libya", 3.0),)) for p in profiles]))
    items.store_entries(engine, claim.id, rows, NOW)
    q = select(EntryRow.entry_key, MatchRow.profile, MatchRow.id).join(
        EntryRow, EntryRow.id == MatchRow.entry_id
    )
    with engine.connect() as conn:
        return {(key, profile): mid for key, profile, mid in conn.execute(q)}


def test_a_later_verdict_replaces_the_earlier(engine: Engine) -> None:
    ids = _store(engine, ("k1", "Libya talks in Berlin", ["libya"]))
    mid = ids[("k1", "libya")]
    v = feedback.record_verdict(engine, mid, "not_relevant", note=" off topic ", now=NOW, via="web")
    assert (v.verdict, v.note, v.via, v.profile, v.title) == (
        "not_relevant",
        "off topic",
        "web",
        "libya",
        "Libya talks in Berlin",
    )
    assert v.link == "https://x.example/k1" and v.score == 3.5 and v.at == NOW
    # The same verdict again is a no-op in effect; a different one replaces it.
    feedback.record_verdict(engine, mid, "not_relevant", note="off topic", now=NOW, via="web")
    later = NOW + timedelta(hours=1)
    v2 = feedback.record_verdict(engine, mid, "relevant", note=None, now=later, via="cli")
    assert (v2.verdict, v2.note, v2.via, v2.at) == ("relevant", None, "cli", later)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(VerdictRow)).scalar_one() == 1
    assert [x.verdict for x in feedback.list_verdicts(engine)] == ["relevant"]
    assert feedback.verdicts_for(engine, [mid, mid + 999]) == {mid: "relevant"}


def test_bad_values_and_unknown_matches_are_refused(engine: Engine) -> None:
    ids = _store(engine, ("k1", "Libya talks", ["libya"]))
    mid = ids[("k1", "libya")]
    with pytest.raises(LookupError):
        feedback.record_verdict(engine, mid + 1000, "relevant", note=None, now=NOW, via="cli")
    with pytest.raises(ValueError, match="verdict must be"):
        feedback.record_verdict(engine, mid, "maybe", note=None, now=NOW, via="cli")
    with pytest.raises(ValueError, match="note is"):
        feedback.record_verdict(
            engine, mid, "relevant", note="x" * (feedback.NOTE_MAX + 1), now=NOW, via="cli"
        )
    with pytest.raises(ValueError, match="via"):
        feedback.record_verdict(engine, mid, "relevant", note=None, now=NOW, via="")
    with pytest.raises(ValueError, match="timezone"):
        feedback.record_verdict(engine, mid, "relevant", note=None, now=NOW.replace(tzinfo=None), via="cli")
    assert feedback.list_verdicts(engine) == []


def test_racing_verdicts_leave_one_row(engine: Engine) -> None:
    ids = _store(engine, ("k1", "Libya talks", ["libya"]))
    mid = ids[("k1", "libya")]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def vote(i: int) -> None:
        start.wait()
        try:
            for j in range(5):
                verdict = "relevant" if (i + j) % 2 else "not_relevant"
                feedback.record_verdict(
                    engine, mid, verdict, note=f"t{i}", now=NOW + timedelta(seconds=j), via="web"
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(VerdictRow)).scalar_one() == 1
    (v,) = feedback.list_verdicts(engine)
    assert v.verdict in feedback.VERDICTS and v.note.startswith("t")


def test_list_filters_and_find_match(engine: Engine) -> None:
    ids = _store(
        engine,
        ("k1", "Libya talks", ["libya"]),
        ("k2", "Sahel and Libya", ["libya", "sahel"]),
        ("k3", "Weather", []),
    )
    feedback.record_verdict(engine, ids[("k1", "libya")], "relevant", note=None, now=NOW, via="cli")
    feedback.record_verdict(
        engine, ids[("k2", "sahel")], "not_relevant", note=None, now=NOW + timedelta(days=2), via="web"
    )
    assert [v.title for v in feedback.list_verdicts(engine)] == ["Sahel and Libya", "Libya talks"]
    assert [v.title for v in feedback.list_verdicts(engine, profile="libya")] == ["Libya talks"]
    assert [v.title for v in feedback.list_verdicts(engine, since=NOW + timedelta(days=1))] == [
        "Sahel and Libya"
    ]
    assert len(feedback.list_verdicts(engine, limit=1)) == 1

    # Tracking parameters and the fragment go, as when the feed was parsed.
    found = feedback.find_match(engine, "https://X.example/k2?utm_source=mail#top")
    assert sorted(m.profile for m in found) == ["libya", "sahel"]
    assert [m.match_id for m in feedback.find_match(engine, "https://x.example/k2", "sahel")] == [
        ids[("k2", "sahel")]
    ]
    assert feedback.find_match(engine, "https://x.example/k3") == []
    assert feedback.link_is_stored(engine, "https://x.example/k3")
    assert not feedback.link_is_stored(engine, "https://x.example/nope")
    with pytest.raises(ValueError, match="not an http"):
        feedback.find_match(engine, "ftp://x.example/k1")


def test_verdicts_go_with_their_match(engine: Engine) -> None:
    ids = _store(engine, ("k1", "Libya talks", ["libya"]))
    feedback.record_verdict(engine, ids[("k1", "libya")], "relevant", note=None, now=NOW, via="cli")
    with engine.begin() as conn:
        conn.execute(MatchRow.__table__.delete())
    assert feedback.list_verdicts(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(VerdictRow)).scalar_one() == 0
