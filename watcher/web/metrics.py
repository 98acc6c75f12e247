"""Prometheus metrics: what this process did (counters) and what the database holds (gauges).

Two kinds of series, so several processes on one PostgreSQL database add up correctly:

* **Process series** count the work this process did since it started (polls, fetch errors,
  items and matches stored, digest sends, cycle durations, the last good cycle). Each
  `watcher run` that serves ``/metrics`` reports its own; Prometheus sums them across
  instances. A `watcher web` process polls nothing, so its process series stay at zero.
* **Database series** (feeds by status, stored items and matches, digest runs, verdicts, the
  last poll anywhere) are read from the database at scrape time: the same numbers from every
  process, so take them from one instance (or ``max`` them), not ``sum``.

Labels carry only statuses, kinds, profile, digest and channel names: never a URL or a secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily, Metric
    from sqlalchemy import Engine

log = logging.getLogger("watcher")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
POLL_STATUSES = ("ok", "not_modified", "unchanged", "error", "gone")
SEND_STATUSES = ("sent", "retry", "failed")
CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class _Series:
    """This process's series, in a registry of their own, so tests and processes never mix."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("watcher_polls", "Feed polls by outcome.", ["status"], registry=r)
        self.fetch_errors = Counter(
            "watcher_fetch_errors", "Failed polls by kind of error.", ["kind"], registry=r
        )
        self.items = Counter("watcher_items_stored", "New items stored by this process.", registry=r)
        self.matches = Counter(
            "watcher_matches", "New matches stored by this process, by profile.", ["profile"], registry=r
        )
        self.sends = Counter(
            "watcher_digest_sends",
            "Digest send attempts by digest, channel and outcome.",
            ["digest", "channel", "status"],
            registry=r,
        )
        self.cycle = Histogram(
            "watcher_cycle_duration_seconds",
            "Wall time of one cycle: poll what is due, then send what is due.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.last_good = Gauge(
            "watcher_last_good_cycle_timestamp_seconds",
            "Unix time at which this process last finished a cycle without an error.",
            registry=r,
        )
        self.scheduler = Gauge(
            "watcher_scheduler_running", "1 while this process's scheduler runs.", registry=r
        )
        for status in POLL_STATUSES:
            self.polls.labels(status)


class ServiceMetrics:
    """The counters one worker process keeps.

    The series are made when first counted or read: prometheus_client (and the HTTP and WSGI
    modules it imports) loads after `watcher run`'s first fetch, not before it.
    """

    def __init__(self) -> None:
        self._series: _Series | None = None
        self._lock = threading.Lock()

    @property
    def series(self) -> _Series:
        with self._lock:  # the web side's thread may read them first
            if self._series is None:
                self._series = _Series()
            return self._series

    @property
    def registry(self) -> CollectorRegistry:
        return self.series.registry

    def record_polls(self, results: Iterable[Any]) -> None:
        """Count FeedResults: outcome, error kind, new items and matches (one increment per label)."""
        statuses: Tally[str] = Tally()
        kinds: Tally[str] = Tally()
        matches: Tally[str] = Tally()
        items = 0
        for r in results:
            statuses[r.status] += 1
            if r.status in ("error", "gone"):
                kinds[r.kind or "error"] += 1
            items += r.new_entries
            matches.update(r.matches)
        series = self.series
        for status, n in statuses.items():
            series.polls.labels(status).inc(n)
        for kind, n in kinds.items():
            series.fetch_errors.labels(kind).inc(n)
        if items:
            series.items.inc(items)
        for profile, n in matches.items():
            series.matches.labels(profile).inc(n)

    def record_sends(self, results: Iterable[Any], channel: str) -> None:
        for r in results:
            self.series.sends.labels(r.digest, channel, r.status).inc()

    @contextmanager
    def timed_cycle(self, clock: Callable[[], float] = time.time) -> Iterator[None]:
        """Time a cycle; one that ends without an exception is the last good cycle."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.series.cycle.observe(time.perf_counter() - start)
        self.series.last_good.set(clock())

    def scheduler_running(self, running: bool) -> None:
        self.series.scheduler.set(1 if running else 0)


class DatabaseCollector:
    """Gauges read from the database at scrape time (one cheap query per family)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from watcher.store.browse import counts  # the store, only when scraped

        up = GaugeMetricFamily("watcher_database_up", "1 when the database answered this scrape.")
        try:
            c = counts(self.engine)
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: database did not answer: %s", str(exc).splitlines()[0] if str(exc) else exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _family("watcher_feeds", "Feeds by status (removed feeds left out).", ["status"], c.feeds)
        due = GaugeMetricFamily("watcher_feeds_due", "Active feeds whose next poll has come.")
        due.add_metric([], c.due)
        yield due
        items = GaugeMetricFamily("watcher_stored_items", "Items stored in the database.")
        items.add_metric([], c.items)
        yield items
        yield _family("watcher_stored_matches", "Matches stored, by profile.", ["profile"], c.matches)
        yield _family(
            "watcher_digest_runs", "Digest runs by digest and status.", ["digest", "status"], c.runs
        )
        if c.verdicts is not None:
            yield _family(
                "watcher_verdicts",
                "Readers' verdicts by profile and verdict.",
                ["profile", "verdict"],
                c.verdicts,
            )
        last = GaugeMetricFamily(
            "watcher_last_poll_timestamp_seconds", "Unix time of the latest poll by any worker."
        )
        if c.last_poll is not None:
            last.add_metric([], c.last_poll.timestamp())
        yield last


def _family(name: str, doc: str, labels: Sequence[str], values: dict[Any, int]) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    fam = GaugeMetricFamily(name, doc, labels=list(labels))
    for key, n in sorted(values.items()):
        fam.add_metric([key] if isinstance(key, str) else list(key), n)
    return fam


def exposition(process: ServiceMetrics, engine: Engine) -> bytes:
    """The /metrics body: this process's series, then the database's."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine))
    return generate_latest(process.registry) + generate_latest(registry)
