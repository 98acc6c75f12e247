"""Delivery against real local receivers: SMTP (aiosmtpd) and a threaded HTTP webhook endpoint."""

from __future__ import annotations

import json
import shutil
import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from tests.receivers import SmtpSink, WebhookReceiver, self_signed_cert
from watcher.config import DigestSettings, SmtpSettings
from watcher.deliver import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    classify_smtp,
    deliver,
    encode_body,
    parse_retry_after,
    post_webhook,
    send_email,
    write_digest_files,
)
from watcher.digest import build_email, sign, webhook_bodies
from watcher.values import Digest, DigestItem

T0 = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
SECRET = b"s3cret"


def make_digest(n: int = 3, key: str = "libya-daily-k1") -> Digest:
    items = tuple(
        DigestItem(
            match_id=i,
            profile="libya",
            title=f"Headline {i}: "
            + ["envoy", "oil", "ceasefire", "port", "court"][i % 5]
            + f" story {i * 7919}",
            link=f"https://news{i}.example/story/{i}",
            source=f"Outlet {i}",
            published=T0 - timedelta(hours=i),
            excerpt=f"Excerpt {i} " + "tripoli benghazi misrata "[i % 3 :] * (i % 4 + 1),
            score=10.0 - i / 10,
            terms=("libya",),
        )
        for i in range(1, n + 1)
    )
    return Digest(name="libya-daily", key=key, created=T0, items=items, profiles=("libya",))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as h:
        yield h


def smtp_for(sink: SmtpSink, **kw: object) -> SmtpSettings:
    return SmtpSettings(host=sink.host, port=sink.port, timeout=5, sender="watcher <w@news.example>", **kw)


def email_settings(**kw: object) -> DigestSettings:
    return DigestSettings(
        name="libya-daily", profiles=["libya"], channel="email", to=["reader@x.example"], **kw
    )


def hook_settings(url: str, fmt: str = "json", **kw: object) -> DigestSettings:
    return DigestSettings(
        name="libya-hook",
        profiles=["libya"],
        channel="webhook",
        url=url,
        format=fmt,
        secret_env="T_HOOK",
        **kw,
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- SMTP -----------------------------------------------------------------------------------------


def test_send_email_reaches_the_server_with_both_parts_and_every_link(sink: SmtpSink) -> None:
    d = make_digest()
    send_email(
        build_email(d, sender="w@news.example", to=["a@x.example"], subject_prefix="[w]"), smtp_for(sink)
    )
    [mail] = sink.messages
    assert mail.rcpt_tos == ("a@x.example",)
    msg = mail.message
    plain, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    for it in d.items:
        assert it.link in plain and f'href="{it.link}"' in html


def test_smtp_login_uses_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SMTP_USER", "bot")
    monkeypatch.setenv("T_SMTP_PASS", "hunter2")
    msg = build_email(make_digest(1), sender="w@news.example", to=["a@x.example"], subject_prefix="[w]")
    with SmtpSink(auth=("bot", "hunter2")) as sink:
        # Without TLS the credentials would cross in clear text: refused unless explicitly allowed.
        refused = smtp_for(sink, username_env="T_SMTP_USER", password_env="T_SMTP_PASS")
        with pytest.raises(PermanentDeliveryError, match="clear text"):
            send_email(msg, refused)
        assert sink.logins == [] and sink.messages == []
        env_names = {"username_env": "T_SMTP_USER", "password_env": "T_SMTP_PASS"}
        smtp = smtp_for(sink, **env_names, allow_plaintext_auth=True)
        send_email(msg, smtp)
        assert sink.logins == ["bot"] and len(sink.messages) == 1
        monkeypatch.setenv("T_SMTP_PASS", "wrong")
        with pytest.raises(PermanentDeliveryError, match="535") as err:
            send_email(msg, smtp)
        assert "wrong" not in str(err.value)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a test cert")
@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_smtp_over_tls_verifies_the_server_certificate(
    tls: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = self_signed_cert(tmp_path)
    msg = build_email(make_digest(1), sender="w@news.example", to=["a@x.example"], subject_prefix="[w]")
    with SmtpSink(tls=tls, cert=cert) as sink:  # type: ignore[arg-type]
        settings = SmtpSettings(host="localhost", port=sink.port, timeout=5, **{tls: True})
        # Not trusted yet: a certificate failure, never a silent plaintext fallback.
        with pytest.raises(TemporaryDeliveryError, match=r"SSL|certificate"):
            send_email(msg, settings)
        assert sink.messages == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # OpenSSL's default trust store, for this test
        send_email(msg, settings)
        assert len(sink.messages) == 1


@pytest.mark.parametrize(
    ("stage", "reply", "kind"),
    [
        ("rcpt", "451 4.3.0 greylisted, try later", TemporaryDeliveryError),
        ("rcpt", "550 5.1.1 no such user", PermanentDeliveryError),
        ("data", "452 4.3.1 insufficient storage", TemporaryDeliveryError),
        ("data", "554 5.7.1 message rejected as spam", PermanentDeliveryError),
    ],
)
def test_smtp_replies_are_classified(sink: SmtpSink, stage: str, reply: str, kind: type) -> None:
    sink.fail(stage, reply)
    msg = build_email(make_digest(1), sender="w@news.example", to=["a@x.example"], subject_prefix="[w]")
    with pytest.raises(kind, match=reply.split()[0]):
        send_email(msg, smtp_for(sink))
    assert sink.messages == []


def test_smtp_partial_refusal_is_permanent_to_avoid_duplicates(sink: SmtpSink) -> None:
    sink.fail("rcpt", "550 5.1.1 no such user")
    msg = build_email(
        make_digest(1), sender="w@x.example", to=["gone@x.example", "ok@x.example"], subject_prefix=""
    )
    with pytest.raises(PermanentDeliveryError, match=r"gone@x\.example"):
        send_email(msg, smtp_for(sink))
    assert [m.rcpt_tos for m in sink.messages] == [("ok@x.example",)]


def test_smtp_connection_refused_is_temporary() -> None:
    msg = build_email(make_digest(1), sender="w@x.example", to=["a@x.example"], subject_prefix="")
    with pytest.raises(TemporaryDeliveryError, match="connection failed"):
        send_email(msg, SmtpSettings(host="127.0.0.1", port=closed_port(), timeout=2))


def test_classify_smtp_exceptions() -> None:
    assert isinstance(classify_smtp(smtplib.SMTPAuthenticationError(535, b"bad")), PermanentDeliveryError)
    assert isinstance(classify_smtp(smtplib.SMTPAuthenticationError(454, b"later")), TemporaryDeliveryError)
    assert isinstance(classify_smtp(smtplib.SMTPServerDisconnected("gone")), TemporaryDeliveryError)
    assert isinstance(classify_smtp(TimeoutError()), TemporaryDeliveryError)
    assert isinstance(classify_smtp(smtplib.SMTPNotSupportedError("no STARTTLS")), PermanentDeliveryError)


def test_deliver_email_retries_a_greylisting_server(sink: SmtpSink, client: httpx.Client) -> None:
    sink.fail("rcpt", "451 4.7.1 greylisted", times=2)
    sleeps = Sleeps()
    deliver(make_digest(), email_settings(), smtp_for(sink), client=client, sleep=sleeps)
    assert len(sink.messages) == 1 and sleeps == [0.5, 1.0]


def test_deliver_email_gives_up_on_a_permanent_error_at_once(sink: SmtpSink, client: httpx.Client) -> None:
    sink.fail("rcpt", "550 5.1.1 no such user", times=5)
    sleeps = Sleeps()
    with pytest.raises(PermanentDeliveryError, match="550"):
        deliver(make_digest(), email_settings(), smtp_for(sink), client=client, sleep=sleeps)
    assert sleeps == []


# --- webhook --------------------------------------------------------------------------------------


def test_webhook_body_is_signed_and_a_tampered_body_fails(
    hook: WebhookReceiver, client: httpx.Client
) -> None:
    import time

    now = int(time.time())
    bodies = webhook_bodies(make_digest(), "json")
    post_webhook(client, hook.url, bodies, key="libya-daily-k1", secret=SECRET, now=now)
    [req] = hook.requests
    assert req.signature_ok is True
    assert req.body == encode_body(bodies[0])  # the exact signed bytes went over the wire
    assert req.headers["idempotency-key"] == "libya-daily-k1"
    assert req.headers["x-watcher-timestamp"] == str(now)
    assert req.headers["content-type"] == "application/json"
    assert {it["link"] for it in req.json["items"]} == {it.link for it in make_digest().items}

    tampered = req.body.replace(b"Outlet 1", b"Outlet 9")
    headers = {k: v for k, v in req.headers.items() if k.startswith("x-watcher")}
    client.post(hook.url, content=tampered, headers=headers)
    assert hook.requests[-1].signature_ok is False
    # A replay of the genuine request outside the tolerance fails too.
    old = now - 3600
    client.post(
        hook.url,
        content=req.body,
        headers={"X-Watcher-Timestamp": str(old), "X-Watcher-Signature": sign(req.body, SECRET, old)},
    )
    assert hook.requests[-1].signature_ok is False


def test_webhook_without_secret_sends_no_signature(client: httpx.Client) -> None:
    with WebhookReceiver() as hook:
        post_webhook(client, hook.url, [{"x": 1}], key="k", secret=None, now=1)
        assert "x-watcher-signature" not in hook.requests[0].headers


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (503, {"Retry-After": "7"}, TemporaryDeliveryError, 7.0),
        (429, {"Retry-After": "120"}, TemporaryDeliveryError, 120.0),
        (500, {}, TemporaryDeliveryError, None),
        (408, {}, TemporaryDeliveryError, None),
        (400, {}, PermanentDeliveryError, None),
        (404, {}, PermanentDeliveryError, None),
        (410, {}, PermanentDeliveryError, None),
    ],
)
def test_http_statuses_are_classified(
    hook: WebhookReceiver,
    client: httpx.Client,
    status: int,
    headers: dict[str, str],
    kind: type,
    retry_after: float | None,
) -> None:
    hook.respond(status, headers=headers, body=b"nope")
    with pytest.raises(kind, match=str(status)) as err:
        post_webhook(client, hook.url, [{"x": 1}], key="k", secret=SECRET, now=1)
    if kind is TemporaryDeliveryError:
        assert err.value.retry_after == retry_after


def test_retry_after_http_date() -> None:
    now = T0.timestamp()
    assert parse_retry_after(format_datetime(T0 + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(T0 - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_webhook_connection_refused_and_timeout_are_temporary() -> None:
    with httpx.Client(timeout=0.3) as fast, WebhookReceiver() as hook:
        with pytest.raises(TemporaryDeliveryError, match="connection failed"):
            post_webhook(fast, f"http://127.0.0.1:{closed_port()}/", [{"x": 1}], key="k", secret=None, now=1)
        hook.stall(2)
        with pytest.raises(TemporaryDeliveryError, match="timeout"):
            post_webhook(fast, hook.url, [{"x": 1}], key="k", secret=None, now=1)


def test_bad_webhook_url_is_permanent(client: httpx.Client) -> None:
    with pytest.raises(PermanentDeliveryError, match="bad webhook URL"):
        post_webhook(client, "ftp://example.invalid/x", [{"x": 1}], key="k", secret=None, now=1)


def test_deliver_webhook_recovers_when_the_receiver_fails_twice(
    hook: WebhookReceiver, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_HOOK", SECRET.decode())
    hook.respond(503, times=2)
    sleeps = Sleeps()
    deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=client, sleep=sleeps)
    assert [r.status for r in hook.requests] == [503, 503, 200]
    assert all(r.signature_ok for r in hook.requests)
    assert {r.headers["idempotency-key"] for r in hook.requests} == {"libya-daily-k1"}
    assert sleeps == [0.5, 1.0]


def test_deliver_honours_a_short_retry_after_and_leaves_a_long_one_to_the_outbox(
    hook: WebhookReceiver, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_HOOK", SECRET.decode())
    hook.respond(429, headers={"Retry-After": "2"})
    sleeps = Sleeps()
    deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=client, sleep=sleeps)
    assert sleeps == [2.0]

    hook.respond(503, headers={"Retry-After": "3600"})
    with pytest.raises(TemporaryDeliveryError) as err:
        deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=client, sleep=sleeps)
    assert err.value.retry_after == 3600 and sleeps == [2.0]  # no in-process wait for an hour


def test_a_webhook_that_asks_for_a_signature_is_never_sent_unsigned(
    hook: WebhookReceiver, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T_HOOK", raising=False)
    with pytest.raises(TemporaryDeliveryError, match="T_HOOK, which is not set"):
        deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=client, retry_wait=0)
    monkeypatch.setenv("T_HOOK", "")
    with pytest.raises(TemporaryDeliveryError, match="not set"):
        deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=client, retry_wait=0)
    assert hook.requests == []


def test_deliver_gives_up_after_the_attempts_and_raises_the_last_error(
    hook: WebhookReceiver, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_HOOK", SECRET.decode())
    hook.respond(502, times=3)
    with pytest.raises(TemporaryDeliveryError, match="502"):
        deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=client, retry_wait=0)
    assert len(hook.requests) == 3


def test_deliver_recovers_from_a_stalled_receiver(
    hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_HOOK", SECRET.decode())
    hook.stall(3)
    with httpx.Client(timeout=0.3) as fast:
        deliver(make_digest(), hook_settings(hook.url), SmtpSettings(), client=fast, retry_wait=0.01)
    assert len(hook.requests) == 2
    assert hook.requests[0].body == hook.requests[1].body  # the same message, recognisable by its key


def test_split_slack_digest_resumes_at_the_failed_part(
    hook: WebhookReceiver, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_HOOK", SECRET.decode())
    d = make_digest(60)
    parts = len(webhook_bodies(d, "slack"))
    assert parts >= 2
    hook.respond(200)
    hook.respond(503)  # the second part fails once
    deliver(d, hook_settings(hook.url, "slack"), SmtpSettings(), client=client, retry_wait=0)
    keys = [r.headers["idempotency-key"] for r in hook.requests]
    assert keys == ["libya-daily-k1:1", "libya-daily-k1:2"] + [
        f"libya-daily-k1:{n}" for n in range(2, parts + 1)
    ]
    sent = "".join(r.body.decode() for r in hook.accepted)
    assert all(f"<{it.link}|" in sent for it in d.items)
    assert all(r.signature_ok for r in hook.requests)


def test_discord_digest_is_split_and_every_part_is_posted(
    hook: WebhookReceiver, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_digest(25)
    monkeypatch.setenv("T_HOOK", SECRET.decode())
    deliver(d, hook_settings(hook.url, "discord"), SmtpSettings(), client=client)
    urls = [e["url"] for r in hook.accepted for e in r.json["embeds"]]
    assert len(hook.accepted) == 3 and sorted(urls) == sorted(it.link for it in d.items)


# --- offline files --------------------------------------------------------------------------------


def test_write_digest_files_for_email(tmp_path: Path) -> None:
    d = make_digest()
    paths = write_digest_files(d, email_settings(), tmp_path, sender="w@news.example")
    assert [p.name for p in paths] == [
        "libya-daily-20240514T093000Z.eml",
        "libya-daily-20240514T093000Z.html",
    ]
    msg = build_email(d, sender="w@news.example", to=["reader@x.example"], subject_prefix="[watcher]")
    assert paths[0].read_bytes() == msg.as_bytes()
    assert all(it.link in paths[1].read_text() for it in d.items)


@pytest.mark.parametrize("fmt", ["json", "slack", "discord"])
def test_write_digest_files_for_webhooks(tmp_path: Path, fmt: str) -> None:
    d = make_digest(30)
    json_path, html_path = write_digest_files(
        d, hook_settings("https://hooks.example/x", fmt), tmp_path, sender=""
    )
    bodies = webhook_bodies(d, fmt)  # type: ignore[arg-type]
    data = json_path.read_bytes()
    if len(bodies) == 1:
        assert data == encode_body(bodies[0])
    else:
        assert json.loads(data) == bodies
        assert all(encode_body(b) in data for b in bodies)
    assert html_path.suffix == ".html"
