"""Issue 16: a new user's first hour, one test per row of its table (the real CLI in a subprocess).

Rows on piped output and --json are in test_cli_output.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.feedserver import FeedServer, refused_port

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Libya Wire</title>'
    "<item><title>Haftar and Dbeibah meet in Libya over ceasefire</title><guid>a1</guid>"
    "<link>https://wire.example/a1</link><description>Talks in Tripoli, Libya.</description></item>"
    "<item><title>Libya: UN envoy briefs council</title><guid>a2</guid>"
    "<link>https://wire.example/a2</link><description>Haftar and the GNA.</description></item>"
    "</channel></rss>"
)
X_PROFILE = "[profiles.x.anchors]\nlibya = 1.0\n"
PAGE = '<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>'


def run(
    *args: str, cwd: Path, config: Path | None = None, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_") and k != "COLUMNS"}
    if config is not None:
        full["WATCHER_CONFIG"] = str(config)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """A user error: the exit code, one line on stderr, no traceback."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: config/watcher.toml with a SQLite database and loopback feeds allowed."""
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "watcher.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n[polling]\nallow_private_networks = true\n',
        encoding="utf-8",
    )
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return cfg


def test_derive_never_overwrites_a_tuned_profile(project: Path) -> None:
    root = project.parent.parent
    assert run("profile", "derive", cwd=root, config=project).returncode == 0
    tuned = project.read_text(encoding="utf-8")
    tuned = tuned.replace("exclude = []", 'exclude = ["premier league"]')
    tuned = re.sub(r"(?m)^haftar = [0-9.]+", "haftar = 4.5  # raised by hand", tuned)
    tuned = tuned.replace("[profiles.libya.anchors]", "[profiles.libya.anchors]\nsarraj = 2.5", 1)
    tuned = re.sub(r"(?m)^threshold = [0-9.]+", "threshold = 3.5", tuned)
    project.write_text(tuned, encoding="utf-8")

    refused = run("profile", "derive", cwd=root, config=project)
    assert "already exists" in one_line_error(refused) and "--force" in refused.stderr
    assert project.read_text(encoding="utf-8") == tuned  # not a byte changed

    # A fresh derivation from more seeds brings new terms; --force merges and keeps every edit.
    (root / "seeds" / "extra.txt").write_text(
        "Libya's Fezzan: the Murzuq basin and the Sharara oilfield; Fezzan tribes, Murzuq elders. " * 5,
        encoding="utf-8",
    )
    merged = run("profile", "derive", "--force", cwd=root, config=project)
    assert merged.returncode == 0, merged.stderr
    profile = tomllib.loads(project.read_text(encoding="utf-8"))["profiles"]["libya"]
    assert profile["exclude"] == ["premier league"] and profile["threshold"] == 3.5
    assert profile["anchors"]["haftar"] == 4.5 and profile["anchors"]["sarraj"] == 2.5
    assert "# raised by hand" in project.read_text(encoding="utf-8")  # comments stay
    assert any("murzuq" in t or "fezzan" in t for t in [*profile["anchors"], *profile["terms"]])
    assert "kept your weights" in merged.stdout and "sarraj" in merged.stdout
    backups = list(project.parent.glob("watcher.toml.*.bak"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == tuned

    replaced = run("profile", "derive", "--force", "--replace", cwd=root, config=project)
    assert replaced.returncode == 0, replaced.stderr
    fresh = tomllib.loads(project.read_text(encoding="utf-8"))["profiles"]["libya"]
    assert fresh["exclude"] == [] and "sarraj" not in fresh["anchors"]
    assert len(list(project.parent.glob("watcher.toml.*.bak"))) >= 1


def test_seed_in_latin1_is_refused_naming_the_file(project: Path) -> None:
    root = project.parent.parent
    bad = root / "seeds" / "fr.txt"
    bad.write_bytes("Le président Haftar et le Conseil présidentiel, Élysée.".encode("latin-1"))
    proc = run("profile", "derive", "--name", "fr", cwd=root, config=project)
    err = one_line_error(proc)
    assert "seeds/fr.txt" in err and "not UTF-8" in err and "0xe9" in err
    assert "[profiles" not in project.read_text(encoding="utf-8")
    bad.write_bytes("\ufeffLe président Haftar, Élysée.".encode())  # UTF-8 with a BOM is fine
    assert run("profile", "derive", "--name", "fr", cwd=root, config=project).returncode == 0


def test_files_in_missing_folders_are_one_line_errors(project: Path) -> None:
    root = project.parent.parent
    project.write_text(
        project.read_text()
        + '[profiles.x.anchors]\nlibya = 1.0\n[[digests]]\nname = "d"\nprofiles = ["x"]\nchannel = "email"\n'
        + 'to = ["a@example.org"]\n',
        encoding="utf-8",
    )
    opml = run("feeds", "export-opml", str(root / "nope" / "x.opml"), cwd=root, config=project)
    assert f"the folder {root / 'nope'} does not exist" in one_line_error(opml)
    html = run("digest", "preview", "d", "--html", str(root / "nope" / "x.html"), cwd=root, config=project)
    assert "cannot write" in one_line_error(html)
    missing = run("feeds", "import-opml", str(root / "nope.opml"), cwd=root, config=project)
    assert "nope.opml" in one_line_error(missing)


def test_demo_runs_from_any_folder_and_keeps_other_folders(tmp_path: Path) -> None:
    anywhere = tmp_path / "somewhere"
    anywhere.mkdir()
    proc = run("demo", "--out", "demo", cwd=anywhere)
    assert proc.returncode == 0, proc.stderr
    assert "deriving 'libya'" in proc.stderr and "matches for profile libya" in proc.stdout
    lines = proc.stdout.splitlines()
    eml = [ln for ln in lines if ln.startswith("digest demo-email:")]
    assert eml and eml[0].split(", ")[-2].endswith(".eml")  # the summary is one line, paths whole
    assert Path(eml[0].split(", ")[-2]).exists() or (anywhere / eml[0].split(", ")[-2]).exists()
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.doc").write_text("months of work", encoding="utf-8")
    refused = run("demo", "--out", str(mine), cwd=anywhere)
    assert "not a demo folder" in one_line_error(refused)
    assert (mine / "chapter1.doc").read_text(encoding="utf-8") == "months of work"


def test_feeds_test_reads_file_urls_and_exits_1_on_a_non_feed(project: Path) -> None:
    root = project.parent.parent
    feed = root / "libya feed.xml"
    feed.write_text(RSS, encoding="utf-8")
    ok = run("feeds", "test", feed.as_uri(), cwd=root, config=project)
    assert ok.returncode == 0, ok.stderr
    assert "Libya Wire, 2 entries" in ok.stdout
    gone = run("feeds", "test", "file:///nonexistent/libya.xml", cwd=root, config=project)
    assert "no such file" in one_line_error(gone)
    page = root / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    assert run("feeds", "test", str(page), cwd=root, config=project).returncode == 1


def test_help_and_cli_conventions(project: Path) -> None:
    root = project.parent.parent
    helped = run("profile", "derive", "--help", cwd=root)
    assert "[profiles.NAME]" in helped.stdout and "<bool>" not in helped.stdout
    assert "--force" in helped.stdout
    for cmd in (["run"], ["feeds", "list"], ["status"]):
        text = run(*cmd, "--help", cwd=root).stdout
        assert "<bool>" not in text and "--config" in text and "-c" in text
    version = run("--version", cwd=root)
    assert version.returncode == 0 and re.fullmatch(r"watcher \d+\.\d+\.\d+\S*\n", version.stdout)
    # --config (or -c) is taken before or after the command, the same way.
    for args in (
        ["-c", str(project), "status"],
        ["status", "--config", str(project)],
        ["status", "-c", str(project)],
    ):
        assert run(*args, cwd=root).returncode == 0
    missing = run("-c", "missing.toml", "status", cwd=root)
    err = one_line_error(missing)
    assert "missing.toml" in err and "--config" in err and "WATCHER_CONFIG" not in err
    named = run("status", cwd=root, env={"WATCHER_CONFIG": "gone.toml"})
    assert "gone.toml" in one_line_error(named) and "WATCHER_CONFIG" in named.stderr


def test_explain_says_what_an_exclusion_vetoed_and_why_anchors_count_half(tmp_path: Path) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        '[profiles.libya]\nthreshold = 2.0\nexclude = ["premier league"]\n'
        '[profiles.libya.anchors]\nhaftar = 3.0\n"libya*" = 3.0\n',
        encoding="utf-8",
    )
    vetoed = run(
        "profile", "explain", "Libya: Haftar's club loses the premier league final", cwd=tmp_path, config=cfg
    )
    assert vetoed.returncode == 0, vetoed.stderr
    assert "excluded: 'premier league'" in vetoed.stdout and "no anchor fired" not in vetoed.stdout
    assert "without the exclusion it would score 4.50" in vetoed.stdout and "libya*" in vetoed.stdout
    plain = run("profile", "explain", "Haftar meets envoy in Libya", cwd=tmp_path, config=cfg)
    assert "+1.50  libya*" in plain.stdout and "libya*: weight 3, counts half" in plain.stdout


def test_suggest_with_nothing_to_suggest_says_why(project: Path) -> None:
    root = project.parent.parent
    project.write_text(project.read_text() + '[profiles.libya.anchors]\n"libya*" = 2.0\n', encoding="utf-8")
    items = root / "few.jsonl"
    items.write_text(json.dumps({"title": "Libya", "summary": ""}) + "\n", encoding="utf-8")
    proc = run("profile", "suggest", "libya", "--items", str(items), cwd=root, config=project)
    assert proc.returncode == 0, proc.stderr
    assert "no new terms to suggest for libya" in proc.stdout and "┏" not in proc.stdout


def test_feeds_add_checks_the_url_first(project: Path) -> None:
    root = project.parent.parent
    with FeedServer() as srv, refused_port() as dead:
        srv.route("/feed.xml", RSS)
        srv.route("/page.html", PAGE, content_type="text/html")
        page = run("feeds", "add", srv.url("/page.html"), cwd=root, config=project)
        err = one_line_error(page)
        assert "web page, not a feed" in err and f"watcher feeds add {srv.url('/feed.xml')}" in err
        unreachable = f"http://127.0.0.1:{dead}/rss.xml"
        assert "--no-check" in one_line_error(run("feeds", "add", unreachable, cwd=root, config=project))
        assert run("feeds", "list", "--json", cwd=root, config=project).stdout == ""  # neither was added
        good = run("feeds", "add", srv.url("/feed.xml"), cwd=root, config=project)
        assert good.returncode == 0 and "Libya Wire: 2 entries" in good.stdout
        anyway = run("feeds", "add", unreachable, "--no-check", cwd=root, config=project)
        assert anyway.returncode == 0, anyway.stderr
        huge = run(
            "feeds", "add", srv.url("/feed.xml?b"), "--interval", "999999999999h", cwd=root, config=project
        )
        assert "surely a typo" in one_line_error(huge)
        long = run("feeds", "add", srv.url("/feed.xml?c"), "--interval", "2d", cwd=root, config=project)
        assert "max_interval" in one_line_error(long)
    listed = {
        f["url"]: f
        for f in map(json.loads, run("feeds", "list", "--json", cwd=root, config=project).stdout.splitlines())
    }
    assert set(listed) == {srv.url("/feed.xml"), unreachable}
    assert {f["status"] for f in listed.values()} == {"new"}  # never polled: not "ok"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[polling]\ninterval = "99999999999999999999d"\n',
            "[polling] interval: '99999999999999999999d' is longer than",
        ),
        (
            '[polling]\nmin_interval = "6h"\nmax_interval = "5m"\n',
            "min_interval (6h) is longer than max_interval (5m)",
        ),
        (
            '[[feeds]]\nurl = "https://x.example/f"\nname = "X News"\ninterval = "30d"\n',
            "feed 'X News': interval 30d is outside",
        ),
        (
            X_PROFILE + '[[digests]]\nname = "mail"\nprofiles = ["x"]\nchannel = "email"\n'
            'to = ["not-an-email"]\n',
            "digest 'mail' to: 'not-an-email' is not an email address",
        ),
        (
            X_PROFILE + '[[digests]]\nname = "morning"\nprofiles = ["x"]\nchannel = "email"\n'
            'to = ["a@example.org"]\nschedul = "0 7 * * *"\n',
            "digest 'morning': unknown key 'schedul' (did you mean 'schedule'?)",
        ),
        (
            X_PROFILE + '[[digests]]\nname = "team-hook"\nprofiles = ["x"]\nchannel = "webhook"\n',
            "digest 'team-hook': a webhook digest needs 'url'",
        ),
        ('[polling]\nconcurrency = "lots"\n', "[polling] concurrency: expected a number, not 'lots'"),
    ],
)
def test_config_values_are_checked_for_sense_in_the_users_words(
    tmp_path: Path, toml: str, expected: str
) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n' + toml, encoding="utf-8")
    err = one_line_error(run("status", cwd=tmp_path, config=cfg))
    assert expected in err, err
    assert "Extra inputs" not in err and "digests.0" not in err


def test_run_once_exit_codes_say_what_failed(project: Path) -> None:
    root = project.parent.parent
    with FeedServer() as srv, refused_port() as dead:
        srv.route("/feed.xml", RSS)
        base = project.read_text() + '[profiles.libya.anchors]\n"libya*" = 2.0\n'
        feeds = f'[[feeds]]\nurl = "{srv.url("/feed.xml")}"\n'
        hook = (
            '[[digests]]\nname = "hook"\nprofiles = ["libya"]\nchannel = "webhook"\n'
            f'url = "http://127.0.0.1:{dead}/hook"\n'
        )
        project.write_text(base + feeds + hook, encoding="utf-8")
        undelivered = run("run", "--once", cwd=root, config=project)
        assert undelivered.returncode == 1, undelivered.stdout + undelivered.stderr
        assert "digest hook" in undelivered.stdout
        project.write_text(
            base + feeds + f'[[feeds]]\nurl = "http://127.0.0.1:{dead}/gone.xml"\n', encoding="utf-8"
        )
        assert run("run", "--once", cwd=root, config=project).returncode == 3  # a feed failed, nothing else
        srv.route("/feed.xml", RSS.replace("a1", "b1").replace("a2", "b2"))
        project.write_text(base + feeds, encoding="utf-8")
        assert run("run", "--once", cwd=root, config=project).returncode == 0


def test_unknown_profile_and_digest_names_are_errors(project: Path) -> None:
    root = project.parent.parent
    project.write_text(project.read_text() + '[profiles.libya.anchors]\n"libya*" = 2.0\n', encoding="utf-8")
    assert "no profile named 'nosuch'" in one_line_error(
        run("matches", "--profile", "nosuch", cwd=root, config=project)
    )
    assert "no digest named 'nosuch'" in one_line_error(
        run("digest", "status", "nosuch", cwd=root, config=project)
    )
    known = run("matches", "--profile", "libya", cwd=root, config=project)
    assert known.returncode == 0 and "no matches yet for profile libya" in known.stderr


def test_outside_a_project_folder_watcher_refuses_with_a_hint(tmp_path: Path) -> None:
    proc = run("feeds", "list", cwd=tmp_path)
    err = one_line_error(proc)
    assert "no config file here" in err and "--config" in err and str(tmp_path) in err
    assert list(tmp_path.iterdir()) == []  # no data/watcher.db left behind
    explicit = run("status", cwd=tmp_path, env={"WATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert explicit.returncode == 0 and "not found: defaults" in explicit.stdout


def test_service_start_up_counts_every_followed_feed(project: Path) -> None:
    root = project.parent.parent
    with refused_port() as dead:
        urls = [f"http://127.0.0.1:{dead}/feed{n}.xml" for n in range(5)]  # refused at once: a quick cycle
    project.write_text(
        project.read_text() + "".join(f'[[feeds]]\nurl = "{u}"\n' for u in urls[:2]), encoding="utf-8"
    )
    for url in urls[2:]:
        assert run("feeds", "add", url, "--no-check", cwd=root, config=project).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", "run"],
        cwd=root,
        env={**env, "WATCHER_CONFIG": str(project)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while time.monotonic() < deadline and "polled 5 feeds" not in seen:  # stop once it really runs
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "watcher running: 5 feeds" in seen, seen  # 2 from the config + 3 added with `feeds add`
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=90)


def test_db_upgrade_says_what_it_did(tmp_path: Path) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n', encoding="utf-8")
    first = run("db", "upgrade", cwd=tmp_path, config=cfg)
    assert first.returncode == 0 and first.stdout.startswith("created the schema (revision ")
    again = run("db", "upgrade", cwd=tmp_path, config=cfg)
    assert again.returncode == 0 and again.stdout.startswith("already up to date (revision ")
    from alembic import command
    from sqlalchemy import create_engine

    from watcher.store.db import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    acfg = alembic_config()
    with engine.begin() as conn:
        acfg.attributes["connection"] = conn
        command.downgrade(acfg, "-1")
    migrated = run("db", "upgrade", cwd=tmp_path, config=cfg)
    assert migrated.returncode == 0 and migrated.stdout.startswith("migrated ")


def test_digest_html_links_look_like_links_and_chips_drop_the_wildcard(project: Path) -> None:
    root = project.parent.parent
    copy = RSS.replace("Libya Wire", "Copy Desk").replace("a1", "c1").replace("a2", "c2")
    with FeedServer() as srv:
        srv.route("/feed.xml", RSS)
        srv.route(
            "/copy.xml",
            copy.replace("wire.example/a1", "copy.example/c1").replace("wire.example/a2", "copy.example/c2"),
        )
        project.write_text(
            project.read_text()
            + '[profiles.libya.anchors]\n"libya*" = 2.0\nhaftar = 2.0\n'
            + f'[[feeds]]\nurl = "{srv.url("/feed.xml")}"\n[[feeds]]\nurl = "{srv.url("/copy.xml")}"\n',
            encoding="utf-8",
        )
        assert run("run", "--once", cwd=root, config=project).returncode == 0
    # The digest is configured after the cycle, so its preview holds all four matches.
    project.write_text(
        project.read_text()
        + '[[digests]]\nname = "mail"\nprofiles = ["libya"]\nchannel = "email"\nto = ["a@example.org"]\n',
        encoding="utf-8",
    )
    out = root / "d.html"
    assert run("digest", "preview", "mail", "--html", str(out), cwd=root, config=project).returncode == 0
    html = out.read_text(encoding="utf-8")
    title_links = re.findall(r'<h3[^>]*><a href="https://[^"]*"[^>]*style="([^"]*)"', html)
    assert len(title_links) == 2  # one per story
    assert all("underline" in style and "text-decoration:none" not in style for style in title_links)
    chips = re.findall(r"border-radius:3px;?\">([^<]*)</span>", html)
    assert "libya" in chips and not any(c.endswith("*") for c in chips)
    assert "4 matched items shown as 2 stories" in html and "Also reported by" in html


def test_user_agent_is_honest_and_names_the_operators_contact(project: Path) -> None:
    root = project.parent.parent
    with FeedServer() as srv:
        srv.route("/feed.xml", RSS)
        assert run("feeds", "test", srv.url("/feed.xml"), cwd=root, config=project).returncode == 0
        project.write_text(
            project.read_text().replace(
                "[polling]\n", '[polling]\ncontact = "https://newsroom.example/bot"\n'
            ),
            encoding="utf-8",
        )
        assert run("feeds", "test", srv.url("/feed.xml"), cwd=root, config=project).returncode == 0
        agents = [r.headers["user-agent"] for r in srv.requests("/feed.xml")]
    assert re.fullmatch(r"watcher/\d+\.\d+\.\d+\S*", agents[0])
    assert re.fullmatch(r"watcher/\S+ \(\+https://newsroom\.example/bot\)", agents[1])
    assert not any("github.com" in a for a in agents)
