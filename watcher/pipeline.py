"""One poll of one feed and one send of one digest: the stages wired in order.

Each function turns every failure into recorded state (a feed error, a failed
run) so one bad feed or one dead endpoint never stops the rest.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.config import DigestSettings, PollingSettings, Settings
from watcher.fetch import FetchError, FetchLimits, HostLimiter, fetch
from watcher.headers import RETRY_AFTER_MAX_S
from watcher.imports import lazy_exports
from watcher.polling import next_poll_after_failure, success_interval, unchanged_interval
from watcher.store import faults
from watcher.store import feeds as feed_store

if TYPE_CHECKING:
    import httpx

    from watcher.profiles import Scorer
    from watcher.values import Digest, FeedbackLinks, ParsedFeed
    from watcher.values_polled import DigestResult, FeedResult, FetchResult, PollOutcome

    Recorder = Callable[[feed_store.FeedClaim, PollOutcome], None]

# Parsing, scoring, storing items and sending digests are imported where they are first used
# (in a poll thread, once its fetch is under way): the service's first fetch does not wait for
# feedparser, lxml, the ORM, Jinja2 and the mail stack to load.

log = logging.getLogger("watcher")

MAX_SEND_ATTEMPTS = 12
MAX_SPLIT_ROUNDS = 16  # halving 10,000 items down to one takes 14

ERROR_LIMIT = 1000  # characters of a feed error kept (a server's reason phrase can be any length)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def fetch_limits(p: PollingSettings) -> FetchLimits:
    return FetchLimits(
        connect_timeout=p.connect_timeout,
        read_timeout=p.read_timeout,
        deadline=p.deadline,
        max_bytes=p.max_bytes,
        allow_private_networks=p.allow_private_networks,
    )


def poll_feed(
    engine: Engine,
    client: httpx.Client,
    hosts: HostLimiter,
    scorer: Scorer,
    claim: feed_store.FeedClaim,
    owner: str,
    polling: PollingSettings,
    now: datetime,
    rng: random.Random,
    on_fetch: Callable[[], None] | None = None,
    *,
    record: Recorder | None = None,
    parse_pool: Executor | None = None,
) -> FeedResult:
    """fetch → parse → score → store for one claimed feed, then release it with its next poll time.

    ``on_fetch`` is called when the fetch itself starts (after any wait for a per-host slot).
    ``record`` takes the feed's outcome instead of writing it at once, so a caller can write many
    feeds' outcomes in one transaction (:func:`watcher.store.feeds.record_outcomes`).
    ``parse_pool`` (a process pool) parses the body outside this process's GIL.
    """
    try:
        with hosts.slot(claim.url):
            if on_fetch:
                on_fetch()
            got = fetch(
                client,
                claim.url,
                etag=claim.etag,
                last_modified=claim.last_modified,
                limits=fetch_limits(polling),
            )
    except FetchError as exc:
        return _failed(
            engine, claim, owner, polling, now, rng, exc.message, exc.kind, exc.retry_after, record
        )
    except Exception as exc:  # a bug or an unforeseen library error must not stop other feeds
        log.exception("unexpected error fetching %s", claim.url)
        return _failed(
            engine, claim, owner, polling, now, rng, f"unexpected error: {exc!r}", "bug", None, record
        )

    from watcher.values_polled import FeedResult  # once the response is in (see there)

    if got.not_modified or (got.body_sha256 and got.body_sha256 == claim.body_sha256):
        # 304 or the same bytes again: nothing to parse.
        _succeeded(engine, claim, owner, polling, now, got, None, record)
        return FeedResult(claim.url, "not_modified" if got.not_modified else "unchanged")

    from watcher.parse import NO_ENTRIES, parse_feed
    from watcher.store import items as item_store

    args = (got.body or b"",)
    kwargs = {
        "url": got.url,
        "content_type": got.content_type,
        "now": now,
        "max_entries": polling.max_entries,
        "parser": polling.parser,
    }
    parsed = None
    if parse_pool is not None:
        try:
            parsed = parse_pool.submit(parse_feed, *args, **kwargs).result()
        except Exception as exc:  # a broken pool (a worker killed): parse here instead
            log.warning("parse process failed for %s (%s); parsing in the poll thread", claim.url, exc)
    if parsed is None:
        parsed = parse_feed(*args, **kwargs)
    if not parsed.entries and parsed.problem and parsed.problem != NO_ENTRIES:
        problem = parsed.problem
        if parsed.alternates:
            problem += "; feeds found in the page: " + ", ".join(parsed.alternates[:5])
        return _failed(engine, claim, owner, polling, now, rng, problem, "parse", None, record)

    try:
        fresh_keys = item_store.known_keys(engine, claim.id, [e.key for e in parsed.entries], now)
        fresh = [e for e in parsed.entries if e.key not in fresh_keys]
        scored = [(e, scorer.score(e.title, e.summary, e.source)) for e in fresh]
        new_entries, matches = item_store.store_entries(engine, claim.id, scored, now)
        _succeeded(engine, claim, owner, polling, now, got, parsed, record)
    except SQLAlchemyError as exc:
        if faults.kind(exc) is not None:
            # The database as a whole (full, locked, read-only, gone), not this feed: nothing is
            # recorded against the feed; its lease brings it back once the database takes writes.
            raise
        # This feed's data did not fit (or the database refused it): its error, never a silent "ok".
        # Should the database be gone altogether, recording this fails too and the lease brings it back.
        error = f"database error while storing: {_first_line(exc)}"
        return _failed(engine, claim, owner, polling, now, rng, error, "database", None, record)
    if parsed.problem and parsed.problem != NO_ENTRIES:
        log.info("%s: parsed with a problem: %s", claim.url, parsed.problem)
    return FeedResult(claim.url, "ok", new_entries=new_entries, matches=matches)


def _succeeded(
    engine: Engine,
    claim: feed_store.FeedClaim,
    owner: str,
    polling: PollingSettings,
    now: datetime,
    got: FetchResult,
    parsed: ParsedFeed | None,
    record: Recorder | None = None,
) -> None:
    """Record a good poll: validators, a permanent redirect, and the adaptive next poll time.

    ``parsed`` is None when nothing new came (304 or the same bytes): then the interval in
    force stretches a little, without reading the feed's history from the database.
    """
    from watcher.store.retention import day_number

    base = claim.interval_s or polling.interval
    lo, hi = polling.min_interval, polling.max_interval
    changed: dict[str, object] = {}
    if parsed is None:
        interval = unchanged_interval(claim.poll_interval_s, base, lo, hi, claim.ttl_minutes)
    else:
        times = [e.published for e in parsed.entries]
        interval = success_interval(now, base, lo, hi, times, parsed.ttl_minutes)
        changed = {
            "body_sha256": got.body_sha256,
            "title": parsed.title,
            "ttl_minutes": parsed.ttl_minutes,
            "parsed_day": day_number(now),  # the items read today are the ones the feed carries
        }
    outcome = feed_store.PollOutcome(
        status="ok",
        next_poll_at=now + timedelta(seconds=interval),
        polled_at=now,
        etag=got.etag,
        last_modified=got.last_modified,
        poll_interval_s=interval,
        new_url=got.permanent_redirect,
        **changed,  # type: ignore[arg-type]
    )
    _record(engine, claim, owner, outcome, record)


def _record(
    engine: Engine,
    claim: feed_store.FeedClaim,
    owner: str,
    outcome: feed_store.PollOutcome,
    record: Recorder | None,
) -> None:
    if record is not None:
        record(claim, outcome)
    else:
        feed_store.record_outcome(engine, claim, owner, outcome)


def _failed(
    engine: Engine,
    claim: feed_store.FeedClaim,
    owner: str,
    polling: PollingSettings,
    now: datetime,
    rng: random.Random,
    error: str,
    kind: str,
    retry_after: float | None,
    record: Recorder | None = None,
) -> FeedResult:
    base = claim.interval_s or polling.interval
    if kind == "gone":
        status, nxt = "gone", now + timedelta(days=3650)
    else:
        nxt = next_poll_after_failure(now, base, claim.error_count + 1, retry_after, polling.max_backoff, rng)
        status = "error" if claim.error_count == 0 else "backoff"
    error = error if len(error) <= ERROR_LIMIT else error[: ERROR_LIMIT - 1] + "…"
    outcome = feed_store.PollOutcome(status=status, next_poll_at=nxt, polled_at=now, error=error)
    _record(engine, claim, owner, outcome, record)
    log.warning("feed %s: %s", claim.url, error)
    from watcher.values_polled import FeedResult

    return FeedResult(claim.url, "gone" if kind == "gone" else "error", error=error, kind=kind)


def _failpoint(name: str) -> None:
    """Crash tests set WATCHER_FAILPOINT to kill the process (SIGKILL) at a named step of a send."""
    if os.environ.get("WATCHER_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def cron_due(d: DigestSettings, since: datetime | None, now: datetime) -> bool:
    """A cron digest is due when its trigger has a fire time after ``since`` (its last fire, or
    when its schedule was first seen) that is not after ``now``.

    However many fire times passed since then (a machine asleep, a clock jump forwards), that
    is one fire, so one catch-up digest. Without ``since`` nothing is due: a digest never fires
    for a time before it existed.
    """
    if since is None:
        return False
    # Strictly after ``since``: a fire handled at exactly its time must not count as due again.
    fire = d.trigger().get_next_fire_time(None, since + timedelta(microseconds=1))
    return fire is not None and fire <= now


def dispatch_digest(
    engine: Engine,
    settings: Settings,
    d: DigestSettings,
    owner: str,
    now: datetime,
    *,
    client: httpx.Client,
    outbox_dir: Path | None = None,
    scorer: Scorer | None = None,
    feedback: Callable[[int], FeedbackLinks] | None = None,
) -> list[DigestResult]:
    """Send what this digest owes: first any pending run (same key as before), else a new run.

    A new run is built from the queued matches the profiles in force (``scorer``, else compiled
    from ``settings``) still match: the others are withheld, with the reason. ``feedback``
    (match id → links) puts "relevant" / "not relevant" links on every item.
    """
    from watcher.profiles import compile_profiles
    from watcher.store import outbox

    # A run waiting for a retry goes first and alone: a dead channel does not pile up new runs.
    if not outbox.has_pending(engine, d.name, now):
        scorer = scorer if scorer is not None else compile_profiles(settings.profiles)
        outbox.create_run(
            engine, d.name, d.profiles, d.max_items, now, send_empty=d.send_empty, scorer=scorer
        )
    results: list[DigestResult] = []
    # Runs split off a refused one go out in the same call; each round halves what was refused.
    for _round in range(MAX_SPLIT_ROUNDS):
        split = False
        for run_id in outbox.claim_runs(engine, d.name, owner, now, lease_s=settings.polling.lease):
            result = _send_run(
                engine, settings, d, run_id, now, client=client, outbox_dir=outbox_dir, feedback=feedback
            )
            split = split or result.status == "split"
            results.append(result)
        if not split:
            break
    return results


def _send_run(
    engine: Engine,
    settings: Settings,
    d: DigestSettings,
    run_id: int,
    now: datetime,
    *,
    client: httpx.Client,
    outbox_dir: Path | None,
    feedback: Callable[[int], FeedbackLinks] | None,
) -> DigestResult:
    from watcher.deliver import PermanentDeliveryError, TemporaryDeliveryError, deliver, write_digest_files
    from watcher.store import outbox
    from watcher.values_polled import DigestResult

    digest = outbox.load_digest(engine, run_id, d.profiles, timezone=d.timezone).with_feedback(feedback)
    result = DigestResult(d.name, run_id, len(digest.items), "sent")
    try:
        _failpoint("before_send")
        if outbox_dir is not None:
            result.files = write_digest_files(digest, d, outbox_dir, sender=settings.smtp.sender)
        else:
            deliver(digest, d, settings.smtp, client=client)
    except PermanentDeliveryError as exc:
        if exc.splittable:
            _refused(engine, digest, run_id, exc, str(exc), now, result)
        else:  # the channel itself refuses (auth, gone, misconfigured): smaller runs would fail alike
            outbox.mark_failed(engine, run_id, str(exc), retry_at=None)
            result.status, result.error = "failed", str(exc)
    except Exception as exc:  # temporary, or unforeseen: retry later, never lose the run
        attempts = outbox.attempts(engine, run_id)
        retry_after = exc.retry_after if isinstance(exc, TemporaryDeliveryError) else None
        if attempts >= MAX_SEND_ATTEMPTS:
            outbox.mark_failed(engine, run_id, f"gave up after {attempts} attempts: {exc}", retry_at=None)
            result.status, result.error = "failed", str(exc)
        else:
            backoff = min(60.0 * 2 ** min(attempts - 1, 16), 3600.0)
            delay = min(max(retry_after or 0.0, backoff), RETRY_AFTER_MAX_S)
            outbox.mark_failed(engine, run_id, str(exc), retry_at=now + timedelta(seconds=delay))
            result.status, result.error = "retry", str(exc)
        if not isinstance(exc, TemporaryDeliveryError):
            log.exception("unexpected error sending digest %s", d.name)
    else:
        _failpoint("after_send")
        outbox.mark_sent(engine, run_id, now)
    if result.status != "sent":
        log.warning("digest %s (run %d): %s: %s", d.name, run_id, result.status, result.error)
    return result


def _refused(
    engine: Engine,
    digest: Digest,
    run_id: int,
    exc: BaseException,
    error: str,
    now: datetime,
    result: DigestResult,
) -> None:
    """A run refused for what it carries: split off what was not delivered, so one bad item (or a
    digest too large) never takes the others with it; a single refused item fails alone."""
    from watcher.digest.group import grouped
    from watcher.store import outbox

    stories = [(it.match_id, *it.extra_match_ids) for it in grouped(digest).items]
    accepted = getattr(exc, "accepted_items", 0)
    rest = stories[accepted:]
    groups = [rest] if accepted else [rest[: len(rest) // 2], rest[len(rest) // 2 :]] if len(rest) > 1 else []
    groups = [[m for story in g for m in story] for g in groups if g]
    if groups:
        new_runs = outbox.split_run(engine, run_id, groups, error, now)
        result.status, result.error = "split", f"{error}; split into runs {', '.join(map(str, new_runs))}"
    else:
        outbox.mark_failed(engine, run_id, error, retry_at=None)
        result.status, result.error = "failed", error


# FeedResult and DigestResult are made once a poll's request is under way, or a digest is sent.
__getattr__ = lazy_exports(__name__, dict.fromkeys(("FeedResult", "DigestResult"), "watcher.values_polled"))
