"""Logging set-up for the CLI and the service: one place for handlers, levels and formats."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler


def configure(console: Console, verbose: bool = False) -> None:
    """Route every logger through one handler on ``console`` (stderr)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )
    for noisy in ("httpx", "httpcore", "alembic", "mail.log", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # APScheduler warns on every tick skipped while a long poll runs; that is by design here.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.ERROR)
