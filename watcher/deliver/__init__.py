"""Delivery: SMTP and webhook I/O, classified failures, a short in-process retry."""

from watcher.deliver.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    classify_http_exception,
    classify_response,
    classify_smtp,
    parse_retry_after,
)
from watcher.deliver.send import deliver, write_digest_files
from watcher.deliver.smtp import send_email
from watcher.deliver.webhook import encode_body, idempotency_key, post_webhook

__all__ = [
    "DeliveryError",
    "PermanentDeliveryError",
    "TemporaryDeliveryError",
    "classify_http_exception",
    "classify_response",
    "classify_smtp",
    "deliver",
    "encode_body",
    "idempotency_key",
    "parse_retry_after",
    "post_webhook",
    "send_email",
    "write_digest_files",
]
