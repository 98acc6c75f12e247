"""Kill `watcher run --once` (SIGKILL) at each step of a send, restart it, and check that every
match reaches every channel, and that a resend always carries the same idempotency key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
import tomlkit

from tests.feedserver import FeedServer
from tests.receivers import SmtpSink, WebhookReceiver

REPO = Path(__file__).resolve().parents[1]
ITEMS = {
    "envoy": (
        "UN envoy urges Libya's rivals to agree election laws",
        "The Security Council heard the UN envoy.",
    ),
    "sirte": (
        "Libyan military commission meets in Sirte on ceasefire",
        "Haftar's LNA and Tripoli forces met.",
    ),
    "embargo": (
        "EU extends Libya arms embargo mission Irini",
        "Ships will keep inspecting vessels bound for Libya.",
    ),
}


def feed(base: str) -> str:
    body = "".join(
        f"<item><guid>{base}/{k}</guid><title>{t}</title><link>{base}/{k}</link><description>{d}</description>"
        "<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>"
        for k, (t, d) in ITEMS.items()
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{body}</channel></rss>'


def config(path: Path, db_url: str, feed_url: str, smtp_port: int, hook_url: str) -> Path:
    shipped = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    doc = {
        "database": {"url": db_url},
        "polling": {"allow_private_networks": True, "lease": "1s"},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "watcher <w@test.example>"},
        "feeds": [{"url": feed_url}],
        "digests": [
            {"name": "mail", "profiles": ["libya"], "channel": "email", "to": ["desk@test.example"]},
            {
                "name": "hook",
                "profiles": ["libya"],
                "channel": "webhook",
                "url": hook_url,
                "secret_env": "CRASH_SECRET",
            },
        ],
        "profiles": {"libya": shipped["profiles"]["libya"]},
    }
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def start(cfg: Path, failpoint: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "WATCHER_CONFIG": str(cfg), "CRASH_SECRET": "k"}
    env.pop("WATCHER_FAILPOINT", None)
    if failpoint:
        env["WATCHER_FAILPOINT"] = failpoint
    return subprocess.Popen(
        [sys.executable, "-m", "watcher.cli", "run", "--once"],
        env=env,
        cwd=cfg.parent,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A one-off `watcher` command against the test's config, as a user types it."""
    env = {**os.environ, "WATCHER_CONFIG": str(cfg), "CRASH_SECRET": "k", "COLUMNS": "250"}
    env.pop("WATCHER_FAILPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env,
        cwd=cfg.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_exactly_once_in_effect(base: str, smtp: SmtpSink, hook: WebhookReceiver) -> None:
    want = {f"{base}/{k}" for k in ITEMS}
    # Email: group deliveries by Message-ID; each item under exactly one Message-ID.
    mail_keys: dict[str, set[str]] = defaultdict(set)
    for m in smtp.messages:
        msg = m.message
        text = msg.get_body(("plain",)).get_content()
        for link in want:
            if link in text:
                mail_keys[link].add(msg["Message-ID"])
    assert set(mail_keys) == want
    assert all(len(ids) == 1 for ids in mail_keys.values()), mail_keys
    # Webhook: the same, by Idempotency-Key, and the body id matches the key.
    hook_keys: dict[str, set[str]] = defaultdict(set)
    for r in hook.requests:
        assert r.signature_ok
        assert r.json["id"] == r.headers["idempotency-key"]
        for item in r.json["items"]:
            hook_keys[item["link"]].add(r.headers["idempotency-key"])
    assert set(hook_keys) == want
    assert all(len(keys) == 1 for keys in hook_keys.values()), hook_keys


@pytest.mark.parametrize("failpoint", ["before_send", "after_send"])
def test_killed_at_a_failpoint_then_restarted(tmp_path: Path, db_url: str, failpoint: str) -> None:
    with FeedServer() as srv, SmtpSink() as smtp, WebhookReceiver(secret=b"k") as hook:
        srv.route("/f.xml", feed(srv.url("/a")))
        cfg = config(tmp_path / "watcher.toml", db_url, srv.url("/f.xml"), smtp.port, hook.url)
        crashed = start(cfg, failpoint)
        crashed.communicate(timeout=120)
        assert crashed.returncode == -signal.SIGKILL
        if failpoint == "before_send":
            assert smtp.messages == [] and hook.requests == []
        else:
            assert len(smtp.messages) == 1  # sent, but the outbox never heard it went out
        time.sleep(1.2)  # the dead worker's lease on the run expires
        again = start(cfg)
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out
        check_exactly_once_in_effect(srv.url("/a"), smtp, hook)
        if failpoint == "after_send":
            assert len(smtp.messages) == 2  # the resend: same Message-ID, which the check above asserts
            assert smtp.messages[0].message["Message-ID"] == smtp.messages[1].message["Message-ID"]


def test_killed_while_the_receiver_holds_the_request(tmp_path: Path, db_url: str) -> None:
    with FeedServer() as srv, SmtpSink() as smtp, WebhookReceiver(secret=b"k") as hook:
        srv.route("/f.xml", feed(srv.url("/a")))
        cfg = config(tmp_path / "watcher.toml", db_url, srv.url("/f.xml"), smtp.port, hook.url)
        hook.stall(30)  # the receiver has the body but has not answered yet
        proc = start(cfg)
        deadline = time.monotonic() + 60
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hook.requests, "the webhook was never called"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        time.sleep(1.2)
        again = start(cfg)
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out
        assert len(hook.requests) == 2
        assert hook.requests[0].headers["idempotency-key"] == hook.requests[1].headers["idempotency-key"]
        check_exactly_once_in_effect(srv.url("/a"), smtp, hook)


def test_dead_channel_does_not_hold_up_the_others(tmp_path: Path, db_url: str) -> None:
    with FeedServer() as srv, SmtpSink() as smtp, WebhookReceiver(secret=b"k") as hook:
        srv.route("/f.xml", feed(srv.url("/a")))
        cfg = config(tmp_path / "watcher.toml", db_url, srv.url("/f.xml"), smtp.port, hook.url)
        hook.respond(403, body=b"forbidden", times=10)  # the channel refuses: a permanent failure
        out, _ = start(cfg).communicate(timeout=120)
        assert len(smtp.messages) == 1  # email went out although the webhook is refused
        assert "digest hook" in out and "failed" in out
        status = cli(cfg, "digest", "status", "--json")
        assert status.returncode == 0, status.stderr
        rows = {r["digest"]: r for r in map(json.loads, status.stdout.splitlines())}
        assert rows["mail"]["status"] == "sent" and rows["hook"]["status"] == "failed"
        assert "403" in rows["hook"]["error"]
        health = cli(cfg, "status", "--json")
        assert health.returncode == 0, health.stderr
        state = json.loads(health.stdout)
        assert state["digests_failed"] == 1 and state["digests_waiting"] == 0 and state["feeds"] == {"ok": 1}


def test_preview_then_send_a_scheduled_digest_by_hand(tmp_path: Path, db_url: str) -> None:
    with FeedServer() as srv, SmtpSink() as smtp, WebhookReceiver(secret=b"k") as hook:
        srv.route("/f.xml", feed(srv.url("/a")))
        cfg = config(tmp_path / "watcher.toml", db_url, srv.url("/f.xml"), smtp.port, hook.url)
        doc = tomlkit.parse(cfg.read_text())
        doc["digests"][0]["schedule"] = "0 7 1 1 *"  # once a year: not due now
        cfg.write_text(tomlkit.dumps(doc))
        out, _ = start(cfg).communicate(timeout=120)
        assert smtp.messages == [] and len(hook.requests) == 1, out  # the immediate webhook went out
        preview = cli(cfg, "digest", "preview", "mail")
        assert preview.returncode == 0 and all(f"{srv.url('/a')}/{k}" in preview.stdout for k in ITEMS)
        assert smtp.messages == []  # a preview sends nothing and marks nothing
        sent = cli(cfg, "digest", "send", "mail")
        assert sent.returncode == 0 and "sent" in sent.stdout, sent.stdout + sent.stderr
        assert len(smtp.messages) == 1
        assert "nothing to send" in cli(cfg, "digest", "send", "mail").stdout
