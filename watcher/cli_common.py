"""What every `watcher` command group shares: consoles, the one-line user error, settings and store,
and the output helpers that keep feed text literal and piped output whole.

Output rules every command follows (use these helpers rather than printing feed text yourself):
- Feed text (titles, names, errors quoting a feed) is shown literally: ``cell()`` / ``Text`` for
  tables, ``esc()`` inside a markup string. It is never read as rich markup or emoji codes, and
  control characters (ANSI escapes, bells, C1 codes, bidi overrides) never reach the terminal.
- ``Listing`` is a table on a terminal and tab-separated lines (header first, nothing cut) when piped.
- Every listing takes ``--json`` (``JsonOpt``): one JSON object per line via ``json_line``; after
  ``json_mode(True)`` a user error is printed as ``{"error": ...}`` on stdout too (exit code unchanged).
- ``ConfigOpt`` gives a command the same ``--config/-c`` as the root option.
- ``write_output`` writes a file the user named; a missing folder is a one-line error.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watcher import logs
from watcher.config import Settings, config_path, load_settings
from watcher.console import LazyConsole

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Column
    from rich.text import Text

# soft_wrap: a long line is never broken by rich (a pipe gets it whole; a terminal wraps it itself).
# emoji off: ":smile:" in a feed title stays ":smile:". Made when first printed to (watcher.console):
# `watcher run` off a terminal fetches its first feed without importing rich.
out = LazyConsole(soft_wrap=True, emoji=False)
err = LazyConsole(stderr=True, soft_wrap=True, emoji=False)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


# --- feed text, shown literally -------------------------------------------------------------
@cache
def _terminal_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(escapes, controls, line breaks), compiled when text first needs cleaning: `watcher run`
    prints nothing before its first fetch (compiling them is ~0.25 % of its start-up)."""
    # ANSI/VT sequences (CSI, OSC such as terminal hyperlinks, DCS/PM/APC strings, two-byte escapes),
    # in their 7-bit and 8-bit (C1) forms: removed whole, so no payload is left to act on.
    escapes = re.compile(
        r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI ... final byte
        r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC/DCS/SOS/PM/APC
        r"|\x1b[ -/]*[0-~]"  # other escapes (ESC c, ESC ( B, ...)
    )
    # Left after that: C0/C1 controls and DEL (dropped; tab and line breaks become spaces), and the
    # bidi embeddings/overrides/isolates that can make a line read differently from what it holds.
    controls = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    spaces = re.compile(r"[\t\n\r]+")
    return escapes, controls, spaces


def clean(value: object) -> str:
    """Feed text made safe to print on a terminal, on one line."""
    if value is None:
        return ""
    s = str(value)
    if s.isprintable():  # the common case: nothing to do
        return s
    escapes, controls, spaces = _terminal_patterns()
    s = escapes.sub("", s)
    s = spaces.sub(" ", s)
    return controls.sub("", s)


def esc(value: object) -> str:
    """Feed text for a rich markup string: cleaned, then its ``[`` escaped."""
    from rich.markup import escape

    return escape(clean(value))


def cell(value: object, style: str = "") -> Text:
    """A table cell (or any printable) that shows ``value`` literally."""
    from rich.text import Text

    return Text(clean(value), style=style)


class Listing:
    """A table on a terminal; tab-separated lines (header first) when piped, never wrapped or cut.

    Columns are names or rich ``Column`` objects (their width limits apply on a terminal only).
    """

    def __init__(self, *columns: str | Column, title: str | None = None) -> None:
        from rich.table import Column  # listings only: not imported before `watcher run` fetches

        self.columns = [c if isinstance(c, Column) else Column(c, overflow="fold") for c in columns]
        self.title = title
        self.rows: list[list[Text]] = []

    def row(self, *cells: object) -> None:
        from rich.text import Text

        self.rows.append([c if isinstance(c, Text) else cell(c) for c in cells])

    def print(self, console: Console | LazyConsole | None = None, *, empty: str | None = None) -> None:
        """Print the rows (or, with none, ``empty`` on stderr so stdout stays data)."""
        console = console or out
        if not self.rows:
            if empty:
                err.print(empty, markup=False, highlight=False)
            return
        if console.is_terminal:
            from rich.table import Table

            table = Table(*self.columns, title=self.title)
            for r in self.rows:
                table.add_row(*r)
            console.print(table, soft_wrap=False)
            return
        write = console.file.write
        write("\t".join(str(c.header) for c in self.columns) + "\n")
        for r in self.rows:
            write("\t".join(c.plain.replace("\t", " ") for c in r) + "\n")
        console.file.flush()


# --- JSON output ----------------------------------------------------------------------------
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
_json_mode = False


def json_mode(on: bool) -> bool:
    """Switch user errors to JSON for this command (call it first thing when ``--json`` is given)."""
    global _json_mode
    _json_mode = on
    return on


def in_json_mode() -> bool:
    return _json_mode


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_line(obj: Mapping[str, Any]) -> None:
    """One JSON object on one line of stdout (ASCII-escaped: no control character reaches a terminal)."""
    sys.stdout.write(json.dumps(obj, default=_jsonable) + "\n")


def json_lines(rows: Iterable[Mapping[str, Any]]) -> None:
    for r in rows:
        json_line(r)


# --- config and store -----------------------------------------------------------------------
_config_given = False


def use_config(path: Path, ctx: typer.Context | None = None) -> None:
    """Use the config named on the command line (root ``-c`` or a command's ``--config``).

    It is put in WATCHER_CONFIG so every reader sees it; with a context, the previous value is
    restored when the invocation ends (tests run many invocations in one process).
    """
    global _config_given
    previous = os.environ.get("WATCHER_CONFIG"), _config_given
    os.environ["WATCHER_CONFIG"] = str(path)
    _config_given = True
    if ctx is not None:
        ctx.find_root().call_on_close(lambda: _restore_config(*previous))


def _restore_config(env: str | None, given: bool) -> None:
    global _config_given
    _config_given = given
    if env is None:
        os.environ.pop("WATCHER_CONFIG", None)
    else:
        os.environ["WATCHER_CONFIG"] = env


def _config_option(ctx: typer.Context, value: Path | None) -> Path | None:
    if value is not None:
        use_config(value, ctx)
    return value


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $WATCHER_CONFIG or config/watcher.toml).",
        callback=_config_option,
        show_default=False,
    ),
]


def config_origin() -> str | None:
    """How the config file was named: ``--config``, ``WATCHER_CONFIG``, or None (the default path)."""
    if _config_given:
        return "--config"
    return "WATCHER_CONFIG" if os.environ.get("WATCHER_CONFIG") else None


def settings() -> Settings:
    path = config_path()
    origin = config_origin()
    if origin and not path.exists():
        raise UserError(f"{path}: config file not found (given with {origin})")
    cfg = load_settings(path)
    logs.apply_settings(cfg.logging.format, cfg.logging.level)  # [logging] format and level
    return cfg


def require_project(settings: Settings) -> None:
    """Refuse to create or read a database from a folder with no config (the default path, not found).

    Otherwise a command run in the wrong folder silently makes an empty ``data/watcher.db`` there.
    A database named by WATCHER_DATABASE_URL is explicit enough to go ahead with default settings.
    """
    source = settings.source
    if source is None or source.exists() or os.environ.get("WATCHER_DATABASE_URL"):
        return
    raise UserError(
        f"no config file here ({source} not found in {Path.cwd()}): run watcher in your project folder, "
        "or name the config with --config FILE or WATCHER_CONFIG (`watcher demo` runs anywhere)"
    )


def engine(settings: Settings):
    """The store for a command, schema up to date; see ``require_project``."""
    from watcher.store import open_store

    require_project(settings)
    db = settings.database
    return open_store(
        db.url, pool_size=db.pool_size, max_overflow=db.max_overflow, lock_timeout=db.lock_timeout
    )


def now() -> datetime:
    return datetime.now(UTC)


def when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "-"


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def safe_url(url: str) -> str:
    """A database URL with its password masked."""
    from sqlalchemy.engine import make_url

    from watcher.redact import mask_password

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return mask_password(url)


# --- files the user names -------------------------------------------------------------------
def write_output(path: Path, data: str | bytes) -> None:
    """Write a file the user asked for; any failure is one line naming the file."""
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {describe_os_error(exc, path)}") from None


def describe_os_error(exc: OSError, path: Path | None = None) -> str:
    """An OSError in the user's words."""
    if isinstance(exc, FileNotFoundError) and path is not None and not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror.lower() if exc.strerror else str(exc)
