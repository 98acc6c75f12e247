"""`watcher matches` and `watcher digest …`: what matched, and the digests that carry it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from watcher.cli_common import engine, now, out, settings, when

digest_app = typer.Typer(help="Preview, send and inspect digests.", no_args_is_help=True)


# --- matches and digests ---------------------------------------------------------------------
def digest_matches(
    limit: Annotated[int, typer.Option(help="How many.")] = 30,
    profile: Annotated[str | None, typer.Option(help="Only this profile.")] = None,
) -> None:
    """Recent matches, newest first, with the digests they went out in."""
    from watcher.store.items import recent_matches

    rows = recent_matches(engine(settings()), limit, profile)
    table = Table("found", "profile", "score", "title", "source", "terms", "digest")
    for m in rows:
        terms = ", ".join(str(t[0]) for t in m.terms[:5])
        table.add_row(
            when(m.created), m.profile, f"{m.score:.2f}", m.title[:70], m.source or "", terms, m.delivered
        )
    out.print(table)
    if not rows:
        out.print("no matches yet")


@digest_app.command("preview")
def digest_preview(
    name: str,
    html: Annotated[
        Path | None, typer.Option(help="Write the HTML email here instead of printing text.")
    ] = None,
) -> None:
    """Render the next digest without sending it or marking anything sent."""
    from watcher.digest import grouped, render_html, render_text
    from watcher.store.outbox import preview_digest

    cfg = settings()
    d = cfg.digest(name)
    from watcher.profiles import compile_profiles

    digest = preview_digest(engine(cfg), d, now(), compile_profiles(cfg.profiles))
    if html:
        html.write_text(render_html(digest), encoding="utf-8")
        out.print(f"wrote {html} ({len(grouped(digest).items)} stories from {len(digest.items)} matches)")
    else:
        sys.stdout.write(render_text(digest))  # as the email's text part, not re-wrapped by rich


@digest_app.command("send")
def digest_send(name: str) -> None:
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
            + (f" ({r.error})" if r.error else "")
        )
    if any(r.status != "sent" for r in results):
        raise typer.Exit(1)


@digest_app.command("status")
def digest_status(name: Annotated[str | None, typer.Argument()] = None, limit: int = 20) -> None:
    """Recent digest runs: sent, waiting for a retry, or failed (with the reason)."""
    from watcher.store.outbox import list_runs

    rows = list_runs(engine(settings()), name, limit)
    table = Table("run", "digest", "status", "items", "attempts", "created", "sent", "next try", "error")
    for r in rows:
        style = {"sent": "green", "pending": "yellow", "failed": "red"}[r.status]
        table.add_row(
            str(r.id),
            r.digest,
            f"[{style}]{r.status}[/]",
            str(r.items),
            str(r.attempts),
            when(r.created),
            when(r.sent),
            when(r.next_attempt),
            (r.last_error or "")[:80],
        )
    out.print(table)
    if not rows:
        out.print("no digest has been sent yet")
