"""Hostile feeds: time and peak memory of each attack, every one in a child process with a memory cap.

    .venv/bin/python -m benchmarks.bench_hostile                 # every scenario
    .venv/bin/python -m benchmarks.bench_hostile --only entity-cp500 slow-headers
    .venv/bin/python -m benchmarks.bench_hostile --tree /tmp/old  # the same scenarios against other code

Each scenario runs in a fresh interpreter (``--child NAME``) under RLIMIT_AS, so an attack that
still works is reported as "killed at the memory cap" or "timed out" instead of taking the
machine down. Peak memory is the child's own VmHWM. ``--tree`` puts another checkout's
``watcher`` package first on the path: that is how the figures before the fixes were taken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Table, show

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MEMORY_CAP_MB = 3072
TIMEOUT_S = 150.0

SCENARIOS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {}


def scenario(name: str, what: str) -> Callable[[Callable[[], dict[str, Any]]], Callable[[], dict[str, Any]]]:
    def register(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        SCENARIOS[name] = (what, fn)
        return fn

    return register


# ---------------------------------------------------------------- documents


def entity_doc(value_chars: int, refs: int, encoding: str = "utf-8", *, declare: bool = True) -> str:
    """RSS whose one internal entity of ``value_chars`` is referenced ``refs`` times."""
    decl = f'<?xml version="1.0" encoding="{encoding}"?>\n' if declare else ""
    return (
        f'{decl}<!DOCTYPE rss [\n<!ENTITY a "{"x" * value_chars}">\n]>\n'
        '<rss version="2.0"><channel><title>t</title><link>https://example.org/</link>'
        f"<item><title>boom</title><link>https://example.org/1</link><description>{'&a;' * refs}"
        "</description></item></channel></rss>"
    )


def _parse(body: bytes, content_type: str | None) -> dict[str, Any]:
    from watcher.parse import parse_feed

    try:  # the per-poll entry cap the service applies ([polling] max_entries), where the code has one
        parsed = parse_feed(
            body, url="https://example.org/feed", content_type=content_type, now=NOW, max_entries=1000
        )
    except TypeError:
        parsed = parse_feed(body, url="https://example.org/feed", content_type=content_type, now=NOW)
    text = sum(len(e.title) + len(e.summary) for e in parsed.entries)
    return {
        "body_kb": len(body) // 1024,
        "entries": len(parsed.entries),
        "text_chars": text,
        "problem": (parsed.problem or "")[:90],
    }


# (name, codec, charset in Content-Type, BOM, declared in the XML declaration)
ENCODINGS = [
    ("cp500", "cp500", "cp500", b"", "cp500"),  # EBCDIC, declared in Content-Type
    ("cp037-sniffed", "cp037", None, b"", "cp037"),  # EBCDIC, found only by sniffing
    ("utf-7", "utf-7", "utf-7", b"", "utf-7"),  # "<!" written as "+ADwAIQ-": no "<!ENTITY" bytes
    ("utf-16le-nobom", "utf-16-le", None, b"", "utf-16"),
    ("utf-32be-bom", "utf-32-be", None, b"\x00\x00\xfe\xff", "utf-32"),
    ("mismatch", "cp500", "utf-8", b"", "cp500"),  # header says UTF-8, the body is EBCDIC
]


def _entity_scenario(codec: str, charset: str | None, bom: bytes, declared: str) -> Callable[[], dict]:
    def run() -> dict[str, Any]:
        body = bom + entity_doc(10_000, 33_000, declared).encode(codec)
        if codec == "utf-7":
            body = body.replace(b"<!", b"+ADwAIQ-")
        ctype = "application/rss+xml" + (f"; charset={charset}" if charset else "")
        return _parse(body, ctype)

    return run


for _name, _codec, _charset, _bom, _declared in ENCODINGS:
    scenario(f"entity-{_name}", f"10,000-char entity × 33,000 refs, {_name}")(
        _entity_scenario(_codec, _charset, _bom, _declared)
    )


@scenario("entity-by-design", "5 MB UTF-8: a 64-char entity referenced 1.7 M times")
def _entity_by_design() -> dict[str, Any]:
    return _parse(entity_doc(64, 1_700_000).encode(), "application/rss+xml")


@scenario("many-json", "5 MB JSON Feed of 334,616 items")
def _many_json() -> dict[str, Any]:
    items = ",".join(f'{{"id":"{i}"}}' for i in range(334_616))
    body = f'{{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{items}]}}'.encode()
    return _parse(body, "application/feed+json")


@scenario("many-rss", "5 MB RSS of 170,000 minimal items")
def _many_rss() -> dict[str, Any]:
    items = "".join(f"<item><guid>{i}</guid></item>" for i in range(170_000))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    return _parse(body.encode(), "application/rss+xml")


@scenario("author-redos", "20 items, each with an 8,000-character dc:creator of 'a.a.a.…'")
def _author_redos() -> dict[str, Any]:
    items = "".join(
        f"<item><title>t{i}</title><dc:creator>{'a.' * 4000}</dc:creator></item>" for i in range(20)
    )
    body = (
        '<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>t</title>{items}</channel></rss>"
    )
    return _parse(body.encode(), "application/rss+xml")


# ---------------------------------------------------------------- slow servers


@contextlib.contextmanager
def _feedserver() -> Iterator[Any]:
    sys.path.insert(0, str(REPO / "tests"))
    from feedserver import FeedServer

    with FeedServer() as srv:
        yield srv


GOOD_RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>ok</title>'
    "<item><title>Libya talks resume</title><link>https://example.org/a</link></item></channel></rss>"
)


def _fetch_outcome(url: str, **limits: Any) -> dict[str, Any]:
    from watcher.fetch import FetchError, FetchLimits, fetch, make_client

    with make_client() as client:
        try:
            got = fetch(client, url, limits=FetchLimits(allow_private_networks=True, **limits))
            return {"outcome": f"HTTP {got.status}, {len(got.body or b'')} bytes"}
        except FetchError as exc:
            return {"outcome": f"{exc.kind}: {exc.message}"[:90]}


@scenario("slow-headers", "status line and headers 1 byte/s, deadline 4 s, read timeout 15 s")
def _slow_headers() -> dict[str, Any]:
    with _feedserver() as srv:
        srv.route("/feed", GOOD_RSS, trickle_headers=1.0)
        return _fetch_outcome(srv.url("/feed"), deadline=4.0)


@scenario("slow-status", "no status line for 60 s, deadline 3 s, read timeout 30 s")
def _slow_status() -> dict[str, Any]:
    with _feedserver() as srv:
        srv.route("/feed", GOOD_RSS, delay=60)
        return _fetch_outcome(srv.url("/feed"), deadline=3.0, read_timeout=30.0)


@scenario("slow-connect", "connect never completes, deadline 3 s, connect timeout 30 s")
def _slow_connect() -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests"))
    from feedserver import unanswered_connect_port

    with unanswered_connect_port() as port:
        return _fetch_outcome(f"http://127.0.0.1:{port}/", deadline=3.0, connect_timeout=30.0)


@scenario("slow-body", "body 1 byte / 0.5 s (plain HTTP), deadline 3 s")
def _slow_body() -> dict[str, Any]:
    with _feedserver() as srv:
        srv.route("/feed", GOOD_RSS, dribble=0.5)
        return _fetch_outcome(srv.url("/feed"), deadline=3.0)


def _settings(tmp: Path, feeds: list[str], **polling: Any) -> Any:
    from watcher.config import Settings

    return Settings.model_validate(
        {
            "database": {"url": os.environ.get("BENCH_DB_URL") or f"sqlite:///{tmp / 'w.db'}"},
            "polling": {"allow_private_networks": True, **polling},
            "feeds": [{"url": u} for u in feeds],
            "profiles": {"libya": {"anchors": {"libya": 3.0}, "threshold": 2.0}},
            "digests": [
                {"name": "mail", "profiles": ["libya"], "channel": "email", "to": ["desk@example.org"]},
                {"name": "hook", "profiles": ["libya"], "channel": "webhook", "url": "https://example.org/h"},
            ],
        }
    )


@scenario("run-once-trickle", "`run --once`: 1 feed trickling headers (1 byte/s) + 3 good, deadline 5 s")
def _run_once_trickle() -> dict[str, Any]:
    from watcher.service import Worker

    with _feedserver() as srv, tempfile.TemporaryDirectory() as tmp:
        srv.route("/slow", GOOD_RSS, trickle_headers=1.0)
        for i in range(3):
            srv.route(f"/good{i}", GOOD_RSS.replace("/a<", f"/a{i}<"))
        urls = [srv.url("/slow")] + [srv.url(f"/good{i}") for i in range(3)]
        with Worker(_settings(Path(tmp), urls, deadline=5.0), outbox_dir=Path(tmp) / "out") as w:
            report = w.run_once()
        return {"outcome": ", ".join(sorted(f.status for f in report.feeds))}


# ---------------------------------------------------------------- huge fields


def _huge_field_feed(field: str, size: int, items: int = 500) -> str:
    big = "L" * size
    chan_title = big if field == "feed-title" else "Feed"
    parts = []
    for i in range(items):
        title = f"Libya talks {i}" + (" " + big if field == "title" else "")
        extra = ""
        if field == "author":
            extra = f"<author>{big}</author>"
        elif field == "category":
            extra = f"<category>{big}</category>"
        link = f"https://example.org/{i}" + (f"?q={big}" if field == "link" else "")
        parts.append(f"<item><title>{title}</title><link>{link}</link>{extra}</item>")
    head = f'<?xml version="1.0"?><rss version="2.0"><channel><title>{chan_title}</title>'
    return head + "".join(parts) + "</channel></rss>"


def _huge_field(field: str, size: int, headers: dict[str, str] | None = None) -> Callable[[], dict]:
    def run() -> dict[str, Any]:
        from watcher.service import Worker
        from watcher.store import feeds as feed_store

        with _feedserver() as srv, tempfile.TemporaryDirectory() as tmp:
            srv.route("/feed", _huge_field_feed(field, size), headers=headers or {})
            out = Path(tmp) / "out"
            with Worker(_settings(Path(tmp), [srv.url("/feed")]), outbox_dir=out) as w:
                report = w.run_once()
                feed = feed_store.list_feeds(w.engine)[0]
            files = {p.suffix: p.stat().st_size for p in out.glob("*")} if out.exists() else {}
            db = Path(tmp) / "w.db"
            return {
                "outcome": f"feed {feed.status}, {report.new_entries} stored"
                + (f", error: {feed.last_error[:60]}" if feed.last_error else ""),
                "db_mb": round(db.stat().st_size / 2**20, 1) if db.exists() else None,
                "email_mb": round(files.get(".eml", 0) / 2**20, 2),
                "webhook_mb": round(files.get(".json", 0) / 2**20, 2),
            }

    return run


scenario("huge-feed-title", "200 KB channel title, 500 items, SQLite + email + webhook")(
    _huge_field("feed-title", 200_000)
)
scenario("huge-author", "8 KB author on each of 500 items")(_huge_field("author", 8_000))
scenario("huge-category", "8 KB category on each of 500 items")(_huge_field("category", 8_000))
scenario("huge-link", "8 KB link on each of 500 items")(_huge_field("link", 8_000))
scenario("huge-etag", "100 KB ETag and Last-Modified headers")(
    _huge_field("none", 0, {"ETag": '"' + "e" * 60_000 + '"', "Last-Modified": "M" * 30_000})
)


@scenario("huge-feed-title-pg", "200 KB channel title, 500 items, on PostgreSQL (VARCHAR(500) columns)")
def _huge_title_pg() -> dict[str, Any]:
    import uuid

    import psycopg

    admin = os.environ.get("WATCHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"watcher_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["BENCH_DB_URL"] = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        return _huge_field("feed-title", 200_000)()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@scenario("poll-many-json", "one poll (fetch, parse, score, store): 5 MB JSON Feed, 130,000 matching items")
def _poll_many_json() -> dict[str, Any]:
    from watcher.service import Worker

    items = ",".join(f'{{"id":"{i}","title":"Libya {i}"}}' for i in range(130_000))
    body = f'{{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{items}]}}'
    with _feedserver() as srv, tempfile.TemporaryDirectory() as tmp:
        srv.route("/feed", body, content_type="application/feed+json")
        with Worker(_settings(Path(tmp), [srv.url("/feed")])) as w:
            report = w.poll_due()
        return {"outcome": f"{report[0].status}, {report[0].new_entries} stored, body {len(body) // 1024} KB"}


@scenario("retry-after-overflow", "webhook answers 503 with a 400-digit Retry-After")
def _retry_after_overflow() -> dict[str, Any]:
    import httpx

    sys.path.insert(0, str(REPO / "tests"))
    from receivers import WebhookReceiver

    from watcher.config import Settings
    from watcher.pipeline import dispatch_digest
    from watcher.store import open_store

    with WebhookReceiver() as hook, tempfile.TemporaryDirectory() as tmp:
        hook.respond(503, headers={"Retry-After": "9" * 400}, times=5)
        settings = Settings.model_validate(
            {
                "database": {"url": f"sqlite:///{Path(tmp) / 'w.db'}"},
                "profiles": {"libya": {"anchors": {"libya": 3.0}}},
                "digests": [
                    {
                        "name": "h",
                        "profiles": ["libya"],
                        "channel": "webhook",
                        "url": hook.url,
                        "send_empty": True,
                    }
                ],
            }
        )
        engine = open_store(settings.database.url)
        try:
            with httpx.Client() as client:
                results = dispatch_digest(engine, settings, settings.digests[0], "me", NOW, client=client)
            return {"outcome": ", ".join(f"{r.status}" for r in results)}
        except Exception as exc:
            return {"outcome": f"crashed: {type(exc).__name__}: {exc}"[:90]}


# ---------------------------------------------------------------- child and parent


def child(name: str) -> None:
    tree = os.environ.get("BENCH_TREE")
    if tree:  # the editable install's finder would win over PYTHONPATH: take it out
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
        sys.path.insert(0, tree)
        import watcher

        assert str(Path(watcher.__file__).resolve()).startswith(str(Path(tree).resolve())), watcher.__file__
    t0 = time.perf_counter()
    info = SCENARIOS[name][1]()
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["peak_mb"] = round(_hwm_kib() / 1024)
    print("RESULT " + json.dumps(info), flush=True)


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_scenario(name: str, tree: Path | None, cap_mb: int = MEMORY_CAP_MB) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env["PYTHONPATH"] = str(REPO)
    if tree:
        env["BENCH_TREE"] = str(tree)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap_mb * 2**20, cap_mb * 2**20))

    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_hostile", "--child", name],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            preexec_fn=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": TIMEOUT_S, "outcome": f"timed out after {TIMEOUT_S:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
    if "MemoryError" in proc.stderr:
        tail = f"killed at the {cap_mb} MB memory cap (MemoryError)"
    return {"seconds": round(wall, 2), "outcome": f"crashed: {tail}"[:110]}


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(SCENARIOS))
    ap.add_argument("--tree", type=Path, help="run against the watcher package of another checkout")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return []
    table = Table(
        "Hostile feeds (each in its own process, memory capped at 3 GB)",
        ["scenario", "what", "seconds", "peak MB", "outcome"],
        notes=["peak MB: the child's VmHWM, interpreter included (about 60 MB idle)"],
    )
    results = {}
    for name in args.only or list(SCENARIOS):
        r = run_scenario(name, args.tree)
        results[name] = r
        detail = r.get("problem") or r.get("outcome") or ""
        if "entries" in r:
            detail = f"{r['entries']} entries, {r['text_chars']:,} chars; {detail}"
        for key in ("db_mb", "email_mb", "webhook_mb"):
            if r.get(key) is not None:
                detail += f"; {key.split('_')[0]} {r[key]} MB"
        table.add(name, SCENARIOS[name][0], r.get("seconds", 0.0), r.get("peak_mb", "-"), detail)
        print(f"{name}: {r}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    show([table])
    return [table]


if __name__ == "__main__":
    main()
