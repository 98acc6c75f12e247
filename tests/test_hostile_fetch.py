"""One deadline for the whole fetch, whatever pace a server keeps, and a pass that never waits past it.

Before: a server sending its status line and headers one byte a second held a fetch with a 4 s
deadline for 109 s (the read timeout restarts with every byte), and `run --once` with a 5 s
deadline waited on it for over a minute.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tomlkit
from feedserver import FeedServer, unanswered_connect_port

import watcher.service as service_module
from watcher.config import load_settings
from watcher.fetch import FetchError, FetchLimits, fetch, make_client
from watcher.service import Worker

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    "<item><guid>{n}</guid><title>Libya talks {n}</title><link>https://t.example/{n}</link></item>"
    "</channel></rss>"
)


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client() as c:
        yield c


def timed_failure(client: httpx.Client, url: str, **limits: float) -> tuple[FetchError, float]:
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch(client, url, limits=FetchLimits(allow_private_networks=True, **limits))  # type: ignore[arg-type]
    return info.value, time.monotonic() - start


@pytest.mark.parametrize(
    "route",
    [
        {"trickle_headers": 0.25},  # status line and headers, a byte at a time
        {"delay": 10.0},  # nothing at all, longer than the deadline but within the read timeout
        {"dribble": 0.25},  # the body, a byte at a time
        {"dribble": 0.25, "gzip": True},  # the same, compressed
        {"dribble": 0.25, "send_length": False},  # no Content-Length: the body ends at close
    ],
    ids=["header-trickle", "silent-before-status", "body-trickle", "gzip-body-trickle", "unframed-body"],
)
def test_deadline_holds_at_every_stage(srv: FeedServer, client: httpx.Client, route: dict) -> None:
    srv.route("/feed", RSS.format(n=1) * 3, **route)
    err, took = timed_failure(client, srv.url("/feed"), deadline=1.2, read_timeout=8, connect_timeout=8)
    assert err.kind == "timeout" and "longer than 1.2s" in str(err)
    assert took < 2.0


def test_deadline_holds_on_a_reused_connection(srv: FeedServer, client: httpx.Client) -> None:
    # The second request rides the pooled keep-alive connection of the first: no new connect.
    srv.route("/ok", RSS.format(n=1))
    srv.route("/slow", RSS.format(n=2), trickle_headers=0.25)
    assert fetch(client, srv.url("/ok"), limits=FetchLimits(allow_private_networks=True)).status == 200
    err, took = timed_failure(client, srv.url("/slow"), deadline=1.0, read_timeout=8)
    assert err.kind == "timeout" and took < 1.8


def test_deadline_bounds_a_connect_that_never_completes(client: httpx.Client) -> None:
    with unanswered_connect_port() as port:
        err, took = timed_failure(client, f"http://127.0.0.1:{port}/", deadline=1.0, connect_timeout=10)
    assert err.kind == "timeout" and took < 1.8


def test_deadline_bounds_a_resolver_that_never_answers(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No real resolver can be made slow on demand here, so getaddrinfo itself is slowed.
    real = socket.getaddrinfo

    def slow(host, *args, **kw):  # type: ignore[no-untyped-def]
        if str(host).endswith(".test"):
            time.sleep(5)
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    for allow in (False, True):  # checked at check_url, and at connect time
        start = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetch(
                client,
                "http://slow-dns.test/feed",
                limits=FetchLimits(deadline=1.0, allow_private_networks=allow),
            )
        assert info.value.kind == "timeout" and (
            "DNS" in str(info.value) or "longer than 1s" in str(info.value)
        )
        assert time.monotonic() - start < 1.8


def test_fast_fetches_are_untouched_by_the_deadline_machinery(srv: FeedServer, client: httpx.Client) -> None:
    srv.route("/a", RSS.format(n=1), etag='"v1"')
    limits = FetchLimits(allow_private_networks=True, deadline=2.0)
    first = fetch(client, srv.url("/a"), limits=limits)
    again = fetch(client, srv.url("/a"), etag=first.etag, limits=limits)
    assert first.status == 200 and again.not_modified
    # A slow answer inside the deadline is not cut short.
    srv.route("/slowish", RSS.format(n=2), delay=1.3)
    assert fetch(client, srv.url("/slowish"), limits=limits).status == 200


def _config(tmp: Path, feeds: list[str], **polling: object) -> Path:
    doc = {
        "database": {"url": f"sqlite:///{tmp / 'w.db'}"},
        "polling": {"allow_private_networks": True, "concurrency": 4, "per_host": 4, **polling},
        "feeds": [{"url": u} for u in feeds],
        "profiles": {"libya": {"anchors": {"libya": 3.0}, "threshold": 2.0}},
    }
    path = tmp / "watcher.toml"
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def test_a_pass_is_not_held_by_a_trickling_feed(srv: FeedServer, tmp_path: Path) -> None:
    srv.route("/slow", RSS.format(n=0), trickle_headers=0.3)
    for i in range(1, 4):
        srv.route(f"/good{i}", RSS.format(n=i))
    urls = [srv.url("/slow")] + [srv.url(f"/good{i}") for i in range(1, 4)]
    with Worker(load_settings(_config(tmp_path, urls, deadline="1.5s"))) as worker:
        start = time.monotonic()
        results = worker.poll_due()
        took = time.monotonic() - start
    by_url = {r.url: r for r in results}
    assert took < 3.5
    assert by_url[urls[0]].status == "error" and "longer than 1.5s" in (by_url[urls[0]].error or "")
    assert all(by_url[u].status == "ok" and by_url[u].new_entries == 1 for u in urls[1:])


def test_a_pass_stops_waiting_for_a_feed_stuck_after_its_fetch(
    srv: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backstop: whatever holds one feed's thread (a bug, a hung database call), the pass ends.
    srv.route("/stuck", RSS.format(n=0))
    srv.route("/good", RSS.format(n=1))
    real_poll = service_module.poll_feed

    def poll(*args, **kw):  # type: ignore[no-untyped-def]
        if args[4].url.endswith("/stuck"):
            kw["on_fetch"]()
            time.sleep(4)
        return real_poll(*args, **kw)

    monkeypatch.setattr(service_module, "poll_feed", poll)
    monkeypatch.setattr(service_module, "PARSE_STORE_GRACE_S", 0.5)
    urls = [srv.url("/stuck"), srv.url("/good")]
    with Worker(load_settings(_config(tmp_path, urls, deadline="1s"))) as worker:
        start = time.monotonic()
        results = {r.url: r for r in worker.poll_due()}
        took = time.monotonic() - start
        assert took < 3.5
        assert results[urls[0]].status == "error" and "not waited for" in (results[urls[0]].error or "")
        assert results[urls[1]].status == "ok"
        time.sleep(3)  # the stuck thread ends before the worker closes its store


def test_run_once_ends_near_its_deadline(srv: FeedServer, tmp_path: Path) -> None:
    srv.route("/slow", RSS.format(n=0), trickle_headers=0.5)
    srv.route("/good", RSS.format(n=1))
    cfg = _config(tmp_path, [srv.url("/slow"), srv.url("/good")], deadline="2s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env["WATCHER_CONFIG"] = str(cfg)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    took = time.monotonic() - start
    assert proc.returncode == 3, proc.stderr  # run --once: 3 = some feeds could not be polled (the slow one)
    # Unbounded, the trickle (about 100 header bytes at 2 a second) holds it for some 50 s; the slack
    # is for interpreter start-up and migrations on a loaded machine.
    assert took < 2 + 12, f"run --once took {took:.1f}s with a 2 s deadline"
