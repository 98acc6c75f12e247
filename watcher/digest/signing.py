"""HMAC signatures for webhook bodies.

The signed message is ``f"{timestamp}."`` followed by the exact body bytes, so
a receiver can reject both a tampered body and a replayed old request.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Watcher-Signature"
TIMESTAMP_HEADER = "X-Watcher-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE = 300  # seconds a signed request stays acceptable


def sign(body: bytes, secret: bytes, timestamp: int) -> str:
    """``"sha256=" + hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``."""
    mac = hmac.new(secret, f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    body: bytes,
    secret: bytes,
    timestamp: int | str,
    signature: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` and the timestamp is within ``tolerance``.

    ``timestamp`` may be the raw header value; anything that is not an integer fails.
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = sign(body, secret, ts).encode("ascii")
    try:
        given = signature.strip().encode("ascii")
    except (AttributeError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(expected, given)
