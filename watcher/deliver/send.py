"""Deliver one digest on its configured channel, with a short in-process retry.

The retry here only smooths over blips (a dropped connection, a 503 for a
second). Anything longer is the outbox's job: the last classified error is
re-raised and the caller records it and schedules the next attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from watcher.config import DigestSettings, SmtpSettings
from watcher.deliver.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from watcher.deliver.smtp import send_email
from watcher.deliver.webhook import encode_body, post_webhook
from watcher.digest import build_email, render_html, webhook_bodies
from watcher.digest.text import as_utc
from watcher.digest.webhook import items_in_body
from watcher.values import Digest

T = TypeVar("T")

# What one send may carry; a digest over it is split by the outbox, never failed for good.
MAX_EMAIL_BYTES = 10 * 1024 * 1024  # many mail servers refuse more
MAX_WEBHOOK_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _RetryPolicy:
    attempts: int
    first_wait: float  # doubles each time
    max_wait: float  # a receiver asking for longer (Retry-After) is left to the outbox
    sleep: Callable[[float], None]


def _with_retry(policy: _RetryPolicy, fn: Callable[[], T]) -> T:
    backoff = wait_exponential(multiplier=policy.first_wait, min=policy.first_wait, max=policy.max_wait)

    def wait(state: RetryCallState) -> float:
        if policy.first_wait == 0:  # retry_wait=0: retry at once, even past a Retry-After (tests)
            return 0.0
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        return min(float(hint), policy.max_wait) if hint is not None else backoff(state)

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        too_long = hint is not None and hint > policy.max_wait
        return too_long or stop_after_attempt(policy.attempts)(state)

    retrying = Retrying(
        retry=retry_if_exception_type(TemporaryDeliveryError),
        stop=stop,
        wait=wait,
        sleep=policy.sleep,
        reraise=True,  # the caller sees the classified error, not tenacity's RetryError
    )
    return retrying(fn)


def deliver(
    digest: Digest,
    digest_settings: DigestSettings,
    smtp: SmtpSettings,
    *,
    client: httpx.Client,
    attempts: int = 3,
    retry_wait: float = 0.5,
    max_wait: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> None:
    """Send ``digest`` by email or webhook; raise Temporary/PermanentDeliveryError on failure.

    A temporary failure is retried in-process up to ``attempts`` times in all, waiting
    ``retry_wait`` seconds first and doubling (or the receiver's Retry-After when it is at most
    ``max_wait``; a longer Retry-After ends the retries at once so the outbox can wait instead).
    """
    retry = _RetryPolicy(max(attempts, 1), max(retry_wait, 0.0), max_wait, sleep)
    if digest_settings.channel == "email":
        msg = build_email(
            digest, sender=smtp.sender, to=digest_settings.to, subject_prefix=digest_settings.subject_prefix
        )
        size = len(msg.as_bytes())
        if size > MAX_EMAIL_BYTES:  # too large for many mail servers: the outbox splits the run
            raise PermanentDeliveryError(
                f"the email would be {size:,} bytes (limit {MAX_EMAIL_BYTES:,})", splittable=True
            )
        _with_retry(retry, lambda: send_email(msg, smtp))
        return
    if not digest_settings.url:  # config validation already demands it; keep the type checker honest
        raise ValueError(f"digest {digest_settings.name!r} has no webhook url")
    url, secret = digest_settings.url, digest_settings.secret()
    missing = digest_settings.missing_secret()
    if missing:  # asked to sign and cannot: an error (retried, so setting the variable fixes it)
        raise TemporaryDeliveryError(missing)
    bodies = webhook_bodies(digest, digest_settings.format)
    encoded = [len(encode_body(b)) for b in bodies]
    if max(encoded) > MAX_WEBHOOK_BODY_BYTES:
        raise PermanentDeliveryError(
            f"a webhook body would be {max(encoded):,} bytes (limit {MAX_WEBHOOK_BODY_BYTES:,})",
            splittable=True,
        )
    # Retry part by part: parts already accepted are not sent again, and every part
    # keeps its number (so its Idempotency-Key) whichever attempt delivers it.
    accepted_items = 0
    for n, body in enumerate(bodies, 1):

        def post(body: dict = body, n: int = n) -> None:
            post_webhook(
                client,
                url,
                [body],
                key=digest.key,
                secret=secret,
                now=int(clock()),  # fresh per attempt: receivers reject stale timestamps
                first_part=n,
                parts=len(bodies),
            )

        try:
            _with_retry(retry, post)
        except DeliveryError as exc:
            exc.accepted_items = accepted_items  # type: ignore[attr-defined]  # the outbox splits the rest
            raise
        accepted_items += items_in_body(body, digest_settings.format)


def _stamp(digest: Digest) -> str:
    return as_utc(digest.created).strftime("%Y%m%dT%H%M%SZ")


def write_digest_files(
    digest: Digest, digest_settings: DigestSettings, folder: Path, *, sender: str
) -> list[Path]:
    """Offline delivery: write what would be sent (exact bytes) plus an HTML preview; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{digest_settings.name}-{_stamp(digest)}"  # names may contain ".": no with_suffix()
    written: list[Path] = []
    if digest_settings.channel == "email":
        msg = build_email(
            digest, sender=sender, to=digest_settings.to, subject_prefix=digest_settings.subject_prefix
        )
        path = folder / f"{stem}.eml"
        path.write_bytes(msg.as_bytes())
    else:
        encoded = [encode_body(b) for b in webhook_bodies(digest, digest_settings.format)]
        # One part: the exact request body. Several: a JSON array of the exact part bodies, in order.
        data = encoded[0] if len(encoded) == 1 else b"[\n" + b",\n".join(encoded) + b"\n]"
        path = folder / f"{stem}.json"
        path.write_bytes(data)
    written.append(path)
    preview = folder / f"{stem}.html"
    preview.write_text(render_html(digest), encoding="utf-8")
    written.append(preview)
    return written
