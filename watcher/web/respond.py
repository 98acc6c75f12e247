"""How pages answer: templates (autoescaped), JSON, error pages. Shared by every route module."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from watcher.digest.text import as_utc, iso, readable_time, safe_link
from watcher.web.context import WebContext


def _when(moment: datetime | None) -> str:
    return readable_time(moment) if moment else "—"


def template_env() -> Environment:
    env = Environment(
        loader=PackageLoader("watcher.web", "templates"),
        autoescape=True,  # every value is text; feed titles can carry anything
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["safe_link"] = safe_link  # only http(s) links become an href
    env.filters["iso"] = lambda m: iso(as_utc(m)) if m else ""
    env.filters["score"] = lambda x: f"{x:.2f}"
    env.filters["signed"] = lambda x: f"{x:+.2f}"
    env.filters["percent"] = lambda x: "—" if x is None else f"{100 * x:.0f}%"
    env.filters["verdict_label"] = lambda v: {"relevant": "relevant", "not_relevant": "not relevant"}.get(
        v or "", "no verdict"
    )
    return env


# Which navigation entry a template belongs to (the feedback and error pages: none).
_SECTIONS = {name: name for name in ("matches", "feeds", "digests", "profiles")} | {"profile": "profiles"}


def render(request: Request, name: str, values: dict[str, Any], status_code: int = 200) -> Response:
    """An HTML page; ``csrftoken()`` in a template puts the form token in (and sets its cookie)."""
    templates: Jinja2Templates = request.app.state.templates
    csrf = request.scope.get("csrftoken")
    section = _SECTIONS.get(name.split(".")[0], "")
    values = {"csrftoken": csrf or (lambda: ""), "nav": section, **values}
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def as_json(data: Any, status_code: int = 200) -> Response:
    body = json.dumps(data, default=_default, ensure_ascii=False, indent=1)
    return Response(body, status_code=status_code, media_type="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(as_utc(value))
    raise TypeError(f"{type(value).__name__} is not JSON")


def error_page(request: Request, status_code: int, message: str) -> Response:
    if request.url.path.endswith(".json"):
        return as_json({"error": message}, status_code)
    return render(request, "error.html.j2", {"status": status_code, "message": message}, status_code)


def context(request: Request) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
