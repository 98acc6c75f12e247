"""fetch against a real loopback server: success paths and every fault, each kept fast.

No test reaches the internet: servers are on 127.0.0.1, failing hosts use ``.invalid``.
"""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from feedserver import FeedServer, gzip_bomb, refused_port, silent_port, unanswered_connect_port

import watcher.fetch as fetch_module
from watcher.fetch import (
    DEFAULT_USER_AGENT,
    FetchError,
    FetchLimits,
    HostLimiter,
    check_url,
    fetch,
    make_client,
    parse_retry_after,
)
from watcher.parse import HTML_PAGE, parse_feed

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>x</item></channel></rss>'
FAST = FetchLimits(connect_timeout=0.5, read_timeout=0.5, deadline=2.0, allow_private_networks=True)


def loopback(**kw: float) -> FetchLimits:
    """Limits for tests against the loopback server (private addresses allowed)."""
    return FetchLimits(allow_private_networks=True, **kw)  # type: ignore[arg-type]


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client() as c:
        yield c


def fail(client: httpx.Client, url: str, limits: FetchLimits = FAST, **kw: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(client, url, limits=limits, **kw)  # type: ignore[arg-type]
    err = info.value
    assert url.split("?")[0] in str(err) or err.url in str(err)  # the message names the URL
    return err


# ---------------------------------------------------------------- success paths


def test_ok_response(srv: FeedServer, client: httpx.Client) -> None:
    lm = "Sat, 28 Feb 2026 10:00:00 GMT"
    srv.route("/a.xml", RSS, etag='"v1"', last_modified=lm)
    got = fetch(client, srv.url("/a.xml"), etag=None, last_modified=None, limits=FAST)
    assert (got.status, got.body, got.not_modified, got.permanent_redirect) == (200, RSS, False, None)
    assert (got.etag, got.last_modified) == ('"v1"', lm)
    assert got.url == srv.url("/a.xml")
    assert got.content_type == "application/rss+xml; charset=utf-8"
    assert got.body_sha256 == hashlib.sha256(RSS).hexdigest()
    assert 0 <= got.elapsed < 2
    sent = srv.requests("/a.xml")[0].headers
    assert sent["user-agent"] == DEFAULT_USER_AGENT
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in sent


def test_conditional_get_etag(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/a.xml", RSS, etag='"v1"')
    got = fetch(client, srv.url("/a.xml"), etag='"v1"', last_modified=None, limits=FAST)
    assert got.not_modified and got.status == 304 and got.body is None and got.body_sha256 is None
    assert got.etag == '"v1"'
    assert srv.requests("/a.xml")[0].headers["if-none-match"] == '"v1"'
    srv.route("/a.xml", RSS + b" ", etag='"v2"')  # the feed changed
    got = fetch(client, srv.url("/a.xml"), etag='"v1"', last_modified=None, limits=FAST)
    assert got.status == 200 and got.etag == '"v2"'


def test_conditional_get_last_modified(srv: FeedServer, client: httpx.Client) -> None:
    lm = "Sat, 28 Feb 2026 10:00:00 GMT"
    srv.route("/a.xml", RSS, last_modified=lm)
    got = fetch(client, srv.url("/a.xml"), etag=None, last_modified=lm, limits=FAST)
    assert got.not_modified and got.last_modified == lm
    assert srv.requests("/a.xml")[0].headers["if-modified-since"] == lm


def test_gzip_body_is_decoded(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/a.xml", RSS * 50, gzip=True)
    got = fetch(client, srv.url("/a.xml"), limits=FAST)
    assert got.body == RSS * 50


@pytest.mark.parametrize("wrap", [zlib.compress, lambda b: zlib.compress(b)[2:-4]], ids=["zlib", "raw"])
def test_deflate_body_is_decoded_both_ways(srv: FeedServer, client: httpx.Client, wrap) -> None:  # type: ignore[no-untyped-def]
    srv.route("/a.xml", wrap(RSS), headers={"Content-Encoding": "deflate"})
    assert fetch(client, srv.url("/a.xml"), limits=FAST).body == RSS


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_is_reported(srv: FeedServer, client: httpx.Client, code: int) -> None:
    srv.route("/new.xml", RSS)
    srv.redirect("/old.xml", "/new.xml", status=code)
    got = fetch(client, srv.url("/old.xml"), limits=FAST)
    assert got.status == 200 and got.body == RSS
    assert got.url == got.permanent_redirect == srv.url("/new.xml")


@pytest.mark.parametrize("codes", [(302,), (307,), (301, 302), (302, 301)])
def test_temporary_hop_means_no_permanent_redirect(srv: FeedServer, client: httpx.Client, codes) -> None:  # type: ignore[no-untyped-def]
    srv.route("/end.xml", RSS)
    for i, code in enumerate(codes):
        nxt = f"/hop{i + 1}" if i + 1 < len(codes) else "/end.xml"
        srv.redirect(f"/hop{i}", nxt, status=code)
    got = fetch(client, srv.url("/hop0"), limits=FAST)
    assert got.url == srv.url("/end.xml") and got.permanent_redirect is None


def test_permanent_redirect_then_not_modified(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/new.xml", RSS, etag='"e"')
    srv.redirect("/old.xml", "/new.xml")
    got = fetch(client, srv.url("/old.xml"), etag='"e"', limits=FAST)
    assert got.not_modified and got.permanent_redirect == srv.url("/new.xml")


def test_html_page_with_alternates_end_to_end(srv: FeedServer, client: httpx.Client) -> None:
    page = b'<!doctype html><html><head><link rel="alternate" type="application/atom+xml" href="/atom.xml">'
    srv.route("/", page + b"</head><body>hi</body></html>", content_type="text/html; charset=utf-8")
    got = fetch(client, srv.url("/"), limits=FAST)
    parsed = parse_feed(got.body or b"", url=got.url, content_type=got.content_type, now=datetime.now(UTC))
    assert parsed.problem == HTML_PAGE
    assert parsed.alternates == (srv.url("/atom.xml"),)


# ---------------------------------------------------------------- HTTP status faults


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (404, "http", False),
        (403, "http", False),
        (408, "http", True),
        (500, "http", True),
        (502, "http", True),
    ],
)
def test_http_errors(srv: FeedServer, client: httpx.Client, status: int, kind: str, retryable: bool) -> None:
    srv.route("/x", b"nope", status=status, content_type="text/plain")
    err = fail(client, srv.url("/x"))
    assert (err.kind, err.retryable, err.status, err.retry_after) == (kind, retryable, status, None)
    assert f"HTTP {status}" in str(err)


def test_410_is_gone(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/x", b"bye", status=410)
    err = fail(client, srv.url("/x"))
    assert (err.kind, err.retryable, err.status) == ("gone", False, 410)


def test_429_retry_after_seconds(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/x", b"slow down", status=429, headers={"Retry-After": "120"})
    err = fail(client, srv.url("/x"))
    assert (err.kind, err.retryable, err.retry_after) == ("http", True, 120.0)


def test_503_retry_after_http_date(srv: FeedServer, client: httpx.Client) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    srv.route("/x", b"maintenance", status=503, headers={"Retry-After": when})
    err = fail(client, srv.url("/x"))
    assert err.retryable and err.retry_after is not None and 590 <= err.retry_after <= 600


def test_parse_retry_after() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:05:00 GMT", now) == 300.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


# ---------------------------------------------------------------- redirect faults


def test_redirect_loop(srv: FeedServer, client: httpx.Client) -> None:
    srv.redirect("/a", "/b")
    srv.redirect("/b", "/a")
    err = fail(client, srv.url("/a"))
    assert (err.kind, err.retryable) == ("redirect_loop", False)


def test_too_many_redirects(srv: FeedServer, client: httpx.Client) -> None:
    for i in range(8):
        srv.redirect(f"/r{i}", f"/r{i + 1}", status=302)
    srv.route("/r8", RSS)
    err = fail(client, srv.url("/r0"), FetchLimits(max_redirects=5, allow_private_networks=True))
    assert err.kind == "redirect_loop" and "more than 5 redirects" in str(err)
    assert srv.hits("/r6") == 0


def test_redirect_to_a_private_address_is_refused(
    srv: FeedServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend 127.0.0.1 is public so the first hop passes; the redirect aims at 127.0.0.2.
    monkeypatch.setattr(fetch_module, "_is_public", lambda ip: str(ip) == "127.0.0.1")
    srv.redirect("/feed", "http://127.0.0.2:9/internal")
    err = fail(client, srv.url("/feed"), FetchLimits(connect_timeout=0.5, deadline=2))
    assert err.kind == "private_address" and "127.0.0.2" in str(err)
    assert srv.hits("/feed") == 1


# ---------------------------------------------------------------- size faults


def test_declared_oversize_body(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/big", b"x" * 2000)
    err = fail(client, srv.url("/big"), FetchLimits(max_bytes=1000, allow_private_networks=True))
    assert (err.kind, err.retryable) == ("too_large", False)


def test_undeclared_oversize_body(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/big", b"x" * 200_000, send_length=False)
    err = fail(client, srv.url("/big"), FetchLimits(max_bytes=100_000, allow_private_networks=True))
    assert err.kind == "too_large"


def test_gzip_bomb_stops_early(srv: FeedServer, client: httpx.Client) -> None:
    bomb = gzip_bomb(100 * 1024 * 1024)  # ~100 KiB on the wire, 100 MiB inflated
    srv.route("/bomb", bomb, raw_gzip=True)
    tracemalloc.start()
    start = time.monotonic()
    err = fail(client, srv.url("/bomb"), FetchLimits(max_bytes=1024 * 1024, allow_private_networks=True))
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert err.kind == "too_large" and "decompressed" in str(err)
    assert elapsed < 1 and peak < 8 * 1024 * 1024


def test_corrupt_gzip(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/bad", b"this is not gzip at all", raw_gzip=True)
    assert fail(client, srv.url("/bad")).kind == "decode"


def test_unsupported_content_encoding(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/br", b"\x1b\x00", headers={"Content-Encoding": "br"})
    assert fail(client, srv.url("/br")).kind == "decode"


# ---------------------------------------------------------------- time faults


def test_total_deadline_stops_a_dribbling_server(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/slow", b"x" * 1000, dribble=0.2)  # 1 byte every 0.2 s: never a read timeout
    limits = FetchLimits(read_timeout=5, deadline=1.0, allow_private_networks=True)
    start = time.monotonic()
    err = fail(client, srv.url("/slow"), limits)
    assert (err.kind, err.retryable) == ("timeout", True)
    assert time.monotonic() - start < 1.6


def test_deadline_holds_while_a_read_is_blocked(srv: FeedServer, client: httpx.Client) -> None:
    # A byte every 0.95 s never trips the 1.4 s read timeout, and the chunk-by-chunk deadline
    # check would only notice at 1.9 s: the socket watchdog ends it at the 1.5 s deadline.
    srv.route("/stall", b"x" * 10, dribble=0.95)
    limits = loopback(read_timeout=1.4, deadline=1.5)
    start = time.monotonic()
    err = fail(client, srv.url("/stall"), limits)
    assert err.kind == "timeout" and "longer than 1.5s" in str(err)
    assert time.monotonic() - start < 1.75


def test_client_still_works_after_a_deadline(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/slow", b"x" * 100, dribble=0.2)
    srv.route("/ok", RSS)
    fail(client, srv.url("/slow"), FetchLimits(deadline=0.5, allow_private_networks=True))
    assert fetch(client, srv.url("/ok"), limits=FAST).body == RSS


def test_server_that_never_answers_headers(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/hang", RSS, delay=5)
    start = time.monotonic()
    err = fail(client, srv.url("/hang"), loopback(read_timeout=0.3))
    assert err.kind == "timeout" and time.monotonic() - start < 1


def test_silent_socket_is_a_read_timeout(client: httpx.Client) -> None:
    with silent_port() as port:
        err = fail(
            client, f"http://127.0.0.1:{port}/", FetchLimits(read_timeout=0.3, allow_private_networks=True)
        )
    assert (err.kind, err.retryable) == ("timeout", True)


def test_connect_timeout(client: httpx.Client) -> None:
    with unanswered_connect_port() as port:
        start = time.monotonic()
        err = fail(
            client, f"http://127.0.0.1:{port}/", FetchLimits(connect_timeout=0.3, allow_private_networks=True)
        )
    assert err.kind == "timeout" and "connect" in str(err)
    assert time.monotonic() - start < 1


# ---------------------------------------------------------------- network faults


def test_connection_refused(client: httpx.Client) -> None:
    with refused_port() as port:
        err = fail(client, f"http://127.0.0.1:{port}/feed")
    assert (err.kind, err.retryable) == ("connect", True) and "refused" in str(err)


@pytest.mark.parametrize("allow", [True, False])
def test_dns_failure(client: httpx.Client, allow: bool) -> None:
    err = fail(
        client,
        "http://no-such-feed.invalid/rss",
        FetchLimits(connect_timeout=2, allow_private_networks=allow),
    )
    assert (err.kind, err.retryable) == ("dns", True)


def test_tls_failure(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/", RSS)
    err = fail(client, f"https://127.0.0.1:{srv.port}/")
    assert (err.kind, err.retryable) == ("tls", True)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/feed", "file:///etc/passwd", "feed.xml", "http:///nohost"]
)
def test_bad_urls(client: httpx.Client, url: str) -> None:
    err = fail(client, url)
    assert (err.kind, err.retryable) == ("bad_url", False)


# ---------------------------------------------------------------- private addresses


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
    ],
)
def test_check_url_refuses_private_addresses(url: str) -> None:
    with pytest.raises(FetchError) as info:
        check_url(url, allow_private_networks=False)
    assert info.value.kind == "private_address" and not info.value.retryable
    check_url(url, allow_private_networks=True)  # allowed on request


def test_private_server_refused_unless_allowed(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/a.xml", RSS)
    err = fail(client, srv.url("/a.xml"), FetchLimits())
    assert err.kind == "private_address"
    assert srv.hits("/a.xml") == 0
    assert fetch(client, srv.url("/a.xml"), limits=FAST).body == RSS


def test_connect_time_guard_defeats_dns_rebinding(
    srv: FeedServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # check_url saw a public address; by connect time the name points inward.
    monkeypatch.setattr(fetch_module, "check_url", lambda url, allow_private_networks=False, **kw: None)
    srv.route("/a.xml", RSS)
    err = fail(client, f"http://localhost:{srv.port}/a.xml", FetchLimits())
    assert err.kind == "private_address"
    assert srv.hits("/a.xml") == 0


# ---------------------------------------------------------------- connections


def test_connection_is_kept_alive_after_a_304(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/a.xml", RSS, etag='"v1"')
    srv.route("/b.xml", RSS)
    for _ in range(3):
        assert fetch(client, srv.url("/a.xml"), etag='"v1"', limits=FAST).not_modified
    assert fetch(client, srv.url("/b.xml"), limits=FAST).body == RSS
    assert fetch(client, srv.url("/a.xml"), etag='"v1"', limits=FAST).not_modified
    peers = {r.peer for r in srv.requests()}
    assert len(srv.requests()) == 5 and len(peers) == 1  # one connection for every request


def test_least_recently_used_origins_are_dropped_beyond_the_limit() -> None:
    with FeedServer() as s1, FeedServer() as s2, FeedServer() as s3, make_client(max_connections=1) as c:
        for s in (s1, s2, s3):
            s.route("/a.xml", RSS)
        for s in (s1, s2, s1, s3, s1):
            assert fetch(c, s.url("/a.xml"), limits=FAST).body == RSS
        # s1 stayed in use, s2 was the least recently used origin when s3 came: its connection closed
        assert len({r.peer for r in s1.requests()}) == 1
        assert fetch(c, s2.url("/a.xml"), limits=FAST).body == RSS
        assert len({r.peer for r in s2.requests()}) == 2


def test_an_origin_with_a_request_in_flight_is_never_dropped() -> None:
    with FeedServer() as slow, FeedServer() as s2, FeedServer() as s3, make_client(max_connections=1) as c:
        slow.route("/a.xml", RSS, delay=0.4)
        s2.route("/a.xml", RSS)
        s3.route("/a.xml", RSS)
        got: list[bytes | None] = []
        t = threading.Thread(target=lambda: got.append(fetch(c, slow.url("/a.xml"), limits=FAST).body))
        t.start()
        time.sleep(0.1)  # the slow request is in flight
        for s in (s2, s3, s2):
            assert fetch(c, s.url("/a.xml"), limits=FAST).body == RSS
        t.join()
        assert got == [RSS]


# ---------------------------------------------------------------- per-host limits


def test_host_limiter_bounds_concurrency_per_host() -> None:
    limiter = HostLimiter(per_host=2)
    active: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def work(host: str) -> None:
        with limiter.slot(f"https://{host}.example.org/feed"):
            with lock:
                active[host] += 1
                peak[host] = max(peak[host], active[host])
            time.sleep(0.05)
            with lock:
                active[host] -= 1

    threads = [threading.Thread(target=work, args=(h,)) for h in "ab" * 5]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == {"a": 2, "b": 2}
    assert time.monotonic() - start < 0.5  # hosts do not wait for each other


def test_host_limiter_rejects_zero() -> None:
    with pytest.raises(ValueError):
        HostLimiter(0)
