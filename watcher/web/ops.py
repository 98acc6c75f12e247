"""``/metrics`` (Prometheus text) and ``/healthz`` (200 healthy, 503 not)."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from watcher.store.browse import oldest_overdue
from watcher.web.metrics import CONTENT_TYPE, exposition
from watcher.web.respond import as_json, context

log = logging.getLogger("watcher")


def metrics(request: Request) -> Response:
    ctx = context(request)
    return Response(exposition(ctx.metrics, ctx.engine), media_type=CONTENT_TYPE)


def healthz(request: Request) -> Response:
    """Healthy when the database answers and the scheduler runs.

    In `watcher run` the scheduler is this process's own. A `watcher web` process runs none, so
    it asks the database instead whether some worker keeps up: no due feed may wait unclaimed
    for long.
    """
    ctx = context(request)
    problems: list[str] = []
    checks: dict[str, str] = {}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = "down"
        problems.append("the database does not answer")  # details go to the log, not to a public page
        log.warning(
            "healthz: the database does not answer: %s", str(exc).splitlines()[0] if str(exc) else exc
        )
    tick = ctx.settings().polling.tick
    if ctx.scheduler_problem is not None:
        problem = ctx.scheduler_problem()
        checks["scheduler"] = "running" if problem is None else "stopped"
        if problem:
            problems.append(problem)
    elif checks["database"] == "ok":
        now = ctx.clock()
        waiting = oldest_overdue(ctx.engine, now)
        patience = max(10 * tick, 600.0)
        late = (now - waiting).total_seconds() if waiting else 0.0
        checks["scheduler"] = "elsewhere" if late <= patience else "stalled"
        if late > patience:
            problems.append(f"no worker is polling: a due feed has waited {late:.0f} s")
    body = {"status": "ok" if not problems else "unhealthy", **checks, "problems": problems}
    return as_json(body, 200 if not problems else 503)
