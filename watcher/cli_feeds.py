"""`watcher feeds …`: follow, list, test, import and export feeds."""

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
    describe_os_error,
    engine,
    err,
    esc,
    iso,
    json_line,
    json_mode,
    now,
    out,
    settings,
    when,
    write_output,
)
from watcher.config import format_duration, parse_duration

feeds_app = typer.Typer(help="Follow, list, test and import feeds.", no_args_is_help=True)


# --- feeds -----------------------------------------------------------------------------------
@feeds_app.command("add")
def feeds_add(
    url: str,
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    interval: Annotated[str | None, typer.Option(help="Polling interval, e.g. 15m.")] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Fetch it first and refuse what is not a feed.")
    ] = True,
    config: ConfigOpt = None,
) -> None:
    """Follow a feed (stored in the database; feeds in the config file are followed too).

    The URL is fetched first: an unreachable address or a page that is not a feed is refused
    (a web page that advertises its feed names it). --no-check adds it without a look.
    """
    from watcher.fetch import FetchError, check_url
    from watcher.store.feeds import add_feed

    cfg = settings()
    try:
        check_url(url, cfg.polling.allow_private_networks)
    except FetchError as exc:
        if exc.kind != "dns" or check:
            raise UserError(f"refused: {exc}") from None
        # A name that does not resolve today may tomorrow; every fetch is checked again anyway.
        err.print(f"warning: {clean(exc)}; following it anyway", highlight=False, markup=False)
    seconds = _duration(interval, cfg) if interval else None
    store = engine(cfg)
    what = ""
    if check:
        url, what = _check_feed(cfg, url)
    if add_feed(store, url, name, seconds, now()):
        out.print(f"following {url}{what}", markup=False, highlight=False)
    else:
        out.print(f"already following {url}", markup=False, highlight=False)


def _check_feed(cfg, url: str) -> tuple[str, str]:
    """Fetch and parse ``url``; returns the URL to follow and a few words on what it holds."""
    from watcher.fetch import FetchError

    try:
        _got, parsed = _fetch_parse(cfg, url)
    except FetchError as exc:
        # The message names the URL already.
        raise UserError(f"{exc}; not added (check the address, or add it anyway with --no-check)") from None
    if parsed.entries or not parsed.problem:
        return url, f" ({clean(parsed.title) or 'untitled'}: {len(parsed.entries)} entries now)"
    if parsed.alternates:
        offered = parsed.alternates[0]
        if sys.stdin.isatty() and typer.confirm(
            f"{url} is a web page, not a feed; it advertises {offered}. Follow that instead?", default=True
        ):
            return _check_feed(cfg, offered)
        listed = ", ".join(clean(a) for a in parsed.alternates)
        raise UserError(
            f"{url} is a web page, not a feed; it advertises {listed}: "
            f"follow that with `watcher feeds add {clean(offered)}`"
        )
    raise UserError(f"{url}: not a feed ({parsed.problem}); not added (add it anyway with --no-check)")


def _fetch_parse(cfg, url: str):
    from watcher.fetch import fetch, make_client
    from watcher.parse import parse_feed
    from watcher.pipeline import fetch_limits

    with make_client(cfg.polling.user_agent) as client:
        got = fetch(client, url, etag=None, last_modified=None, limits=fetch_limits(cfg.polling))
    body = got.body or b""
    return got, parse_feed(
        body, url=got.url, content_type=got.content_type, now=now(), parser=cfg.polling.parser
    )


def _duration(value: str, cfg) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UserError(f"--interval: {exc}") from None
    lo, hi = cfg.polling.min_interval, cfg.polling.max_interval
    if not lo <= seconds <= hi:
        raise UserError(
            f"--interval {value}: outside [polling] min_interval..max_interval "
            f"({format_duration(lo)}..{format_duration(hi)}) in {cfg.source}, so it would never apply"
        )
    return seconds


@feeds_app.command("remove")
def feeds_remove(url: str, config: ConfigOpt = None) -> None:
    """Stop following a feed (its stored items and matches are kept)."""
    from watcher.store.feeds import remove_feed

    cfg = settings()
    origin = remove_feed(engine(cfg), url)
    if origin is None:
        raise UserError(f"not following {url}")
    out.print(f"stopped following {url}")
    if origin == "config":
        out.print(
            f"note: it is listed in {cfg.source}; remove it there too or it comes back on the next start"
        )


@feeds_app.command("list")
def feeds_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Each feed's status, last success, last error, error count and next poll."""
    from watcher.store.feeds import list_feeds

    json_mode(as_json)
    rows = list_feeds(engine(settings()))
    if as_json:
        for f in rows:
            json_line(
                {
                    "url": f.url,
                    "name": f.name or f.title,
                    "status": f.status,
                    "entries": f.entries,
                    "last_success": iso(f.last_success),
                    "last_error": f.last_error,
                    "error_count": f.error_count,
                    "next_poll": iso(f.next_poll),
                }
            )
        return
    listing = Listing(
        Column("feed", max_width=40, overflow="fold"),
        "status",
        "items",
        "last success",
        "errors",
        "next poll",
        "last error",
        "url",
    )
    styles = {"ok": "green", "new": "cyan", "error": "yellow", "backoff": "yellow", "gone": "red"}
    for f in rows:
        listing.row(
            f.name or f.title or "",
            cell(f.status, styles.get(f.status, "")),
            f.entries,
            when(f.last_success),
            f.error_count,
            when(f.next_poll),
            f.last_error,
            f.url,
        )
    listing.print(empty="no feeds followed yet: add one with `watcher feeds add URL` or in the config")
    if rows and out.is_terminal:
        out.print(f"{len(rows)} feeds")


@feeds_app.command("test")
def feeds_test(
    target: Annotated[str, typer.Argument(help="A feed URL, a file:// URL or a local file.")],
    limit: Annotated[int, typer.Option(min=1, help="Entries to show.")] = 30,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Fetch (or read), parse and score one feed without storing anything.

    With --json: one object per entry on stdout (published, title, link, score, matched); what is
    said about the feed itself (HTTP status, title, a problem) goes to stderr.

    Exits 1 when nothing in it could be read as a feed (an HTML page, an error page).
    """
    from watcher.fetch import FetchError
    from watcher.parse import parse_feed
    from watcher.profiles import compile_profiles

    json_mode(as_json)
    say = err if as_json else out  # keep stdout pure JSON lines
    cfg = settings()
    path = _local_path(target)
    if path is not None:
        try:
            body, url, ctype = path.read_bytes(), None, None
        except OSError as exc:
            raise UserError(f"{path}: {describe_os_error(exc, path)}") from None
    elif target.lower().startswith(("http://", "https://")):
        try:
            got, parsed = _fetch_parse(cfg, target)
        except FetchError as exc:
            raise UserError(str(exc)) from None
        size, ctype = len(got.body or b""), got.content_type
        say.print(f"HTTP {got.status}, {size} bytes, {esc(ctype or 'no content type')}", highlight=False)
    else:
        raise UserError(f"{target}: no such file, and not an http(s) URL")
    if path is not None:
        parsed = parse_feed(body, url=url, content_type=ctype, now=now(), parser=cfg.polling.parser)
    say.print(f"feed: {clean(parsed.title) or '(untitled)'}, {len(parsed.entries)} entries", markup=False)
    if parsed.problem:
        say.print(f"[yellow]problem:[/] {esc(parsed.problem)}", highlight=False)
    for alt in parsed.alternates:
        say.print(f"  feed link found in the page: {clean(alt)}", markup=False)
    scorer = compile_profiles(cfg.profiles)
    if as_json:
        for e in parsed.entries[:limit]:
            scores = scorer.score(e.title, e.summary, e.source)
            json_line(
                {
                    "published": iso(e.published),
                    "title": e.title,
                    "link": e.link,
                    "score": round(max((s.score for s in scores), default=0.0), 3),
                    "matched": [s.profile for s in scores if s.matched],
                }
            )
        if not parsed.entries and parsed.problem:
            raise typer.Exit(1)
        return
    listing = Listing("published", Column("title", max_width=90, overflow="ellipsis"), "score", "matched")
    for e in parsed.entries[:limit]:
        scores = scorer.score(e.title, e.summary, e.source)
        best = max((s.score for s in scores), default=0.0)
        listing.row(
            when(e.published), e.title, f"{best:.2f}", ", ".join(s.profile for s in scores if s.matched)
        )
    listing.print()
    if not parsed.entries and parsed.problem:
        raise typer.Exit(1)


def _local_path(target: str) -> Path | None:
    """The file ``target`` names (a path or a file:// URL), or None for anything else."""
    if target.lower().startswith("file:"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise UserError(f"{target}: only local file:// URLs can be read")
        path = Path(url2pathname(parts.path))
        if not path.exists():
            raise UserError(f"{path}: no such file")
        return path
    path = Path(target)
    return path if path.exists() else None


@feeds_app.command("import-opml")
def feeds_import(file: Path, config: ConfigOpt = None) -> None:
    """Follow every feed listed in an OPML file."""
    from watcher.opml import OpmlError, read_opml
    from watcher.store.feeds import add_feed

    cfg = settings()
    try:
        found = read_opml(file.read_bytes())
    except OSError as exc:
        raise UserError(f"{file}: {describe_os_error(exc, file)}") from None
    except OpmlError as exc:
        raise UserError(f"{file}: {exc}") from None
    store = engine(cfg)
    added = skipped = refused = 0
    for url, title in found:
        if not url.lower().startswith(("http://", "https://")):
            refused += 1
            err.print(f"skipped {clean(url)}: not an http(s) URL", highlight=False, markup=False)
            continue
        if add_feed(store, url, title, None, now()):
            added += 1
        else:
            skipped += 1
    out.print(
        f"{file}: {len(found)} feeds, {added} added, {skipped} already followed, {refused} refused",
        markup=False,
    )


@feeds_app.command("export-opml")
def feeds_export(
    file: Annotated[Path | None, typer.Argument(help="Write here instead of stdout.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the followed feeds as OPML."""
    from watcher.opml import write_opml
    from watcher.store.feeds import list_feeds

    rows = list_feeds(engine(settings()))
    data = write_opml([(f.url, f.name or f.title) for f in rows], title="watcher feeds")
    if file is None:
        sys.stdout.write(data.decode())
    else:
        write_output(file, data)
        out.print(f"wrote {len(rows)} feeds to {file}", markup=False)
