"""Secrets stay secret: no credential or token in any log line at any level, SMTP credentials
only over TLS (unless explicitly allowed), database passwords masked, and a webhook that asks for
a signature never sent unsigned."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit
from feedserver import FeedServer
from receivers import SmtpSink, WebhookReceiver

from watcher.redact import RedactingFilter, mask_password, redact

TOKEN = "xoxbSECRETtoken0123456789abcdef"
FEED_PASSWORD = "feedpass-7f3a"
QUERY_SECRET = "qs-0c1d2e3f"
RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    "<item><guid>1</guid><title>Libya talks resume</title><link>https://t.example/1</link></item>"
    "</channel></rss>"
)


def run_cli(tmp: Path, doc: dict, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "watcher.toml"
    cfg.write_text(tomlkit.dumps(doc), encoding="utf-8")
    full = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    full.update(WATCHER_CONFIG=str(cfg), **env)
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
    )


def base_doc(tmp: Path, feeds: list[str], digests: list[dict], **smtp: object) -> dict:
    return {
        "database": {"url": f"sqlite:///{tmp / 'w.db'}"},
        "polling": {"allow_private_networks": True},
        "smtp": {"host": "127.0.0.1", **smtp},
        "feeds": [{"url": u} for u in feeds],
        "profiles": {"libya": {"anchors": {"libya": 3.0}, "threshold": 2.0}},
        "digests": digests,
    }


def test_verbose_run_logs_no_token_password_or_secret_query(tmp_path: Path) -> None:
    with FeedServer() as srv, WebhookReceiver() as hook:
        srv.route("/f.xml", RSS)
        srv.route("/broken.xml", b"not a feed at all", content_type="text/plain")
        host = srv.url("/").split("//", 1)[1].rstrip("/")
        feeds = [
            f"http://reader:{FEED_PASSWORD}@{host}/f.xml?access_token={QUERY_SECRET}",
            f"http://reader:{FEED_PASSWORD}@{host}/broken.xml?api_key={QUERY_SECRET}",
        ]
        hooks = [
            {"name": "slack", "profiles": ["libya"], "channel": "webhook", "format": "slack",
             "url": f"{hook.url}/services/T0ABC/B0DEF/{TOKEN}"},
            {"name": "disc", "profiles": ["libya"], "channel": "webhook", "format": "discord",
             "url": f"{hook.url}/api/webhooks/1234567890/{TOKEN}"},
            {"name": "json", "profiles": ["libya"], "channel": "webhook", "format": "json",
             "url": f"{hook.url}?token={QUERY_SECRET}"},
        ]  # fmt: skip
        hook.respond(500, times=3)  # failures get logged too
        proc = run_cli(tmp_path, base_doc(tmp_path, feeds, hooks), "-v", "run", "--once")
        assert len(hook.requests) >= 3  # the webhooks really were called
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 1, logs  # run --once: 1 = a digest was left for a retry (the slack 500)
    assert "HTTP" in logs or "digest" in logs  # something was logged at all
    for secret in (TOKEN, FEED_PASSWORD, QUERY_SECRET):
        assert secret not in logs, f"{secret} leaked:\n{logs}"


def test_filter_masks_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("posting to %s", f"https://hooks.slack.com/services/T1/B2/{TOKEN}")
        try:
            raise RuntimeError(f"failed for postgresql://watcher:{FEED_PASSWORD}@db/watcher")
        except RuntimeError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert TOKEN not in text and FEED_PASSWORD not in text
    assert "hooks.slack.com/services/T1/B2/***" in text and "postgresql://watcher:***@db/watcher" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://w:p%40ss@db/w", "postgresql://w:***@db/w"),
        ("postgresql://w:p@ss@db:5432/w", "postgresql://w:***@db:5432/w"),
        ("https://example.org/rss?Signature=abc&page=2", "https://example.org/rss?Signature=***&page=2"),
        ("https://example.org/news/2024/01/a-long-article-slug-here", None),  # no secret: untouched
    ],
)
def test_redact_cases(url: str, shown: str | None) -> None:
    assert redact(f"x {url} y") == f"x {shown or url} y"


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:hunter2@host:notaport/db", "postgresql://u:hunter2@[::1/db", "postgres//u:hunter2@h/db"],
)
def test_malformed_database_url_never_shows_its_password(tmp_path: Path, url: str) -> None:
    doc = base_doc(tmp_path, [], [])
    proc = run_cli(tmp_path, doc, "status", WATCHER_DATABASE_URL=url)
    assert proc.returncode != 0
    assert "hunter2" not in proc.stdout + proc.stderr and "***" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert mask_password(url).count("***") == 1


SMTP_ENV = {"WATCHER_SMTP_USERNAME": "bot", "WATCHER_SMTP_PASSWORD": "smtp-hunter2"}


def test_smtp_credentials_without_tls_stop_the_service_at_start(tmp_path: Path) -> None:
    with SmtpSink(auth=("bot", "smtp-hunter2")) as sink:
        mail = [{"name": "mail", "profiles": ["libya"], "channel": "email", "to": ["d@example.org"]}]
        doc = base_doc(tmp_path, [], mail, port=sink.port)
        proc = run_cli(tmp_path, doc, "run", "--once", **SMTP_ENV)
        assert proc.returncode != 0 and "allow_plaintext_auth" in proc.stderr
        assert "Traceback" not in proc.stderr and "smtp-hunter2" not in proc.stderr
        assert sink.logins == []
        # Explicitly allowed: it logs in, with a warning.
        doc["smtp"]["allow_plaintext_auth"] = True
        doc["digests"][0]["send_empty"] = True
        proc = run_cli(tmp_path, doc, "run", "--once", **SMTP_ENV)
        assert proc.returncode == 0, proc.stderr
        assert "clear text" in proc.stderr and sink.logins == ["bot"]


def test_unset_webhook_secret_stops_the_service_at_start(tmp_path: Path) -> None:
    with WebhookReceiver() as hook:
        hooks = [
            {"name": "signed", "profiles": ["libya"], "channel": "webhook", "url": hook.url,
             "secret_env": "I13_UNSET_SECRET", "send_empty": True},
        ]  # fmt: skip
        doc = base_doc(tmp_path, [], hooks)
        proc = run_cli(tmp_path, doc, "run", "--once")
        assert proc.returncode != 0 and "I13_UNSET_SECRET" in proc.stderr
        assert "Traceback" not in proc.stderr and hook.requests == []
        proc = run_cli(tmp_path, doc, "run", "--once", I13_UNSET_SECRET="k3y")
        assert proc.returncode == 0, proc.stderr
        assert [r.headers.get("x-watcher-signature", "").startswith("sha256=") for r in hook.requests] == [
            True
        ]
