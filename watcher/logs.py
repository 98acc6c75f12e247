"""Logging set-up for the CLI and the service: one place for handlers, levels and formats.

On a terminal, rich output for people. Anywhere else (a pipe, a file, journald, docker
logs): one line per event, ``2026-11-25T06:00:00.123Z INFO watcher: message``, with line
breaks (a traceback's, say) written as ``\\n`` so the event stays on its line; or, with
``[logging] format = "json"``, one JSON object per line: ``time``, ``level``, ``logger``,
``message`` and, when there is one, ``exception``. Times are ISO 8601, UTC.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from watcher import redact
from watcher.console import LazyConsole, rich_console

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("auto", "text", "json")
# Filters every handler gets, whatever the format (e.g. one that keeps secrets out of logs).
FILTERS: list[logging.Filter] = [redact.RedactingFilter()]  # tokens and passwords in URLs: masked
_state: dict[str, object] = {"console": None, "verbose": False}


def iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


class LineFormatter(logging.Formatter):
    """One event, one line: time (ISO 8601 UTC), level, logger, message, traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        return f"{iso_utc(record.created)} {record.levelname} {record.name}: {_one_line(text)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and redacted) by a filter
            event["exception"] = record.exc_text
        return json.dumps(event, ensure_ascii=False)


def make_handler(console: Console | LazyConsole, fmt: str = "auto") -> logging.Handler:
    """``auto``: rich on a terminal, one line per event anywhere else; ``text``; ``json``.

    Only rich's handler needs rich: off a terminal a :class:`LazyConsole` is not made.
    """
    if fmt == "auto":
        fmt = "rich" if console.is_terminal else "text"
    handler: logging.Handler
    if fmt == "rich":
        from rich.logging import RichHandler  # a terminal only: it imports rich's tracebacks and Pygments

        handler = RichHandler(console=rich_console(console), show_path=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(JsonFormatter() if fmt == "json" else LineFormatter())
    for f in FILTERS:
        handler.addFilter(f)
    return handler


def configure(
    console: Console | LazyConsole, verbose: bool = False, fmt: str = "auto", level: str | None = None
) -> None:
    """Route every logger through one handler on ``console`` (stderr), replacing any earlier one."""
    _state.update(console=console, verbose=verbose)
    root_level = logging.DEBUG if verbose else getattr(logging, (level or "info").upper())
    logging.basicConfig(level=root_level, handlers=[make_handler(console, fmt)], force=True)
    for noisy in ("httpcore", "alembic", "mail.log", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # httpx logs every request's full URL at INFO, and webhook URLs are credentials: not even with -v.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler warns on every tick skipped while a long poll runs; that is by design here.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.ERROR)


def apply_settings(fmt: str, level: str) -> None:
    """Once the config is read: its ``[logging]`` format and level (``--verbose`` still wins)."""
    console = _state["console"]
    if console is not None:
        configure(console, bool(_state["verbose"]), fmt, level)
