"""`watcher run --once`, as a user runs it, against real parts.

Feeds come from a loopback HTTP server and change between runs; mail goes to a real
aiosmtpd server; the webhook goes to a real HTTP receiver that checks the HMAC.
The same test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
import tomlkit
from feedgen.feed import FeedGenerator

from tests.feedserver import FeedServer
from tests.receivers import SmtpSink, WebhookReceiver

RELEVANT = {
    "berlin": (
        "Foreign ministers meet in Berlin on Libya's stalled election roadmap",
        "Envoys from Germany, Turkey and Egypt urged Libyan rivals to agree a date for presidential "
        "elections and to remove foreign forces and mercenaries, the UN mission said.",
    ),
    "ceasefire": (
        "Libya's 5+5 military commission agrees plan to withdraw mercenaries",
        "The Joint Military Commission met in Sirte to secure the ceasefire between the Government of "
        "National Unity in Tripoli and Haftar's Libyan National Army.",
    ),
}
UNRELATED = {
    "lebanon": (
        "Clashes erupt in Tripoli, northern Lebanon, as Lebanese army deploys",
        "Gunmen fought in the Lebanese port city; the army sent reinforcements to Tripoli's Bab al-Tabbaneh.",
    ),
    "football": (
        "Bayern Munich beat Dortmund 3-1 in Berlin derby",
        "Goals in the second half settled a tense match before a sold-out crowd.",
    ),
}
LATE = {
    "dbeibah": (
        "Libya's House of Representatives rejects Dbeibah's budget as election dispute deepens",
        "The parliament in Tobruk voted against the unity government's spending plan; the UN envoy called "
        "on Libyan leaders to agree on electoral laws.",
    ),
}


def rss(base: str, items: dict[str, tuple[str, str]], title: str) -> bytes:
    fg = FeedGenerator()
    fg.title(title)
    fg.link(href=base)
    fg.description(f"{title} test feed")
    start = datetime(2026, 11, 20, 8, tzinfo=UTC)
    for i, (slug, (head, body)) in enumerate(items.items()):
        fe = fg.add_entry(order="append")
        fe.id(f"{base}/{slug}")
        fe.title(head)
        fe.link(href=f"{base}/{slug}?utm_source=rss")
        fe.description(body)
        fe.pubDate(start + timedelta(hours=i))
    return fg.rss_str()


def write_config(path: Path, *, db_url: str, feeds: list[str], smtp_port: int, hook_url: str) -> None:
    feed_tables = "\n".join(f'[[feeds]]\nurl = "{u}"\n' for u in feeds)
    # The shipped default profile, as a user gets it from `watcher profile derive`.
    shipped = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "config" / "watcher.toml").read_text("utf-8")
    )
    profiles = tomlkit.dumps({"profiles": {"libya": shipped["profiles"]["libya"]}})
    path.write_text(
        f"""
[database]
url = "{db_url}"

[polling]
interval = "1s"
min_interval = "1s"
max_interval = "1s"
allow_private_networks = true
tick = "1s"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
sender = "watcher <watcher@test.example>"

{feed_tables}

[[digests]]
name = "desk-email"
profiles = ["libya"]
channel = "email"
to = ["desk@test.example"]

[[digests]]
name = "desk-hook"
profiles = ["libya"]
channel = "webhook"
url = "{hook_url}"
secret_env = "E2E_HOOK_SECRET"

{profiles}
""",
        encoding="utf-8",
    )


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHER_CONFIG": str(config), "E2E_HOOK_SECRET": "s3cret"}
    env.pop("WATCHER_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def email_links(sink: SmtpSink) -> list[set[str]]:
    out = []
    for raw in sink.messages:
        msg = message_from_bytes(raw if isinstance(raw, bytes) else raw.as_bytes())
        text = (
            next(p for p in msg.walk() if p.get_content_type() == "text/plain")
            .get_payload(decode=True)
            .decode()
        )
        out.append({line.strip() for line in text.split() if line.startswith("http")})
    return out


def hook_links(hook: WebhookReceiver) -> list[set[str]]:
    return [{item["link"] for item in json.loads(r.body)["items"]} for r in hook.requests]


def test_run_once_twice_sends_relevant_items_exactly_once(tmp_path: Path, db_url: str) -> None:
    with FeedServer() as feeds, SmtpSink() as smtp, WebhookReceiver(secret=b"s3cret") as hook:
        base_a, base_b = feeds.url("/a"), feeds.url("/b")
        feeds.route(
            "/a.xml", rss(base_a, {"berlin": RELEVANT["berlin"], "lebanon": UNRELATED["lebanon"]}, "Wire A")
        )
        feeds.route(
            "/b.xml",
            rss(base_b, {"ceasefire": RELEVANT["ceasefire"], "football": UNRELATED["football"]}, "B"),
        )
        config = tmp_path / "watcher.toml"
        write_config(
            config,
            db_url=db_url,
            feeds=[feeds.url("/a.xml"), feeds.url("/b.xml")],
            smtp_port=smtp.port,
            hook_url=hook.url,
        )

        first = run_once(config)
        assert "feeds polled: 2" in first.stdout
        want = {f"{base_a}/berlin", f"{base_b}/ceasefire"}  # canonical: utm_source dropped
        assert email_links(smtp) == [want]
        assert len(hook.requests) == 1
        assert hook.requests[0].signature_ok
        assert hook_links(hook) == [want]

        # Second run, feeds unchanged: polled again (interval 1 s), nothing new, nothing sent.
        time.sleep(1.2)
        second = run_once(config)
        assert "new items: 0" in second.stdout
        assert len(smtp.messages) == 1
        assert len(hook.requests) == 1

        # Third run: one new relevant item and one new unrelated item: only the relevant one goes out.
        time.sleep(1.2)
        feeds.route(
            "/a.xml",
            rss(base_a, {"berlin": RELEVANT["berlin"], "lebanon": UNRELATED["lebanon"], **LATE}, "Wire A"),
        )
        feeds.route(
            "/b.xml",
            rss(
                base_b,
                {
                    "ceasefire": RELEVANT["ceasefire"],
                    "football": UNRELATED["football"],
                    "tennis": ("Tennis final in Paris", "A five-set win."),
                },
                "B",
            ),
        )
        run_once(config)
        assert len(smtp.messages) == 2
        assert email_links(smtp)[1] == {f"{base_a}/dbeibah"}
        assert hook_links(hook)[1] == {f"{base_a}/dbeibah"}
        assert all(r.signature_ok for r in hook.requests)

    # The matches are stored, with the terms that fired.
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    listing = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "matches"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert listing.returncode == 0, listing.stderr
    assert "Libya" in listing.stdout and "Bayern" not in listing.stdout and "Lebanon" not in listing.stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_config_is_one_clear_line(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "watcher.toml"
    config.write_text('[polling]\ninterval = "soon"\n', encoding="utf-8")
    env = {**os.environ, "WATCHER_CONFIG": str(config)}
    proc = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "[polling] interval" in proc.stderr and str(config) in proc.stderr
    assert "Traceback" not in proc.stderr
