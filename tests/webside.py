"""Helpers for the web side's tests: a store with matches in it, and the real server on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from tests.conftest import REPO
from watcher.config import Settings, WebSettings
from watcher.profiles import ProfileSpec
from watcher.store import feeds as feed_store
from watcher.store import items as item_store
from watcher.store.models import Feed
from watcher.values import Entry, Score
from watcher.web.metrics import ServiceMetrics
from watcher.web.server import WebServer, make_context, prepare

SECRET = "test-web-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
FEEDBACK_LINK = re.compile(r"https?://[^\s\"'<>|)\]]+/feedback/[A-Za-z0-9_.-]+")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shipped_profile() -> ProfileSpec:
    data = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    return ProfileSpec.model_validate(data["profiles"]["libya"])


def web_settings(db_url: str, port: int | None = None, **web: object) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "profiles": {"libya": shipped_profile().model_dump()},
            "web": {"listen": f"127.0.0.1:{port or free_port()}", **web},
        }
    )


@dataclass(frozen=True)
class Story:
    slug: str
    title: str
    summary: str
    score: float = 5.0
    hits: tuple[tuple[str, float], ...] = (("libya*", 3.0), ("ceasefire", 1.0), ("berlin", 1.0))
    link: str | None = None
    days_ago: int = 0


def seed(
    engine: Engine, stories: list[Story], *, now: datetime = NOW, profile: str = "libya"
) -> dict[str, int]:
    """Store each story as an item of one feed, matched by ``profile``; returns slug → match id."""
    feed_store.add_feed(engine, "http://127.0.0.1:9/feed.xml", "Test Wire", None, now)
    with engine.connect() as conn:
        feed_id = conn.execute(Feed.__table__.select().with_only_columns(Feed.id)).scalar_one()
    ids: dict[str, int] = {}
    for st in stories:
        when = now - timedelta(days=st.days_ago)
        entry = Entry(
            key=st.slug,
            title=st.title,
            summary=st.summary,
            link=st.link if st.link is not None else f"https://news.example/{st.slug}",
            published=when - timedelta(hours=1),
            source="Test Wire",
        )
        score = Score(profile, st.score, True, st.hits)
        item_store.store_entries(engine, feed_id, [(entry, [score])], when)
    for m in item_store.recent_matches(engine, limit=1000):
        slug = m.link.rsplit("/", 1)[-1] if m.link else m.title
        ids[slug] = m.id
    return ids


@contextmanager
def serving(
    settings: Settings,
    engine: Engine,
    *,
    scheduler_problem: Callable[[], str | None] | None = lambda: None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[str]:
    """The real web side on 127.0.0.1 (uvicorn in a thread); yields its base URL.

    WATCHER_WEB_SECRET (and any password) must be in the environment, as in production.
    """
    prepared = prepare(settings)
    ctx = make_context(prepared, engine, lambda: settings, ServiceMetrics(), scheduler_problem)
    if clock is not None:
        ctx.clock = clock
    server = WebServer(prepared, ctx)
    server.start()
    try:
        assert isinstance(settings.web, WebSettings)
        yield settings.web.url
    finally:
        server.stop()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrftoken" value="([^"]+)"', html)
    assert m, "the page has no CSRF token"
    return m.group(1)
