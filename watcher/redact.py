"""Secrets out of text that is shown or logged: credentials and tokens in URLs.

Webhook URLs are credentials (Slack's ``/services/T…/B…/secret``, Discord's
``/webhooks/ID/token``), feed and database URLs can carry ``user:password@`` or a
``?token=`` query. :func:`redact` masks all of those wherever a URL appears in a
string; :class:`RedactingFilter` applies it to every log record a handler emits, at
every level and in any format, tracebacks included.
"""

from __future__ import annotations

import logging
import re
from functools import cache

__all__ = ["MASK", "RedactingFilter", "install", "mask_password", "redact"]

MASK = "***"


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(URL, userinfo, secret parameter, token segment), compiled when first needed: a run that
    logs no URL never needs them, and compiling them is ~0.2 % of `watcher run`'s start-up."""
    url = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s\"'<>]+)")
    userinfo = re.compile(r"^([^/?#]*)@")  # to the last "@" of the authority: passwords may hold "@"
    # Query or fragment parameters whose value is a secret by its name.
    secret_param = re.compile(
        r"([?&#;](?:[\w.-]*(?:token|secret|key|sig|signature|password|passwd|pass|pwd|auth|credential|session|code)"
        r"[\w.-]*)=)([^&#;\s]*)",
        re.I,
    )
    # A path segment that looks like a generated secret (Slack's and Discord's webhook tokens): long,
    # mixing upper case, lower case and digits, which article slugs (lower case words) do not.
    token_segment = re.compile(
        r"(?<=/)(?=[\w-]{20,}(?:[/?#]|$))(?=[\w-]*\d)(?=[\w-]*[a-z])(?=[\w-]*[A-Z])[\w-]+"
    )
    return url, userinfo, secret_param, token_segment


def _masked_userinfo(m: re.Match[str]) -> str:
    user, colon, _ = m.group(1).partition(":")
    return (user + ":" + MASK if colon else MASK) + "@"  # keep the user name, not the password


def _redact_url(match: re.Match[str]) -> str:
    _, userinfo, secret_param, token_segment = _patterns()
    scheme, rest = match.group(1), match.group(2)
    rest = userinfo.sub(_masked_userinfo, rest)
    rest = secret_param.sub(lambda m: m.group(1) + MASK, rest)
    host, slash, path = rest.partition("/")
    if slash:
        path = token_segment.sub(MASK, "/" + path)[1:]
    return scheme + host + slash + path


def redact(text: str) -> str:
    """``text`` with the secrets of every URL in it masked (user:password, token params, key paths)."""
    if "://" not in text:
        return text
    return _patterns()[0].sub(_redact_url, text)


def mask_password(url: str) -> str:
    """A URL (say a database URL, even a malformed one) with only its password masked."""
    url = url.strip()
    head, sep, _ = url.rpartition("@")  # the last "@": a password may hold one
    start = url.find("//")
    if not sep or start < 0 or ":" not in head[start + 2 :]:
        return url
    user = head[start + 2 :].split(":", 1)[0]
    return url[: start + 2] + user + ":" + MASK + url[len(head) :]


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters that format exc_info themselves would undo this: the text is what stays.
            record.exc_text, record.exc_info = redact(record.exc_text), None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
