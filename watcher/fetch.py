"""Fetch one feed over HTTP with every edge bounded: time, bytes, redirects, addresses.

``fetch`` either returns a :class:`FetchResult` or raises a :class:`FetchError` whose
``kind``/``retryable``/``retry_after`` tell the scheduler what to record and when to
come back. Redirects are followed here (not by httpx) so each hop is checked against
private addresses and a permanent move can be reported.
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from watcher.headers import parse_retry_after
from watcher.imports import import_without, lazy_exports

# Optional extras these two import when they are installed, that watcher never uses: httpcore's
# trio and anyio support (for async code; trio is in the dev environment, for selenium, not in
# production; anyio comes with the web side's starlette, which does not use httpcore) and httpx's
# command-line client (click, rich.syntax, Pygments). Together they were about a third of the
# imports before `watcher run`'s first fetch. The service imports httpx here first.
LEAN_IMPORTS: dict[str, tuple[str, ...]] = {"httpcore": ("trio", "anyio"), "httpx": ("httpx._main",)}

if TYPE_CHECKING:
    import httpcore
    import httpx

    from watcher.values_polled import FetchResult
else:
    httpcore = import_without("httpcore", *LEAN_IMPORTS["httpcore"])
    httpx = import_without("httpx", *LEAN_IMPORTS["httpx"])

__all__ = [
    "DEFAULT_USER_AGENT",
    "BadUrl",
    "ConnectFailed",
    "DecodeFailed",
    "DnsFailed",
    "FetchError",
    "FetchLimits",
    "FetchResult",
    "FetchTimeout",
    "Gone",
    "HostLimiter",
    "HttpStatusError",
    "PrivateAddress",
    "ProtocolFailed",
    "RedirectLoop",
    "TlsFailed",
    "TooLarge",
    "check_url",
    "fetch",
    "make_client",
    "parse_retry_after",
]

DEFAULT_USER_AGENT = "watcher"  # the config's [polling] user_agent is what the service sends
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# Only encodings we inflate ourselves with a bounded output (httpx's decoders are not bounded).
ACCEPT_ENCODING = "gzip, deflate"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
URL_LIMIT = 2048  # a feed URL longer than this is not stored (nor followed)
# Validators are sent back verbatim, so a cut one is useless: one over its limit is dropped.
ETAG_LIMIT = 256
LAST_MODIFIED_LIMIT = 64
PERMANENT = frozenset({301, 308})
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0  # longest silence between two reads
    deadline: float = 30.0  # whole fetch, redirects and body included
    max_bytes: int = 5 * 1024 * 1024  # on the wire and after decompression
    max_redirects: int = 5
    allow_private_networks: bool = False


# ---------------------------------------------------------------- errors


class FetchError(Exception):
    """A fetch that did not produce a usable response; ``str()`` names the URL and the problem."""

    kind = "error"
    retryable = True

    def __init__(
        self,
        url: str,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message
        self.status = status
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class FetchTimeout(FetchError):
    kind = "timeout"


class ConnectFailed(FetchError):
    kind = "connect"


class DnsFailed(FetchError):
    kind = "dns"


class TlsFailed(FetchError):
    kind = "tls"


class ProtocolFailed(FetchError):
    kind = "protocol"  # the server broke HTTP or dropped the connection mid-response


class HttpStatusError(FetchError):
    kind = "http"


class Gone(HttpStatusError):
    kind = "gone"
    retryable = False


class TooLarge(FetchError):
    kind = "too_large"
    retryable = False


class RedirectLoop(FetchError):
    kind = "redirect_loop"
    retryable = False


class PrivateAddress(FetchError):
    kind = "private_address"
    retryable = False


class BadUrl(FetchError):
    kind = "bad_url"
    retryable = False


class DecodeFailed(FetchError):
    kind = "decode"
    retryable = False


# ---------------------------------------------------------------- addresses


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Special-purpose ranges (IANA registries) that the ipaddress module of some Python versions still
# calls global; each is refused whatever the module says.
# fmt: off
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24",     # IETF protocol assignments (its two anycast services host no feeds)
    "192.88.99.0/24",   # 6to4 relay anycast (deprecated)
    "64:ff9b:1::/48",   # local-use IPv4/IPv6 translation (RFC 8215)
    "3fff::/20",        # documentation (RFC 9637)
    "5f00::/16",        # segment routing SIDs (RFC 9602)
    "fec0::/10",        # site-local (deprecated)
    "2001::/23",        # IETF protocol assignments (Teredo included; its client is checked below too)
))
# fmt: on
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix: the IPv4 address is the low 32 bits
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765)
_COMPATIBLE = ipaddress.ip_network("::/96")  # IPv4-compatible (deprecated), :: and ::1 aside


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo, ISATAP)."""
    out: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped:
        out.append(ip.ipv4_mapped)
    if ip in _NAT64 or ip in _SIIT or (ip in _COMPATIBLE and int(ip) > 1):
        out.append(low32)
    if ip.sixtofour:
        out.append(ip.sixtofour)
    if ip.teredo:
        out.extend(ip.teredo)  # (server, client)
    if (int(ip) >> 32) & 0xFDFFFFFF == 0x00005EFE:  # ISATAP interface identifier
        out.append(low32)
    return out


def _is_public(ip: IPAddress) -> bool:
    """Reachable on the public internet, and not a way back into a private or special network."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return _is_public(ip.ipv4_mapped)
    if (
        not ip.is_global
        or ip.is_multicast
        or any(ip in net for net in _NOT_GLOBAL if net.version == ip.version)
    ):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return all(_is_public(v4) for v4 in embedded_ipv4(ip))
    return True


def _resolve(host: str, port: int, timeout: float | None = None) -> list[str]:
    """Addresses of ``host``; within ``timeout`` seconds when given (getaddrinfo itself has no limit)."""
    with suppress(ValueError):
        return [str(ipaddress.ip_address(host.strip("[]")))]  # a literal address needs no lookup

    def lookup() -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    if timeout is None:
        return lookup()
    box: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["ok"] = lookup()
        except BaseException as exc:  # handed to the caller's thread
            box["err"] = exc
        finally:
            done.set()

    # A daemon thread: a resolver that never answers is left behind, not waited for (not even at exit).
    threading.Thread(target=work, name="dns", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise _DnsTimeout(f"DNS lookup of {host} took longer than {timeout:.3g}s")
    if "err" in box:
        raise box["err"]  # type: ignore[misc]
    return box["ok"]  # type: ignore[return-value]


class _DnsTimeout(httpcore.ConnectTimeout):
    pass


def _refuse_private(url: str, host: str, addresses: list[str]) -> None:
    for address in addresses:
        if not _is_public(ipaddress.ip_address(address.split("%", 1)[0])):
            raise PrivateAddress(url, f"{host} resolves to a non-public address ({address}); refused")


def check_url(url: str, allow_private_networks: bool = False, timeout: float | None = None) -> None:
    """Raise ``bad_url`` for non-http(s) URLs, ``private_address`` for hosts that resolve inward.

    ``timeout`` bounds the DNS lookup (``timeout`` kind when it runs out).
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BadUrl(url, f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "a relative URL"
        raise BadUrl(url, f"only http and https URLs can be fetched, not {scheme!r}")
    host = parts.hostname
    if not host:
        raise BadUrl(url, "the URL has no host")
    if allow_private_networks:
        return
    try:
        addresses = _resolve(host, port, timeout)
    except _DnsTimeout as exc:
        raise FetchTimeout(url, str(exc)) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise DnsFailed(url, f"cannot resolve {host} ({exc})") from None
    _refuse_private(url, host, addresses)


# The connection is made to the address checked at connect time, so DNS rebinding between
# check_url and the connect cannot smuggle a private address in.
_allow_private: contextvars.ContextVar[bool] = contextvars.ContextVar("watcher_allow_private", default=False)
# The monotonic time by which the fetch in progress (in this thread) must be over, whatever httpx's
# own timeouts say: DNS, connect, TLS and every read and write get at most what is left of it.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("watcher_deadline", default=None)


def _within_deadline(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the fetch deadline: a server sending its headers
    one byte at a time, or its body, cannot hold a worker past it (each read is bounded by what is
    left, not by the read timeout, which a trickle resets)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):  # type: ignore[no-untyped-def]
        left = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


@contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Within this block, every request this thread makes over a :func:`deadline_transport` ends
    within ``seconds`` from now, DNS, connect, TLS, headers and body together."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


class _GuardedBackend(httpcore.SyncBackend):
    def __init__(self, refuse_private: bool = True) -> None:
        self._refuse_private = refuse_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        try:
            addresses = _resolve(host, port, _within_deadline(timeout, httpcore.ConnectTimeout))
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host} ({exc})") from exc
        if self._refuse_private and not _allow_private.get():
            _refuse_private(f"http://{host}:{port}/", host, addresses)
        error: Exception | None = None
        for address in addresses:  # as socket.create_connection does, but each try within the deadline
            try:
                left = _within_deadline(timeout, httpcore.ConnectTimeout)
                stream = super().connect_tcp(address, port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        raise error or httpcore.ConnectError(f"{host} has no address")


class _OriginPools(httpx.BaseTransport):
    """One small connection pool per origin (scheme, host, port), kept for reuse (keep-alive).

    httpcore's pool walks all its connections for every request and every response closed,
    counting idle ones once per idle connection and polling each idle socket: with one pool of
    ``concurrency`` connections that is most of a 304's CPU. Per origin, a pool holds at most
    ``per_host`` idle connections, so each of those walks is short. Origins not used lately are
    dropped (their idle connections closed) once there are ``limit`` origins or the pools hold
    that many connections.
    """

    def __init__(self, make: Callable[[], httpx.HTTPTransport], limit: int) -> None:
        self._make = make
        self._limit = limit
        self._lock = threading.Lock()
        # origin -> [transport, requests in flight]; least recently used first
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], list[Any]] = OrderedDict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        evicted: list[httpx.HTTPTransport] = []
        with self._lock:
            entry = self._pools.get(key)
            if entry is None:
                evicted = self._evict()
                entry = self._pools[key] = [self._make(), 0]
            else:
                self._pools.move_to_end(key)
            entry[1] += 1
        for transport in evicted:
            transport.close()
        try:
            response = entry[0].handle_request(request)
        except BaseException:
            self._release(entry)
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _Released(response.stream, lambda: self._release(entry))
        return response

    def _release(self, entry: list[Any]) -> None:
        with self._lock:
            entry[1] -= 1

    def _evict(self) -> list[httpx.HTTPTransport]:
        """Drop least recently used idle origins while there are too many, or their pools hold too
        many connections: memory stays bounded however many hosts a feed list names."""
        held = sum(len(t._pool.connections) for t, _ in self._pools.values())
        out = []
        for key, (transport, active) in list(self._pools.items()):
            if held < self._limit and len(self._pools) < self._limit:
                break
            if active == 0:
                del self._pools[key]
                held -= len(transport._pool.connections)
                out.append(transport)
        return out

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), OrderedDict()
        for transport, _ in pools:
            transport.close()


class _Released(httpx.SyncByteStream):
    """A response body that tells its origin pool when it is closed (once)."""

    def __init__(self, stream: httpx.SyncByteStream, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


def make_client(
    user_agent: str = DEFAULT_USER_AGENT,
    *,
    max_connections: int = 20,
    per_host: int | None = None,
    verify: bool | ssl.SSLContext = True,
) -> httpx.Client:
    """An httpx client for :func:`fetch`: honest User-Agent, no automatic redirects, no env proxies.

    Connections are kept alive per origin, at most ``per_host`` idle ones each (default
    ``max_connections``), and about twice ``max_connections`` in all: a host polled again a little
    later in the same pass (a feed list has several feeds on many hosts) finds its connection open.
    """
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
    keep = min(per_host or max_connections, max_connections)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=keep)

    def origin_transport() -> httpx.HTTPTransport:
        return deadline_transport(verify=context, limits=limits)

    origin_transport().close()  # fail at start, not at the first fetch, on an unexpected httpcore
    return httpx.Client(
        headers={"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
        follow_redirects=False,
        trust_env=False,
        transport=_OriginPools(origin_transport, 2 * max_connections),
        timeout=httpx.Timeout(15.0, connect=5.0),
    )


def deadline_transport(
    *, verify: bool | ssl.SSLContext = True, limits: httpx.Limits | None = None, refuse_private: bool = True
) -> httpx.HTTPTransport:
    """An httpx transport whose connections keep :func:`request_deadline` (and, with ``refuse_private``,
    connect only to public addresses unless the fetch allows private ones)."""
    transport = httpx.HTTPTransport(verify=verify, trust_env=False, limits=limits or httpx.Limits())
    pool = getattr(transport, "_pool", None)
    if not hasattr(pool, "_network_backend"):  # httpcore 1.x has it (requirements.lock pins httpcore)
        raise RuntimeError("httpcore without a pluggable network backend: the deadline cannot hold")
    pool._network_backend = _GuardedBackend(refuse_private)  # type: ignore[union-attr]
    return transport


# ---------------------------------------------------------------- per-host limits


class HostLimiter:
    """At most ``per_host`` concurrent fetches per host name; thread-safe."""

    def __init__(self, per_host: int) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            sem = self._slots.setdefault(host, threading.BoundedSemaphore(self.per_host))
        with sem:
            yield


# ---------------------------------------------------------------- helpers


class _Inflater:
    """gzip/deflate decoding whose output per step is bounded, so a bomb is caught early."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._raw_fallback = not self._gzip  # "deflate" is zlib-wrapped by spec, raw in practice too
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 32 if self._gzip else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._d.decompress(data, CHUNK)
            except zlib.error:
                if self._started or not self._raw_fallback:
                    raise
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                self._raw_fallback = False
                continue
            self._started = True
            if out:
                yield out
            data = self._d.unconsumed_tail
            if self._d.eof and self._d.unused_data:  # concatenated gzip members
                data = self._d.unused_data
                self._d = zlib.decompressobj(zlib.MAX_WBITS | 32)

    def finish(self) -> Iterator[bytes]:
        yield from self.feed(self._d.unconsumed_tail)
        yield self._d.flush()


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _translate(exc: Exception, url: str, limits: FetchLimits, deadline: float | None = None) -> FetchError:
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, httpx.TimeoutException) and deadline is not None and time.monotonic() >= deadline:
        return FetchTimeout(url, f"the whole fetch took longer than {limits.deadline:g}s")
    if any(isinstance(e, _DnsTimeout) for e in _cause_chain(exc)):
        return FetchTimeout(url, f"the DNS lookup did not finish within the {limits.deadline:g}s deadline")
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchTimeout(url, f"connect timed out (limit {limits.connect_timeout:g}s)")
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(url, f"no response data within the read timeout ({limits.read_timeout:g}s)")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BadUrl(url, f"not a fetchable URL ({exc})")
    chain = list(_cause_chain(exc))
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain):
        return TlsFailed(url, f"TLS handshake failed ({exc})")
    if any(isinstance(e, socket.gaierror) for e in chain) or "cannot resolve" in str(exc):
        return DnsFailed(url, f"cannot resolve the host ({exc})")
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ConnectFailed(url, "connection refused")
    if isinstance(exc, httpx.ConnectError):
        return ConnectFailed(url, f"cannot connect ({exc})")
    if isinstance(exc, httpx.HTTPError):
        return ProtocolFailed(url, f"the connection broke mid-response ({exc})")
    return FetchError(url, f"unexpected failure ({type(exc).__name__}: {exc})")


def _status_error(url: str, response: httpx.Response) -> FetchError:
    status = response.status_code
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status == 410:
        return Gone(url, f"{reason}: the feed was removed; stop polling it", status=status)
    retry_after = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
    retryable = status >= 500 or status in (408, 429)
    if retry_after is not None:
        reason += f" (retry after {retry_after:.0f}s)"
    return HttpStatusError(url, reason, retryable=retryable, retry_after=retry_after, status=status)


def _read_body(response: httpx.Response, url: str, limits: FetchLimits, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "").strip()
    # ASCII digits only, and few of them: int() of 5,000 digits raises, and "٣" is a digit to Python.
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limits.max_bytes):
        raise TooLarge(url, f"the body is {declared[:24]} bytes, over the {limits.max_bytes} byte limit")
    encodings = [e.strip().lower() for e in response.headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
        raise DecodeFailed(url, f"unsupported Content-Encoding {', '.join(encodings)!r}")
    inflater = _Inflater(encodings[0]) if encodings else None
    chunks: list[bytes] = []
    size = wire = 0

    def take(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > limits.max_bytes:
            what = "decompressed body" if inflater else "body"
            raise TooLarge(url, f"the {what} exceeds the {limits.max_bytes} byte limit")
        chunks.append(piece)

    try:
        for raw in response.iter_raw():
            if time.monotonic() > deadline:
                raise FetchTimeout(url, f"the whole fetch took longer than {limits.deadline:g}s")
            wire += len(raw)
            if wire > limits.max_bytes:
                raise TooLarge(url, f"the body exceeds the {limits.max_bytes} byte limit")
            for piece in inflater.feed(raw) if inflater else (raw,):
                take(piece)
        if inflater:
            for piece in inflater.finish():
                take(piece)
    except zlib.error as exc:
        raise DecodeFailed(url, f"the {encodings[0]} body is corrupt ({exc})") from None
    except httpx.HTTPError as exc:
        raise _translate(exc, url, limits, deadline) from None
    return b"".join(chunks)


def _finish_empty(response: httpx.Response) -> None:
    """Read a 304's end of message (it never has a body), so closing the response hands its
    connection back to the pool for the next feed instead of closing it: keep-alive."""
    with suppress(httpx.HTTPError):
        for _ in response.iter_raw():
            break


def _validator(value: str | None, limit: int) -> str | None:
    """An ETag or Last-Modified worth storing and sending back: short and printable, else none."""
    if not value or len(value) > limit or not value.isprintable():
        return None
    return value


# ---------------------------------------------------------------- fetch


def fetch(
    client: httpx.Client,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits = FetchLimits(),
) -> FetchResult:
    """Conditional GET of ``url`` within ``limits``; raises :class:`FetchError` on any failure.

    ``limits.deadline`` bounds the whole fetch, DNS, connect, TLS, headers, redirects and body,
    at the socket (see :class:`_DeadlineStream`), whatever pace the server keeps.
    """
    start = time.monotonic()
    with request_deadline(limits.deadline):
        return _fetch(client, url, etag, last_modified, limits, start)


def _fetch(
    client: httpx.Client,
    url: str,
    etag: str | None,
    last_modified: str | None,
    limits: FetchLimits,
    start: float,
) -> FetchResult:
    from watcher.values_polled import FetchResult  # made after the response (see there)

    deadline = start + limits.deadline
    current = url
    seen = {url}
    permanent = True
    conditional = {}
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified

    for _hop in range(limits.max_redirects + 1):
        check_url(current, limits.allow_private_networks, timeout=max(deadline - time.monotonic(), 0.0))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(current, f"the whole fetch took longer than {limits.deadline:g}s")
        timeout = httpx.Timeout(
            min(limits.read_timeout, remaining), connect=min(limits.connect_timeout, remaining)
        )
        token = _allow_private.set(limits.allow_private_networks)
        try:
            request = client.build_request("GET", current, headers=conditional, timeout=timeout)
            response = client.send(request, stream=True, follow_redirects=False)
        except Exception as exc:
            raise _translate(exc, current, limits, deadline) from None
        finally:
            _allow_private.reset(token)
        try:
            status = response.status_code
            if status in REDIRECTS and response.headers.get("location"):
                target = urljoin(current, response.headers["location"].strip())
                if len(target) > URL_LIMIT:
                    raise BadUrl(
                        url, f"redirected to a URL of {len(target):,} characters (limit {URL_LIMIT})"
                    )
                if target in seen:
                    raise RedirectLoop(url, f"redirect loop: {current} → {target}")
                permanent = permanent and status in PERMANENT
                seen.add(target)
                current = target
                continue
            if status == 304:
                _finish_empty(response)
                return FetchResult(
                    status=status,
                    url=current,
                    body=None,
                    etag=_validator(response.headers.get("etag"), ETAG_LIMIT) or etag,
                    last_modified=_validator(response.headers.get("last-modified"), LAST_MODIFIED_LIMIT)
                    or last_modified,
                    not_modified=True,
                    permanent_redirect=current if permanent and current != url else None,
                    content_type=None,
                    body_sha256=None,
                    elapsed=time.monotonic() - start,
                )
            if status >= 300:
                raise _status_error(current, response)
            body = _read_body(response, current, limits, deadline)
            return FetchResult(
                status=status,
                url=current,
                body=body,
                etag=_validator(response.headers.get("etag"), ETAG_LIMIT),
                last_modified=_validator(response.headers.get("last-modified"), LAST_MODIFIED_LIMIT),
                not_modified=False,
                permanent_redirect=current if permanent and current != url else None,
                content_type=response.headers.get("content-type"),
                body_sha256=hashlib.sha256(body).hexdigest(),
                elapsed=time.monotonic() - start,
            )
        finally:
            response.close()
    raise RedirectLoop(url, f"more than {limits.max_redirects} redirects (last: {current})")


# FetchResult is defined in watcher.values_polled: the first request does not wait for it.
__getattr__ = lazy_exports(__name__, {"FetchResult": "watcher.values_polled"})
