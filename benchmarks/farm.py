"""A loopback feed farm: one asyncio HTTP/1.1 server in its own process serving N feeds.

Feed ``i`` behaves by ``i % 10`` so the mix is fixed and reproducible:

* 0-5 (60 %) ``etag``: constant ETag and Last-Modified, answers 304 to a matching conditional GET;
* 6-7 (20 %) ``static``: no validators, the same bytes on every request (a 200 that changed nothing);
* 8-9 (20 %) ``changing``: each phase puts ``NEW_PER_PHASE`` new items on top (new ETag too).

Items (10-20 per feed) are titles and summaries of the shared dev set. The parent moves the
farm to the next phase with ``GET /_phase/N``; ``/_stats`` counts answers by status, and
``POST /hook`` is a webhook sink for digests. Only 127.0.0.1 is ever bound.

Latency: ``Farm(latency_ms=200, jitter=0.2)`` (or ``farm.set_latency(...)`` between runs) holds
every answer except the ``/_`` control paths for ``latency_ms`` (± ``jitter``) before its headers
go out, 304s and the webhook sink included, as a stand-in for TLS and server time on a real site.
It is an ``asyncio.sleep``, so thousands of slow answers overlap without blocking the farm. The
jitter of a request is a hash of (seed, phase, path): every client sees the same delay for the
same feed in the same phase, whatever order it asks in. At 0 ms nothing sleeps at all.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import urllib.request
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

from benchmarks.common import dev_items

NEW_PER_PHASE = 5
ITEM_POOL = 16_000
LAST_MODIFIED = "Sat, 01 Jun 2024 00:00:00 GMT"
MAX_HEADER_BYTES = 16 * 1024
IDLE_TIMEOUT = 120.0
JITTER_SEED = 20241125
MAX_LATENCY_MS = 60_000


def kind_of(i: int) -> str:
    r = i % 10
    return "etag" if r < 6 else "static" if r < 8 else "changing"


@dataclass(frozen=True, slots=True)
class Item:
    guid: str
    title: str
    summary: str
    link: str
    pub: str


def load_items(limit: int = ITEM_POOL) -> list[Item]:
    out = []
    for row in dev_items(limit):
        try:
            when = datetime.fromisoformat(row["published"].replace("Z", "+00:00"))
            pub = format_datetime(when, usegmt=True)
        except (ValueError, KeyError):
            pub = LAST_MODIFIED
        link = row.get("link") or f"https://example.org/{row['id']}"
        out.append(Item(row["id"], row.get("title") or "", row.get("summary") or "", link, pub))
    return out


def feed_xml(i: int, phase: int, items: list[Item], per_feed: int = 0) -> bytes:
    """RSS 2.0 for feed ``i``; only ``changing`` feeds depend on the phase.

    ``per_feed`` > 0 gives every feed exactly that many items (default: 10 to 20 by feed)."""
    n = per_feed or 10 + i % 11
    start = i * 37 - (phase * NEW_PER_PHASE if kind_of(i) == "changing" else 0)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Bench feed {i}</title><link>http://127.0.0.1/site/{i}</link>",
        f"<description>feed {i} of the benchmark farm</description>",
    ]
    for k in range(n):
        it = items[(start + k) % len(items)]
        parts.append(
            f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>"
            f'<description>{escape(it.summary)}</description><guid isPermaLink="false">{it.guid}</guid>'
            f"<pubDate>{it.pub}</pubDate></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def delay_s(path: str, phase: int, latency_ms: float, jitter: float, seed: int = JITTER_SEED) -> float:
    """Seconds the farm holds the answer to ``path``: ``latency_ms`` ± ``jitter`` (a fraction)."""
    if latency_ms <= 0 or path.startswith("/_"):
        return 0.0
    u = zlib.crc32(f"{seed}:{phase}:{path}".encode()) / 0xFFFFFFFF  # 0..1, fixed per key
    return latency_ms / 1000 * (1 + jitter * (2 * u - 1))


class FarmState:
    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.phase = 0
        self.cache: dict[tuple[int, int], bytes] = {}
        self.stats: Counter[str] = Counter()
        self.latency_ms = 0.0
        self.jitter = 0.0
        self.seed = JITTER_SEED
        self.per_feed = 0  # items per feed; 0 = the 10-20 mix

    def delay(self, path: str) -> float:
        return delay_s(path, self.phase, self.latency_ms, self.jitter, self.seed)

    def body(self, i: int) -> bytes:
        key = (i, self.phase if kind_of(i) == "changing" else 0, self.per_feed)
        body = self.cache.get(key)
        if body is None:
            body = self.cache[key] = feed_xml(i, key[1], self.items, self.per_feed)
        return body

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if method == "POST" and path == "/hook":
            self.stats["hook"] += 1
            return 204, {}, b""
        if path.startswith("/_phase/"):
            self.phase = int(path.rsplit("/", 1)[1])
            self.stats.clear()
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path.startswith("/_latency/"):  # /_latency/<ms>/<jitter fraction>
            ms, jitter = path.split("/")[2:4]
            self.latency_ms = min(max(float(ms), 0.0), MAX_LATENCY_MS)
            self.jitter = min(max(float(jitter), 0.0), 1.0)
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path.startswith("/_items/"):  # /_items/<n>: every feed carries n items (0: the 10-20 mix)
            self.per_feed = max(0, min(int(path.rsplit("/", 1)[1]), 200))
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path == "/_stats":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.stats).encode()
        if not (path.startswith("/feed/") and path.endswith(".xml")):
            return 404, {}, b"not found"
        i = int(path[6:-4])
        kind = kind_of(i)
        hdrs = {"Content-Type": "application/rss+xml; charset=utf-8"}
        if kind == "etag":
            hdrs.update(ETag=f'"e{i}"', **{"Last-Modified": LAST_MODIFIED})
        elif kind == "changing":
            hdrs["ETag"] = f'"c{i}-{self.phase}"'
        if "ETag" in hdrs and headers.get("if-none-match") == hdrs["ETag"]:
            self.stats["304"] += 1
            return 304, hdrs, b""
        self.stats[f"200 {kind}"] += 1
        return 200, hdrs, self.body(i)


REASONS = {200: "OK", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 404: "Not Found"}


async def _serve_conn(state: FarmState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = [*lines[0].split(" "), "", ""][:3]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length:
                await reader.readexactly(min(length, 10_000_000))
            path = target.split("?", 1)[0]
            wait = state.delay(path)
            if wait > 0:
                await asyncio.sleep(wait)
            status, hdrs, body = state.answer(method, path, headers)
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}"]
            out += [f"{k}: {v}" for k, v in hdrs.items()]
            out.append(f"Content-Length: {len(body)}")
            close = headers.get("connection", "").lower() == "close"
            if close:
                out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (body if status != 304 else b""))
            await writer.drain()
            if close:
                return
    finally:
        writer.close()


async def _main(conn: Any, n_items: int, latency_ms: float, jitter: float, hosts: int) -> None:
    state = FarmState(load_items(n_items))
    state.latency_ms, state.jitter = latency_ms, jitter

    def serve(address: str, port: int) -> Any:
        handler = lambda r, w: _serve_conn(state, r, w)  # noqa: E731
        return asyncio.start_server(handler, address, port, limit=MAX_HEADER_BYTES, backlog=1024)

    first = await serve("127.0.0.1", 0)
    port = first.sockets[0].getsockname()[1]
    # More loopback addresses on the same port stand in for more hosts (per-host limits apply to each).
    servers = [first] + [await serve(f"127.0.0.{k}", port) for k in range(2, hosts + 1)]
    conn.send(port)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def _child(conn: Any, n_items: int, latency_ms: float, jitter: float, hosts: int = 1) -> None:
    asyncio.run(_main(conn, n_items, latency_ms, jitter, hosts))


class Farm:
    """The farm process, as a context manager: ``with Farm() as farm: farm.url(3)``."""

    def __init__(
        self, n_items: int = ITEM_POOL, latency_ms: float = 0.0, jitter: float = 0.0, hosts: int = 1
    ) -> None:
        self.n_items = n_items
        self.hosts = max(1, min(hosts, 250))  # feed i is served from 127.0.0.(1 + i % hosts)
        self.latency_ms = latency_ms
        self.jitter = jitter
        self.port = 0
        self._proc: multiprocessing.Process | None = None

    def __enter__(self) -> Farm:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        args = (child, self.n_items, self.latency_ms, self.jitter, self.hosts)
        self._proc = ctx.Process(target=_child, args=args, daemon=True, name="feed-farm")
        self._proc.start()
        for _ in range(120):  # bounded: 60 s
            if parent.poll(0.5) or not self._proc.is_alive():
                break
        if not parent.poll(0):
            self.close()
            raise RuntimeError("the feed farm did not start (see its traceback above)")
        self.port = parent.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            self._proc = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, i: int) -> str:
        return f"http://127.0.0.{1 + i % self.hosts}:{self.port}/feed/{i}.xml"

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=10) as resp:
            return resp.read()

    def set_phase(self, phase: int) -> None:
        self._get(f"/_phase/{phase}")

    def set_latency(self, latency_ms: float, jitter: float = 0.0) -> None:
        """Hold every later answer ``latency_ms`` (± ``jitter``, a fraction such as 0.2)."""
        self._get(f"/_latency/{latency_ms:g}/{jitter:g}")
        self.latency_ms, self.jitter = latency_ms, jitter

    def set_items_per_feed(self, n: int) -> None:
        """Every feed carries exactly ``n`` items from now on (0: back to 10-20 by feed)."""
        self._get(f"/_items/{n}")

    def feed_delays(self, n_feeds: int, phase: int) -> list[float]:
        """The delay (s) each of feeds 0..n-1 gets in ``phase`` at the current latency setting."""
        return [delay_s(f"/feed/{i}.xml", phase, self.latency_ms, self.jitter) for i in range(n_feeds)]

    def latency_label(self) -> str:
        if self.latency_ms <= 0:
            return "0 ms"
        return f"{self.latency_ms:g} ms ± {self.jitter:.0%}" if self.jitter else f"{self.latency_ms:g} ms"

    def stats(self) -> dict[str, int]:
        return json.loads(self._get("/_stats"))
