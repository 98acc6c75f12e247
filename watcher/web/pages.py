"""The pages: latest matches (with verdict buttons), feed health, digest runs, profiles and backtests.

Each GET page has a ``.json`` twin built from the same values. Database work runs in
Starlette's thread pool (SQLAlchemy here is synchronous).
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import tomlkit
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from watcher.profiles import ProfileSpec, spec_to_toml
from watcher.profiles.backtest import BacktestResult, Change, VerdictStats, backtest, with_threshold
from watcher.store.browse import MatchFilter, MatchItem, counts, list_matches, profiles_with_matches
from watcher.store.feedback import VERDICTS, record_verdict
from watcher.store.feeds import list_feeds
from watcher.store.items import stored_items
from watcher.store.outbox import list_runs
from watcher.web.respond import as_json, context, error_page, render

log = logging.getLogger("watcher")

MAX_LIMIT = 500
BACKTEST_DAYS = 30  # default window of stored items a backtest re-scores
BACKTEST_MAX_ITEMS = 20_000
SHOWN_CHANGES = 100


class BadQuery(ValueError):
    """A query parameter that cannot be used; answered with 400 and the message."""


# --- matches ---------------------------------------------------------------------------------


def _match_filter(request: Request) -> MatchFilter:
    q = request.query_params
    day = None
    if q.get("day"):
        try:
            day = date.fromisoformat(q["day"])
        except ValueError:
            raise BadQuery(f"day {q['day']!r} is not a date such as 2026-11-20") from None
    verdict = q.get("verdict") or None
    if verdict not in (None, "none", *VERDICTS):
        raise BadQuery("verdict is relevant, not_relevant or none")
    try:
        limit = int(q.get("limit") or 100)
    except ValueError:
        raise BadQuery("limit is a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit is between 1 and {MAX_LIMIT}")
    return MatchFilter(profile=q.get("profile") or None, day=day, verdict=verdict, limit=limit)


def match_json(m: MatchItem) -> dict[str, Any]:
    return {
        "id": m.id,
        "profile": m.profile,
        "score": round(m.score, 4),
        "why": [{"term": t, "contribution": c} for t, c in m.terms],
        "found": m.found,
        "title": m.title,
        "link": m.link,
        "source": m.source,
        "feed": m.feed_url,
        "published": m.published,
        "digests": list(m.digests),
        "withheld": m.withheld,
        "verdict": m.verdict,
        "note": m.note,
        "verdict_at": m.verdict_at,
    }


def _load_matches(request: Request) -> tuple[MatchFilter, list[MatchItem]]:
    f = _match_filter(request)
    return f, list_matches(context(request).engine, f)


def matches_json(request: Request) -> Response:
    try:
        f, rows = _load_matches(request)
    except BadQuery as exc:
        return error_page(request, 400, str(exc))
    return as_json({"filter": _filter_json(f), "matches": [match_json(m) for m in rows]})


def _filter_json(f: MatchFilter) -> dict[str, Any]:
    return {"profile": f.profile, "day": f.day.isoformat() if f.day else None, "verdict": f.verdict}


def matches(request: Request) -> Response:
    try:
        f, rows = _load_matches(request)
    except BadQuery as exc:
        return error_page(request, 400, str(exc))
    ctx = context(request)
    settings = ctx.settings()
    known = sorted(set(settings.profiles) | set(profiles_with_matches(ctx.engine)))
    thresholds = {name: spec.threshold for name, spec in settings.profiles.items()}
    query = request.url.query
    return render(
        request,
        "matches.html.j2",
        {
            "rows": rows,
            "filter": _filter_json(f),
            "profiles": known,
            "thresholds": thresholds,
            "here": request.url.path + (f"?{query}" if query else ""),
            "json_url": "/matches.json" + (f"?{query}" if query else ""),
        },
    )


def _local(path: str | None, default: str) -> str:
    """Only a path on this site is a place to go back to (no open redirect)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return default


async def set_verdict(request: Request) -> Response:
    """The verdict buttons of the matches page (CSRF-checked by the middleware)."""
    ctx = context(request)
    form = await request.form(max_files=0, max_fields=8)
    verdict = form.get("verdict")
    note = form.get("note")
    match_id = request.path_params["match_id"]
    try:
        await run_in_threadpool(
            record_verdict,
            ctx.engine,
            match_id,
            verdict if isinstance(verdict, str) else "",
            note=note if isinstance(note, str) else None,
            now=ctx.clock(),
            via="web",
        )
    except LookupError:
        return error_page(request, 404, f"match {match_id} is not stored")
    except ValueError as exc:
        return error_page(request, 400, str(exc))
    log.info("feedback: match %d marked %s on the web", match_id, verdict)
    back = form.get("next")
    return RedirectResponse(_local(back if isinstance(back, str) else None, "/matches"), status_code=303)


# --- feeds and digests -----------------------------------------------------------------------


def _feeds(request: Request) -> list[dict[str, Any]]:
    return [
        {
            "url": f.url,
            "name": f.name or f.title,
            "status": f.status,
            "entries": f.entries,
            "last_success": f.last_success,
            "last_error": f.last_error,
            "error_count": f.error_count,
            "next_poll": f.next_poll,
        }
        for f in list_feeds(context(request).engine)
    ]


def feeds_json(request: Request) -> Response:
    return as_json({"feeds": _feeds(request)})


def feeds(request: Request) -> Response:
    rows = _feeds(request)
    by_status: dict[str, int] = {}
    for f in rows:
        by_status[f["status"]] = by_status.get(f["status"], 0) + 1
    return render(request, "feeds.html.j2", {"rows": rows, "by_status": sorted(by_status.items())})


def _digests(request: Request) -> dict[str, Any]:
    ctx = context(request)
    configured = [
        {
            "name": d.name,
            "channel": d.channel if d.channel == "email" else f"webhook ({d.format})",
            "schedule": d.schedule,
            "profiles": d.profiles,
        }
        for d in ctx.settings().digests
    ]
    runs = [
        {
            "id": r.id,
            "digest": r.digest,
            "status": r.status,
            "items": r.items,
            "attempts": r.attempts,
            "created": r.created,
            "sent": r.sent,
            "next_attempt": r.next_attempt,
            "last_error": r.last_error,
        }
        for r in list_runs(ctx.engine, limit=100)
    ]
    return {"digests": configured, "runs": runs}


def digests_json(request: Request) -> Response:
    return as_json(_digests(request))


def digests(request: Request) -> Response:
    return render(request, "digests.html.j2", _digests(request))


# --- profiles and backtests ------------------------------------------------------------------


def _profiles(request: Request) -> list[dict[str, Any]]:
    ctx = context(request)
    c = counts(ctx.engine)
    out = []
    for name, spec in sorted(ctx.settings().profiles.items()):
        relevant = c.verdicts.get((name, "relevant"), 0)
        judged = relevant + c.verdicts.get((name, "not_relevant"), 0)
        out.append(
            {
                "name": name,
                "description": spec.description,
                "threshold": spec.threshold,
                "matches": c.matches.get(name, 0),
                "judged": judged,
                "relevant": relevant,
                "precision": relevant / judged if judged else None,
            }
        )
    return out


def profiles_json(request: Request) -> Response:
    return as_json({"profiles": _profiles(request)})


def profiles(request: Request) -> Response:
    return render(request, "profiles.html.j2", {"rows": _profiles(request)})


@dataclass(frozen=True, slots=True)
class _Proposal:
    spec: ProfileSpec
    label: str  # what changed, in words
    days: int  # how many days of stored items to re-score


def _days(raw: object) -> int:
    try:
        days = int(raw) if isinstance(raw, str) and raw else BACKTEST_DAYS
    except ValueError:
        raise BadQuery("days is a number") from None
    if not 1 <= days <= 3650:
        raise BadQuery("days is between 1 and 3650")
    return days


def _threshold_proposal(request: Request, current: ProfileSpec) -> _Proposal | None:
    raw = request.query_params.get("threshold")
    if not raw:
        return None
    try:
        spec = with_threshold(current, float(raw))
    except (ValueError, ValidationError):
        raise BadQuery(f"threshold {raw!r} is not a number of 0 or more") from None
    label = f"threshold {spec.threshold:g} instead of {current.threshold:g}"
    return _Proposal(spec, label, _days(request.query_params.get("days")))


def parse_pasted(name: str, text: str) -> ProfileSpec:
    """A profile from pasted TOML: the table's body, or a whole ``[profiles.NAME]`` table."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadQuery(f"the pasted profile is not valid TOML: {exc}") from None
    if isinstance(data.get("profiles"), dict):
        tables = data["profiles"]
        if name in tables:
            data = tables[name]
        elif len(tables) == 1:
            data = next(iter(tables.values()))
        else:
            raise BadQuery(f"the pasted text has several profiles and none named {name!r}")
    try:
        return ProfileSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "profile"
        raise BadQuery(f"the pasted profile is not usable: {where}: {first['msg']}") from None


def _run_backtest(request: Request, name: str, current: ProfileSpec, proposal: _Proposal) -> BacktestResult:
    """Re-score the window's stored items, and every judged item whatever its age."""
    ctx = context(request)
    since = ctx.clock() - timedelta(days=proposal.days)
    items = stored_items(ctx.engine, name, since=since, limit=BACKTEST_MAX_ITEMS)
    seen = {it.id for it in items}
    items += [it for it in stored_items(ctx.engine, name, judged=True, limit=None) if it.id not in seen]
    return backtest(items, proposal.spec, profile=name, baseline=current)


def _change_json(c: Change) -> dict[str, Any]:
    it = c.item
    return {
        "title": it.title,
        "link": it.link,
        "source": it.source,
        "published": it.published,
        "before": c.before,
        "after": round(c.after.score, 4),
        "verdict": it.verdict,
        "explain": c.explain,
    }


def _stats_json(s: VerdictStats) -> dict[str, Any]:
    return {
        "judged": s.judged,
        "matched": s.matched,
        "relevant": s.relevant,
        "precision": s.precision,
        "relevant_kept": s.relevant_kept,
    }


def _backtest_json(r: BacktestResult, p: _Proposal) -> dict[str, Any]:
    return {
        "change": p.label,
        "days": p.days,
        "items": r.items,
        "matched_before": len(r.kept) + len(r.dropped),
        "matched_after": len(r.kept) + len(r.added),
        "added_total": len(r.added),
        "dropped_total": len(r.dropped),
        "added": [_change_json(c) for c in r.added[:SHOWN_CHANGES]],
        "dropped": [_change_json(c) for c in r.dropped[:SHOWN_CHANGES]],
        "verdicts_before": _stats_json(r.before),
        "verdicts_after": _stats_json(r.after),
    }


def _profile_page(
    request: Request,
    name: str,
    proposal: _Proposal | None,
    *,
    as_data: bool = False,
    pasted: str | None = None,
    error: str | None = None,
) -> Response:
    ctx = context(request)
    spec = ctx.settings().profiles.get(name)
    if spec is None:
        return error_page(request, 404, f"no profile named {name!r} in the config")
    summary = next(p for p in _profiles(request) if p["name"] == name)
    result = _run_backtest(request, name, spec, proposal) if proposal else None
    data: dict[str, Any] = {
        "profile": summary,
        "backtest": _backtest_json(result, proposal) if result and proposal else None,
    }
    if as_data:
        return as_json(data)
    return render(
        request,
        "profile.html.j2",
        {
            **data,
            "name": name,
            "spec": spec,
            "result": result,
            "threshold": request.query_params.get("threshold") or f"{spec.threshold:g}",
            "days": proposal.days if proposal else BACKTEST_DAYS,
            "pasted": pasted if pasted is not None else tomlkit.dumps(spec_to_toml(spec)),
            "error": error,
        },
        status_code=400 if error else 200,
    )


def _profile_get(request: Request, as_data: bool) -> Response:
    name = request.path_params["name"]
    spec = context(request).settings().profiles.get(name)
    if spec is None:
        return error_page(request, 404, f"no profile named {name!r} in the config")
    try:
        proposal = _threshold_proposal(request, spec)
    except BadQuery as exc:
        return error_page(request, 400, str(exc))
    return _profile_page(request, name, proposal, as_data=as_data)


def profile(request: Request) -> Response:
    return _profile_get(request, as_data=False)


def profile_json(request: Request) -> Response:
    return _profile_get(request, as_data=True)


async def backtest_post(request: Request) -> Response:
    """Backtest a pasted, edited profile (a POST, as the text can be long; nothing is changed)."""
    name = request.path_params["name"]
    form = await request.form(max_files=0, max_fields=8)
    text = form.get("profile")
    text = text if isinstance(text, str) else ""
    try:
        proposal = _Proposal(parse_pasted(name, text), "the pasted profile", _days(form.get("days")))
    except BadQuery as exc:
        return await run_in_threadpool(_profile_page, request, name, None, pasted=text, error=str(exc))
    return await run_in_threadpool(_profile_page, request, name, proposal, pasted=text)
