"""Storage faults: a full disk (a real ENOSPC on a small tmpfs), a read-only file system, a
database locked by another process, and a database unreachable at start. Each is one clear line,
never a corrupted database, and work resumes when the fault goes."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import tomlkit
from sqlalchemy import create_engine, func, select

from tests.conftest import IN_CI, REPO
from tests.feedserver import FeedServer
from tests.pgcluster import PgCluster, free_port, pg_bin
from watcher.config import load_settings
from watcher.service import Worker
from watcher.store.db import normalize_url
from watcher.store.models import EntryRow

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    "<item><guid>https://t.example/1</guid><title>Libya ceasefire talks resume</title></item>"
    "<item><guid>https://t.example/2</guid><title>Weather report</title></item>"
    "</channel></rss>"
)


def write_config(path: Path, url: str, feeds: list[str], **database: object) -> Path:
    doc = {
        "database": {"url": url, **database},
        "polling": {"allow_private_networks": True, "tick": "0.2s", "interval": "1s", "min_interval": "1s"},
        "feeds": [{"url": u} for u in feeds],
        "profiles": {"libya": {"threshold": 1.0, "anchors": {"libya": 3.0}}},
    }
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def watcher(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    env.pop("WATCHER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=config.parent,
    )  # fmt: skip


def ran(result: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """A run the disk-full driver reported (rc, stdout, stderr)."""
    return subprocess.CompletedProcess([], result["rc"], result["stdout"], result["stderr"])  # type: ignore[arg-type]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_disk_full_and_read_only_on_a_real_small_file_system(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    probe = subprocess.run(
        [unshare or "unshare", "--user", "--map-root-user", "--mount", "true"],
        capture_output=True,
        check=False,
    )
    if unshare is None or probe.returncode != 0:
        if IN_CI:
            pytest.fail("unshare (user and mount namespaces) is needed for the disk-full test in CI")
        pytest.skip("no user and mount namespaces here: cannot mount a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", sys.executable, "-m", "tests.diskfull",
         str(mount), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["first"]["rc"] == 0 and out["entries_first"] == 5
    # Full while nothing has the database open: one clear line, nothing stored, nothing lost.
    line = one_error_line(ran(out["full"]))
    assert "disk holding the database is full" in line
    # Space returns: the next run reads the feed again and stores what it missed, once.
    assert out["resumed"]["rc"] == 0 and out["entries_resumed"] == 40 and out["matches"] == 1
    assert out["integrity_resumed"] == "ok"
    # Full while the service runs: the tick says so in one line; the database stays sound; the next
    # tick after space returns stores everything.
    running = out["running"]
    assert running["entries_full"] == 40 and running["integrity_full"] == "ok"
    (logged,) = running["log_full"]
    assert logged.startswith("ERROR tick not completed") and "database or disk is full" in logged
    assert running["entries_after"] == 80 and running["integrity_after"] == "ok"
    # A read-only file system: one line at start, for a single cycle and for the service alike.
    for key in ("read_only_once", "read_only_service"):
        assert "is read-only" in one_error_line(ran(out[key]))


def test_a_locked_database_waits_then_says_so_and_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "w.db"
    with FeedServer() as srv:
        srv.route("/f.xml", RSS)
        cfg = write_config(tmp_path / "w.toml", f"sqlite:///{db}", [srv.url("/f.xml")], lock_timeout="1s")
        assert watcher(cfg, "db", "upgrade").returncode == 0
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than lock_timeout
        try:
            line = one_error_line(watcher(cfg, "run", "--once"))
            assert "locked by another process" in line
        finally:
            holder.execute("ROLLBACK")
        assert watcher(cfg, "run", "--once").returncode == 0
        srv.route(
            "/f.xml",
            RSS.replace(
                "</channel>", "<item><guid>https://t.example/3</guid><title>x</title></item></channel>"
            ),
        )

        # The service: a tick that meets the lock says so in one line, and the next one goes on.
        from datetime import UTC, datetime, timedelta

        now = [datetime.now(UTC) + timedelta(minutes=1)]
        with Worker(load_settings(cfg), clock=lambda: now[0]) as worker:
            holder.execute("BEGIN EXCLUSIVE")
            with caplog.at_level(logging.ERROR, logger="watcher"):
                worker.safe_tick()
            holder.execute("ROLLBACK")
            holder.close()
            (record,) = [r for r in caplog.records if r.name == "watcher"]
            assert "tick not completed" in record.getMessage() and "locked" in record.getMessage()
            assert record.exc_info is None  # a storage fault, not a bug: no traceback
            now[0] += timedelta(minutes=5)
            worker.safe_tick()
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 3
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_unreachable_database_at_start(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "w.toml", f"postgresql://postgres@127.0.0.1:{free_port()}/watcher", [])
    line = one_error_line(watcher(cfg, "run", "--once"))
    assert "is unreachable" in line and "127.0.0.1" in line


def test_the_service_waits_for_its_database_and_says_so(tmp_path: Path) -> None:
    if pg_bin() is None:
        if IN_CI:
            pytest.fail("PostgreSQL's initdb and pg_ctl are needed in CI")
        pytest.skip("no PostgreSQL binaries to run a private cluster")
    pg = PgCluster(Path(tempfile.mkdtemp(prefix="watcher-pg-")) / "pg")
    pg.init()  # made, not started: the service comes up first
    try:
        with FeedServer() as srv:
            srv.route("/f.xml", RSS)
            cfg = write_config(tmp_path / "w.toml", pg.url("postgres"), [srv.url("/f.xml")])
            log = tmp_path / "service.log"
            env = {**os.environ, "WATCHER_CONFIG": str(cfg)}
            env.pop("WATCHER_DATABASE_URL", None)
            with log.open("wb") as fh:
                service = subprocess.Popen(
                    [sys.executable, "-m", "watcher.cli", "run"], env=env, cwd=tmp_path, stdout=fh, stderr=fh
                )
            try:
                deadline = time.monotonic() + 30
                while log.read_text().count("retrying in") < 2 and time.monotonic() < deadline:
                    time.sleep(0.2)
                waiting = [ln for ln in log.read_text().splitlines() if "retrying in" in ln]
                assert len(waiting) >= 2, log.read_text()
                assert "is unreachable" in waiting[0] and "retrying in 1 s" in waiting[0]
                assert "retrying in 2 s" in waiting[1]
                pg.start()
                engine = create_engine(normalize_url(pg.url("postgres")))
                deadline, stored = time.monotonic() + 60, 0
                while time.monotonic() < deadline and stored < 2:
                    time.sleep(0.5)
                    try:
                        with engine.connect() as conn:
                            stored = conn.execute(select(func.count()).select_from(EntryRow)).scalar_one()
                    except Exception:
                        stored = 0  # the schema is not there yet
                engine.dispose()
                assert stored == 2, log.read_text()
                assert service.poll() is None
            finally:
                service.send_signal(signal.SIGTERM)
                try:
                    service.wait(30)
                except subprocess.TimeoutExpired:
                    service.kill()
            assert service.returncode == 0, log.read_text()
    finally:
        pg.close()
