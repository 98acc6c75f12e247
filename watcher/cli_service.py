"""`watcher demo` and `watcher status`: the service's commands besides `run` (in :mod:`watcher.cli`),
imported when named, so `watcher run` does not build their click commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from watcher.cli import _print_cycle
from watcher.cli_common import (
    ConfigOpt,
    JsonOpt,
    UserError,
    engine,
    err,
    iso,
    json_line,
    json_mode,
    now,
    out,
    safe_url,
    settings,
    when,
)
from watcher.store import StoreError


# --- demo ------------------------------------------------------------------------------------
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where the demo keeps its database and digests.")
    ] = Path("data/demo"),
    config: ConfigOpt = None,
) -> None:
    """Offline demo: serve bundled sample feeds on 127.0.0.1, run one cycle, write the digests to files."""
    from watcher.demo import DemoError, demo_seeds, is_demo_folder, run_demo

    cfg = settings()
    if out_dir.exists() and not is_demo_folder(out_dir):
        raise UserError(
            f"{out_dir} exists and is not a demo folder: the demo starts afresh and would delete it; "
            "give --out a new or empty folder"
        )
    if not cfg.profiles:
        err.print(f"no profile in {cfg.source}: deriving 'libya' from {demo_seeds()}/", markup=False)
    try:
        report, outbox_dir = run_demo(out_dir, cfg)
    except DemoError as exc:
        raise UserError(str(exc)) from None
    _print_cycle(report)
    out.print(f"digest files are in {outbox_dir}/", markup=False)


# --- status ----------------------------------------------------------------------------------
def status(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Health at a glance: feeds by status, feeds due, digests waiting.

    Exits 0 when the database answers, 1 when it does not (with --json, still one JSON object).
    """
    from watcher.store.feeds import health
    from watcher.store.outbox import run_counts

    json_mode(as_json)
    cfg = settings()
    db = safe_url(cfg.database.url)
    try:
        store = engine(cfg)
        h = health(store, now())
        runs = run_counts(store)
    except (SQLAlchemyError, StoreError) as exc:
        problem = str(exc).splitlines()[0]
        if as_json:
            json_line({"config": str(cfg.source), "database": db, "reachable": False, "error": problem})
        else:
            err.print(f"error: database {db} does not answer: {problem}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    waiting, failed = runs.get("pending", 0), runs.get("failed", 0)
    if as_json:
        json_line(
            {
                "config": str(cfg.source),
                "database": db,
                "reachable": True,
                "feeds": h.feeds,
                "due": h.due,
                "last_poll": iso(h.last_poll),
                "digests_waiting": waiting,
                "digests_failed": failed,
            }
        )
        return
    out.print(f"config: {cfg.source}{'' if cfg.source.exists() else ' (not found: defaults)'}", markup=False)
    out.print(f"database: {db} (reachable)", highlight=False, markup=False)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(h.feeds.items())) or "none"
    out.print(f"feeds: {counts}; {h.due} due now; last poll {when(h.last_poll)}")
    out.print(
        f"digests: {waiting} waiting to be sent or retried, {failed} failed (see `watcher digest status`)"
    )
