"""``/feedback/{token}``: the page a digest's "relevant" / "not relevant" link opens.

A GET only shows the item, why it matched, and a form: mail security scanners fetch every
link in a message, so a GET must never record anything. The form's POST records the verdict
(a later one replaces an earlier one). The token in the URL is the authorization and the
CSRF protection at once: it names one match and one verdict, and only we can sign one.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from watcher.store.browse import get_match
from watcher.store.feedback import NOTE_MAX, record_verdict
from watcher.web.respond import context, error_page, render
from watcher.web.tokens import NOT_RELEVANT, RELEVANT, BadToken

log = logging.getLogger("watcher")


async def feedback(request: Request) -> Response:
    ctx = context(request)
    token = request.path_params["token"]
    try:
        match_id, verdict = ctx.signer.read(token)
    except BadToken as exc:
        return error_page(request, 400, str(exc))
    error = note = None
    if request.method == "POST":
        form = await request.form(max_files=0, max_fields=4)
        note = form.get("note")
        note = note if isinstance(note, str) else None
        try:
            await run_in_threadpool(
                record_verdict, ctx.engine, match_id, verdict, note=note, now=ctx.clock(), via="web"
            )
        except LookupError:
            return error_page(request, 404, "This item is no longer stored, so there is nothing to record.")
        except ValueError as exc:
            error = str(exc)
        else:
            log.info("feedback: match %d marked %s on the web", match_id, verdict)
            # Post/redirect/get: reloading the confirmation does not post again.
            return RedirectResponse(request.url.path, status_code=303)
    item = await run_in_threadpool(get_match, ctx.engine, match_id)
    if item is None:
        return error_page(request, 404, "This item is no longer stored (it may have been pruned).")
    other = NOT_RELEVANT if verdict == RELEVANT else RELEVANT
    profile = ctx.settings().profiles.get(item.profile)
    return render(
        request,
        "feedback.html.j2",
        {
            "item": item,
            "verdict": verdict,
            "recorded": item.verdict == verdict and error is None,
            "other_verdict": other,
            "other_url": f"/feedback/{ctx.signer.token(match_id, other)}",
            "threshold": profile.threshold if profile else None,
            "note": note if error else item.note,
            "note_max": NOTE_MAX,
            "error": error,
        },
        status_code=400 if error else 200,
    )
