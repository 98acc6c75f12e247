"""The store on SQLite and PostgreSQL: migrations, uniqueness, leases, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from watcher.store import StoreError, items, open_store, outbox
from watcher.store import feeds as fs
from watcher.store.db import SingleWorkerLock
from watcher.store.models import EntryRow, MatchRow
from watcher.values import Entry, Score

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def entry(key: str, title: str = "Libya talks") -> Entry:
    return Entry(key=key, title=title, summary="s", link=f"https://x.example/{key}", published=NOW)


def matched(profile: str = "libya", score: float = 3.0) -> Score:
    return Score(profile=profile, score=score, matched=True, hits=(("libya", 3.0),))


def test_migrations_are_idempotent(db_url: str) -> None:
    open_store(db_url).dispose()
    open_store(db_url).dispose()  # second start: nothing to do, no error


def test_entries_and_matches_are_unique_per_feed(engine: Engine) -> None:
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], NOW)
    (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
    n, m = items.store_entries(engine, claim.id, [(entry("k1"), [matched()]), (entry("k2"), [])], NOW)
    assert (n, m) == (2, {"libya": 1})
    # The same entries again (a re-poll, or a racing worker): the database turns them into no-ops.
    n, m = items.store_entries(engine, claim.id, [(entry("k1"), [matched()]), (entry("k2"), [])], NOW)
    assert (n, m) == (0, {})
    assert items.known_keys(engine, claim.id, ["k1", "k2", "k3"]) == {"k1", "k2"}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EntryRow)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(MatchRow)).scalar_one() == 1


def test_claims_are_exclusive_until_the_lease_expires(engine: Engine) -> None:
    fs.sync_config_feeds(engine, [(f"https://a.example/{i}", None, None) for i in range(5)], NOW)
    first = fs.claim_due_feeds(engine, "w1", NOW, 3, lease_s=60)
    second = fs.claim_due_feeds(engine, "w2", NOW, 10, lease_s=60)
    assert len(first) == 3 and len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    assert fs.claim_due_feeds(engine, "w3", NOW, 10, lease_s=60) == []
    # w1 died: after its lease, its feeds go to someone else.
    later = fs.claim_due_feeds(engine, "w3", NOW + timedelta(seconds=61), 10, lease_s=60)
    assert {c.id for c in later} == {c.id for c in first} | {c.id for c in second}


def test_outcome_sets_status_and_backoff_fields(engine: Engine) -> None:
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], NOW)
    (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
    fs.record_outcome(
        engine,
        claim,
        "w1",
        fs.PollOutcome(
            status="error", next_poll_at=NOW + timedelta(minutes=5), polled_at=NOW, error="HTTP 503"
        ),
    )
    (view,) = fs.list_feeds(engine)
    assert (view.status, view.error_count, view.last_error) == ("error", 1, "HTTP 503")
    assert fs.claim_due_feeds(engine, "w1", NOW, 10, 60) == []  # not due before its next poll
    (claim,) = fs.claim_due_feeds(engine, "w1", NOW + timedelta(minutes=6), 10, 60)
    fs.record_outcome(
        engine,
        claim,
        "w1",
        fs.PollOutcome(status="ok", next_poll_at=NOW + timedelta(hours=1), polled_at=NOW, etag='"v2"'),
    )
    (view,) = fs.list_feeds(engine)
    assert (view.status, view.error_count, view.last_error) == ("ok", 0, None)


def test_outbox_takes_each_match_once_and_keeps_its_key(engine: Engine) -> None:
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], NOW)
    (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
    items.store_entries(engine, claim.id, [(entry(f"k{i}"), [matched(score=i)]) for i in range(5)], NOW)

    run = outbox.create_run(engine, "d", ["libya"], max_items=3, now=NOW)
    assert run is not None
    digest = outbox.load_digest(engine, run, ["libya"])
    assert [i.score for i in digest.items] == [4, 3, 2]  # best first; the rest wait for the next run
    assert outbox.claim_runs(engine, "d", "w1", NOW) == [run]
    assert outbox.claim_runs(engine, "d", "w2", NOW) == []  # leased to w1
    outbox.mark_failed(engine, run, "connection refused", retry_at=NOW + timedelta(minutes=1))
    assert outbox.claim_runs(engine, "d", "w2", NOW + timedelta(minutes=2)) == [run]
    assert outbox.load_digest(engine, run, ["libya"]).key == digest.key  # a retry is the same message
    outbox.mark_sent(engine, run, NOW)

    nxt = outbox.create_run(engine, "d", ["libya"], max_items=3, now=NOW)
    assert [i.score for i in outbox.load_digest(engine, nxt, ["libya"]).items] == [1, 0]
    assert outbox.create_run(engine, "d", ["libya"], max_items=3, now=NOW) is None  # nothing left
    # Another digest over the same profile gets its own copy of every match.
    other = outbox.create_run(engine, "e", ["libya"], max_items=10, now=NOW)
    assert len(outbox.load_digest(engine, other, ["libya"]).items) == 5


def test_second_worker_on_sqlite_is_refused(tmp_path) -> None:
    eng = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    first, second = SingleWorkerLock(eng), SingleWorkerLock(eng)
    first.acquire()
    try:
        with pytest.raises(StoreError, match="PostgreSQL"):
            second.acquire()
    finally:
        first.release()
    second.acquire()  # free again once the first worker stops
    second.release()


def test_same_story_from_another_feed_is_stored_but_not_matched_again(engine: Engine) -> None:
    fs.sync_config_feeds(
        engine, [("https://a.example/feed", None, None), ("https://b.example/feed", None, None)], NOW
    )
    a, b = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
    assert items.store_entries(engine, a.id, [(entry("k1"), [matched()])], NOW) == (1, {"libya": 1})
    # Feed b carries the same canonical link under its own guid: one more entry, no second match.
    assert items.store_entries(engine, b.id, [(entry("k1"), [matched(), matched("other")])], NOW) == (
        1,
        {"other": 1},
    )
    with engine.connect() as conn:
        profiles = conn.execute(select(MatchRow.profile).order_by(MatchRow.id)).scalars().all()
    assert profiles == ["libya", "other"]  # "other" had not matched it before, so it does now


def test_a_run_held_by_another_worker_does_not_block_a_new_one(engine: Engine) -> None:
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], NOW)
    (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
    items.store_entries(engine, claim.id, [(entry("k1"), [matched()])], NOW)
    first = outbox.create_run(engine, "d", ["libya"], 10, NOW)
    assert outbox.claim_runs(engine, "d", "w1", NOW, lease_s=60) == [first]  # w1 is sending it
    assert outbox.has_pending(engine, "d") and not outbox.has_pending(engine, "d", NOW)
    items.store_entries(engine, claim.id, [(entry("k2"), [matched()])], NOW)
    second = outbox.create_run(engine, "d", ["libya"], 10, NOW)  # w2 sends the new match meanwhile
    assert [i.match_id for i in outbox.load_digest(engine, second, ["libya"]).items] != []
    # A run waiting for a retry (no live lease) does block: one catch-up, not a pile of runs.
    outbox.mark_failed(engine, first, "503", retry_at=NOW + timedelta(minutes=5))
    assert outbox.has_pending(engine, "d", NOW)


def test_upgrade_from_the_first_revision_keeps_data(db_url: str) -> None:
    from alembic import command

    from watcher.store.db import alembic_config, make_engine

    eng = make_engine(db_url)
    cfg = alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, origin, status, error_count, next_poll_at, created_at) "
            "VALUES ('https://old.example/feed', 'config', 'ok', 0, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    eng.dispose()
    upgraded = open_store(db_url)  # what every start does
    (view,) = fs.list_feeds(upgraded)
    assert view.url == "https://old.example/feed"
    (claim,) = fs.claim_due_feeds(upgraded, "w", NOW, 10, 60)
    assert claim.poll_interval_s is None
    upgraded.dispose()


def test_an_empty_digest_is_made_only_when_asked(engine: Engine) -> None:
    assert outbox.create_run(engine, "d", ["libya"], 10, NOW) is None
    run = outbox.create_run(engine, "d", ["libya"], 10, NOW, send_empty=True)
    assert run is not None and outbox.load_digest(engine, run, ["libya"]).items == ()
