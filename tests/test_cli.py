"""The feed commands of the CLI, run as a user runs them (a real process, a real config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_shared
from tests.feedserver import FeedServer
from watcher.opml import OpmlError, read_opml, write_opml


def watcher(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHER_CONFIG": str(config), "COLUMNS": "200"}
    env.pop("WATCHER_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n', encoding="utf-8")
    return path


def test_feeds_add_list_remove(config: Path) -> None:
    watcher(
        config,
        "feeds",
        "add",
        "https://news.example/rss.xml",
        "--name",
        "Example News",
        "--interval",
        "20m",
        "--no-check",  # news.example does not resolve: followed without a look
    )
    again = watcher(config, "feeds", "add", "https://news.example/rss.xml", "--no-check")
    assert "already following" in again.stdout
    lines = [json.loads(x) for x in watcher(config, "feeds", "list", "--json").stdout.splitlines()]
    assert len(lines) == 1
    assert lines[0]["url"] == "https://news.example/rss.xml"
    assert lines[0]["status"] == "new" and lines[0]["entries"] == 0 and lines[0]["last_error"] is None
    assert lines[0]["next_poll"]
    watcher(config, "feeds", "remove", "https://news.example/rss.xml")
    assert watcher(config, "feeds", "list", "--json").stdout.strip() == ""


def test_feeds_add_refuses_bad_and_private_urls(config: Path) -> None:
    bad = watcher(config, "feeds", "add", "ftp://news.example/rss.xml", check=False)
    assert (
        bad.returncode == 2 and "ftp://news.example/rss.xml" in bad.stderr and "Traceback" not in bad.stderr
    )
    private = watcher(config, "feeds", "add", "http://127.0.0.1:8080/feed.xml", check=False)
    assert private.returncode == 2 and "Traceback" not in private.stderr
    assert watcher(config, "feeds", "list", "--json").stdout.strip() == ""


def test_opml_import_then_export_round_trips(config: Path, tmp_path: Path) -> None:
    opml = need_shared("corpus", "opml", "countries", "with_category", "France.opml")
    expected = read_opml(opml.read_bytes())
    assert len(expected) > 5
    out = watcher(config, "feeds", "import-opml", str(opml))
    assert f"{len(expected)} added" in out.stdout
    again = watcher(config, "feeds", "import-opml", str(opml))
    assert "0 added" in again.stdout
    exported = tmp_path / "out.opml"
    watcher(config, "feeds", "export-opml", str(exported))
    assert {u for u, _ in read_opml(exported.read_bytes())} == {u for u, _ in expected}


def test_opml_errors_are_clear() -> None:
    with pytest.raises(OpmlError, match="not an OPML"):
        read_opml(b"<rss><channel/></rss>")
    with pytest.raises(OpmlError):
        read_opml(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><opml><body>&a;</body></opml>')
    assert read_opml(write_opml([("https://a.example/f", "A & B")], "t")) == [
        ("https://a.example/f", "A & B")
    ]


def test_feeds_test_reads_a_url_and_stores_nothing(config: Path, tmp_path: Path) -> None:
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>Libya talks resume in Geneva</title><link>https://t.example/1</link>"
        "<description>Libyan delegations agreed on a ceasefire plan.</description></item>"
        "</channel></rss>"
    )
    page = '<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>'
    config.write_text(config.read_text() + "[polling]\nallow_private_networks = true\n", encoding="utf-8")
    with FeedServer() as srv:
        srv.route("/feed.xml", rss)
        srv.route("/page", page, content_type="text/html")
        shown = watcher(config, "feeds", "test", srv.url("/feed.xml"))
        assert "Libya talks resume in Geneva" in shown.stdout and "1 entries" in shown.stdout
        html = watcher(config, "feeds", "test", srv.url("/page"), check=False)
        assert html.returncode == 1, html.stderr  # nothing in a page can be read as a feed
        assert "not a feed" in html.stdout and srv.url("/feed.xml") in html.stdout
        # --json: stdout is one object per entry, what is said of the feed goes to stderr.
        js = watcher(config, "feeds", "test", srv.url("/feed.xml"), "--json")
        rows = [json.loads(line) for line in js.stdout.splitlines()]
        assert [(r["title"], r["link"], r["matched"]) for r in rows] == [
            ("Libya talks resume in Geneva", "https://t.example/1", [])  # no profile in this config
        ]
        assert rows[0]["score"] == 0.0 and "1 entries" in js.stderr
        page_js = watcher(config, "feeds", "test", srv.url("/page"), "--json", check=False)
        assert page_js.returncode == 1 and page_js.stdout == "" and "not a feed" in page_js.stderr
    assert watcher(config, "feeds", "list", "--json").stdout.strip() == ""
