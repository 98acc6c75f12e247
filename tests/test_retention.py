"""Retention on SQLite and PostgreSQL: unmatched items go, their key records stay, and nothing
pruned ever comes back as new, matched or sent; matches stay unless asked; batches stay small."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import tomlkit
from sqlalchemy import Engine, func, select

from tests.conftest import REPO
from tests.feedserver import FeedServer
from tests.receivers import WebhookReceiver
from watcher.config import ConfigError, load_settings
from watcher.service import Worker
from watcher.store import feeds as fs
from watcher.store import items, open_store
from watcher.store.models import Delivery, DigestRun, EntryKey, EntryRow, MatchRow
from watcher.store.retention import PRUNE_LOCK, Policy, counts, key_hash, prune, sqlite_space
from watcher.values import Entry, Score

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def rss(items_: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><guid>https://news.example/{g}</guid><title>{t}</title><link>https://news.example/{g}</link></item>"
        for g, t in items_
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{body}</channel></rss>'


LIBYA = ("a", "Libya ceasefire talks resume in Geneva")
CHEESE = ("b", "Cheese festival opens in Lyon")
FONDUE = ("c", "Fondue prices rise across the Alps")
KEY_B = "id:https://news.example/b"  # the entry key the parser makes of CHEESE's guid


def write_config(path: Path, db_url: str, feeds: list[str], hook: str | None, **retention: object) -> Path:
    shipped = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    doc: dict[str, object] = {
        "database": {"url": db_url},
        "polling": {"allow_private_networks": True, "per_host": 8, "interval": "1h", "max_interval": "1h"},
        "retention": retention,
        "feeds": [{"url": u} for u in feeds],
        "profiles": {"libya": shipped["profiles"]["libya"]},
    }
    if hook:
        doc["digests"] = [{"name": "hook", "profiles": ["libya"], "channel": "webhook", "url": hook}]
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def n(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def sent_links(hook: WebhookReceiver) -> list[str]:
    return [it["link"] for r in hook.accepted for it in r.json["items"]]


def test_a_pruned_item_never_comes_back_as_new_matched_or_sent(tmp_path: Path, db_url: str) -> None:
    clock = Clock(T0)
    with FeedServer() as srv, WebhookReceiver() as hook:
        srv.route("/f.xml", rss([LIBYA, CHEESE]))
        cfg = write_config(tmp_path / "w.toml", db_url, [srv.url("/f.xml")], hook.url)
        with Worker(load_settings(cfg), clock=clock) as worker:
            worker.run_once()
            assert sent_links(hook) == ["https://news.example/a"]
            assert (n(worker.engine, EntryRow), n(worker.engine, MatchRow)) == (2, 1)

            # 100 days on, the feed still carries both: the unmatched one goes, its key record stays.
            clock.now = T0 + 100 * DAY
            srv.route("/f.xml", rss([LIBYA, CHEESE, FONDUE]))
            report = worker.run_once()
            assert report.pruned is not None and report.pruned.items == 1 and report.pruned.keys == 0
            with worker.engine.connect() as conn:
                left = {k.rsplit("/", 1)[1] for k in conn.execute(select(EntryRow.entry_key)).scalars()}
                keys = conn.execute(select(EntryKey.key_hash, EntryKey.first_seen, EntryKey.last_seen)).all()
            assert left == {"a", "c"}  # the match is kept; fondue is new today
            assert [k[0] for k in keys] == [key_hash(KEY_B)]
            assert keys[0][1] == (T0 - datetime(1970, 1, 1, tzinfo=UTC)).days

            # The profile now matches cheese: the pruned item is still known, so it is not matched.
            doc = tomlkit.parse(cfg.read_text())
            doc["profiles"]["libya"]["anchors"]["cheese"] = 5.0
            cfg.write_text(tomlkit.dumps(doc))
            os.utime(cfg, (1, 1))
            assert worker.reload_if_changed()
            clock.now += 2 * DAY
            srv.route("/f.xml", rss([CHEESE, LIBYA, FONDUE, ("d", "Cheese exports to Libya grow")]))
            report = worker.run_once()
            assert report.new_entries == 1 and report.matches == {"libya": 1}
            with worker.engine.connect() as conn:
                q = select(EntryRow.entry_key).join(MatchRow, MatchRow.entry_id == EntryRow.id)
                matched = {k.rsplit("/", 1)[1] for k in conn.execute(q).scalars()}
            assert matched == {"a", "d"}
            assert sorted(sent_links(hook)) == ["https://news.example/a", "https://news.example/d"]
            assert all(len(r.json["items"]) == 1 for r in hook.accepted)


def test_key_records_stay_while_the_feed_carries_the_item(tmp_path: Path, db_url: str) -> None:
    clock = Clock(T0)
    with FeedServer() as srv:
        srv.route("/f.xml", rss([CHEESE]), etag='"v1"')
        srv.route("/g.xml", rss([FONDUE]))
        cfg = write_config(
            tmp_path / "w.toml",
            db_url,
            [srv.url("/f.xml"), srv.url("/g.xml")],
            None,
            items="30d",
            keys="60d",
        )
        with Worker(load_settings(cfg), clock=clock) as worker:
            worker.run_once()
            clock.now = T0 + 40 * DAY
            assert worker.run_once().pruned.items == 2  # both became key records
            # Day 200: /f answers 304 all along (it still carries cheese); /g now carries something else.
            clock.now = T0 + 200 * DAY
            srv.route("/g.xml", rss([LIBYA]))
            assert worker.run_once().pruned.keys == 1  # fondue: old, and /g was just read without it
            clock.now += DAY
            assert worker.run_once().pruned.keys == 0
            with worker.engine.connect() as conn:
                assert list(conn.execute(select(EntryKey.key_hash)).scalars()) == [key_hash(KEY_B)]
            # A year later /f's body changes at last, cheese still in it: known, not new.
            clock.now += 365 * DAY
            srv.route("/f.xml", rss([CHEESE, FONDUE]), etag='"v2"')
            report = worker.run_once()
            assert report.new_entries == 1
            # Then cheese leaves /f: its key record goes with the first read that misses it (not
            # the same day: a key seen today counts as carried until tomorrow's read).
            srv.route("/f.xml", rss([FONDUE, LIBYA]), etag='"v3"')
            clock.now += timedelta(hours=2)
            assert worker.run_once().pruned.keys == 0
            clock.now += DAY
            srv.route("/f.xml", rss([LIBYA, FONDUE]), etag='"v4"')
            assert worker.run_once().pruned.keys == 1
            assert n(worker.engine, EntryKey) == 0


def test_a_copy_of_a_matched_story_in_another_feed_stays_unsent_after_pruning(
    tmp_path: Path, db_url: str
) -> None:
    clock = Clock(T0)
    copy = "<item><guid>other-1</guid><title>Libya ceasefire talks resume in Geneva</title>"
    copy += "<link>https://news.example/a?utm_source=x</link></item>"
    with FeedServer() as srv, WebhookReceiver() as hook:
        srv.route("/f.xml", rss([LIBYA]))
        srv.route("/g.xml", f'<?xml version="1.0"?><rss version="2.0"><channel>{copy}</channel></rss>')
        cfg = write_config(tmp_path / "w.toml", db_url, [srv.url("/f.xml")], hook.url)
        with Worker(load_settings(cfg), clock=clock) as worker:
            worker.run_once()
            assert fs.add_feed(worker.engine, srv.url("/g.xml"), None, None, clock.now)
            worker.run_once()  # the copy: stored, not matched (the story matched through /f)
            assert n(worker.engine, EntryRow) == 2 and n(worker.engine, MatchRow) == 1
            clock.now = T0 + 100 * DAY
            srv.route(
                "/g.xml", f'<?xml version="1.0"?><rss version="2.0"><channel>{copy}<x/></channel></rss>'
            )
            report = worker.run_once()
            assert report.pruned.items == 1 and n(worker.engine, EntryKey) == 1  # the copy went
            # A third feed now carries the story: the match kept from /f still stops a second send.
            srv.route("/h.xml", rss([LIBYA]))
            assert fs.add_feed(worker.engine, srv.url("/h.xml"), None, None, clock.now)
            worker.run_once()
            assert sent_links(hook) == ["https://news.example/a"]


def test_matches_follow_their_own_setting(tmp_path: Path, db_url: str) -> None:
    clock = Clock(T0)
    with FeedServer() as srv, WebhookReceiver() as hook:
        srv.route("/f.xml", rss([LIBYA]))
        cfg = write_config(tmp_path / "w.toml", db_url, [srv.url("/f.xml")], hook.url)
        with Worker(load_settings(cfg), clock=clock) as worker:
            worker.run_once()
            clock.now = T0 + 1000 * DAY
            report = worker.run_once()  # default: matches and their delivery records are kept
            assert report.pruned.matches == 0 and report.pruned.items == 0
            assert (n(worker.engine, MatchRow), n(worker.engine, Delivery)) == (1, 1)
        # Kept for a year: the old match, its delivery record and its run go; the item becomes a key
        # record (at the next prune), and it is still not new.
        cfg = write_config(tmp_path / "w.toml", db_url, [srv.url("/f.xml")], hook.url, matches="365d")
        with Worker(load_settings(cfg), clock=clock) as worker:
            srv.route("/f.xml", rss([("z", "Libya talks in Cairo"), LIBYA]))
            hook.respond(503, times=50)  # the new match's run stays pending: it must survive pruning
            report = worker.run_once()
            assert (report.pruned.matches, report.pruned.deliveries, report.pruned.runs) == (1, 1, 1)
            assert report.pruned.items == 1 and n(worker.engine, EntryKey) == 1
            clock.now += 400 * DAY
            report = worker.run_once()
            assert report.pruned.matches == 0  # in a pending run: kept whatever its age
            with worker.engine.connect() as conn:
                assert conn.execute(select(DigestRun.status)).scalars().all() == ["pending"]


def test_prune_works_in_small_batches_and_can_stop_between_them(tmp_path: Path, db_url: str) -> None:
    engine = open_store(db_url)
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], T0)
    (claim,) = fs.claim_due_feeds(engine, "w", T0, 1, 60)
    hit = Score(profile="libya", score=3.0, matched=True, hits=(("libya", 3.0),))
    entries = [
        (
            Entry(key=f"k{i}", title=f"t{i}", summary="s", link=None, published=T0),
            [hit] if i % 10 == 0 else [],
        )
        for i in range(95)
    ]
    items.store_entries(engine, claim.id, entries, T0)
    policy = Policy(items=86400, keys=10 * 86400, batch=10)
    later = T0 + 3 * DAY
    calls = 0

    def stop_after_three() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    first = prune(engine, policy, later, stop=stop_after_three)
    assert not first.complete and first.items == 30  # three batches of ten, then stopped
    rest = prune(engine, policy, later)
    assert rest.complete and first.items + rest.items == 85  # the ten matched stay
    c = counts(engine)
    assert (c.items, c.key_records, c.matches) == (10, 85, 10)
    assert items.known_keys(engine, claim.id, [f"k{i}" for i in range(100)]) == {f"k{i}" for i in range(95)}
    engine.dispose()


def test_postgres_prunes_one_worker_at_a_time(pg_url: str) -> None:
    engine = open_store(pg_url)
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], T0)
    (claim,) = fs.claim_due_feeds(engine, "w", T0, 1, 60)
    items.store_entries(engine, claim.id, [(Entry("k", "t", "s", None, T0), [])], T0)
    policy = Policy(items=86400, keys=2 * 86400)
    with psycopg.connect(pg_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (PRUNE_LOCK,))
        busy = prune(engine, policy, T0 + 3 * DAY)
        assert not busy.complete and busy.items == 0
        other.execute("SELECT pg_advisory_unlock(%s)", (PRUNE_LOCK,))
    assert prune(engine, policy, T0 + 3 * DAY).items == 1
    engine.dispose()


def test_sqlite_gives_the_space_back(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], T0)
    (claim,) = fs.claim_due_feeds(engine, "w", T0, 1, 60)
    big = "x" * 4000
    items.store_entries(engine, claim.id, [(Entry(f"k{i}", "t", big, None, T0), []) for i in range(2000)], T0)
    before, _, mode = sqlite_space(engine)
    assert mode == 2  # a new database is made with incremental auto-vacuum
    report = prune(engine, Policy(items=86400, keys=2 * 86400), T0 + 2 * DAY)
    after, free, _ = sqlite_space(engine)
    assert report.items == 2000 and report.freed_bytes > 7_000_000
    assert after < before / 5 and free == 0
    engine.dispose()


def test_config_and_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[retention]\nitems = "90d"\nkeys = "30d"\n')
    with pytest.raises(ConfigError, match="keys must be at least as long as items"):
        load_settings(bad)
    bad.write_text('[retention]\nmatches = "someday"\n')
    with pytest.raises(ConfigError, match=r"\[retention\] matches: 'someday' is not a duration"):
        load_settings(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n[retention]\nmatches = "forever"\n')
    r = load_settings(ok).retention
    assert (r.items, r.keys, r.matches) == (90 * 86400, 365 * 86400, None)

    env = {**os.environ, "WATCHER_CONFIG": str(ok)}
    env.pop("WATCHER_DATABASE_URL", None)
    run = [sys.executable, "-m", "watcher.cli", "db", "prune"]
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "removed 0 items that matched nothing" in proc.stdout
    proc = subprocess.run(
        [*run, "--json", "--vacuum"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["items"] == 0 and json.loads(proc.stdout)["complete"] is True


def test_a_match_with_a_verdict_stays_as_long_as_its_verdict(db_url: str) -> None:
    from watcher.store.feedback import list_verdicts, record_verdict

    engine = open_store(db_url)
    fs.sync_config_feeds(engine, [("https://a.example/feed", None, None)], T0)
    (claim,) = fs.claim_due_feeds(engine, "w", T0, 1, 60)
    hit = Score(profile="libya", score=3.0, matched=True, hits=(("libya", 3.0),))
    items.store_entries(
        engine,
        claim.id,
        [(Entry(f"k{i}", f"t{i}", "s", f"https://a.example/{i}", T0), [hit]) for i in (1, 2)],
        T0,
    )
    with engine.connect() as conn:
        first = min(conn.execute(select(MatchRow.id)).scalars())
    record_verdict(engine, first, "relevant", note=None, now=T0 + DAY, via="cli")
    kept = prune(engine, Policy(items=90 * 86400, keys=365 * 86400, matches=30 * 86400), T0 + 40 * DAY)
    assert (kept.matches, kept.verdicts, kept.deliveries) == (1, 0, 0)
    assert [v.link for v in list_verdicts(engine)] == ["https://a.example/1"]
    gone = prune(
        engine,
        Policy(items=90 * 86400, keys=365 * 86400, matches=30 * 86400, verdicts=30 * 86400),
        T0 + 40 * DAY,
    )
    assert (gone.matches, gone.verdicts) == (1, 1) and list_verdicts(engine) == []
    engine.dispose()
