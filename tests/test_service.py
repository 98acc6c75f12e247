"""The worker against real loopback feeds: the corpus in one cycle, faults turned into feed state,
config reloads without a restart, and cron digests due on time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import tomlkit

from tests.conftest import REPO, need_shared
from tests.feedserver import FeedServer
from watcher.config import DigestSettings, load_settings
from watcher.pipeline import cron_due
from watcher.service import Worker
from watcher.store.feeds import list_feeds

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    "<item><guid>1</guid><title>Libya talks resume</title><link>https://t.example/1</link></item>"
    "</channel></rss>"
)


def write(path: Path, db: Path, feeds: list[str], **polling: object) -> Path:
    import tomllib

    shipped = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    doc = {
        "database": {"url": f"sqlite:///{db}"},
        "polling": {"allow_private_networks": True, "concurrency": 8, "per_host": 8, **polling},
        "feeds": [{"url": u} for u in feeds],
        "profiles": {"libya": shipped["profiles"]["libya"]},
    }
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def test_whole_corpus_goes_through_one_cycle(tmp_path: Path) -> None:
    corpus = need_shared("corpus", "feeds")
    manifest = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    with FeedServer() as srv:
        urls = {}
        for i, rec in enumerate(manifest):
            srv.route(f"/c{i}", (corpus / rec["path"]).read_bytes(), content_type=None)
            urls[srv.url(f"/c{i}")] = rec
        cfg = write(tmp_path / "w.toml", tmp_path / "w.db", list(urls), deadline="10s")
        with Worker(load_settings(cfg)) as worker:
            report = worker.run_once()
        assert len(report.feeds) == len(manifest) == 270
        views = {v.url: v for v in list_feeds(worker.engine)}
    with_entries = [v for v in views.values() if v.entries > 0]
    errors = [v for v in views.values() if v.status != "ok"]
    # Each file either yielded entries or is a recorded feed error with a reason (or a valid empty feed).
    for v in views.values():
        assert v.entries > 0 or v.last_error or v.status == "ok"
        if v.status != "ok":
            assert v.last_error and v.url in urls
    # At least what bare feedparser finds (its count is in the manifest).
    fp = sum(1 for r in manifest if r["feedparser_6_0_14"]["entries"] > 0)
    assert len(with_entries) >= fp, (len(with_entries), fp)
    assert errors, "the malformed files must show up as feed errors"


def test_faults_become_feed_state(tmp_path: Path) -> None:
    with FeedServer() as srv:
        srv.route("/gone", status=410, body=b"gone")
        srv.route("/busy", status=429, headers={"Retry-After": "7200"}, body=b"slow down")
        srv.route("/new", RSS)
        srv.redirect("/old", srv.url("/new"), status=301)
        srv.route(
            "/html",
            '<html><link rel="alternate" type="application/rss+xml" href="/new"></html>',
            content_type="text/html",
        )
        cfg = write(
            tmp_path / "w.toml", tmp_path / "w.db", [srv.url(p) for p in ("/gone", "/busy", "/old", "/html")]
        )
        with Worker(load_settings(cfg)) as worker:
            start = datetime.now(UTC)
            worker.run_once()
            views = {v.url: v for v in list_feeds(worker.engine)}
    assert views[srv.url("/gone")].status == "gone" and views[srv.url("/gone")].next_poll is None
    busy = views[srv.url("/busy")]
    assert busy.status == "error" and busy.next_poll >= start + timedelta(seconds=7200)
    assert srv.url("/old") not in views and views[srv.url("/new")].entries == 1  # 301: the stored URL moved
    html = views[srv.url("/html")]
    assert html.status == "error" and "HTML page" in html.last_error and srv.url("/new") in html.last_error


def test_edited_profile_takes_effect_without_restart(tmp_path: Path) -> None:
    cfg = write(tmp_path / "w.toml", tmp_path / "w.db", [])
    with Worker(load_settings(cfg)) as worker:
        assert not worker.scorer.score("Cheese festival in Lyon", "")[0].matched
        doc = tomlkit.parse(cfg.read_text())
        doc["profiles"]["libya"]["anchors"]["cheese"] = 5.0
        cfg.write_text(tomlkit.dumps(doc))
        import os

        os.utime(cfg, (1, 1))  # a different mtime, even within the same second
        assert worker.reload_if_changed()
        assert worker.scorer.score("Cheese festival in Lyon", "")[0].matched
        # A broken edit is reported and the previous profiles stay in force.
        doc["profiles"]["libya"]["anchors"] = {}
        cfg.write_text(tomlkit.dumps(doc))
        os.utime(cfg, (2, 2))
        assert not worker.reload_if_changed()
        assert worker.scorer.score("Cheese festival in Lyon", "")[0].matched


def test_cron_digest_is_due_only_after_its_time() -> None:
    d = DigestSettings(
        name="m",
        profiles=["p"],
        channel="email",
        to=["a@b.example"],
        schedule="0 7 * * *",
        timezone="Europe/Berlin",
    )
    last = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 07:00 Berlin on the 24th
    assert not cron_due(d, last, datetime(2026, 11, 25, 5, 59, tzinfo=UTC))
    assert cron_due(d, last, datetime(2026, 11, 25, 6, 0, tzinfo=UTC))


def test_poll_metrics_count_a_batch_of_results_as_one_by_one() -> None:
    from collections import Counter

    from prometheus_client import generate_latest

    from watcher.pipeline import FeedResult
    from watcher.web.metrics import ServiceMetrics

    results = [
        FeedResult("a", "ok", new_entries=3, matches=Counter({"libya": 2, "other": 0})),
        FeedResult("b", "not_modified"),
        FeedResult("c", "error", error="x", kind="timeout"),
        FeedResult("d", "gone", error="y", kind="gone"),
        FeedResult("e", "ok", new_entries=1, matches=Counter({"libya": 1})),
        FeedResult("f", "error", error="z"),
    ]
    batched, single = ServiceMetrics(), ServiceMetrics()
    batched.record_polls(results[:4])
    batched.record_polls(results[4:])
    for r in results:
        single.record_polls([r])

    def counts(m: ServiceMetrics) -> list[str]:  # creation timestamps differ, counts must not
        return [line for line in generate_latest(m.registry).decode().splitlines() if "_created" not in line]

    text = "\n".join(counts(batched))
    assert counts(batched) == counts(single)
    assert 'watcher_polls_total{status="ok"} 2.0' in text
    assert 'watcher_fetch_errors_total{kind="timeout"} 1.0' in text
    assert 'watcher_fetch_errors_total{kind="error"} 1.0' in text
    assert "watcher_items_stored_total 4.0" in text
    assert 'watcher_matches_total{profile="libya"} 3.0' in text
    assert 'watcher_matches_total{profile="other"} 0.0' in text
