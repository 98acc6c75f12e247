"""Logs when not on a terminal: one line per event, ISO 8601 UTC times; `[logging] format = "json"`."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import tomlkit

from tests.feedserver import FeedServer
from watcher.logs import FILTERS, JsonFormatter, LineFormatter, make_handler

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S")


def run_once(tmp_path: Path, fmt: str | None) -> list[str]:
    with FeedServer() as srv:
        srv.route("/broken.xml", status=500, body=b"oops")
        srv.route(
            "/ok.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
        )
        doc: dict[str, object] = {
            "database": {"url": f"sqlite:///{tmp_path / 'w.db'}"},
            "polling": {"allow_private_networks": True},
            "feeds": [{"url": srv.url("/broken.xml")}, {"url": srv.url("/ok.xml")}],
        }
        if fmt:
            doc["logging"] = {"format": fmt}
        cfg = tmp_path / "w.toml"
        cfg.write_text(tomlkit.dumps(doc), encoding="utf-8")
        env = {**os.environ, "WATCHER_CONFIG": str(cfg)}
        env.pop("WATCHER_DATABASE_URL", None)
        proc = subprocess.run(
            [sys.executable, "-m", "watcher.cli", "run", "--once"],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 3, proc.stderr  # run --once: 3 = some feeds could not be polled (broken.xml)
    return proc.stderr.splitlines()


def test_piped_logs_are_one_line_per_event_with_utc_times(tmp_path: Path) -> None:
    lines = run_once(tmp_path, None)
    assert lines and all(LINE.match(line) for line in lines), lines
    (warning,) = [line for line in lines if " WARNING " in line]
    assert "broken.xml" in warning and "500" in warning


def test_json_logs(tmp_path: Path) -> None:
    events = [json.loads(line) for line in run_once(tmp_path, "json")]
    assert events and all(set(e) >= {"time", "level", "logger", "message"} for e in events)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in events)
    (warning,) = [e for e in events if e["level"] == "WARNING"]
    assert "broken.xml" in warning["message"] and warning["logger"] == "watcher"


def _record_with_traceback() -> logging.LogRecord:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        return logging.LogRecord(
            "watcher", logging.ERROR, __file__, 1, "tick failed:\n%s", ("x",), sys.exc_info()
        )


def test_a_traceback_stays_on_its_line() -> None:
    record = _record_with_traceback()
    text = LineFormatter().format(record)
    assert "\n" not in text and LINE.match(text)
    assert "Traceback (most recent call last):" in text and "ValueError: bad\\nvalue" in text
    event = json.loads(JsonFormatter().format(record))
    assert event["message"] == "tick failed:\nx" and "ValueError: bad" in event["exception"]


def test_every_format_keeps_the_shared_filters() -> None:
    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "secret" not in record.getMessage()

    from rich.console import Console

    FILTERS.append(Drop())
    try:
        for fmt in ("auto", "text", "json"):
            h = make_handler(Console(stderr=True), fmt)
            ok = logging.LogRecord("w", logging.INFO, __file__, 1, "fine", (), None)
            bad = logging.LogRecord("w", logging.INFO, __file__, 1, "a secret", (), None)
            assert h.filter(ok) and not h.filter(bad)
    finally:
        FILTERS.pop()
