"""CLI output as a user meets it: feed text shown literally, piped output whole, --json everywhere.

Every test runs the real CLI in a subprocess (no COLUMNS: a pipe gets rich's default 80 columns)
against a real feed server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.feedserver import FeedServer
from watcher.cli_common import clean

ESC = "\x1b"
# Titles a hostile (or careless) feed owner can publish; each must come out as written, minus controls.
HOSTILE = [
    "[/oops] Libya talks in Geneva",
    "[link=http://evil.example]Libya click here[/link]",
    "[bold]Libya[/bold] envoy [/] meets Haftar",
    "Libya :smile: :thumbs_up: talks",
    f"Libya {ESC}[31mred{ESC}[0m and {ESC}]8;;http://evil.example{ESC}\\a link{ESC}]8;;{ESC}\\ talks",
    "Libya bell\x07 back\x08space \x9b31m C1 \u202eGNA\u202c talks",
]
SUMMARY = "Haftar and the Libyan National Army met the UN envoy in Tripoli, Libya, on a ceasefire."


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_") and k != "COLUMNS"}
    full.update({"WATCHER_CONFIG": str(config), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=config.parent,
    )


def json_feed(titles: list[str]) -> str:
    items = [
        {"id": f"h{i}", "url": f"https://news.example/h{i}", "title": t, "content_text": SUMMARY}
        for i, t in enumerate(titles)
    ]
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "Hostile [/x] :fire:", "items": items}
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config with a small Libya profile and loopback feeds allowed."""
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n'
        "[polling]\nallow_private_networks = true\n"
        "[profiles.libya]\nthreshold = 1.0\n"
        '[profiles.libya.anchors]\n"libya*" = 2.0\nhaftar = 2.0\n',
        encoding="utf-8",
    )
    return cfg


def test_clean_removes_every_control_and_escape_sequence() -> None:
    assert clean(f"a{ESC}[1;31mb{ESC}[0mc") == "abc"  # CSI (colours, cursor moves)
    assert clean(f"x{ESC}]8;;http://e.example{ESC}\\link{ESC}]8;;{ESC}\\y") == "xlinky"  # OSC 8 hyperlink
    assert clean(f"x{ESC}]0;title\x07y") == "xy"  # OSC ended by BEL (window title)
    assert clean("a\x9b2Jb") == "ab"  # 8-bit CSI
    assert clean(f"a{ESC}Pq#0;1;2{ESC}\\b") == "ab"  # DCS (sixel, terminal queries)
    assert clean(f"a{ESC}cb") == "ab"  # ESC c: full terminal reset
    assert clean("a\x07\x08\x00\x7fb") == "ab"
    assert clean("one\ttwo\r\nthree") == "one two three"
    assert clean("\u202egna\u202c \u2067x\u2069") == "gna x"  # bidi overrides and isolates
    assert clean("[bold]x[/] :smile: café – ليبيا") == "[bold]x[/] :smile: café – ليبيا"  # text stays
    assert clean(None) == ""


def test_feed_text_is_never_markup_in_feeds_test_and_matches(project: Path) -> None:
    with FeedServer() as srv:
        srv.route("/h.json", json_feed(HOSTILE), content_type="application/feed+json")
        tested = run(project, "feeds", "test", srv.url("/h.json"))
        assert tested.returncode == 0, tested.stderr
        assert "Hostile [/x] :fire:" in tested.stdout  # the feed's own title, as written
        for needle in ("[/oops] Libya", "[link=http://evil.example]Libya click here[/link]", ":smile:"):
            assert needle in tested.stdout
        assert "[bold]Libya[/bold] envoy [/] meets Haftar" in tested.stdout
        assert ESC not in tested.stdout and "\x07" not in tested.stdout and "\x9b" not in tested.stdout
        assert any("red" in line and "a link" in line for line in tested.stdout.splitlines())  # words stay
        assert "\u202e" not in tested.stdout

        # The same titles stored, then listed: as a table on a (forced) terminal, TSV piped, JSON.
        project.write_text(
            project.read_text() + f'[[feeds]]\nurl = "{srv.url("/h.json")}"\nname = "Hostile"\n',
            encoding="utf-8",
        )
        assert run(project, "run", "--once").returncode == 0
    piped = run(project, "matches")
    assert piped.returncode == 0, piped.stderr
    assert "[/oops] Libya talks in Geneva" in piped.stdout and ":thumbs_up:" in piped.stdout
    assert ESC not in piped.stdout
    terminal = run(project, "matches", env={"FORCE_COLOR": "1", "COLUMNS": "300"})
    assert terminal.returncode == 0, terminal.stderr
    assert "[/oops] Libya talks in Geneva" in terminal.stdout
    assert f"{ESC}]8;" not in terminal.stdout  # no live hyperlink, whatever the title says
    assert "👍" not in terminal.stdout and "😄" not in terminal.stdout  # emoji codes stay codes
    assert "\u202e" not in terminal.stdout and "\x07" not in terminal.stdout
    rows = [json.loads(line) for line in run(project, "matches", "--json").stdout.splitlines()]
    assert {r["title"] for r in rows} >= {HOSTILE[0], HOSTILE[1], HOSTILE[3]}


LONG_PATH = "/a/very/long/path/to/a/feed/that/is/not/there/rss.xml?category=world&format=rss2"


def test_piped_listings_are_whole_lines_with_full_urls(project: Path) -> None:
    page = '<html><head><link rel="alternate" type="application/rss+xml" href="/x.xml"></head></html>'
    with FeedServer() as srv:
        srv.route("/page.html", page, content_type="text/html")
        srv.route(LONG_PATH.split("?")[0], status=404, content_type="text/plain", body="gone fishing")
        missing, html = srv.url(LONG_PATH), srv.url("/page.html")
        project.write_text(
            project.read_text()
            + f'[[feeds]]\nurl = "{missing}"\n[[feeds]]\nurl = "{html}"\n'
            + '[[digests]]\nname = "hook"\nprofiles = ["libya"]\nchannel = "webhook"\n'
            + f'url = "{srv.url("/hook/with/a/long/path/that/answers/404/to/every/request")}"\n'
            + "send_empty = true\n",
            encoding="utf-8",
        )
        run(project, "run", "--once")
    listed = run(project, "feeds", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["feed", "status", "items"]  # a header, then one line per feed
    by_url = {line.split("\t")[-1]: line.split("\t") for line in lines[1:]}
    assert set(by_url) == {missing, html}  # full URLs, query string included
    assert by_url[html][1] == "error" and by_url[html][6].endswith(
        f"feeds found in the page: {srv.url('/x.xml')}"
    )
    runs = run(project, "digest", "status")
    assert runs.returncode == 0, runs.stderr
    header, row = runs.stdout.splitlines()
    assert header.split("\t")[-1] == "error" and "Error code: 501" in row.split("\t")[-1]  # not cut
    assert json.loads(run(project, "digest", "status", "--json").stdout)["digest"] == "hook"


def test_json_listings_and_json_errors(project: Path, tmp_path: Path) -> None:
    assert run(project, "matches", "--json").stdout == ""  # nothing yet: no lines, exit 0
    unknown = run(project, "matches", "--profile", "nosuch", "--json")
    assert unknown.returncode == 2 and json.loads(unknown.stdout) == {
        "error": "no profile named 'nosuch' (configured: libya)"
    }
    assert "Traceback" not in unknown.stderr and unknown.stderr.count("\n") == 1
    nodigest = run(project, "digest", "status", "nosuch")
    assert nodigest.returncode == 2 and "no digest named 'nosuch'" in nodigest.stderr
    # The database down: status still answers one JSON object, and says so by its exit code.
    down = run(project, "status", "--json", env={"WATCHER_DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/x"})
    assert down.returncode == 1
    state = json.loads(down.stdout)
    assert state["reachable"] is False and "pw" not in down.stdout and "127.0.0.1" in state["database"]
    up = json.loads(run(project, "status", "--json").stdout)
    assert up["reachable"] is True and up["config"] == str(project)


def test_profile_list_as_json_and_piped(project: Path) -> None:
    rows = [json.loads(line) for line in run(project, "profile", "list", "--json").stdout.splitlines()]
    assert [(r["name"], r["anchors"]["haftar"], r["threshold"]) for r in rows] == [("libya", 2.0, 1.0)]
    piped = run(project, "profile", "list").stdout.splitlines()
    assert piped[0].startswith("name\tanchors") and piped[1].startswith("libya\t2\t0\t1")
    broken = project.parent / "broken.toml"
    broken.write_text("[profiles.x\n", encoding="utf-8")
    bad = run(broken, "profile", "list", "--json")
    assert bad.returncode == 2 and "not valid TOML" in json.loads(bad.stdout)["error"]
