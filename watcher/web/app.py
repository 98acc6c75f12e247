"""The ASGI app: Starlette routes, jinja2 templates (autoescaped), the guards of :mod:`security`.

Pages are server-rendered HTML that works without JavaScript; most list pages also answer
as JSON at the same URL with ``.json`` (as Datasette does), from the same values.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from watcher.web import feedback, ops, pages
from watcher.web.context import WebContext
from watcher.web.respond import error_page, template_env
from watcher.web.security import guarded


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_page(request, exc.status_code, str(exc.detail))


def _home(_request: Request) -> Response:
    return RedirectResponse("/matches", status_code=303)


def routes() -> list[Route | Mount]:
    return [
        Route("/", _home),
        Route("/matches.json", pages.matches_json),
        Route("/matches", pages.matches),
        Route("/matches/{match_id:int}/verdict", pages.set_verdict, methods=["POST"]),
        Route("/feedback/{token}", feedback.feedback, methods=["GET", "POST"]),
        Route("/feeds.json", pages.feeds_json),
        Route("/feeds", pages.feeds),
        Route("/digests.json", pages.digests_json),
        Route("/digests", pages.digests),
        Route("/profiles.json", pages.profiles_json),
        Route("/profiles", pages.profiles),
        Route("/profiles/{name}.json", pages.profile_json),
        Route("/profiles/{name}", pages.profile),
        Route("/profiles/{name}/backtest", pages.backtest_post, methods=["POST"]),
        Route("/metrics", ops.metrics),
        Route("/healthz", ops.healthz),
        Mount("/static", StaticFiles(packages=[("watcher.web", "static")]), name="static"),
    ]


def create_app(ctx: WebContext, *, secret: str) -> ASGIApp:
    """The whole web side for one process, guards included."""
    web = ctx.settings().web
    if web is None:
        raise ValueError("the web side needs a [web] section")
    app = Starlette(routes=routes(), exception_handlers={HTTPException: _http_error})
    app.state.ctx = ctx
    app.state.templates = Jinja2Templates(env=template_env())
    return guarded(app, web, secret=secret, password=ctx.password)
