"""HTTP header values shared by fetching (feeds) and delivering (webhooks)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: datetime | float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad.

    ``now`` is a datetime or a POSIX timestamp; an HTTP-date in the past means no wait.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    if now is None:
        now = datetime.now(UTC)
    elif not isinstance(now, datetime):
        now = datetime.fromtimestamp(now, UTC)
    return max(0.0, (when - now).total_seconds())
