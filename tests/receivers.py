"""Real local receivers for delivery tests: an SMTP sink and a webhook endpoint.

Both listen on 127.0.0.1 with an ephemeral port, run in a background thread and
record what they receive. Failures are scripted so a test can say "answer 451
to the next RCPT" or "answer 503 twice, then accept"::

    with SmtpSink() as smtp:
        smtp.fail("rcpt", "550 5.1.1 no such user")
        ...  # send to 127.0.0.1:smtp.port
        smtp.messages  # list[ReceivedMail]

    with WebhookReceiver(secret=b"s") as hook:
        hook.respond(503, headers={"Retry-After": "1"}, times=2)
        ...  # POST to hook.url
        hook.requests  # list[ReceivedRequest], each with .json and .signature_ok
"""

from __future__ import annotations

import email
import json
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from watcher.digest.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

# --- SMTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def as_bytes(self) -> bytes:
        return self.data

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


def _free_port() -> int:
    # aiosmtpd's Controller checks readiness by connecting to its port, so it needs a real number.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink._next_failure("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.sink._next_failure("data")
        if reply:
            return reply
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content))
        with self.sink._lock:
            self.sink.messages.append(mail)
        return "250 Message accepted"


class _QuietController(Controller):
    def factory(self):  # type: ignore[no-untyped-def]
        # aiosmtpd warns (per connection) that AUTH without TLS is unsafe: true, and intended here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return super().factory()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost/127.0.0.1 (needs the openssl command)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


class SmtpSink:
    """An aiosmtpd server collecting messages.

    ``auth=(user, password)`` requires AUTH LOGIN/PLAIN; ``tls="starttls"`` or ``"ssl"`` with
    ``cert=(certfile, keyfile)`` (see :func:`self_signed_cert`) offers STARTTLS or speaks implicit TLS.
    """

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        tls: Literal["starttls", "ssl"] | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.messages: list[ReceivedMail] = []
        self.logins: list[str] = []
        self._failures: dict[str, deque[str]] = {"rcpt": deque(), "data": deque()}
        self._lock = threading.Lock()
        kwargs: dict[str, Any] = {}
        if auth is not None:
            kwargs = {
                "authenticator": self._authenticator(auth),
                "auth_required": True,
                "auth_require_tls": False,  # plain local test server; never do this for real
            }
        if tls is not None:
            if cert is None:
                raise ValueError("tls needs cert=(certfile, keyfile)")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
            kwargs["ssl_context" if tls == "ssl" else "tls_context"] = context
        self._controller = _QuietController(_Handler(self), hostname=self.host, port=self.port, **kwargs)

    def _authenticator(self, auth: tuple[str, str]):  # type: ignore[no-untyped-def]
        def check(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
            ok = (
                isinstance(auth_data, LoginPassword)
                and (
                    auth_data.login.decode(),
                    auth_data.password.decode(),
                )
                == auth
            )
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=ok)  # handled=False: aiosmtpd answers the 535

        return check

    def fail(self, stage: str, reply: str, times: int = 1) -> None:
        """Answer ``reply`` (e.g. ``"451 4.3.0 try later"``) to the next ``times`` RCPT or DATA commands."""
        with self._lock:
            self._failures[stage].extend([reply] * times)

    def _next_failure(self, stage: str) -> str | None:
        with self._lock:
            queue = self._failures[stage]
            return queue.popleft() if queue else None

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


# --- webhook --------------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int  # what the receiver answered
    signature_ok: bool | None  # None when the receiver has no secret

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: float = 0.0


class WebhookReceiver:
    """A threaded HTTP server that records every request and checks its HMAC signature."""

    def __init__(self, *, secret: bytes | None = None, tolerance: float = 300) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self.requests: list[ReceivedRequest] = []
        self._script: deque[_Reply] = deque()
        self._down: int | None = None
        self._refuse: tuple[bytes, int] | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    @property
    def accepted(self) -> list[ReceivedRequest]:
        """Requests answered with 2xx (what a real receiver would have processed)."""
        return [r for r in self.requests if 200 <= r.status < 300]

    def respond(
        self, status: int, *, headers: dict[str, str] | None = None, body: bytes = b"", times: int = 1
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again once the script runs out)."""
        with self._lock:
            self._script.extend(_Reply(status, dict(headers or {}), body) for _ in range(times))

    def refuse_bodies_with(self, marker: bytes, status: int = 400) -> None:
        """Answer ``status`` to every request whose body contains ``marker`` (a receiver that
        rejects one item's content), whatever the script says."""
        with self._lock:
            self._refuse = (marker, status)

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """Hold the next ``times`` requests for ``seconds`` before answering 200 (to trip client timeouts)."""
        with self._lock:
            self._script.extend(_Reply(stall=seconds) for _ in range(times))

    def outage(self, status: int = 503) -> None:
        """Answer every request with ``status`` until ``recover()`` (an endpoint that is down)."""
        with self._lock:
            self._down = status

    def recover(self) -> None:
        with self._lock:
            self._down = None

    def _next_reply(self) -> _Reply:
        with self._lock:
            if self._down is not None:
                return _Reply(self._down)
            return self._script.popleft() if self._script else _Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = receiver._next_reply()
                refuse = receiver._refuse
                if refuse is not None and refuse[0] in body:
                    reply = _Reply(refuse[1], {}, b"refused item")
                signature_ok = None
                if receiver.secret is not None:
                    signature_ok = verify(
                        body,
                        receiver.secret,
                        headers.get(TIMESTAMP_HEADER.lower(), ""),
                        headers.get(SIGNATURE_HEADER.lower(), ""),
                        now=time.time(),
                        tolerance=receiver.tolerance,
                    )
                with receiver._lock:
                    receiver.requests.append(
                        ReceivedRequest("POST", self.path, headers, body, reply.status, signature_ok)
                    )
                if reply.stall and receiver._closing.wait(reply.stall):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
