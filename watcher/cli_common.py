"""What every `watcher` command group shares: the consoles, the one-line user error, settings and store."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from watcher.config import Settings, load_settings
from watcher.store import open_store

out = Console()
err = Console(stderr=True)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def settings() -> Settings:
    return load_settings()


def engine(settings: Settings):
    db = settings.database
    return open_store(db.url, pool_size=db.pool_size, max_overflow=db.max_overflow)


def now() -> datetime:
    return datetime.now(UTC)


def when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "-"


def safe_url(url: str) -> str:
    """A database URL with its password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable url)"
