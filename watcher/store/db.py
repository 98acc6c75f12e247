"""Engine creation and schema migrations (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import re
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.dialects.sqlite import Insert

from watcher.redact import mask_password

MIGRATION_LOCK = 0x77617463  # "watc": the advisory lock key held while migrating


class StoreError(Exception):
    """The database cannot be used; the message says why."""


def normalize_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5, lock_timeout: float = 30.0) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # The parser's own message repeats the URL, password included: name it masked instead.
        shown = mask_password(url)
        raise StoreError(
            f"database url {shown!r} is not valid (expected sqlite:///path or postgresql://user:pass@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # timeout: how long a write waits for another process's lock (SQLite's busy timeout).
        engine = create_engine(url, connect_args={"timeout": lock_timeout})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    # pre_ping lets a worker ride out a PostgreSQL restart: dead pooled connections are replaced.
    # connect_timeout: a server that never answers (a dropped route) fails in seconds, not never.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 10},
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Takes effect on a new, empty database only (an older file keeps its mode until a full VACUUM,
    # see `watcher db prune --vacuum`): pages freed by retention go back to the file system.
    cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "watcher.store:migrations")
    return cfg


VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(None|[\"']([^\"']+)[\"'])", re.M)


@cache
def _head_revision() -> str | None:
    """The newest revision, read from the migration files; None when they are not a plain chain
    (then Alembic itself decides)."""
    revisions, parents = set(), set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    head = _head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # no table yet: a new database
        return False
    return current == [head]


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (run on every start; a no-op when current).

    A database already at the newest revision is recognised with one SELECT, without importing
    Alembic (and Mako and Pygments behind it), which would cost most of a start-up.
    """
    if _at_head(engine):
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several workers may start at once: one migrates, the others wait and find it done.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def dialect_insert(engine: Engine, table: Table) -> Insert:
    """An INSERT that knows ON CONFLICT on both backends."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)  # type: ignore[return-value]
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class SingleWorkerLock:
    """SQLite is the embedded default for one worker: a second `watcher run` on the same file is refused."""

    def __init__(self, engine: Engine) -> None:
        db = engine.url.database or ""
        self.path = Path(db + ".lock") if db and db != ":memory:" else None
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the life of the worker
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreError(
                f"another watcher worker is already running on {self.path.with_suffix('')}; "
                "SQLite supports one worker — use PostgreSQL (WATCHER_DATABASE_URL) to run several"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
