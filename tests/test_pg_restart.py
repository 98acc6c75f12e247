"""A running worker rides out a PostgreSQL restart: it reconnects and keeps polling and sending.

This restarts the machine's real PostgreSQL server, so it runs only where that is allowed:
in CI (CI=true) or when WATCHER_TEST_PG_RESTART=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomlkit
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import DBAPIError

from tests.conftest import IN_CI
from tests.feedserver import FeedServer
from tests.receivers import WebhookReceiver
from watcher.store.db import normalize_url
from watcher.store.models import EntryRow, MatchRow

REPO = Path(__file__).resolve().parents[1]
FEEDS = 50


def rss(base: str, items: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><guid>{base}/{slug}</guid><title>{title}</title><link>{base}/{slug}</link></item>"
        for slug, title in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{body}</channel></rss>'


def links(body: dict) -> list[str]:
    """Every item a digest names, including copies folded into a story ("also reported by")."""
    return [x for item in body["items"] for x in [item["link"], *(a["link"] for a in item["also"])]]


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=120
    )


def count(engine, model) -> int:
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar_one()
    except DBAPIError:
        return -1  # schema not there yet, or the server is restarting


@pytest.mark.skipif(
    not (IN_CI or os.environ.get("WATCHER_TEST_PG_RESTART") == "1") or shutil.which("pg_ctlcluster") is None,
    reason="restarts the machine's PostgreSQL: runs in CI or with WATCHER_TEST_PG_RESTART=1",
)
def test_worker_survives_a_postgres_restart(tmp_path: Path, pg_url: str) -> None:
    engine = create_engine(normalize_url(pg_url), pool_pre_ping=True)
    shipped = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    with FeedServer() as farm, WebhookReceiver() as hook:
        for i in range(FEEDS):
            farm.route(f"/f{i}.xml", rss(farm.url(f"/f{i}"), [(f"a{i}", f"Libya ceasefire talks, day {i}")]))
        cfg = tmp_path / "watcher.toml"
        cfg.write_text(
            tomlkit.dumps(
                {
                    "database": {"url": pg_url},
                    "polling": {
                        "tick": "0.5s",
                        "interval": "1s",
                        "min_interval": "1s",
                        "max_interval": "1s",
                        "lease": "3s",
                        "deadline": "2s",
                        "allow_private_networks": True,
                        "per_host": 8,
                    },
                    "feeds": [{"url": farm.url(f"/f{i}.xml")} for i in range(FEEDS)],
                    "digests": [
                        {"name": "hook", "profiles": ["libya"], "channel": "webhook", "url": hook.url}
                    ],
                    "profiles": {"libya": shipped["profiles"]["libya"]},
                }
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "WATCHER_CONFIG": str(cfg)}
        env.pop("WATCHER_DATABASE_URL", None)
        log = tmp_path / "worker.log"
        worker = subprocess.Popen(
            [sys.executable, "-m", "watcher.cli", "run"],
            env=env,
            cwd=tmp_path,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while count(engine, MatchRow) < FEEDS and time.monotonic() < deadline:
                time.sleep(0.2)
            assert count(engine, MatchRow) == FEEDS, log.read_text()

            restart_postgres()
            # New items appear while (and after) the server was away.
            for i in range(FEEDS):
                farm.route(
                    f"/f{i}.xml",
                    rss(
                        farm.url(f"/f{i}"),
                        [
                            (f"a{i}", f"Libya ceasefire talks, day {i}"),
                            (f"b{i}", f"Libyan rivals meet in Sirte, round {i}"),
                        ],
                    ),
                )
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                delivered = {link for r in hook.accepted for link in links(r.json)}
                if count(engine, MatchRow) == 2 * FEEDS and len(delivered) == 2 * FEEDS:
                    break
                time.sleep(0.5)
            assert worker.poll() is None, "the worker died with the database\n" + log.read_text()
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        assert count(engine, EntryRow) == 2 * FEEDS, log.read_text()[-3000:]
        assert count(engine, MatchRow) == 2 * FEEDS
        keys: dict[str, set[str]] = {}
        for r in hook.accepted:
            for link in links(r.json):
                keys.setdefault(link, set()).add(r.headers["idempotency-key"])
        assert len(keys) == 2 * FEEDS and all(len(k) == 1 for k in keys.values()), log.read_text()[-6000:]
        assert worker.returncode == 0  # SIGTERM: a clean stop
    engine.dispose()
