"""The `watcher` command line (typer + rich). Errors are one clear line, not a traceback.

The root app and the service commands (run, demo, status) live here; each command
group has a module of its own (cli_feeds, cli_digest, cli_db, cli_profile).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import SQLAlchemyError

from watcher import logs
from watcher.cli_common import UserError, engine, err, now, out, safe_url, settings, when
from watcher.cli_db import db_app
from watcher.cli_digest import digest_app, digest_matches
from watcher.cli_feedback import feedback_app
from watcher.cli_feeds import feeds_app
from watcher.cli_profile import eval_command, profile_app, score_command
from watcher.cli_tune import apply as _apply  # noqa: F401 - registers profile diff/apply
from watcher.config import ConfigError
from watcher.store import StoreError

app = typer.Typer(
    help="Watch news feeds for coverage related to your seed articles, and send digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(feeds_app, name="feeds")
app.add_typer(digest_app, name="digest")
app.add_typer(db_app, name="db")
app.add_typer(profile_app, name="profile")
app.add_typer(feedback_app, name="feedback")
app.command("eval")(eval_command)
app.command("score")(score_command)
app.command("matches")(digest_matches)


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default: $WATCHER_CONFIG or config/watcher.toml)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    if config is not None:
        os.environ["WATCHER_CONFIG"] = str(config)
    logs.configure(err, verbose)


# --- run -------------------------------------------------------------------------------------
@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="One full cycle (poll, score, store, send), then exit.")
    ] = False,
) -> None:
    """Run the service (or one cycle with --once)."""
    from watcher.service import Worker

    cfg = settings()
    with Worker(cfg) as worker:
        if not once:
            worker.serve()
            return
        with _progress() as progress:
            task = progress.add_task("polling", total=None)
            report = worker.run_once(progress=lambda _r: progress.advance(task))
    _print_cycle(report)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


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
        out.print(f"  [yellow]feed error[/] {f.url}: {f.error}", highlight=False)
    for d in report.digests:
        where = ", ".join(str(p) for p in d.files) if d.files else d.status
        line = f"digest {d.digest}: {d.items} items, {where}"
        if d.error:
            line += f" ({d.error})"
        out.print(line, highlight=False)
    if not report.digests:
        out.print("digests: nothing to send")


# --- demo ------------------------------------------------------------------------------------
@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where the demo keeps its database and digests.")
    ] = Path("data/demo"),
) -> None:
    """Offline demo: serve bundled sample feeds on 127.0.0.1, run one cycle, write the digests to files."""
    from watcher.demo import run_demo

    report, outbox_dir = run_demo(out_dir, settings())
    _print_cycle(report)
    out.print(f"digest files are in {outbox_dir}/")


# --- status ----------------------------------------------------------------------------------
@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """Health at a glance (exit 0 when the database answers): feeds by status, feeds due, digests waiting."""
    from watcher.store.feeds import health
    from watcher.store.outbox import run_counts

    cfg = settings()
    store = engine(cfg)
    h = health(store, now())
    runs = run_counts(store)
    waiting, failed = runs.get("pending", 0), runs.get("failed", 0)
    if as_json:
        print(
            json.dumps(
                {
                    "database": safe_url(cfg.database.url),
                    "feeds": h.feeds,
                    "due": h.due,
                    "last_poll": h.last_poll.isoformat() if h.last_poll else None,
                    "digests_waiting": waiting,
                    "digests_failed": failed,
                }
            )
        )
        return
    out.print(f"database: {safe_url(cfg.database.url)} (reachable)", highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(h.feeds.items())) or "none"
    out.print(f"feeds: {counts}; {h.due} due now; last poll {when(h.last_poll)}")
    out.print(
        f"digests: {waiting} waiting to be sent or retried, {failed} failed (see `watcher digest status`)"
    )


def main() -> None:
    try:
        app()
    except (UserError, ConfigError, StoreError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(2)
    except SQLAlchemyError as exc:
        err.print(f"error: database: {str(exc).splitlines()[0]}", highlight=False, markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
