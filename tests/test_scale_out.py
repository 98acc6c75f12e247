"""Three `watcher run` workers on one PostgreSQL database, one of them killed mid-run.

A loopback farm of 2,000 feeds; every item must be stored once and every match
delivered once (per idempotency key), although a worker dies holding claims.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

import tomlkit
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import ProgrammingError

from tests.feedserver import FeedServer
from tests.receivers import WebhookReceiver
from watcher.store.db import normalize_url
from watcher.store.models import DigestRun, EntryRow, Feed, MatchRow

FEEDS = 2000
REPO = Path(__file__).resolve().parents[1]


def feed_body(base: str, i: int) -> str:
    items = [
        (
            f"libya-{i}",
            f"Libyan rivals meet in Sirte on ceasefire, round {i}",
            f"Delegates of Libya's unity government and Haftar's forces discussed item {i} of the UN plan.",
        ),
        (f"sport-{i}", f"Cup tie number {i} ends in a draw", "Both sides scored late in the second half."),
        (f"market-{i}", f"Markets close higher on day {i}", "Shares in technology firms led the gains."),
    ]
    body = "".join(
        f"<item><guid>{base}/{slug}</guid><title>{t}</title><link>{base}/{slug}</link>"
        f"<description>{d}</description><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>"
        for slug, t, d in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Farm {i}</title>{body}</channel></rss>'


def write_config(path: Path, db_url: str, feed_urls: list[str], hook_url: str) -> None:
    shipped = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    doc = {
        "database": {"url": db_url, "pool_size": 4},
        "polling": {
            "tick": "0.5s",
            "interval": "1h",
            "min_interval": "1h",
            "max_interval": "2h",
            "concurrency": 8,
            "per_host": 16,
            "deadline": "2s",
            "lease": "6s",
            "allow_private_networks": True,
        },
        "feeds": [{"url": u} for u in feed_urls],
        "digests": [
            {"name": "hook", "profiles": ["libya"], "channel": "webhook", "url": hook_url, "max_items": 100}
        ],
        "profiles": {"libya": shipped["profiles"]["libya"]},
    }
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    env.pop("WATCHER_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", "run"],
        env=env,
        cwd=config.parent,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_three_workers_one_killed_store_and_deliver_everything_once(tmp_path: Path, pg_url: str) -> None:
    engine = create_engine(normalize_url(pg_url))
    workers: list[subprocess.Popen[bytes]] = []
    with FeedServer() as farm, WebhookReceiver() as hook:
        urls = []
        for i in range(FEEDS):
            farm.route(f"/f{i}.xml", feed_body(farm.url(f"/f{i}"), i))
            urls.append(farm.url(f"/f{i}.xml"))
        config = tmp_path / "watcher.toml"
        write_config(config, pg_url, urls, hook.url)
        try:
            workers = [start_worker(config, tmp_path / f"worker{n}.log") for n in range(3)]

            def polled() -> int:
                try:
                    with engine.connect() as conn:
                        q = select(func.count()).select_from(Feed).where(Feed.last_success_at.is_not(None))
                        return conn.execute(q).scalar_one()
                except ProgrammingError:  # the workers have not created the schema yet
                    return 0

            deadline = time.monotonic() + 60
            while polled() < FEEDS // 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            workers[0].send_signal(signal.SIGKILL)  # dies holding leased feeds (and maybe a digest run)
            assert workers[0].wait(10) == -signal.SIGKILL

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    pending = conn.execute(
                        select(func.count()).select_from(DigestRun).where(DigestRun.status != "sent")
                    ).scalar_one()
                    matches = conn.execute(select(func.count()).select_from(MatchRow)).scalar_one()
                if polled() == FEEDS and pending == 0 and matches == FEEDS and _delivered(hook) >= FEEDS:
                    break
                time.sleep(0.5)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(20)
                except subprocess.TimeoutExpired:
                    w.kill()
        logs = "\n".join((tmp_path / f"worker{n}.log").read_text(errors="replace")[-2000:] for n in range(3))

        assert polled() == FEEDS, logs
        with engine.connect() as conn:
            entries = conn.execute(select(func.count()).select_from(EntryRow)).scalar_one()
            matches = conn.execute(select(func.count()).select_from(MatchRow)).scalar_one()
            runs = conn.execute(select(DigestRun.status, func.count()).group_by(DigestRun.status)).all()
        assert entries == 3 * FEEDS  # every item stored, none twice
        assert matches == FEEDS, logs  # only the Libya item of each feed
        assert dict(runs).keys() == {"sent"}, runs

        # Every match reached the webhook under exactly one idempotency key; a retry of the same
        # run (same key) is allowed, a second run carrying the same item is not.
        by_link: dict[str, set[str]] = defaultdict(set)
        for req in hook.accepted:
            key = req.headers["idempotency-key"].split(":")[0]
            for link in _links(req.json):
                by_link[link].add(key)
        relevant = {f"{farm.url(f'/f{i}')}/libya-{i}" for i in range(FEEDS)}
        assert set(by_link) == relevant
        assert all(len(keys) == 1 for keys in by_link.values())
        # The surviving workers both did work (no coordinator, shared claims).
        assert all(w.returncode == 0 for w in workers[1:]), logs
    engine.dispose()


def _links(body: dict) -> list[str]:
    out = []
    for item in body["items"]:
        out.append(item["link"])
        out.extend(a["link"] for a in item.get("also", []))
    return out


def _delivered(hook: WebhookReceiver) -> int:
    return len({link for req in hook.accepted for link in _links(req.json)})
