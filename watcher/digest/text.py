"""Small text helpers shared by every output format.

Feed text is untrusted: titles can carry control characters (header
injection), excerpts can carry markup, links can carry ``javascript:``.
Everything a renderer shows goes through one of these first.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import nh3

EXCERPT_CHARS = 300

_SPACE = re.compile(r"\s+")
_ASCII_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_LOOKS_LIKE_HTML = re.compile(r"<[A-Za-z/!?]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")


def one_line(value: str | None) -> str:
    """Printable single-line text: control characters become spaces, invisible format characters go.

    This is what makes header injection impossible: no CR, LF or other C0/C1
    character survives, whatever the feed put in a title.
    """
    if not value:
        return ""
    if value.isprintable():
        # The only whitespace a printable string holds is the ASCII space: runs of it are all to fold.
        return value.strip() if "  " not in value else _SPACE.sub(" ", value).strip()
    value = "".join(_replacement(ch) for ch in value)  # rare: only then pay for the per-character pass
    return _SPACE.sub(" ", value).strip()


def _replacement(ch: str) -> str:
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp"):
        return " "
    return "" if category == "Cf" else ch  # soft hyphens, bidi overrides, zero-width marks


def plain_text(value: str | None) -> str:
    """Plain text from text that may still carry markup (defensive: parse should have stripped it)."""
    if not value:
        return ""
    if _LOOKS_LIKE_HTML.search(value):
        # nh3 with no allowed tags drops every tag (and script/style content); its output is
        # HTML-escaped text, so unescape back to plain text for the templates to escape once.
        value = html.unescape(nh3.clean(value, tags=set()))
    return one_line(value)


def shorten(value: str, limit: int = EXCERPT_CHARS, ellipsis: str = "…") -> str:
    """At most ``limit`` characters, cut at a word boundary when there is one nearby."""
    if len(value) <= limit:
        return value
    cut = value[: max(limit - len(ellipsis), 1)]
    space = cut.rfind(" ")
    if space >= len(cut) * 0.6:  # a boundary in the last 40 %: use it; else a hard cut beats a stub
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + ellipsis


def excerpt(value: str | None, limit: int = EXCERPT_CHARS) -> str:
    return shorten(plain_text(value), limit)


def safe_link(link: str | None) -> str | None:
    """The link if it is an absolute http(s) URL without whitespace or control characters, else None.

    ``javascript:``, ``data:``, relative and malformed links never become an href.
    """
    if not link:
        return None
    link = link.strip()
    if link.isascii():
        # ASCII has no format (Cf) character; its spaces and controls are \x00-\x20 and \x7f.
        if _ASCII_SPACE_OR_CONTROL.search(link):
            return None
    elif any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in link):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return link


def as_utc(moment: datetime) -> datetime:
    """Stored datetimes may come back naive (SQLite); they are UTC by contract."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def readable_time(moment: datetime, timezone: str = "UTC") -> str:
    """E.g. ``Tue 14 May 2024, 09:30 UTC``, or ``…, 11:30 CEST`` in a digest's own time zone:
    unambiguous for readers in any locale."""
    if timezone == "UTC":
        return as_utc(moment).strftime("%a %d %b %Y, %H:%M UTC")
    return as_utc(moment).astimezone(ZoneInfo(timezone)).strftime("%a %d %b %Y, %H:%M %Z")


def format_score(score: float) -> str:
    return f"{score:.2f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
