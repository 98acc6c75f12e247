"""Digest rendering: pure functions from a :class:`~watcher.values.Digest` to what gets sent."""

from watcher.digest.group import group_stories, grouped
from watcher.digest.mail import build_email, message_id
from watcher.digest.render import render_html, render_text, sanitize_html, subject
from watcher.digest.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)
from watcher.digest.webhook import Format, webhook_bodies

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Format",
    "build_email",
    "group_stories",
    "grouped",
    "message_id",
    "render_html",
    "render_text",
    "sanitize_html",
    "sign",
    "subject",
    "verify",
    "webhook_bodies",
]
