"""`watcher db backup`: a consistent copy of a SQLite database while the service keeps running.

SQLite's online backup API copies the database a slice of pages at a time, restarting a slice
when a writer changed it meanwhile, so the copy is one consistent state and the service's
writes are held up for a slice at most. The copy is written beside its destination and moved
into place only once it is complete and checked, so a half-written file never carries the
backup's name. PostgreSQL has its own tools (pg_dump); this module only says so.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from watcher.store.db import StoreError, is_sqlite

PAGES_PER_STEP = 1024  # 4 MiB at 4 KiB pages: the longest the service's writes wait


def pg_dump_hint(url_without_password: str) -> str:
    return (
        "this database is PostgreSQL: back it up with its own tool, e.g. "
        f"pg_dump --format=custom --file watcher.dump '{url_without_password}' "
        "(restore with pg_restore); watcher db backup copies SQLite databases"
    )


def backup_sqlite(engine: Engine, target: Path) -> int:
    """Copy the live database to ``target`` (which must not exist); returns its size in bytes."""
    if not is_sqlite(engine):
        raise StoreError("backup_sqlite needs a SQLite database")
    if target.exists():
        raise StoreError(f"{target} already exists: choose another name (a backup never overwrites a file)")
    if not target.parent.is_dir():
        raise StoreError(f"{target.parent} is not a folder")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    raw = engine.raw_connection()
    try:
        dst = sqlite3.connect(partial)
        try:
            raw.driver_connection.backup(dst, pages=PAGES_PER_STEP, sleep=0.005)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
        if check != "ok":
            raise StoreError(f"the backup failed its integrity check ({check}); nothing was written")
        _move_into_place(partial, target)
    except sqlite3.Error as exc:
        raise StoreError(f"backup to {target} failed: {exc}") from None
    except FileExistsError:
        raise StoreError(f"{target} already exists: choose another name") from None
    finally:
        raw.close()
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def _move_into_place(partial: Path, target: Path) -> None:
    """Give the finished copy its name, never replacing a file that appeared meanwhile."""
    try:
        os.link(partial, target)  # fails if the name is taken
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(partial, target)
