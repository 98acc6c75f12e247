"""`watcher db …`: the database schema, retention and backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watcher.cli_common import (
    ConfigOpt,
    JsonOpt,
    UserError,
    engine,
    json_line,
    json_mode,
    now,
    out,
    require_project,
    safe_url,
    settings,
)

db_app = typer.Typer(help="Database schema, retention and backups.", no_args_is_help=True)


# --- db --------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the schema to the newest version (also done on every start); says which."""
    from watcher.store import make_engine, upgrade
    from watcher.store.db import schema_revision

    cfg = settings()
    require_project(cfg)
    db = cfg.database
    store = make_engine(db.url, pool_size=db.pool_size, max_overflow=db.max_overflow)
    try:
        before = schema_revision(store)
        upgrade(store)
        after = schema_revision(store)
    finally:
        store.dispose()
    where = safe_url(db.url)
    if before is None:
        said = f"created the schema (revision {after}) in {where}"
    elif before != after:
        said = f"migrated {where} from revision {before} to {after}"
    else:
        said = f"already up to date (revision {after}): {where}"
    out.print(said, markup=False, highlight=False)


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


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (it must not exist yet).")],
    config: ConfigOpt = None,
) -> None:
    """Copy the SQLite database to PATH while the service runs (PostgreSQL: use pg_dump)."""
    from watcher.store import StoreError, is_sqlite
    from watcher.store.backup import backup_sqlite, pg_dump_hint

    cfg = settings()
    store = engine(cfg)
    try:
        if not is_sqlite(store):
            raise UserError(pg_dump_hint(safe_url(cfg.database.url)))
        try:
            size = backup_sqlite(store, path)
        except StoreError as exc:
            raise UserError(str(exc)) from None
    finally:
        store.dispose()
    out.print(f"backed up {safe_url(cfg.database.url)} to {path} ({size / 1048576:.1f} MiB)", highlight=False)
