"""Polling policy: adaptive intervals after success, jittered backoff after failure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from watcher.polling import next_poll_after_failure, success_interval, unchanged_interval

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
BASE, MIN, MAX = 1800.0, 300.0, 86400.0


def every(gap: timedelta, n: int) -> list[datetime]:
    return [NOW - gap * (i + 1) for i in range(n)]


def interval(times: list[datetime], ttl: int | None = None) -> float:
    return success_interval(NOW, BASE, MIN, MAX, times, ttl)


def test_no_history_uses_the_base_interval() -> None:
    assert interval([]) == BASE


def test_busy_feeds_are_polled_more_often_than_quiet_ones() -> None:
    busy = interval(every(timedelta(minutes=20), 3 * 24 * 7))
    hourly = interval(every(timedelta(hours=1), 24 * 7))
    daily = interval(every(timedelta(days=1), 7))
    weekly = interval(every(timedelta(days=7), 4))
    assert MIN <= busy < hourly < daily < weekly <= MAX
    assert busy == pytest.approx(600) and hourly == pytest.approx(1800)  # twice per expected entry
    assert daily == pytest.approx(43200)


def test_a_feed_silent_for_a_week_gets_the_maximum() -> None:
    assert interval([NOW - timedelta(days=30)]) == MAX


def test_bounds_clamp() -> None:
    assert interval(every(timedelta(seconds=10), 500)) == MIN  # a firehose
    assert success_interval(NOW, BASE, MIN, 3600, every(timedelta(days=7), 2), None) == 3600


def test_a_burst_today_tightens_polling_at_once() -> None:
    quiet_week = every(timedelta(days=2), 3)
    burst = every(timedelta(minutes=20), 12)  # breaking news in the last four hours
    assert interval(quiet_week + burst) < interval(quiet_week) / 5


def test_ttl_is_a_floor_but_not_above_our_maximum() -> None:
    busy = every(timedelta(minutes=10), 100)
    assert interval(busy, ttl=60) == 3600
    assert interval(busy, ttl=10 * 24 * 60) == MAX
    assert interval(every(timedelta(days=1), 7), ttl=5) == pytest.approx(43200)  # ttl never shortens


def test_entries_stamped_now_or_later_are_not_evidence() -> None:
    # parse_feed stamps undated entries with `now`; they must not look like a firehose.
    assert interval([NOW] * 50) == BASE
    assert interval([NOW + timedelta(hours=1)] * 50) == BASE


def test_nothing_new_stretches_the_interval_within_bounds() -> None:
    assert unchanged_interval(None, BASE, MIN, MAX, None) == BASE * 1.25
    assert unchanged_interval(BASE, BASE, MIN, MAX, None) == BASE * 1.25
    assert unchanged_interval(MAX, BASE, MIN, MAX, None) == MAX  # capped
    assert unchanged_interval(1.0, BASE, MIN, MAX, None) == MIN  # floored
    assert unchanged_interval(MIN, BASE, MIN, MAX, 120) == 7200.0  # the ttl (minutes) is a floor


def delays(
    error_count: int, retry_after: float | None = None, n: int = 200, cap: float = 86400
) -> list[float]:
    rng = random.Random(42)
    return [
        (next_poll_after_failure(NOW, 600, error_count, retry_after, cap, rng) - NOW).total_seconds()
        for _ in range(n)
    ]


def test_backoff_grows_exponentially_with_jitter() -> None:
    for count, ceiling in [(1, 600), (2, 1200), (3, 2400), (5, 9600)]:
        ds = delays(count)
        assert all(ceiling / 2 <= d <= ceiling for d in ds), count
        assert max(ds) - min(ds) > ceiling / 4  # really jittered


def test_backoff_is_capped() -> None:
    assert all(1800 <= d <= 3600 for d in delays(50, cap=3600))
    assert all(d <= 86400 for d in delays(10_000))  # huge counts do not overflow


def test_retry_after_is_a_minimum() -> None:
    assert all(d >= 7200 for d in delays(1, retry_after=7200))
    assert all(600 / 2 <= d <= 600 for d in delays(1, retry_after=5))  # a short one changes nothing
    assert max(delays(1, retry_after=10 * 365 * 86400)) == 7 * 86400  # absurd values are capped


def test_zero_error_count_is_treated_as_the_first_failure() -> None:
    assert all(300 <= d <= 600 for d in delays(0))


def test_same_seed_same_schedule() -> None:
    a = next_poll_after_failure(NOW, 600, 3, None, 86400, random.Random(7))
    b = next_poll_after_failure(NOW, 600, 3, None, 86400, random.Random(7))
    assert a == b
