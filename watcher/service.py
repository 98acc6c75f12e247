"""The long-running service: APScheduler jobs that drive the pipeline.

A "tick" job wakes every few seconds, claims the feeds that are due (each feed
keeps its own next-poll time in the database), polls them in a thread pool and
sends immediate digests. Cron digests get a job each. A changed config file is
picked up on the next tick; a broken one is reported and the old one kept.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from watcher import startup
from watcher.config import ConfigError, DigestSettings, Settings, load_settings
from watcher.fetch import HostLimiter, make_client
from watcher.imports import lazy_exports
from watcher.pipeline import cron_due, dispatch_digest, poll_feed
from watcher.profiles import Scorer, compile_profiles
from watcher.store import SingleWorkerLock, faults, is_sqlite, open_store, schedules
from watcher.store import feeds as feed_store
from watcher.store.feeds import FeedClaim
from watcher.web.metrics import ServiceMetrics
from watcher.web.tokens import LinkMaker, link_maker

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    import httpx
    from apscheduler.schedulers.blocking import BlockingScheduler

    from watcher.store.retention import PruneReport
    from watcher.values_polled import CycleReport, DigestResult, FeedResult

log = logging.getLogger("watcher")

PARSE_STORE_GRACE_S = 15.0  # what parsing and storing one feed may add to its fetch deadline
WAIT_STEP_S = 0.5  # how often a pass looks for overdue feeds while it waits
OUTCOME_BATCH = 64  # feeds whose outcomes are written in one transaction


def _stamp(times: dict[int, float], key: int) -> None:
    times[key] = time.monotonic()


def _take_finished(finished: SimpleQueue[Future[FeedResult]], timeout: float) -> list[Future[FeedResult]]:
    """The futures finished so far: waits up to ``timeout`` for the first, takes the rest as they are."""
    try:
        done = [finished.get(timeout=timeout)]
    except Empty:
        return []
    while True:
        try:
            done.append(finished.get_nowait())
        except Empty:
            return done


def utcnow() -> datetime:
    return datetime.now(UTC)


class Heartbeat:
    """What /healthz asks of the scheduler: does it run, and do its ticks come and finish?"""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.running = False
        self.started: float | None = None  # the tick in progress, if any
        self.finished: float | None = None  # the last tick that ended

    def tick_started(self) -> None:
        self.started = self.clock()

    def tick_finished(self) -> None:
        self.started, self.finished = None, self.clock()

    def problem(self, tick_s: float) -> str | None:
        """None when healthy, else why not. A tick may run long (a big cycle), but not forever."""
        if not self.running:
            return "the scheduler is not running"
        now, patience = self.clock(), max(10 * tick_s, 600.0)
        if self.started is not None and now - self.started > patience:
            return f"the current tick has run for {now - self.started:.0f} s"
        if self.started is None and self.finished is not None and now - self.finished > patience:
            return f"no tick for {now - self.finished:.0f} s"
        return None


def open_worker_waiting(
    settings: Settings, *, first_delay: float = 1.0, max_delay: float = 60.0
) -> Worker | None:
    """The service's start: a database that is down, or not up yet, is waited for with backoff
    (1 s, doubling, up to a minute), each attempt said in the log. SIGTERM or Ctrl-C while waiting
    stops cleanly (None). Anything else that stops the start (a read-only file) is raised.
    """
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        delay = first_delay
        while True:
            try:
                return Worker(settings)
            except faults.DatabaseUnavailable as exc:
                log.warning("%s; retrying in %.0f s", exc, delay)
                startup.finished()  # waiting, maybe long: the collector is on again (watcher.startup)
            if stop.wait(delay):
                log.info("stopped while waiting for the database")
                return None
            delay = min(delay * 2, max_delay)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Worker:
    """One worker process: owns a DB engine, an HTTP client and the compiled profiles."""

    def __init__(
        self,
        settings: Settings,
        *,
        outbox_dir: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Feedback links in digests; a ConfigError here (no WATCHER_WEB_SECRET) stops the start
        # before anything is opened.
        self.feedback: LinkMaker | None = link_maker(settings)
        self.settings = settings
        self.clock = clock
        self.outbox_dir = outbox_dir
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        db = settings.database
        self.engine = open_store(
            db.url, pool_size=db.pool_size, max_overflow=db.max_overflow, lock_timeout=db.lock_timeout
        )
        self.lock = SingleWorkerLock(self.engine) if is_sqlite(self.engine) else None
        p = settings.polling
        self.client: httpx.Client = make_client(
            p.user_agent, max_connections=p.concurrency, per_host=p.per_host
        )
        self._user_agent = p.user_agent
        self._hook_client: httpx.Client | None = None
        self._hook_lock = threading.Lock()
        self.hosts = HostLimiter(p.per_host)
        self.parse_pool: ProcessPoolExecutor | None = None
        if p.parse_processes:  # spawned, not forked: this process runs threads
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("spawn")
            self.parse_pool = ProcessPoolExecutor(max_workers=p.parse_processes, mp_context=ctx)
        self.scorer: Scorer = compile_profiles(settings.profiles)
        self.rng = random.Random()
        self.stopping = threading.Event()
        self.metrics = ServiceMetrics()
        self.heartbeat = Heartbeat()
        self._mtime = self._config_mtime()
        self._vacuum_hint_given = False
        # The last storage fault met (disk full, locked, read-only, unreachable), for run --once.
        self.storage_fault: str | None = None
        self.ticks = 0  # scheduler ticks run by this worker

    def hook_client(self) -> httpx.Client:
        """The client digests are sent with, made on first use: its TLS context (the CA bundle
        read) need not delay the first fetch. Each webhook part is bounded by a deadline; webhook
        endpoints are the operator's own config, so no private-address guard as for feeds."""
        with self._hook_lock:
            if self._hook_client is None:
                from watcher.deliver.webhook import make_webhook_client

                self._hook_client = make_webhook_client(self._user_agent)
            return self._hook_client

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Take the single-worker lock on SQLite (several workers need PostgreSQL), then make
        the config's feeds exist in the database: a refused second worker writes nothing."""
        if self.outbox_dir is None:  # the demo writes files and sends nothing: no secret needed
            problems = self.settings.secret_problems()
            if problems:
                raise ConfigError("; ".join(problems))
            if self.settings.smtp.allow_plaintext_auth and not self.settings.smtp.tls:
                log.warning("[smtp] allow_plaintext_auth = true: SMTP credentials travel in clear text")
        if self.lock:
            self.lock.acquire()
        self._sync_feeds()

    def close(self) -> None:
        if self.parse_pool is not None:
            self.parse_pool.shutdown(cancel_futures=True)
        self.client.close()
        if self._hook_client is not None:
            self._hook_client.close()
        if self.lock:
            self.lock.release()
        self.engine.dispose()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- config ----------------------------------------------------------------------------
    def _config_mtime(self) -> float | None:
        src = self.settings.source
        try:
            return src.stat().st_mtime if src else None
        except OSError:
            return None

    def _sync_feeds(self) -> None:
        feeds = [(f.url, f.name, f.interval) for f in self.settings.feeds]
        feed_store.sync_config_feeds(self.engine, feeds, self.clock())
        schedules.sync_schedules(self.engine, self.settings.digests, self.clock())

    def reload_if_changed(self) -> bool:
        """Pick up an edited config (profiles, feeds, digests) without a restart."""
        mtime = self._config_mtime()
        if mtime is None or mtime == self._mtime or self.settings.source is None:
            return False
        self._mtime = mtime
        try:
            fresh = load_settings(self.settings.source)
            scorer = compile_profiles(fresh.profiles)
            problems = fresh.secret_problems() if self.outbox_dir is None else []
            if problems:
                raise ConfigError("; ".join(problems))
        except (ConfigError, ValueError) as exc:
            log.error("config not reloaded, keeping the previous one: %s", exc)
            return False
        fresh.database = self.settings.database  # the database cannot change under a running worker
        try:
            feedback = link_maker(fresh)
        except ConfigError as exc:
            log.error("config not reloaded, keeping the previous one: %s", exc)
            return False
        self.settings, self.scorer, self.feedback = fresh, scorer, feedback
        self._sync_feeds()
        log.info(
            "config reloaded from %s: %d profiles, %d feeds",
            fresh.source,
            len(fresh.profiles),
            len(fresh.feeds),
        )
        return True

    # -- work ------------------------------------------------------------------------------
    def poll_due(self, progress: Callable[[FeedResult], None] | None = None) -> list[FeedResult]:
        """Poll every feed that is due, claiming more as the queue drains, until none is left.

        Claims are topped up whenever half of the queue is done, so slow responses and CPU work
        overlap instead of each batch ending with everyone waiting for its slowest feed.
        """
        startup.finished()  # what start-up made stays; the collector is on again (watcher.startup)
        p = self.settings.polling
        results: list[FeedResult] = []
        queue_max = p.concurrency * 2
        # A claim waits at most two rounds of fetches: the lease outlasts that even at full deadline.
        lease = max(p.lease, 4 * p.deadline + 5)
        # fetch ends by its deadline at the socket; this is the backstop that keeps a pass from ever
        # waiting on one feed much longer (parse and store included), whatever goes wrong inside.
        overdue_after = p.deadline + PARSE_STORE_GRACE_S
        started = self.clock()
        in_flight: dict[Future[FeedResult], FeedClaim] = {}
        fetching: dict[int, float] = {}  # claim id -> monotonic time its fetch began
        exhausted = False
        # Poll threads hand their feeds' outcomes over; they are written OUTCOME_BATCH at a time in
        # one transaction. A feed whose outcome is not written yet keeps its lease, so no one else
        # claims it; if the process dies first (or the feed outlasts the pass), it is polled again
        # after the lease (its items are already stored, so nothing is added twice).
        outcomes: deque[tuple[FeedClaim, feed_store.PollOutcome]] = deque()
        # Finished polls queue up here (a done-callback), so each wake-up costs what finished,
        # not a walk over every future in flight as concurrent.futures.wait does.
        finished: SimpleQueue[Future[FeedResult]] = SimpleQueue()
        next_overdue_check = time.monotonic() + WAIT_STEP_S
        pool = ThreadPoolExecutor(max_workers=p.concurrency, thread_name_prefix="poll")
        try:
            while True:
                if not exhausted and not self.stopping.is_set() and len(in_flight) <= p.concurrency:
                    now = self.clock()
                    claims = feed_store.claim_due_feeds(
                        self.engine,
                        self.owner,
                        now,
                        queue_max - len(in_flight),
                        lease_s=lease,
                        due_by=started,
                    )
                    exhausted = not claims
                    scorer = self.scorer
                    for c in claims:
                        fut = pool.submit(
                            poll_feed,
                            self.engine,
                            self.client,
                            self.hosts,
                            scorer,
                            c,
                            self.owner,
                            p,
                            now,
                            self.rng,
                            on_fetch=partial(_stamp, fetching, c.id),
                            record=lambda claim, outcome: outcomes.append((claim, outcome)),
                            parse_pool=self.parse_pool,
                        )
                        in_flight[fut] = c
                        fut.add_done_callback(finished.put)
                if not in_flight:
                    break
                done = _take_finished(finished, WAIT_STEP_S)
                batch: list[FeedResult] = []
                for fut in done:
                    claim = in_flight.pop(fut, None)
                    if claim is None:  # given up on as overdue earlier
                        continue
                    fetching.pop(claim.id, None)
                    try:
                        result = fut.result()
                    except Exception as exc:  # e.g. the database went away: the lease returns the feed
                        if faults.kind(exc) is not None:
                            self.storage_fault = faults.describe(exc)
                        log.error(
                            "feed %s: not recorded, retried after its lease: %s",
                            claim.url,
                            faults.describe(exc),
                        )
                        from watcher.values_polled import FeedResult

                        result = FeedResult(claim.url, "error", error=faults.first_line(exc))
                    batch.append(result)
                    if progress:
                        progress(result)
                results.extend(batch)
                self.metrics.record_polls(batch)
                if time.monotonic() >= next_overdue_check:
                    next_overdue_check = time.monotonic() + WAIT_STEP_S
                    self._drop_overdue(in_flight, fetching, overdue_after, results, progress)
                if len(outcomes) >= OUTCOME_BATCH:
                    self._write_outcomes(outcomes)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            self._write_outcomes(outcomes)
        return results

    def _drop_overdue(
        self,
        in_flight: dict[Future[FeedResult], FeedClaim],
        fetching: dict[int, float],
        overdue_after: float,
        results: list[FeedResult],
        progress: Callable[[FeedResult], None] | None,
    ) -> None:
        """Stop waiting for feeds whose fetch began more than ``overdue_after`` seconds ago."""
        for fut, claim in list(in_flight.items()):
            began = fetching.get(claim.id)
            if began is None or time.monotonic() - began <= overdue_after:
                continue
            del in_flight[fut]  # left to finish on its own; its lease brings the feed back if not
            fetching.pop(claim.id, None)
            error = f"still busy {overdue_after:g}s after its fetch began; not waited for"
            log.warning("feed %s: %s", claim.url, error)
            from watcher.values_polled import FeedResult

            result = FeedResult(claim.url, "error", error=error)
            results.append(result)
            if progress:
                progress(result)

    def _write_outcomes(self, outcomes: deque[tuple[FeedClaim, feed_store.PollOutcome]]) -> None:
        batch = []
        while outcomes:  # popleft is atomic: poll threads may append meanwhile
            batch.append(outcomes.popleft())
        if not batch:
            return
        try:
            feed_store.record_outcomes(self.engine, self.owner, batch)
        except Exception as exc:  # e.g. the database went away: the leases return these feeds
            n = len(batch)
            log.error("outcomes of %d feeds not recorded (%s); they are retried after their lease", n, exc)

    def send_digests(self, *, only: str | None = None, immediate_only: bool = False) -> list[DigestResult]:
        out: list[DigestResult] = []
        for d in self.settings.digests:
            if only and d.name != only:
                continue
            if not only and not self._digest_due(d, immediate_only):
                continue
            sent = self._dispatch(d)
            self.metrics.record_sends(sent, d.channel)
            out.extend(sent)
        return out

    def _digest_due(self, d: DigestSettings, immediate_only: bool) -> bool:
        from watcher.store import outbox  # the ORM: not needed before the first fetches

        if d.immediate:
            return True
        if outbox.has_pending(self.engine, d.name):
            # A run waiting for a retry goes out whatever the schedule. A fire time that passes
            # meanwhile is not taken: once the retry is through, the catch-up sends the rest.
            return True
        if immediate_only:
            return False
        return self._take_fire(d)

    def _take_fire(self, d: DigestSettings) -> bool:
        """True when this cron digest is due and this worker took the fire (exactly one does)."""
        now = self.clock()
        seen = schedules.last_fired(self.engine, d.name)
        if seen is None:  # a digest this worker has not synced yet (another worker's reload)
            schedules.sync_schedules(self.engine, self.settings.digests, now)
            return False
        if seen > now + schedules.CLOCK_BACK_LIMIT:
            # Put back by more than a day, the clock had been wrong: carry on from now rather than
            # wait for the wrong date to come round. (A smaller step back keeps the last fire, so
            # a fire time that comes round again does not send twice.)
            log.warning("digest %s: the clock went back to before its last fire; starting afresh", d.name)
            schedules.claim_fire(self.engine, d.name, seen, now)
            return False
        return cron_due(d, seen, now) and schedules.claim_fire(self.engine, d.name, seen, now)

    def _dispatch(self, d: DigestSettings) -> list[DigestResult]:
        return dispatch_digest(
            self.engine,
            self.settings,
            d,
            self.owner,
            self.clock(),
            client=self.hook_client(),
            outbox_dir=self.outbox_dir,
            scorer=self.scorer,
            feedback=self.feedback,
        )

    def prune(self, *, budget_s: float | None = None, pause: float = 0.0) -> PruneReport:
        """Apply ``[retention]`` now, in small batches; stops between batches on shutdown."""
        from watcher.store.retention import Policy, prune

        report = prune(
            self.engine,
            Policy.of(self.settings.retention),
            self.clock(),
            budget_s=budget_s,
            pause=pause,
            stop=self.stopping.is_set,
        )
        if report.removed or report.freed_bytes:
            log.info("retention: %s", report.summary())
        self._hint_vacuum()
        return report

    def _hint_vacuum(self) -> None:
        """A database made before incremental auto-vacuum keeps freed pages: say how to get them back."""
        if self._vacuum_hint_given or not is_sqlite(self.engine):
            return
        from watcher.store.retention import sqlite_space

        size, free, mode = sqlite_space(self.engine)
        if mode != 2 and free > max(16 << 20, size // 4):
            self._vacuum_hint_given = True
            log.warning(
                "%.0f MiB of the SQLite file is free space that is not given back to the disk; "
                "run `watcher db prune --vacuum` once (it switches the file to incremental auto-vacuum)",
                free / 1048576,
            )

    def tick(self) -> tuple[bool, list[FeedResult]]:
        """One scheduler tick: pick up an edited config, poll the feeds that are due, send the
        digests that are due (immediate ones, retries, and cron ones whose time has come).
        Returns whether the config was reloaded, and the polls."""
        reloaded = self.reload_if_changed()
        results = self.poll_due()
        self.send_digests()
        return reloaded, results

    def safe_tick(self) -> bool:
        """A tick as the service runs it: it outlives any failure (the database restarting, a full
        disk), saying what happened in one line. Returns whether the config was reloaded."""
        self.heartbeat.tick_started()
        self.ticks += 1
        try:
            with self.metrics.timed_cycle():
                reloaded, results = self.tick()
        except Exception as exc:  # the service outlives any one bad tick (e.g. the database restarting)
            if faults.kind(exc) is not None:
                log.error("tick not completed, retrying on the next one: %s", faults.describe(exc))
            else:
                log.exception("tick failed; retrying on the next one")
            return False
        finally:
            self.heartbeat.tick_finished()
        if results:
            failed = sum(r.status in ("error", "gone") for r in results)
            new = sum(r.new_entries for r in results)
            log.info("polled %d feeds (%d failed), %d new items", len(results), failed, new)
        log.debug("tick %d done: %d feeds polled", self.ticks, len(results))
        return reloaded

    def run_once(self, progress: Callable[[FeedResult], None] | None = None) -> CycleReport:
        """One full cycle: poll every due feed, score, store, send every due digest, prune."""
        with self.metrics.timed_cycle():
            feeds = self.poll_due(progress)
            digests = self.send_digests()
        from watcher.values_polled import CycleReport  # not needed before the first fetch

        report = CycleReport(feeds, digests)
        try:
            report.pruned = self.prune()
        except SQLAlchemyError as exc:
            if faults.kind(exc) is None:
                raise
            self.storage_fault = faults.describe(exc)
        report.storage_fault = self.storage_fault
        return report

    # -- service ---------------------------------------------------------------------------
    def serve(self) -> None:
        """Run until SIGTERM/SIGINT; the batch in progress is finished first."""
        startup.finished()  # the service (and its web side) runs for long: the collector is on again
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        sched = BlockingScheduler(timezone=UTC)
        tick = self.settings.polling.tick

        def tick_job() -> None:
            if self.stopping.is_set():
                return
            if self.safe_tick():
                self._schedule_cron(sched)

        sched.add_job(
            tick_job,
            IntervalTrigger(seconds=tick),
            id="tick",
            next_run_time=self.clock(),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._schedule_cron(sched)

        def prune_job() -> None:
            try:
                self.prune(pause=0.02)  # short transactions with gaps: polls are never held up long
            except Exception as exc:
                if faults.kind(exc) is not None:
                    log.error("retention: not pruned, retrying at the next round: %s", faults.describe(exc))
                else:
                    log.exception("retention: pruning failed; retrying at the next round")

        every = self.settings.retention.every
        sched.add_job(
            prune_job,
            IntervalTrigger(seconds=every),
            id="prune",
            next_run_time=self.clock() + timedelta(seconds=min(every, 60.0)),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal %d: finishing the current batch, then stopping", signum)
            self.stopping.set()  # poll_due claims no further batch
            sched.shutdown(wait=True)  # wait for the running job, so nothing is cut off mid-write

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        log.info(
            "watcher running: %d feeds, %d profiles, %d digests, tick %ss",
            feed_store.followed_count(self.engine),  # the config's and those added with `feeds add`
            len(self.settings.profiles),
            len(self.settings.digests),
            tick,
        )
        self.heartbeat.running = True
        self.metrics.scheduler_running(True)
        try:
            sched.start()
        finally:
            self.heartbeat.running = False
            self.metrics.scheduler_running(False)

    def _schedule_cron(self, sched: BlockingScheduler) -> None:
        for job in sched.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        for d in self.settings.digests:
            if not d.immediate:
                # Wakes the worker at the fire time itself, rather than at the next tick. Whether
                # the digest goes out is decided by the database (`_take_fire`), so a late or
                # repeated wake-up sends nothing twice; coalesce and no grace time make a wake-up
                # missed while asleep one late run (APScheduler 3 would otherwise drop it).
                sched.add_job(
                    self._cron_job,
                    d.trigger(),
                    args=[d.name],
                    id=f"digest:{d.name}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )

    def _cron_job(self, name: str) -> None:
        try:
            for d in self.settings.digests:
                if d.name == name and self._digest_due(d, immediate_only=False):
                    self._dispatch(d)
        except Exception:
            log.exception("digest %s failed; will retry", name)


# CycleReport is made when a cycle is over: defined in watcher.values_polled.
__getattr__ = lazy_exports(__name__, {"CycleReport": "watcher.values_polled"})
