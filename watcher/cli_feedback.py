"""`watcher feedback …`: record and list readers' verdicts without the web side.

The same verdicts the digest links record (watcher.store.feedback): one per
match, a later one replaces the earlier.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column

from watcher.cli_common import (
    ConfigOpt,
    JsonOpt,
    Listing,
    UserError,
    cell,
    engine,
    json_lines,
    json_mode,
    now,
    settings,
    when,
)

feedback_app = typer.Typer(
    help="Record and list verdicts on matches (relevant / not relevant).", no_args_is_help=True
)


@feedback_app.command("list")
def feedback_list(
    as_json: JsonOpt = False,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Only this profile.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most this many.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Recorded verdicts, newest first: link, title, profile, verdict, when."""
    from watcher.store.feedback import list_verdicts

    json_mode(as_json)
    cfg = settings()
    rows = list_verdicts(engine(cfg), profile=profile, limit=limit)
    if profile and not rows and profile not in cfg.profiles:
        # A profile dropped from the config keeps its verdicts: only an unknown name with none is an error.
        raise UserError(
            f"no profile named {profile!r} (configured: {', '.join(sorted(cfg.profiles)) or 'none'})"
        )
    if as_json:
        json_lines(v.to_json() for v in rows)
        return
    listing = Listing(
        "at",
        "profile",
        "verdict",
        "score",
        Column("title", max_width=70, overflow="ellipsis"),
        "link",
        "via",
        Column("note", max_width=40, overflow="ellipsis"),
    )
    for v in rows:
        listing.row(
            when(v.at),
            v.profile,
            cell(v.verdict, "green" if v.verdict == "relevant" else "red"),
            f"{v.score:.2f}",
            v.title,
            v.link or "",
            v.via,
            v.note or "",
        )
    # Feed text is shown literally (never as markup); piped, the rows are whole tab-separated lines.
    listing.print(
        empty="no verdicts yet: use the links in a digest, or `watcher feedback add LINK --relevant`"
    )


@feedback_app.command("add")
def feedback_add(
    link: Annotated[str, typer.Argument(help="The item's link, as in the digest.")],
    relevant: Annotated[bool, typer.Option("--relevant", help="The item belongs in the digest.")] = False,
    not_relevant: Annotated[bool, typer.Option("--not-relevant", help="It does not.")] = False,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Which profile's match (when several matched it).")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Why, in a few words (kept with the verdict).")
    ] = None,
    match: Annotated[
        int | None, typer.Option("--match", help="Which match, when one link names several items.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Record a verdict on a matched item; a later verdict on the same item replaces the earlier."""
    from watcher.store.feedback import find_match, link_is_stored, record_verdict

    if relevant == not_relevant:
        raise UserError("give exactly one of --relevant or --not-relevant")
    verdict = "relevant" if relevant else "not_relevant"
    store = engine(settings())
    try:
        found = find_match(store, link, profile)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not found:
        if profile is not None and find_match(store, link):
            others = sorted({m.profile for m in find_match(store, link)})
            raise UserError(f"{link} did not match profile {profile!r} (it matched: {', '.join(others)})")
        if link_is_stored(store, link):
            raise UserError(f"{link} was stored but matched no profile: there is no match to judge")
        raise UserError(f"no stored item has the link {link}")
    if match is not None:
        found = [m for m in found if m.match_id == match]
        if not found:
            raise UserError(f"match {match} is not a match of {link}")
    profiles = sorted({m.profile for m in found})
    if len(profiles) > 1:
        raise UserError(f"{link} matched several profiles ({', '.join(profiles)}): choose one with --profile")
    if len(found) > 1:  # one page for several items (a daily round-up): say which
        listed = "; ".join(f"match {m.match_id}: {m.title[:60]!r}" for m in found[:5])
        raise UserError(f"{link} names {len(found)} matched items ({listed}): choose one with --match ID")
    try:
        v = record_verdict(store, found[0].match_id, verdict, note=note, now=now(), via="cli")
    except (LookupError, ValueError) as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"recorded: {v.verdict} for {v.title!r} (profile {v.profile}, score {v.score:.2f})")
