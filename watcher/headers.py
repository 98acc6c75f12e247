"""HTTP header values shared by fetching (feeds) and delivering (webhooks)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A number from the network is clamped before it is used: a Retry-After of 10^400 seconds (or a
# date in the year 9999) means "a long time", which is a week here, never inf or an overflow.
RETRY_AFTER_MAX_S = 7 * 24 * 3600.0


def parse_retry_after(value: str | None, now: datetime | float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad.

    ``now`` is a datetime or a POSIX timestamp; an HTTP-date in the past means no wait. The result
    is at most RETRY_AFTER_MAX_S.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²" or "٣": str.isdigit says yes to those
        return min(float(value), RETRY_AFTER_MAX_S)
    if len(value) > 64:  # an HTTP-date is 29 characters
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    if now is None:
        now = datetime.now(UTC)
    elif not isinstance(now, datetime):
        now = datetime.fromtimestamp(now, UTC)
    return min(max(0.0, (when - now).total_seconds()), RETRY_AFTER_MAX_S)
