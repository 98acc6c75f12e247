"""Storage: SQLAlchemy models, Alembic migrations, and small repository functions."""

from watcher.store.db import SingleWorkerLock, StoreError, is_sqlite, make_engine, upgrade

__all__ = ["SingleWorkerLock", "StoreError", "is_sqlite", "make_engine", "open_store", "upgrade"]


def open_store(url: str, *, pool_size: int = 5, max_overflow: int = 5, migrate: bool = True):
    """An engine on an up-to-date schema."""
    engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    if migrate:
        upgrade(engine)
    return engine
