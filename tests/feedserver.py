"""A small threaded HTTP server on 127.0.0.1 for fetch and end-to-end tests.

    with FeedServer() as srv:
        srv.route("/a.xml", body=RSS, etag='"v1"')
        client.get(srv.url("/a.xml"))
        assert srv.hits("/a.xml") == 1

Routes can be replaced between requests. Every route can answer 304 to a matching
conditional GET, gzip its body, stall, dribble bytes, redirect, or send any status and
headers. Socket helpers cover the faults that need no HTTP at all.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = [
    "FeedServer",
    "Request",
    "Route",
    "gzip_bomb",
    "refused_port",
    "silent_port",
    "unanswered_connect_port",
]


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/rss+xml; charset=utf-8"
    etag: str | None = None  # answer 304 when If-None-Match matches
    last_modified: str | None = None  # answer 304 when If-Modified-Since matches
    gzip: bool = False  # compress the body and say so
    raw_gzip: bool = False  # the body is already gzip: only add Content-Encoding
    delay: float = 0.0  # stall before the status line
    dribble: float | None = None  # seconds between single bytes of the body
    trickle_headers: float | None = None  # seconds between single bytes of the status line and headers
    send_length: bool = True  # False: no Content-Length, close the connection to end the body


@dataclass
class Request:
    method: str
    path: str  # without the query string
    target: str  # as sent, query included
    headers: dict[str, str]  # names lower-cased
    peer: tuple[str, int] | None = None  # the client's address and port: one per connection


class FeedServer:
    """Threaded loopback HTTP server with an ephemeral port and mutable routes."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll interval keeps close() (and so every test teardown) fast.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="feedserver",
            daemon=True,
        )

    # -- lifecycle

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()  # wakes stalled and dribbling handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- routes

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, body: bytes | str = b"", **options: object) -> Route:
        """Serve ``body`` at ``path``; options are :class:`Route` fields. Replaces any earlier route."""
        data = body.encode() if isinstance(body, str) else body
        route = Route(body=data, **options)  # type: ignore[arg-type]
        with self._lock:
            self._routes[path] = route
        return route

    def redirect(self, path: str, to: str, status: int = 301) -> Route:
        """Redirect ``path`` to ``to`` (a path on this server or an absolute URL)."""
        return self.route(path, status=status, headers={"Location": to}, content_type=None)

    def remove(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    # -- observations

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self._requests if r.path == path)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    # -- used by the handler

    def _lookup(self, request: Request) -> Route | None:
        with self._lock:
            self._requests.append(request)
            return self._routes.get(request.path)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that reset or speak TLS to us are what fault tests do on purpose


def _handler_for(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            route = server._lookup(
                Request(self.command, self.path.split("?", 1)[0], self.path, headers, self.client_address[:2])
            )
            if route is None:
                route = Route(body=b"not found", status=404, content_type="text/plain")
            if route.delay and server._closing.wait(route.delay):
                return
            # The client may give up mid-answer: exactly what deadline and size tests provoke.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer(route)

        def _answer(self, route: Route) -> None:
            if self._not_modified(route):
                self.send_response(304)
                for name, value in self._validators(route).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = gzip.compress(route.body) if route.gzip else route.body
            if route.trickle_headers is not None:
                self._trickle(route, body)
                return
            self.send_response(route.status)
            if route.content_type:
                self.send_header("Content-Type", route.content_type)
            if route.gzip or route.raw_gzip:
                self.send_header("Content-Encoding", "gzip")
            for name, value in {**self._validators(route), **route.headers}.items():
                self.send_header(name, value)
            if route.send_length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            if route.dribble is None:
                self.wfile.write(body)
                return
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                if server._closing.wait(route.dribble):
                    return

        def _trickle(self, route: Route, body: bytes) -> None:
            """The status line and headers one byte at a time: a server holding a client before any body."""
            lines = [f"HTTP/1.1 {route.status} OK", f"Content-Length: {len(body)}", "Connection: close"]
            if route.content_type:
                lines.append(f"Content-Type: {route.content_type}")
            lines += [f"{k}: {v}" for k, v in {**self._validators(route), **route.headers}.items()]
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.close_connection = True
            for i in range(len(head)):
                self.wfile.write(head[i : i + 1])
                self.wfile.flush()
                if server._closing.wait(route.trickle_headers):  # type: ignore[arg-type]
                    return
            self.wfile.write(body)

        def _validators(self, route: Route) -> dict[str, str]:
            out = {}
            if route.etag:
                out["ETag"] = route.etag
            if route.last_modified:
                out["Last-Modified"] = route.last_modified
            return out

        def _not_modified(self, route: Route) -> bool:
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if route.etag and inm:
                return route.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
            return bool(route.last_modified and ims and ims.strip() == route.last_modified)

    return Handler


# ---------------------------------------------------------------- payloads and sockets


def gzip_bomb(decoded_size: int = 200 * 1024 * 1024) -> bytes:
    """A small gzip body (about 1/1000 of ``decoded_size``) that inflates to that many zeros."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * (1024 * 1024)
    parts = [packer.compress(block) for _ in range(decoded_size // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and then never says a word (→ read timeout)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes handshakes; nobody ever reads or answers
        yield s.getsockname()[1]


@contextlib.contextmanager
def unanswered_connect_port() -> Iterator[int]:
    """A loopback port whose accept queue is full, so new connects hang (→ connect timeout).

    Linux drops SYNs to a listener whose backlog is full; one unaccepted connection fills
    a backlog of 0.
    """
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        yield port
