"""`watcher web`: the web side alone (e.g. beside workers that share a PostgreSQL database)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from watcher.cli_common import ConfigOpt, UserError, engine, require_project, settings
from watcher.config import WebSettings


def web_command(
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT (default: [web] listen in the config).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the web side (matches, feedback links, feeds, digests, profiles, /metrics, /healthz) alone."""
    from watcher.web.context import ConfigWatch
    from watcher.web.metrics import ServiceMetrics
    from watcher.web.server import make_context, prepare, serve_alone

    cfg = settings()
    require_project(cfg)
    if listen is not None:
        current = cfg.web.model_dump(exclude_unset=True) if cfg.web else {}
        try:
            cfg.web = WebSettings.model_validate({**current, "listen": listen})
        except ValidationError as exc:
            raise UserError(f"--listen: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    prepared = prepare(cfg)
    store = engine(cfg)
    try:
        # No scheduler here: /healthz asks the database whether a worker keeps up, and the
        # process counters of /metrics stay at zero (workers count their own work).
        ctx = make_context(prepared, store, ConfigWatch(cfg), ServiceMetrics(), None)
        serve_alone(prepared, ctx)
    finally:
        store.dispose()
