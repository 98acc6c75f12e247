"""What went wrong with the database, in one line a user can act on.

Storage faults are turned into recorded state or a clear line, never a traceback: a disk that
is full, a database file locked by another process or read-only, a server that cannot be
reached. ``describe`` names the fault; ``kind`` tells a caller what to do about it (wait and
retry, or stop and tell the user).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from watcher.store.db import StoreError

FULL = "full"
LOCKED = "locked"
READ_ONLY = "read_only"
UNREACHABLE = "unreachable"

_SIGNS = (
    (FULL, ("database or disk is full", "no space left on device", "could not extend file", "disk full")),
    (LOCKED, ("database is locked", "database table is locked")),
    (READ_ONLY, ("readonly database", "read-only file system", "read only database")),
    (
        UNREACHABLE,
        (
            "connection refused",
            "connection failed",
            "could not connect",
            "could not translate host name",
            "server closed the connection",
            "terminating connection",
            "the database system is starting up",
            "the database system is shutting down",
            "connection timeout",
            "timeout expired",
            "no route to host",
            "unable to open database file",
            "consuming input failed",
        ),
    ),
)

_ADVICE = {
    FULL: "the disk holding the database is full (or the database reached its size limit): nothing new "
    "is stored until space is freed; nothing is lost, the feeds are read again then",
    LOCKED: "the database is locked by another process for longer than [database] lock_timeout",
    READ_ONLY: "the database is read-only: watcher must be able to write it and its folder",
    UNREACHABLE: "the database cannot be reached",
}


class DatabaseUnavailable(StoreError):
    """The database cannot be reached (yet): down, restarting, or not started. Worth retrying."""


def kind(exc: BaseException) -> str | None:
    """``full``, ``locked``, ``read_only``, ``unreachable``, or None for anything else."""
    if isinstance(exc, DatabaseUnavailable):
        return UNREACHABLE
    text = str(getattr(exc, "orig", None) or exc).lower()
    for name, signs in _SIGNS:
        if any(s in text for s in signs):
            return name
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return UNREACHABLE
    return None


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line: what the fault means for the user, then the database's own words."""
    k = kind(exc)
    if k is None:
        return first_line(exc)
    return f"{_ADVICE[k]} ({first_line(exc)})"


def is_storage_fault(exc: BaseException) -> bool:
    return isinstance(exc, SQLAlchemyError | StoreError) and kind(exc) is not None


LOW_SPACE = 1024 * 1024  # less free than this beside a SQLite file that fails to open: the disk is full


def check_sqlite_writable(path: Path) -> None:
    """A database file (or its folder, where SQLite keeps -wal and -shm) that cannot be written is
    said at start, in one line, rather than at the first write."""
    target = path if path.exists() else path.parent
    if target.exists() and not os.access(target, os.W_OK):
        raise StoreError(f"database {path} is read-only: watcher must be able to write it and its folder")
    if path.exists() and not os.access(path.parent, os.W_OK):
        raise StoreError(
            f"the folder of database {path} is read-only: SQLite writes its -wal and -shm files there"
        )


def sqlite_open_failure(path: Path, exc: BaseException) -> StoreError:
    """Why a SQLite file did not open: a full disk says only "disk I/O error" (SQLite cannot make
    its -wal and -shm files), so the free space beside it is looked at."""
    try:
        st = os.statvfs(path.parent)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    if free is not None and free < LOW_SPACE:
        return StoreError(
            f"database {path} cannot be opened: {_ADVICE[FULL]} ({free} bytes free; {first_line(exc)})"
        )
    return StoreError(f"database {path} cannot be opened: {describe(exc)}")
