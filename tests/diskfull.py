"""Driver for the disk-full and read-only tests, run by tests/test_storage_faults.py inside a user
and mount namespace of its own (``unshare --user --map-root-user --mount``), where it mounts a
small tmpfs: a real ENOSPC and a real read-only file system, for this process tree only.

    python -m tests.diskfull MOUNTPOINT WORKDIR   # prints one JSON object
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import tomlkit

from tests.feedserver import FeedServer

MIB = 1024 * 1024


def rss(n: int, summary_chars: int = 0) -> str:
    items = [
        "<item><guid>https://t.example/libya</guid><title>Libya ceasefire talks resume in Geneva</title>"
        "<link>https://t.example/libya</link></item>"
    ]
    items += [
        f"<item><guid>https://t.example/{i}</guid><title>Weather report {i}</title>"
        f"<description>{'x' * summary_chars}</description><link>https://t.example/{i}</link></item>"
        for i in range(n - 1)
    ]  # fmt: skip
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{"".join(items)}</channel></rss>'
    )


def watcher(config: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    env.pop("WATCHER_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=config.parent,
    )  # fmt: skip
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def query(db: Path, sql: str) -> object:
    """One value, or the error's text (a full disk may refuse even to open the database)."""
    try:
        conn = sqlite3.connect(db, timeout=10)
    except sqlite3.Error as exc:
        return f"error: {exc}"
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.Error as exc:
        return f"error: {exc}"
    finally:
        conn.close()  # no file left open: the file system is remounted read-only later


def entries(db: Path) -> object:
    return query(db, "SELECT count(*) FROM entries")


def integrity(db: Path) -> str:
    return str(query(db, "PRAGMA integrity_check"))


def fill(mount: Path) -> int:
    """Take every free byte of the file system; returns how many."""
    written = 0
    block = b"\0" * 65536
    with (mount / "filler").open("wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    return written
                block = block[: len(block) // 2]


def while_running(config: Path, srv: FeedServer, mount: Path) -> dict[str, object]:
    """The disk fills while the service has the database open: SQLite says SQLITE_FULL."""
    import logging
    from datetime import UTC, datetime, timedelta

    from watcher.config import load_settings
    from watcher.service import Worker

    logged: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(f"{record.levelname} {record.getMessage()}")

    logging.getLogger("watcher").addHandler(Keep())
    out: dict[str, object] = {}
    now = [datetime.now(UTC)]
    db = mount / "w.db"
    with Worker(load_settings(config), clock=lambda: now[0]) as worker:
        srv.route("/f.xml", rss(80, summary_chars=3000))
        now[0] += timedelta(minutes=5)
        out["filled"] = fill(mount)
        worker.safe_tick()  # what the service's scheduler runs
        out["log_full"] = list(logged)
        out["entries_full"] = entries(db)
        out["integrity_full"] = integrity(db)
        (mount / "filler").unlink()
        now[0] += timedelta(minutes=5)  # past any lease taken before the disk filled
        logged.clear()
        worker.safe_tick()
        out["log_after"] = list(logged)
        out["entries_after"] = entries(db)
        out["integrity_after"] = integrity(db)
    return out


def main(mount: Path, work: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    db = mount / "w.db"
    with FeedServer() as srv:
        srv.route("/f.xml", rss(5))
        config = work / "watcher.toml"
        doc = {
            "database": {"url": f"sqlite:///{db}"},
            "polling": {"allow_private_networks": True, "deadline": "1s", "lease": "1s", "interval": "1s",
                        "min_interval": "1s", "max_backoff": "2s"},
            "feeds": [{"url": srv.url("/f.xml")}],
            "profiles": {"libya": {"threshold": 1.0, "anchors": {"libya": 3.0}}},
        }  # fmt: skip
        config.write_text(tomlkit.dumps(doc), encoding="utf-8")
        out["first"] = watcher(config, "run", "--once")
        out["entries_first"] = entries(db)

        srv.route("/f.xml", rss(40, summary_chars=3000))  # ~120 KB more to store
        out["filled"] = fill(mount)
        out["full"] = watcher(config, "run", "--once")
        out["entries_full"] = entries(db)
        out["integrity_full"] = integrity(db)

        (mount / "filler").unlink()  # space returns
        deadline, attempts = time.monotonic() + 30, 0
        while time.monotonic() < deadline:
            attempts += 1
            out["resumed"] = watcher(config, "run", "--once")
            if entries(db) == 40:
                break
            time.sleep(1)
        out["resume_attempts"] = attempts
        out["entries_resumed"] = entries(db)
        out["matches"] = query(db, "SELECT count(*) FROM matches")
        out["integrity_resumed"] = integrity(db)

        out["running"] = while_running(config, srv, mount)

        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        out["read_only_once"] = watcher(config, "run", "--once")
        out["read_only_service"] = watcher(config, "run")
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
