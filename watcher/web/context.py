"""What the web app needs from the process that serves it, as one value."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from watcher.config import ConfigError, Settings, load_settings
from watcher.web.metrics import ServiceMetrics
from watcher.web.tokens import FeedbackSigner

log = logging.getLogger("watcher")


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConfigWatch:
    """The config as it stands, re-read when its file changes (`watcher web` has no worker to do it)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return self._settings.source.stat().st_mtime if self._settings.source else None
        except OSError:
            return None

    def __call__(self) -> Settings:
        mtime = self._stat()
        if mtime is not None and mtime != self._mtime and self._settings.source is not None:
            self._mtime = mtime
            try:
                fresh = load_settings(self._settings.source)
            except ConfigError as exc:
                log.error("web: config not reloaded, keeping the previous one: %s", exc)
            else:
                fresh.database = self._settings.database
                self._settings = fresh
        return self._settings


@dataclass
class WebContext:
    engine: Engine
    settings: Callable[[], Settings]  # the config in force (reloaded by the worker, or by ConfigWatch)
    signer: FeedbackSigner
    metrics: ServiceMetrics  # this process's counters (all zero in a web-only process)
    # None when no scheduler runs in this process (`watcher web`): health then asks the database.
    scheduler_problem: Callable[[], str | None] | None = None
    password: str | None = None  # HTTP basic password; None: no login (loopback only)
    clock: Callable[[], datetime] = field(default=utcnow)
