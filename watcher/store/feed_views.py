"""What `feeds list` and the health check read about feeds (:mod:`watcher.store.feeds` returns them).

Apart from that module so that `watcher run` reaches its first fetch without defining them: each
frozen dataclass compiles its generated methods when it is defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FeedView:
    id: int
    url: str
    name: str | None
    title: str | None
    origin: str
    status: str
    entries: int
    last_success: datetime | None
    last_error: str | None
    error_count: int
    next_poll: datetime | None


@dataclass(frozen=True, slots=True)
class Health:
    feeds: dict[str, int]  # status -> count (removed feeds left out)
    due: int  # active feeds whose next poll has come
    last_poll: datetime | None
