"""Digest → a complete email (multipart/alternative, UTF-8), ready for smtplib.

Pure: the Date comes from ``digest.created`` and the Message-ID from
``digest.key``, so a digest re-sent after a crash is byte-for-byte the same
message, and a reader's client can recognise it as a duplicate.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from watcher.digest.render import render_html, render_text, subject
from watcher.digest.text import as_utc, one_line
from watcher.values import Digest

_ATOM = re.compile(r"[^A-Za-z0-9_-]+")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def message_id(key: str, sender: str = "") -> str:
    """``<digest.<key>.<hash>@<sender domain>>``: the same key (and sender) always gives the same id."""
    slug = _ATOM.sub("-", key).strip("-")[:60] or "digest"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    domain = parseaddr(one_line(sender))[1].rpartition("@")[2]
    if not _DOMAIN.match(domain):
        domain = "watcher.localhost"
    return f"<digest.{slug}.{digest}@{domain}>"


def build_email(digest: Digest, *, sender: str, to: Sequence[str], subject_prefix: str) -> EmailMessage:
    """Plain text and HTML alternatives; every header value is one clean line."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = subject(digest, subject_prefix)
    msg["From"] = one_line(sender)
    msg["To"] = ", ".join(addr for addr in (one_line(a) for a in to) if addr)
    msg["Date"] = format_datetime(as_utc(digest.created))
    msg["Message-ID"] = message_id(digest.key, sender)
    msg["X-Watcher-Digest"] = one_line(digest.name)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the bot
    msg.set_content(render_text(digest), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(render_html(digest), subtype="html", charset="utf-8", cte="quoted-printable")
    # A boundary derived from the key (not random) keeps a rebuilt message byte-identical.
    msg.set_boundary(f"=_watcher_{hashlib.sha256(digest.key.encode('utf-8')).hexdigest()[:32]}")
    return msg
