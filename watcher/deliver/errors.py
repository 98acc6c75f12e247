"""Delivery failures, classified: retry later, or give up.

The outbox only needs to know which of the two it is (and, for a temporary
failure, how long the receiver asked us to wait). Classification lives here,
next to the classes, so SMTP and HTTP follow one rule book.
"""

from __future__ import annotations

import smtplib

import httpx

from watcher.headers import parse_retry_after


class DeliveryError(Exception):
    """A digest could not be delivered; ``str(err)`` is the reason to store."""


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later; ``retry_after`` is the receiver's own hint in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (rejected recipient, bad credentials, 4xx from a webhook).

    ``splittable``: the refusal is about this message (too large, or content the receiver
    rejects), not the channel, so smaller runs of the same items may go through.
    """

    def __init__(self, message: str, *, splittable: bool = False) -> None:
        super().__init__(message)
        self.splittable = splittable

    @property
    def reason(self) -> str:
        return str(self)


SMTP_MESSAGE_REFUSED = frozenset({552, 554})  # too large, or content refused: smaller may pass
HTTP_MESSAGE_REFUSED = frozenset({400, 413, 422})  # bad payload or too large: the channel itself works

# --- SMTP -----------------------------------------------------------------------------------------


def _smtp_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


def _by_code(code: int, reason: str) -> DeliveryError:
    # RFC 5321: 4yz transient, 5yz permanent. Anything else is a confused server: try again later.
    if 500 <= code < 600:
        return PermanentDeliveryError(reason, splittable=code in SMTP_MESSAGE_REFUSED)
    return TemporaryDeliveryError(reason)


def classify_smtp(exc: BaseException) -> DeliveryError:
    """Map an smtplib / socket exception to a delivery error."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = {rcpt: (code, _smtp_text(code, msg)) for rcpt, (code, msg) in exc.recipients.items()}
        reason = "recipients refused: " + "; ".join(f"{r}: {t}" for r, (_, t) in refused.items())
        if refused and all(400 <= code < 500 for code, _ in refused.values()):
            return TemporaryDeliveryError(reason)
        return PermanentDeliveryError(reason)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"SMTP server does not support a required extension: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):  # sender refused, data error, auth, helo, connect
        what = type(exc).__name__.removeprefix("SMTP")
        return _by_code(exc.smtp_code, f"SMTP {what}: {_smtp_text(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TemporaryDeliveryError(f"SMTP server disconnected: {exc}")
    if isinstance(exc, TimeoutError):
        return TemporaryDeliveryError(f"SMTP timeout: {exc or 'no answer in time'}")
    if isinstance(exc, OSError | smtplib.SMTPException):
        return TemporaryDeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}")
    return TemporaryDeliveryError(f"SMTP failure: {type(exc).__name__}: {exc}")


# --- HTTP -----------------------------------------------------------------------------------------

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def classify_response(response: httpx.Response, now: float) -> DeliveryError | None:
    """None for 2xx; otherwise the error the status means. ``now`` resolves HTTP-date Retry-After."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    snippet = response.text[:200].strip() if response.content else ""
    reason = f"HTTP {status} {response.reason_phrase}".strip() + (f": {snippet}" if snippet else "")
    if status in RETRYABLE_STATUS or status >= 500:
        return TemporaryDeliveryError(
            reason, retry_after=parse_retry_after(response.headers.get("Retry-After"), now)
        )
    if 300 <= status < 400:
        where = response.headers.get("Location", "?")
        return PermanentDeliveryError(f"{reason} (redirected to {where}; configure the final URL)")
    return PermanentDeliveryError(reason, splittable=status in HTTP_MESSAGE_REFUSED)


def classify_http_exception(exc: BaseException) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentDeliveryError(f"bad webhook URL: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return TemporaryDeliveryError(f"webhook timeout: {type(exc).__name__}")
    if isinstance(exc, httpx.TransportError | OSError):
        return TemporaryDeliveryError(f"webhook connection failed: {type(exc).__name__}: {exc}")
    return TemporaryDeliveryError(f"webhook failure: {type(exc).__name__}: {exc}")
