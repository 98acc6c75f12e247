"""The offline demo: bundled sample feeds served on 127.0.0.1, one full cycle, digests written to files.

It needs no internet and no mail server, so a new user sees a real digest within a minute.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from watcher.config import DatabaseSettings, DigestSettings, FeedSettings, Settings
from watcher.profiles import derive_profile
from watcher.service import CycleReport, Worker

FEEDS_DIR = Path(__file__).parent / "feeds"
SEEDS_DIR = Path(__file__).parent / "seeds"  # the four Libya seed articles, so the demo runs anywhere
FEED_SUFFIXES = {".xml", ".atom", ".json", ".rss"}


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        ".xml": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".json": "application/feed+json",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on an ephemeral loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="demo-feeds", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def demo_settings(base: Settings, base_url: str, out_dir: Path, seeds_dir: Path = Path("seeds")) -> Settings:
    """The user's profiles (or one derived from the seeds) over the bundled feeds, on a fresh SQLite file.

    With no profile in the config, the seeds come from ``seeds_dir`` when it holds any, else
    from the seed articles bundled with the demo.
    """
    profiles = dict(base.profiles)
    if not profiles:
        profiles = {"libya": derive_profile(_seed_texts(seeds_dir))}
    feeds = [
        FeedSettings(url=f"{base_url}/{p.name}", name=p.stem.replace("-", " ").title())
        for p in sorted(FEEDS_DIR.iterdir())
        if p.suffix in FEED_SUFFIXES
    ]
    names = sorted(profiles)
    digests = [
        DigestSettings(name="demo-email", profiles=names, channel="email", to=["analyst@example.org"]),
        DigestSettings(
            name="demo-webhook", profiles=names, channel="webhook", url="https://hooks.example.org/watcher"
        ),
    ]
    polling = base.polling.model_copy(update={"allow_private_networks": True})
    return Settings(
        database=DatabaseSettings(url=f"sqlite:///{out_dir / 'watcher.db'}"),
        polling=polling,
        smtp=base.smtp,
        feeds=feeds,
        profiles=profiles,
        digests=digests,
    )


MARKER = ".watcher-demo"
_DEMO_FILES = {MARKER, "outbox", "watcher.db", "watcher.db-wal", "watcher.db-shm", "watcher.db.lock"}


class DemoError(Exception):
    """The demo cannot run as asked; the message says why."""


def is_demo_folder(folder: Path) -> bool:
    """True for an empty folder or one a demo wrote (never delete anything else)."""
    if not folder.is_dir():
        return False
    return {p.name for p in folder.iterdir()} <= _DEMO_FILES


def demo_seeds(seeds_dir: Path = Path("seeds")) -> Path:
    """The seed articles the demo uses: the project's ``seeds/`` if it has any, else the bundled ones."""
    return seeds_dir if any(seeds_dir.glob("*.txt")) else SEEDS_DIR


def _seed_texts(seeds_dir: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(demo_seeds(seeds_dir).glob("*.txt"))]


def run_demo(out_dir: Path, base: Settings) -> tuple[CycleReport, Path]:
    """Run one cycle against the bundled feeds; returns the report and where the digests were written."""
    if out_dir.exists():
        if not is_demo_folder(out_dir):
            raise DemoError(
                f"{out_dir} exists and is not a demo folder: the demo starts afresh and would delete it; "
                "give --out a new or empty folder"
            )
        shutil.rmtree(out_dir)  # a fresh run every time, so the demo always has something to show
    out_dir.mkdir(parents=True)
    (out_dir / MARKER).write_text("written by `watcher demo`; the next demo run replaces this folder\n")
    outbox_dir = out_dir / "outbox"
    with serve_directory(FEEDS_DIR) as base_url:
        settings = demo_settings(base, base_url, out_dir)
        with Worker(settings, outbox_dir=outbox_dir) as worker:
            report = worker.run_once()
    return report, outbox_dir
