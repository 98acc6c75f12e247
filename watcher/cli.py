"""The `watcher` command line (typer + rich). Errors are one clear line, not a traceback."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from watcher.cli_profile import eval_command, profile_app, score_command
from watcher.config import ConfigError, Settings, load_settings, parse_duration
from watcher.store import StoreError, open_store

app = typer.Typer(
    help="Watch news feeds for coverage related to your seed articles, and send digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
feeds_app = typer.Typer(help="Follow, list, test and import feeds.", no_args_is_help=True)
digest_app = typer.Typer(help="Preview, send and inspect digests.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(digest_app, name="digest")
app.add_typer(db_app, name="db")
app.add_typer(profile_app, name="profile")
app.command("eval")(eval_command)
app.command("score")(score_command)

out = Console()
err = Console(stderr=True)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (default: $WATCHER_CONFIG or config/watcher.toml)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    if config is not None:
        os.environ["WATCHER_CONFIG"] = str(config)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
    )
    for noisy in ("httpx", "httpcore", "alembic", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # APScheduler warns on every tick skipped while a long poll runs; that is by design here.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.ERROR)


def _settings() -> Settings:
    return load_settings()


def _engine(settings: Settings):
    db = settings.database
    return open_store(db.url, pool_size=db.pool_size, max_overflow=db.max_overflow)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "-"


# --- run -------------------------------------------------------------------------------------
@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="One full cycle (poll, score, store, send), then exit.")
    ] = False,
) -> None:
    """Run the service (or one cycle with --once)."""
    from watcher.service import Worker

    settings = _settings()
    with Worker(settings) as worker:
        if not once:
            worker.serve()
            return
        with _progress() as progress:
            task = progress.add_task("polling", total=None)
            report = worker.run_once(progress=lambda _r: progress.advance(task))
    _print_cycle(report)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _print_cycle(report, out_dir: Path | None = None) -> None:
    failed = report.failed_feeds
    out.print(f"feeds polled: {len(report.feeds)} ({len(failed)} failed)")
    out.print(f"new items: {report.new_entries}")
    matches = report.matches
    if matches:
        for name, n in sorted(matches.items()):
            out.print(f"matches for profile {name}: {n}")
    else:
        out.print("matches: 0")
    for f in failed[:10]:
        out.print(f"  [yellow]feed error[/] {f.url}: {f.error}", highlight=False)
    for d in report.digests:
        where = ", ".join(str(p) for p in d.files) if d.files else d.status
        line = f"digest {d.digest}: {d.items} items, {where}"
        if d.error:
            line += f" ({d.error})"
        out.print(line, highlight=False)
    if not report.digests:
        out.print("digests: nothing to send")


# --- demo ------------------------------------------------------------------------------------
@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where the demo keeps its database and digests.")
    ] = Path("data/demo"),
) -> None:
    """Offline demo: serve bundled sample feeds on 127.0.0.1, run one cycle, write the digests to files."""
    from watcher.demo import run_demo

    report, outbox_dir = run_demo(out_dir, _settings())
    _print_cycle(report)
    out.print(f"digest files are in {outbox_dir}/")


# --- db --------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version (also done on every start)."""
    settings = _settings()
    _engine(settings).dispose()
    out.print(f"database is up to date: {_safe_url(settings.database.url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable url)"


# --- feeds -----------------------------------------------------------------------------------
@feeds_app.command("add")
def feeds_add(
    url: str,
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    interval: Annotated[str | None, typer.Option(help="Polling interval, e.g. 15m.")] = None,
) -> None:
    """Follow a feed (stored in the database; feeds in the config file are followed too)."""
    from watcher.fetch import FetchError, check_url
    from watcher.store.feeds import add_feed

    settings = _settings()
    try:
        check_url(url, settings.polling.allow_private_networks)
    except FetchError as exc:
        if exc.kind != "dns":
            raise UserError(f"refused: {exc}") from None
        # A name that does not resolve today may tomorrow; every fetch is checked again anyway.
        err.print(f"warning: {exc}; following it anyway", highlight=False)
    seconds = _duration(interval) if interval else None
    engine = _engine(settings)
    if add_feed(engine, url, name, seconds, _now()):
        out.print(f"following {url}")
    else:
        out.print(f"already following {url}")


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UserError(f"--interval: {exc}") from None


@feeds_app.command("remove")
def feeds_remove(url: str) -> None:
    """Stop following a feed (its stored items and matches are kept)."""
    from watcher.store.feeds import remove_feed

    settings = _settings()
    origin = remove_feed(_engine(settings), url)
    if origin is None:
        raise UserError(f"not following {url}")
    out.print(f"stopped following {url}")
    if origin == "config":
        out.print(
            f"note: it is listed in {settings.source}; remove it there too or it comes back on the next start"
        )


@feeds_app.command("list")
def feeds_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Each feed's status, last success, last error, error count and next poll."""
    from watcher.store.feeds import list_feeds

    rows = list_feeds(_engine(_settings()))
    if as_json:
        for f in rows:
            print(
                json.dumps(
                    {
                        "url": f.url,
                        "name": f.name or f.title,
                        "status": f.status,
                        "entries": f.entries,
                        "last_success": f.last_success.isoformat() if f.last_success else None,
                        "last_error": f.last_error,
                        "error_count": f.error_count,
                        "next_poll": f.next_poll.isoformat() if f.next_poll else None,
                    }
                )
            )
        return
    table = Table("feed", "status", "items", "last success", "errors", "next poll", "last error")
    for f in rows:
        style = {"ok": "green", "error": "yellow", "backoff": "yellow", "gone": "red"}.get(f.status, "")
        table.add_row(
            f.name or f.title or f.url,
            f"[{style}]{f.status}[/]",
            str(f.entries),
            _when(f.last_success),
            str(f.error_count),
            _when(f.next_poll),
            (f.last_error or "")[:80],
        )
    out.print(table)
    out.print(f"{len(rows)} feeds")


@feeds_app.command("test")
def feeds_test(
    target: Annotated[str, typer.Argument(help="A feed URL or a local file.")],
    limit: Annotated[int, typer.Option(help="Entries to show.")] = 30,
) -> None:
    """Fetch (or read), parse and score one feed without storing anything."""
    from watcher.fetch import FetchError, fetch, make_client
    from watcher.parse import parse_feed
    from watcher.pipeline import fetch_limits
    from watcher.profiles import compile_profiles

    settings = _settings()
    now = _now()
    path = Path(target)
    if path.exists():
        body, url, ctype = path.read_bytes(), None, None
    elif target.startswith(("http://", "https://")):
        with make_client(settings.polling.user_agent) as client:
            try:
                got = fetch(
                    client, target, etag=None, last_modified=None, limits=fetch_limits(settings.polling)
                )
            except FetchError as exc:
                raise UserError(str(exc)) from None
        body, url, ctype = got.body or b"", got.url, got.content_type
        out.print(f"HTTP {got.status}, {len(body)} bytes, {ctype or 'no content type'}")
    else:
        raise UserError(f"{target}: no such file, and not an http(s) URL")
    parsed = parse_feed(body, url=url, content_type=ctype, now=now)
    out.print(f"feed: {parsed.title or '(untitled)'}, {len(parsed.entries)} entries")
    if parsed.problem:
        out.print(f"[yellow]problem:[/] {parsed.problem}", highlight=False)
    for alt in parsed.alternates:
        out.print(f"  feed link found in the page: {alt}")
    scorer = compile_profiles(settings.profiles)
    table = Table("published", "title", "score", "matched")
    for e in parsed.entries[:limit]:
        scores = scorer.score(e.title, e.summary, e.source)
        best = max((s.score for s in scores), default=0.0)
        table.add_row(
            _when(e.published), e.title[:90], f"{best:.2f}", ", ".join(s.profile for s in scores if s.matched)
        )
    out.print(table)


@feeds_app.command("import-opml")
def feeds_import(file: Path) -> None:
    """Follow every feed listed in an OPML file."""
    from watcher.opml import OpmlError, read_opml
    from watcher.store.feeds import add_feed

    settings = _settings()
    try:
        found = read_opml(file.read_bytes())
    except (OSError, OpmlError) as exc:
        raise UserError(f"{file}: {exc}") from None
    engine = _engine(settings)
    added = skipped = refused = 0
    for url, title in found:
        if not url.lower().startswith(("http://", "https://")):
            refused += 1
            err.print(f"skipped {url}: not an http(s) URL", highlight=False)
            continue
        if add_feed(engine, url, title, None, _now()):
            added += 1
        else:
            skipped += 1
    out.print(f"{file}: {len(found)} feeds, {added} added, {skipped} already followed, {refused} refused")


@feeds_app.command("export-opml")
def feeds_export(
    file: Annotated[Path | None, typer.Argument(help="Write here instead of stdout.")] = None,
) -> None:
    """Write the followed feeds as OPML."""
    from watcher.opml import write_opml
    from watcher.store.feeds import list_feeds

    rows = list_feeds(_engine(_settings()))
    data = write_opml([(f.url, f.name or f.title) for f in rows], title="watcher feeds")
    if file is None:
        sys.stdout.write(data.decode())
    else:
        file.write_bytes(data)
        out.print(f"wrote {len(rows)} feeds to {file}")


# --- status ----------------------------------------------------------------------------------
@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """Health at a glance (exit 0 when the database answers): feeds by status, feeds due, digests waiting."""
    from watcher.store.feeds import health
    from watcher.store.outbox import run_counts

    settings = _settings()
    engine = _engine(settings)
    h = health(engine, _now())
    runs = run_counts(engine)
    waiting, failed = runs.get("pending", 0), runs.get("failed", 0)
    if as_json:
        print(
            json.dumps(
                {
                    "database": _safe_url(settings.database.url),
                    "feeds": h.feeds,
                    "due": h.due,
                    "last_poll": h.last_poll.isoformat() if h.last_poll else None,
                    "digests_waiting": waiting,
                    "digests_failed": failed,
                }
            )
        )
        return
    out.print(f"database: {_safe_url(settings.database.url)} (reachable)", highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(h.feeds.items())) or "none"
    out.print(f"feeds: {counts}; {h.due} due now; last poll {_when(h.last_poll)}")
    out.print(
        f"digests: {waiting} waiting to be sent or retried, {failed} failed (see `watcher digest status`)"
    )


# --- matches and digests ---------------------------------------------------------------------
@app.command()
def matches(
    limit: Annotated[int, typer.Option(help="How many.")] = 30,
    profile: Annotated[str | None, typer.Option(help="Only this profile.")] = None,
) -> None:
    """Recent matches, newest first, with the digests they went out in."""
    from watcher.store.items import recent_matches

    rows = recent_matches(_engine(_settings()), limit, profile)
    table = Table("found", "profile", "score", "title", "source", "terms", "digest")
    for m in rows:
        terms = ", ".join(str(t[0]) for t in m.terms[:5])
        table.add_row(
            _when(m.created), m.profile, f"{m.score:.2f}", m.title[:70], m.source or "", terms, m.delivered
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

    settings = _settings()
    d = settings.digest(name)
    digest = preview_digest(_engine(settings), d, _now())
    if html:
        html.write_text(render_html(digest), encoding="utf-8")
        out.print(f"wrote {html} ({len(grouped(digest).items)} stories from {len(digest.items)} matches)")
    else:
        sys.stdout.write(render_text(digest))  # as the email's text part, not re-wrapped by rich


@digest_app.command("send")
def digest_send(name: str) -> None:
    """Send this digest now (whatever its schedule)."""
    from watcher.service import Worker

    settings = _settings()
    settings.digest(name)
    # Not a polling worker, so no single-worker lock: this may run beside `watcher run`
    # (the outbox claims runs with a lease, on SQLite as on PostgreSQL).
    worker = Worker(settings)
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

    rows = list_runs(_engine(_settings()), name, limit)
    table = Table("run", "digest", "status", "items", "attempts", "created", "sent", "next try", "error")
    for r in rows:
        style = {"sent": "green", "pending": "yellow", "failed": "red"}[r.status]
        table.add_row(
            str(r.id),
            r.digest,
            f"[{style}]{r.status}[/]",
            str(r.items),
            str(r.attempts),
            _when(r.created),
            _when(r.sent),
            _when(r.next_attempt),
            (r.last_error or "")[:80],
        )
    out.print(table)
    if not rows:
        out.print("no digest has been sent yet")


def main() -> None:
    try:
        app()
    except (UserError, ConfigError, StoreError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(2)
    except SQLAlchemyError as exc:
        err.print(f"error: database: {str(exc).splitlines()[0]}", highlight=False, markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
