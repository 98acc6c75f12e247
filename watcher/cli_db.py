"""`watcher db …`: the database schema."""

from __future__ import annotations

import typer

from watcher.cli_common import ConfigOpt, engine, out, safe_url, settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


# --- db --------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the schema to the newest version (also done on every start)."""
    cfg = settings()
    engine(cfg).dispose()
    out.print(f"database is up to date: {safe_url(cfg.database.url)}")
