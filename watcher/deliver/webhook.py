"""POST digest bodies to a webhook, signed, one request per part."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

from watcher import version
from watcher.deliver.errors import TemporaryDeliveryError, classify_http_exception, classify_response
from watcher.digest.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from watcher.fetch import deadline_transport, request_deadline

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# One part's whole exchange, connect to the last byte of the answer, on a make_webhook_client
# client: its timeouts bound each read, which a receiver answering a byte at a time keeps resetting.
DEFAULT_DEADLINE = 60.0
USER_AGENT = f"watcher/{version()} (digest webhook)"


def make_webhook_client(user_agent: str = USER_AGENT) -> httpx.Client:
    """The client digests are posted with: its connections keep :func:`post_webhook`'s deadline.
    Webhook endpoints are the operator's own config, so unlike feeds they may be private addresses."""
    return httpx.Client(
        headers={"User-Agent": user_agent},
        timeout=httpx.Timeout(30.0, connect=10.0),
        trust_env=False,
        transport=deadline_transport(refuse_private=False),
    )


def encode_body(body: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact, sorted keys, UTF-8."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def idempotency_key(key: str, part: int, parts: int) -> str:
    """``key`` for a one-part digest, ``key:<part>`` (1-based) when it is split."""
    return key if parts == 1 else f"{key}:{part}"


def request_headers(data: bytes, *, idem_key: str, secret: bytes | None, now: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(int(now)),
        IDEMPOTENCY_HEADER: idem_key,
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(data, secret, int(now))
    return headers


def post_webhook(
    client: httpx.Client,
    url: str,
    bodies: list[dict[str, Any]],
    *,
    key: str,
    secret: bytes | None,
    now: int,
    timeout: httpx.Timeout | float | None = None,
    deadline: float | None = None,
    first_part: int = 1,
    parts: int | None = None,
) -> None:
    """POST every body in order; stop at the first failure with a classified DeliveryError.

    ``timeout`` defaults to the client's own, or DEFAULT_TIMEOUT if the client has none: a
    webhook that never answers must not hold the sender. On a :func:`make_webhook_client` client
    each part's exchange also ends within ``deadline`` seconds (default DEFAULT_DEADLINE), however
    slowly the receiver answers; other clients have only their timeouts. ``first_part``/``parts`` let a caller
    resume a split digest at the part that failed while keeping the part numbers (and so the
    idempotency keys) unchanged. The URL is never put in an error message: Slack and Discord
    webhook URLs are credentials.
    """
    if timeout is None:
        has_own = any(v is not None for v in client.timeout.as_dict().values())
        timeout = client.timeout if has_own else DEFAULT_TIMEOUT
    deadline = DEFAULT_DEADLINE if deadline is None else deadline
    total = parts if parts is not None else first_part - 1 + len(bodies)
    for n, body in enumerate(bodies, first_part):
        data = encode_body(body)
        headers = request_headers(data, idem_key=idempotency_key(key, n, total), secret=secret, now=now)
        started = time.monotonic()
        try:
            with request_deadline(deadline):
                response = client.post(url, content=data, headers=headers, timeout=timeout)
        except Exception as exc:
            if isinstance(exc, httpx.TimeoutException) and time.monotonic() - started >= deadline:
                raise TemporaryDeliveryError(
                    f"webhook timeout: no whole answer within the {deadline:g}s deadline"
                ) from exc
            raise classify_http_exception(exc) from exc
        error = classify_response(response, now)
        if error is not None:
            raise error
        log.debug("webhook: part %d/%d of %s accepted (%d)", n, total, key, response.status_code)
