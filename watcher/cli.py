"""The `watcher` command line (typer + rich). Errors are one clear line, not a traceback.

The root app and `run` live here; `demo` and `status` in cli_service, and each command group has a
module of its own (cli_feeds, cli_digest, cli_db, cli_profile), imported when named.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from watcher import logs, startup
from watcher.cli_common import (
    ConfigOpt,
    UserError,
    clean,
    describe_os_error,
    err,
    esc,
    in_json_mode,
    json_line,
    out,
    require_project,
    settings,
)
from watcher.config import ConfigError
from watcher.console import rich_console
from watcher.redact import redact
from watcher.store import StoreError

# Commands and command groups that live in modules of their own, imported only when named (or
# listed, for --help): `watcher run` then never imports profile derivation, tuning, evaluation,
# the web side or the CLI's digest rendering. The order is the one `watcher --help` shows.
LAZY_COMMANDS = {
    "eval": ("watcher.cli_profile", "eval_command"),
    "score": ("watcher.cli_profile", "score_command"),
    "matches": ("watcher.cli_digest", "digest_matches"),
    "web": ("watcher.cli_web", "web_command"),
}
# `demo` and `status`, listed after `run` (cli_service): building their click commands is ~0.4 % of
# `watcher run`'s start-up (issue 14).
LAZY_AFTER_RUN = {
    "demo": ("watcher.cli_service", "demo"),
    "status": ("watcher.cli_service", "status"),
}
LAZY_GROUPS = {
    "feeds": ("watcher.cli_feeds", "feeds_app"),
    "digest": ("watcher.cli_digest", "digest_app"),
    "db": ("watcher.cli_db", "db_app"),
    "profile": ("watcher.cli_tune", "profile_app"),  # cli_tune adds diff/apply to cli_profile's group
    "feedback": ("watcher.cli_feedback", "feedback_app"),
}


def _load_command(name: str, module: str, attribute: str) -> Any:
    """The click command for a lazily imported command or group, built as `app` would build it."""
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    holder.callback()(lambda: None)  # a group even when it holds one command
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


class _Commands(MutableMapping[str, Any]):
    """The root group's commands by name; a lazy one is imported on first access."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items  # name -> command, or (module, attribute) not imported yet

    def __getitem__(self, name: str) -> Any:
        value = self._items[name]
        if isinstance(value, tuple):
            value = self._items[name] = _load_command(name, *value)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self._items[name] = value

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _RootGroup(TyperGroup):
    def __init__(self, *, commands: dict[str, Any] | None = None, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands({**LAZY_COMMANDS, **(commands or {}), **LAZY_AFTER_RUN, **LAZY_GROUPS})


app = typer.Typer(
    help="Watch news feeds for coverage related to your seed articles, and send digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: flags are not shown as taking a <bool>, and "[profiles.NAME]" is not read as markup.
    rich_markup_mode=None,
    cls=_RootGroup,
)


def _print_version(value: bool) -> None:
    if value:
        from watcher import version

        print(f"watcher {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    logs.configure(err, verbose)
    if ctx.invoked_subcommand != "run":  # `run` ends its start-up at its first poll
        startup.finished()


# --- run -------------------------------------------------------------------------------------
@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="One full cycle (poll, score, store, send), then exit.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Run the service (or one cycle with --once).

    With --once the exit code says how the cycle went: 0 all done, 1 a digest was not delivered,
    3 some feeds could not be polled.
    """
    from watcher.service import Worker

    cfg = settings()
    require_project(cfg)
    serve_web = not once and cfg.web is not None and cfg.web.listen is not None
    if serve_web:
        from watcher.web.server import prepare

        prepared = prepare(cfg)  # secret, address rule and port checked before anything starts
    if not once:
        from watcher.service import open_worker_waiting

        worker = open_worker_waiting(cfg)  # a database not up yet is waited for, and the log says so
        if worker is not None:
            with worker:
                if serve_web:
                    _serve_with_web(worker, prepared)
                else:
                    worker.serve()
        return
    with Worker(cfg) as worker, _progress() as advance:
        report = worker.run_once(progress=advance)
    _print_cycle(report)
    if report.storage_fault:
        raise UserError(f"database: {report.storage_fault}")
    code = cycle_exit_code(report)
    if code:
        raise typer.Exit(code)


# Exit codes of `run --once` (README: "Exit codes"); 2 is a user error, as for every command.
EXIT_UNDELIVERED = 1  # a due digest was not delivered (failed, or left for a retry)
EXIT_FEEDS_FAILED = 3  # every digest went out, but some feeds could not be polled


def cycle_exit_code(report) -> int:
    if any(d.status != "sent" for d in report.digests):
        return EXIT_UNDELIVERED
    if report.failed_feeds:
        return EXIT_FEEDS_FAILED
    return 0


def _serve_with_web(worker, prepared) -> None:
    """The scheduler in this thread, the web side beside it; SIGTERM stops both."""
    from watcher.web.server import WebServer, make_context

    tick = worker.settings.polling.tick
    ctx = make_context(
        prepared,
        worker.engine,
        lambda: worker.settings,  # the worker reloads an edited config; the pages follow it
        worker.metrics,
        lambda: worker.heartbeat.problem(tick),
    )
    server = WebServer(prepared, ctx)
    server.start()
    try:
        worker.serve()
    finally:
        server.stop()


@contextmanager
def _progress() -> Iterator[Callable[[object], None] | None]:
    """A progress bar on stderr when it is a terminal, advanced once per feed polled.

    Elsewhere (a pipe, a service's log) there is none, and rich's progress display is not imported.
    """
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=rich_console(err), transient=True) as progress:
        task = progress.add_task("polling", total=None)
        yield lambda _result: progress.advance(task)


def _print_cycle(report, out_dir: Path | None = None) -> None:
    failed = report.failed_feeds
    out.print(f"feeds polled: {len(report.feeds)} ({len(failed)} failed)")
    out.print(f"new items: {report.new_entries}")
    matches = report.matches
    if matches:
        for name, n in sorted(matches.items()):
            out.print(f"matches for profile {name}: {n}")
    else:
        out.print("matches: 0")
    for f in failed[:10]:
        out.print(f"  [yellow]feed error[/] {esc(redact(f'{f.url}: {f.error}'))}", highlight=False)
    for d in report.digests:
        where = ", ".join(str(p) for p in d.files) if d.files else d.status
        line = f"digest {d.digest}: {d.items} items, {where}"
        if d.error:
            line += f" ({d.error})"
        out.print(clean(line), highlight=False, markup=False)
    if not report.digests:
        out.print("digests: nothing to send")
    pruned = getattr(report, "pruned", None)
    if pruned is not None and (pruned.removed or pruned.freed_bytes):
        out.print(f"retention: {pruned.summary()}", highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr (and a JSON object on stdout under --json), then exit."""
    if in_json_mode():
        json_line({"error": message})
    err.print(f"error: {clean(message)}", highlight=False, markup=False)
    sys.exit(code)


def main() -> None:
    try:
        app()
    except (UserError, ConfigError, StoreError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        from watcher.store.faults import describe

        fail(f"database: {describe(exc)}")
    except OSError as exc:  # a file or folder the user named; the commands catch most of these
        where = exc.filename
        fail(f"{where}: {describe_os_error(exc, Path(where))}" if where else str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
