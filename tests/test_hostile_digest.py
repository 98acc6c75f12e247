"""Digests cap their size and split rather than fail for good; one bad item never holds back the others.

Before: a digest the receiver refused (too large, or one item it rejects) failed for good and took
every other item of the run with it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from receivers import SmtpSink, WebhookReceiver
from sqlalchemy import insert

from watcher.config import Settings
from watcher.deliver import send as send_module
from watcher.pipeline import dispatch_digest
from watcher.store import open_store, outbox
from watcher.store.models import EntryRow, Feed, MatchRow

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _store(db_url: str, n: int, bad: set[int] = frozenset()) -> object:  # type: ignore[assignment]
    engine = open_store(db_url)
    with engine.begin() as conn:
        feed_id = conn.execute(
            insert(Feed).values(
                url="https://f.example/rss", status="ok", error_count=0, next_poll_at=NOW, created_at=NOW
            )
        ).inserted_primary_key[0]
        for i in range(n):
            title = f"POISON Libya {i}" if i in bad else f"Libya talks {i}"
            entry_id = conn.execute(
                insert(EntryRow).values(
                    feed_id=feed_id,
                    entry_key=f"id:{i}",
                    title=title,
                    summary="s",
                    link=f"https://news.example/{i}",
                    published=NOW,
                    fetched_at=NOW,
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(MatchRow).values(
                    entry_id=entry_id, profile="libya", score=10.0 - i / 100, terms=[], created_at=NOW
                )
            )
    return engine


def _settings(db_url: str, **digest: object) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "profiles": {"libya": {"anchors": {"libya": 3.0}, "threshold": 0.0}},
            "digests": [{"name": "d", "profiles": ["libya"], "max_items": 500, **digest}],
            "smtp": {"host": "127.0.0.1"},
        }
    )


def _delivered_links(hook: WebhookReceiver) -> list[str]:
    return [it["link"] for r in hook.accepted for it in json.loads(r.body)["items"]]


def test_one_item_the_receiver_refuses_fails_alone(tmp_path: Path, db_url: str) -> None:
    engine = _store(db_url, 40, bad={17})

    with WebhookReceiver() as hook:
        hook.refuse_bodies_with(b"POISON", 400)  # the receiver rejects that item's content
        settings = _settings(db_url, channel="webhook", url=hook.url)
        with httpx.Client() as client:
            results = dispatch_digest(engine, settings, settings.digests[0], "me", NOW, client=client)
        delivered = _delivered_links(hook)
    assert sorted(delivered) == sorted(f"https://news.example/{i}" for i in range(40) if i != 17)
    assert len(delivered) == len(set(delivered)) == 39  # nothing twice
    failed = [r for r in results if r.status == "failed"]
    assert len(failed) == 1 and failed[0].items == 1  # the poisoned item, alone
    assert {r.status for r in results} <= {"sent", "split", "failed"}


def test_an_email_too_large_is_split_not_failed(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _store(db_url, 30)
    monkeypatch.setattr(send_module, "MAX_EMAIL_BYTES", 12_000)  # a small server limit, to keep this fast
    with SmtpSink() as smtp:
        settings = _settings(db_url, channel="email", to=["desk@example.org"])
        settings.smtp.port = smtp.port
        with httpx.Client() as client:
            results = dispatch_digest(engine, settings, settings.digests[0], "me", NOW, client=client)
        sizes = [len(m.data) for m in smtp.messages]
        bodies = b"".join(m.data for m in smtp.messages)
    assert len(sizes) > 1 and max(sizes) <= 12_000
    for i in range(30):
        assert f"https://news.example/{i}".encode() in bodies
    assert not [r for r in results if r.status == "failed"]
    runs = outbox.list_runs(engine, "d")
    assert all(
        r.status == "sent" or "split" in (r.last_error or "") or "moved" in (r.last_error or "") for r in runs
    )


def test_a_webhook_body_too_large_is_split(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _store(db_url, 60)
    monkeypatch.setattr(send_module, "MAX_WEBHOOK_BODY_BYTES", 6_000)
    with WebhookReceiver() as hook:
        settings = _settings(db_url, channel="webhook", url=hook.url)
        with httpx.Client() as client:
            dispatch_digest(engine, settings, settings.digests[0], "me", NOW, client=client)
        assert all(len(r.body) <= 6_000 for r in hook.requests)
        assert sorted(_delivered_links(hook)) == sorted(f"https://news.example/{i}" for i in range(60))


def test_413_from_a_chat_webhook_resumes_after_the_accepted_parts(tmp_path: Path, db_url: str) -> None:
    engine = _store(db_url, 40)
    with WebhookReceiver() as hook:
        hook.respond(200)
        hook.respond(413, body=b"payload too large")  # part 2 refused
        settings = _settings(db_url, channel="webhook", url=hook.url, format="discord")
        with httpx.Client() as client:
            results = dispatch_digest(engine, settings, settings.digests[0], "me", NOW, client=client)
        links = [e["url"] for r in hook.accepted for e in json.loads(r.body)["embeds"]]
    assert sorted(links) == sorted(f"https://news.example/{i}" for i in range(40))
    assert len(links) == 40  # the accepted part 1 is not sent again
    assert results[0].status == "split"
