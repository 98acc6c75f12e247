"""`watcher db …`: the database schema and retention."""

from __future__ import annotations

from typing import Annotated

import typer

from watcher.cli_common import ConfigOpt, JsonOpt, engine, json_line, json_mode, now, out, safe_url, settings

db_app = typer.Typer(help="Database schema and retention.", no_args_is_help=True)


# --- db --------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the schema to the newest version (also done on every start)."""
    cfg = settings()
    engine(cfg).dispose()
    out.print(f"database is up to date: {safe_url(cfg.database.url)}")


@db_app.command("prune")
def db_prune(
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum",
            help="SQLite: also rebuild the file (VACUUM) to give all free space back; needs the "
            "database to itself for a moment and up to its size free on disk.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Prune now what [retention] says is due, print what was removed (the service also does this)."""
    from watcher.store import is_sqlite
    from watcher.store.retention import Policy, prune, vacuum_full

    json_mode(as_json)
    cfg = settings()
    store = engine(cfg)
    report = prune(store, Policy.of(cfg.retention), now())
    if vacuum and is_sqlite(store):
        report.freed_bytes += vacuum_full(store)
    if as_json:
        json_line(report.as_dict())
    else:
        out.print(report.summary(), highlight=False)
        if vacuum and not is_sqlite(store):
            out.print("--vacuum is for SQLite; PostgreSQL's autovacuum reuses the space", highlight=False)
    store.dispose()
