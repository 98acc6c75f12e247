"""`watcher matches` and `watcher digest …`: what matched, and the digests that carry it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column

from watcher.cli_common import (
    ConfigOpt,
    JsonOpt,
    Listing,
    UserError,
    cell,
    clean,
    engine,
    iso,
    json_line,
    json_mode,
    now,
    out,
    settings,
    when,
    write_output,
)

digest_app = typer.Typer(help="Preview, send and inspect digests.", no_args_is_help=True)


# --- matches and digests ---------------------------------------------------------------------
def digest_matches(
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 30,
    profile: Annotated[str | None, typer.Option(help="Only this profile.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Recent matches, newest first, with the digests they went out in."""
    from watcher.store.items import recent_matches

    json_mode(as_json)
    cfg = settings()
    rows = recent_matches(engine(cfg), limit, profile)
    if profile and not rows and profile not in cfg.profiles:
        # A profile dropped from the config keeps its matches: only an unknown name with none is an error.
        known = ", ".join(sorted(cfg.profiles)) or "none"
        raise UserError(f"no profile named {profile!r} (configured: {known})")
    if as_json:
        for m in rows:
            json_line(
                {
                    "found": iso(m.created),
                    "profile": m.profile,
                    "score": round(m.score, 4),
                    "title": m.title,
                    "link": m.link,
                    "source": m.source,
                    "published": iso(m.published),
                    "terms": [t[0] for t in m.terms],
                    "digests": [
                        dict(zip(("digest", "status"), d.split(": ", 1), strict=True))
                        for d in m.delivered.split(", ")
                        if d != "-"
                    ],
                }
            )
        return
    listing = Listing(
        "found",
        "profile",
        "score",
        Column("title", max_width=70, overflow="ellipsis"),
        "source",
        "terms",
        "digest",
        "link",
    )
    for m in rows:
        terms = ", ".join(str(t[0]) for t in m.terms[:5])
        listing.row(
            when(m.created), m.profile, f"{m.score:.2f}", m.title, m.source, terms, m.delivered, m.link
        )
    listing.print(empty=f"no matches yet for profile {profile}" if profile else "no matches yet")


@digest_app.command("preview")
def digest_preview(
    name: str,
    html: Annotated[
        Path | None, typer.Option(help="Write the HTML email here instead of printing text.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Render the next digest without sending it or marking anything sent."""
    from watcher.digest import grouped, render_html, render_text
    from watcher.store.outbox import preview_digest
    from watcher.web.tokens import link_maker

    cfg = settings()
    d = cfg.digest(name)
    from watcher.profiles import compile_profiles

    digest = preview_digest(engine(cfg), d, now(), compile_profiles(cfg.profiles)).with_feedback(
        link_maker(cfg)
    )
    if html:
        write_output(html, render_html(digest))
        out.print(
            f"wrote {html} ({len(grouped(digest).items)} stories from {len(digest.items)} matches)",
            markup=False,
        )
    else:
        # As the email's text part, not re-wrapped by rich; control characters from feeds dropped.
        sys.stdout.write("\n".join(clean(line) for line in render_text(digest).split("\n")))


@digest_app.command("send")
def digest_send(name: str, config: ConfigOpt = None) -> None:
    """Send this digest now (whatever its schedule)."""
    from watcher.service import Worker

    cfg = settings()
    cfg.digest(name)
    # Not a polling worker, so no single-worker lock: this may run beside `watcher run`
    # (the outbox claims runs with a lease, on SQLite as on PostgreSQL).
    worker = Worker(cfg)
    try:
        results = worker.send_digests(only=name)
    finally:
        worker.close()
    if not results:
        out.print(f"digest {name}: nothing to send")
    for r in results:
        out.print(
            f"digest {name}: run {r.run_id}, {r.items} items: {r.status}"
            + (f" ({r.error})" if r.error else ""),
            markup=False,
        )
    if any(r.status not in ("sent", "split") for r in results):  # split: sent as smaller runs
        raise typer.Exit(1)


@digest_app.command("status")
def digest_status(
    name: Annotated[str | None, typer.Argument(help="Only this digest.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Recent digest runs: sent, waiting for a retry, or failed (with the reason)."""
    from watcher.store.outbox import list_runs

    json_mode(as_json)
    cfg = settings()
    rows = list_runs(engine(cfg), name, limit)
    if name and not rows:
        cfg.digest(name)  # an unknown name is an error, a known one simply has not run yet
    if as_json:
        for r in rows:
            json_line(
                {
                    "run": r.id,
                    "digest": r.digest,
                    "status": r.status,
                    "items": r.items,
                    "attempts": r.attempts,
                    "created": iso(r.created),
                    "sent": iso(r.sent),
                    "next_attempt": iso(r.next_attempt),
                    "error": r.last_error,
                }
            )
        return
    listing = Listing("run", "digest", "status", "items", "attempts", "created", "sent", "next try", "error")
    for r in rows:
        style = {"sent": "green", "pending": "yellow", "failed": "red"}.get(r.status, "")
        listing.row(
            r.id,
            r.digest,
            cell(r.status, style),
            r.items,
            r.attempts,
            when(r.created),
            when(r.sent),
            when(r.next_attempt),
            r.last_error,
        )
    listing.print(empty=f"digest {name} has not run yet" if name else "no digest has run yet")
