"""When to poll a feed next. Pure policy: ``now`` and randomness are passed in.

After a success the interval follows how often the feed publishes (the idea behind
Miniflux's entry-frequency scheduler: one week divided by the entries seen that week),
with a one-day window so a burst of breaking news tightens polling at once. After a
failure it backs off exponentially with jitter, never sooner than the server's
Retry-After.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

__all__ = ["next_poll_after_failure", "success_interval", "unchanged_interval"]

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
# Poll this many times per expected new entry: halves the average delay before we see one.
POLLS_PER_ENTRY = 2.0
RETRY_AFTER_CAP_S = 7 * 24 * 3600.0  # a Retry-After beyond a week is a server bug, not a plan


def success_interval(
    now: datetime,
    base_interval_s: float,
    min_s: float,
    max_s: float,
    recent_entry_times: Sequence[datetime],
    ttl_minutes: int | None,
) -> float:
    """Seconds until the next poll of a feed that was just read successfully."""
    # parse_feed stamps undated entries with exactly ``now``: they say nothing about the rate.
    past = [t for t in recent_entry_times if t < now]
    if not past:
        interval = base_interval_s  # a new feed (or one without dates): no evidence either way
    else:
        week = sum(1 for t in past if now - t <= WEEK)
        day = sum(1 for t in past if now - t <= DAY)
        # Entries per second, from whichever window shows the feed busier.
        rate = max(week / WEEK.total_seconds(), day / DAY.total_seconds())
        interval = max_s if rate == 0 else 1.0 / (rate * POLLS_PER_ENTRY)
    if ttl_minutes and ttl_minutes > 0:
        interval = max(interval, ttl_minutes * 60.0)  # the publisher asked us not to come sooner
    return min(max(interval, min_s), max_s)


QUIET_GROWTH = 1.25  # each poll that finds nothing new stretches the interval by this much


def unchanged_interval(
    previous_s: float | None, base_interval_s: float, min_s: float, max_s: float, ttl_minutes: int | None
) -> float:
    """Seconds until the next poll of a feed that had nothing new (304 or the same bytes).

    No new entries is itself evidence of a quieter feed, so the interval in force grows a
    little, within bounds; the next poll that finds entries recomputes it from their dates.
    """
    interval = (previous_s or base_interval_s) * QUIET_GROWTH
    if ttl_minutes and ttl_minutes > 0:
        interval = max(interval, ttl_minutes * 60.0)
    return min(max(interval, min_s), max_s)


def next_poll_after_failure(
    now: datetime,
    base_interval_s: float,
    error_count: int,
    retry_after_s: float | None,
    max_backoff_s: float,
    rng: random.Random,
) -> datetime:
    """Exponential backoff from ``base_interval_s``: ×2 per consecutive failure, capped, jittered.

    ``error_count`` counts consecutive failures including this one. Jitter is "equal
    jitter" (half fixed, half random) so feeds that failed together do not return
    together, yet each still waits at least half its backoff. ``retry_after_s`` is a floor.
    """
    exponent = min(max(error_count, 1) - 1, 30)
    ceiling = min(base_interval_s * 2.0**exponent, max_backoff_s)
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return now + timedelta(seconds=delay)
