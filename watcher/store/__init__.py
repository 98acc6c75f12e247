"""Storage: SQLAlchemy models, Alembic migrations, and small repository functions."""

from watcher.store.db import SingleWorkerLock, StoreError, is_sqlite, make_engine, upgrade

__all__ = ["SingleWorkerLock", "StoreError", "is_sqlite", "make_engine", "open_store", "upgrade"]


def open_store(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    migrate: bool = True,
    lock_timeout: float = 30.0,
):
    """An engine on an up-to-date schema.

    Raises ``DatabaseUnavailable`` when the database cannot be reached (worth retrying), and a
    ``StoreError`` naming the problem when it cannot be used (a read-only file, say).
    """
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from watcher.store import faults

    engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow, lock_timeout=lock_timeout)
    file = (
        Path(engine.url.database)
        if is_sqlite(engine) and engine.url.database not in (None, ":memory:")
        else None
    )
    if file is not None:
        faults.check_sqlite_writable(file)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        engine.dispose()
        if file is not None:
            raise faults.sqlite_open_failure(file, exc) from None
        where = engine.url.render_as_string(hide_password=True)
        raise faults.DatabaseUnavailable(
            f"database {where} is unreachable: {faults.first_line(exc)}"
        ) from None
    if migrate:
        upgrade(engine)
    return engine
