"""A receiver that answers a byte at a time cannot hold a digest's sender: every read is within the
timeout, so only a deadline over the whole send ends it. Real sockets on 127.0.0.1 throughout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.receivers import SmtpSink, WebhookReceiver
from watcher.config import Settings, SmtpSettings
from watcher.deliver import TemporaryDeliveryError, post_webhook, send_email
from watcher.deliver import webhook as webhook_module
from watcher.deliver.webhook import make_webhook_client
from watcher.digest import build_email
from watcher.service import Worker
from watcher.values import Digest

DRIP = 0.1  # seconds between bytes: far inside every per-read timeout below
GIVE_UP = 8.0  # the server hangs up after this long, so a sender without a deadline fails the test


class TrickleServer:
    """Accepts connections and hands each to ``talk(conn)`` in a thread; closes them all at exit."""

    def __init__(self, talk: Callable[[socket.socket], None]) -> None:
        self._talk = talk
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.closed = threading.Event()  # set when a conversation ends because the client hung up
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._started = time.monotonic()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._talk(conn)
        except OSError as exc:
            if "gave up" in str(exc):
                conn.close()
            else:  # the client hung up
                self.closed.set()

    def trickle(self, conn: socket.socket, data: bytes) -> None:
        """Send ``data`` a byte every DRIP seconds, for as long as the client listens."""
        for byte in data:
            if self._stop.is_set() or time.monotonic() - self._started > GIVE_UP:
                raise OSError("the trickle gave up")
            conn.sendall(bytes([byte]))
            time.sleep(DRIP)

    def __enter__(self) -> TrickleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._conns:
            conn.close()


def read_line(conn: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            raise OSError("client hung up")
        line += chunk
    return line


def digest_mail() -> object:
    digest = Digest(name="d", key="d-1", created=datetime.now(UTC), items=(), profiles=("libya",))
    return build_email(
        digest, sender="watcher <w@news.example>", to=["reader@x.example"], subject_prefix="[w]"
    )


def timed(call: Callable[[], object]) -> tuple[Exception, float]:
    start = time.monotonic()
    with pytest.raises(Exception) as err:
        call()
    return err.value, time.monotonic() - start


# --- SMTP -----------------------------------------------------------------------------------------


def test_an_smtp_greeting_that_never_ends_fails_at_the_deadline() -> None:
    def talk(conn: socket.socket) -> None:  # "220-" announces another line, for ever
        while True:
            server.trickle(conn, b"220-still greeting\r\n")

    with TrickleServer(talk) as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, timeout=2, deadline=1.5)
        exc, took = timed(lambda: send_email(digest_mail(), smtp))  # type: ignore[arg-type]
        assert isinstance(exc, TemporaryDeliveryError)
        assert "1.5s deadline" in str(exc) and "[smtp] deadline" in str(exc)
        assert 1.4 < took < 3.0, took  # the deadline, not the trickle's length (unbounded) nor a timeout
        assert server.closed.wait(2), "the server still holds a live connection"


def test_an_smtp_server_trickling_its_answer_to_the_message_fails_at_the_deadline() -> None:
    mail_seen = threading.Event()

    def talk(conn: socket.socket) -> None:
        conn.sendall(b"220 slow.example ESMTP\r\n")
        while True:
            line = read_line(conn).upper()
            if line.startswith((b"EHLO", b"HELO")):
                conn.sendall(b"250 slow.example\r\n")
            elif line.startswith((b"MAIL", b"RCPT")):
                conn.sendall(b"250 ok\r\n")
            elif line.startswith(b"DATA"):
                conn.sendall(b"354 go on\r\n")
                while read_line(conn) != b".\r\n":
                    pass
                mail_seen.set()
                # "250-" announces another line, for ever: the answer never ends. (Cut off after a
                # whole "250 ", the code is read and the message counts as taken, as it should.)
                while True:
                    server.trickle(conn, b"250-still thinking\r\n")

    with TrickleServer(talk) as server:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, timeout=2, deadline=2)
        exc, took = timed(lambda: send_email(digest_mail(), smtp))  # type: ignore[arg-type]
    assert mail_seen.is_set()  # the message went over; only the answer was slow
    assert isinstance(exc, TemporaryDeliveryError) and "2s deadline" in str(exc)
    assert 1.9 < took < 3.5, took


def test_a_prompt_smtp_server_is_unaffected_by_the_deadline() -> None:
    with SmtpSink() as sink:
        smtp = SmtpSettings(host=sink.host, port=sink.port, timeout=5, deadline=1)
        for _ in range(3):  # the watchdog of one send does not touch the next
            send_email(digest_mail(), smtp)  # type: ignore[arg-type]
            time.sleep(0.4)
        assert len(sink.messages) == 3


def test_smtp_deadline_is_read_from_the_config(tmp_path: Path) -> None:
    assert SmtpSettings().deadline == 120.0
    assert SmtpSettings(deadline="5m").deadline == 300.0  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deadline"):
        SmtpSettings(deadline="-1")  # type: ignore[arg-type]


# --- webhook --------------------------------------------------------------------------------------


@pytest.fixture
def trickling_hook() -> Iterator[TrickleServer]:
    def talk(conn: socket.socket) -> None:
        while read_line(conn) != b"\r\n":  # the request's headers; the body is ignored
            pass
        server.trickle(conn, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000 + b"\r\n\r\n")

    with TrickleServer(talk) as server:
        yield server


def test_a_webhook_trickling_its_headers_fails_at_the_deadline(trickling_hook: TrickleServer) -> None:
    url = f"http://127.0.0.1:{trickling_hook.port}/hook"
    with make_webhook_client() as client:
        exc, took = timed(
            lambda: post_webhook(
                client, url, [{"x": 1}], key="k", secret=None, now=1, timeout=2, deadline=1.5
            )
        )
    assert isinstance(exc, TemporaryDeliveryError)
    assert str(exc) == "webhook timeout: no whole answer within the 1.5s deadline"
    assert 1.4 < took < 3.0, took


def test_the_services_webhook_client_keeps_the_deadline(
    trickling_hook: TrickleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_module, "DEFAULT_DEADLINE", 1.0)
    settings = Settings.model_validate({"database": {"url": f"sqlite:///{tmp_path}/w.db"}})
    service = Worker(settings)
    try:
        url = f"http://127.0.0.1:{trickling_hook.port}/hook"
        exc, took = timed(
            lambda: post_webhook(service.hook_client(), url, [{"x": 1}], key="k", secret=None, now=1)
        )
    finally:
        service.close()
    assert isinstance(exc, TemporaryDeliveryError) and "1s deadline" in str(exc)
    assert 0.9 < took < 3.0, took  # the client's own read timeout is 30 s


def test_a_prompt_webhook_is_unaffected_by_the_deadline() -> None:
    with WebhookReceiver() as hook, make_webhook_client() as client:
        for n in range(3):
            post_webhook(client, hook.url, [{"n": n}], key=f"k{n}", secret=None, now=1, deadline=1)
            time.sleep(0.4)  # the keep-alive connection outlives one deadline, and is reused
        assert [r.status for r in hook.requests] == [200, 200, 200]
