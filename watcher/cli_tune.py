"""`watcher profile diff`, `watcher profile apply` and the verdict half of `profile suggest`.

The feedback loop on the command line: what an edited profile changes on the
stored items (diff), what the recorded verdicts suggest and what that would do
(suggest), and writing an accepted suggestion into the config (apply), keeping
the user's comments and layout and never overwriting an edit silently.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import tomlkit
import typer
from pydantic import ValidationError

from watcher.cli_common import UserError, json_line, now
from watcher.cli_profile import ConfigOpt, _config_file, _describe, _load_profiles, profile_app
from watcher.profiles import ProfileSpec
from watcher.profiles.backtest import BacktestResult, Change, backtest
from watcher.profiles.tune import Effect, Tweak, apply_tweaks, fingerprint, measure, propose


def _store():  # type: ignore[no-untyped-def]
    from watcher.cli_common import engine, settings

    return engine(settings())


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


# --- diff ------------------------------------------------------------------------------------
@profile_app.command("diff")
def diff(
    since: Annotated[
        str, typer.Option("--since", help="Stored items fetched within this long (e.g. 30d, 12h).")
    ] = "30d",
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Only this profile.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per added or dropped item.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Re-score stored items with the profiles as they now stand in config: what would be added or dropped."""
    from watcher.config import parse_duration
    from watcher.store.items import stored_items

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise UserError(f"--since: {exc}") from None
    path = _config_file(config)
    specs = _load_profiles(path)
    if profile is not None:
        if profile not in specs:
            raise UserError(
                f"no profile named {profile!r} in {path} (configured: {', '.join(sorted(specs)) or 'none'})"
            )
        specs = {profile: specs[profile]}
    if not specs:
        raise UserError(f"no profiles in {path}; run `watcher profile derive`")
    store = _store()
    start = now() - timedelta(seconds=window)
    for name, spec in sorted(specs.items()):
        result = backtest(stored_items(store, name, since=start), spec, profile=name)
        if as_json:
            for kind, changes in (("added", result.added), ("dropped", result.dropped)):
                for c in changes:
                    print(json.dumps(_change_json(name, kind, c), ensure_ascii=False))
        else:
            _print_diff(result, since)


def _change_json(profile: str, kind: str, c: Change) -> dict[str, Any]:
    return {
        "profile": profile,
        "change": kind,
        "link": c.item.link,
        "title": c.item.title,
        "score_before": c.before,
        "score": c.after.score,
        "matched": c.after.matched,
        "reason": c.after.reason,
        "terms": [[t, w] for t, w in c.after.hits],
        "verdict": c.item.verdict,
    }


def _print_diff(r: BacktestResult, since: str) -> None:
    typer.echo(
        f"profile {r.profile}: {r.items} stored items from the last {since}: "
        f"{len(r.added)} would be added, {len(r.dropped)} dropped, {len(r.kept)} kept",
    )
    if r.before.judged:
        typer.echo(
            f"  precision on {r.before.judged} recorded verdicts: "
            f"{_pct(r.before.precision)} → {_pct(r.after.precision)}"
            f"; judged relevant still matched: {r.after.relevant}/{r.after.relevant_total}",
        )
    for sign, changes in (("+", r.added), ("-", r.dropped)):
        for c in changes:
            verdict = f" [{c.item.verdict}]" if c.item.verdict else ""
            before = f"{c.before:.2f}" if c.before is not None else "-"
            typer.echo(
                f"{sign} {before} → {c.after.score:.2f}  {c.item.title}{verdict}",
            )
            if c.item.link:
                typer.echo(f"    {c.item.link}")
            for line in c.explain.splitlines():
                typer.echo(f"    {line}")


# --- suggest (from verdicts) -----------------------------------------------------------------
def suggest_from_verdicts(
    name: str, spec: ProfileSpec, items: Path | None, *, since: str = "30d", as_json: bool = False
) -> int | None:
    """Print what the recorded verdicts suggest for ``name``, measured; save it for `profile apply`.

    ``items``, when it is labeled JSONL (a ``grade`` per line), measures each change on it too.
    With ``as_json`` each proposed change is one JSON line on stdout and the prose goes to stderr.
    Returns the suggestion id, or None when nothing is proposed.
    """

    def say(line: str) -> None:
        typer.echo(line, err=as_json)

    from watcher.config import parse_duration
    from watcher.store.items import stored_items
    from watcher.store.suggestions import save_suggestion

    store = _store()
    judged = stored_items(store, name, judged=True, limit=None)
    if not judged:
        say(
            f"no recorded verdicts on {name} yet (digest links, or `watcher feedback add LINK --relevant`)",
        )
        return None
    labeled = _labeled(items)
    stream = stored_items(store, name, since=now() - timedelta(seconds=parse_duration(since)))
    tweaks = propose(spec, judged)
    n_rel = sum(1 for j in judged if j.verdict == "relevant")
    say(
        f"from {len(judged)} recorded verdicts on {name} "
        f"({n_rel} relevant, {len(judged) - n_rel} not relevant)",
    )
    if not tweaks:
        say("  no change proposed: no word, source or threshold separates the verdicts")
        return None
    effects = {e.key: e for e in measure(spec, tweaks, judged, stream, labeled)}
    sid = save_suggestion(store, name, fingerprint(spec), [t.to_json() for t in tweaks], now())
    if as_json:
        for t in tweaks:
            json_line(
                {
                    **t.to_json(),
                    "kind": "change",  # the tweak's own kind (exclude, term, threshold, …) moves to "change"
                    "change": t.kind,
                    "suggestion": sid,
                    "profile": name,
                    **_effect_json(effects[t.key]),
                }
            )
        if "all" in effects:
            json_line({"kind": "all", "suggestion": sid, "profile": name, **_effect_json(effects["all"])})
        return sid
    typer.echo(f"suggestion {sid}:")
    for t in tweaks:
        typer.echo(f"  {t.key:<4}{t.describe()}  ({t.why})")
        typer.echo(f"      {_effect_line(effects[t.key], since)}")
    if "all" in effects:
        typer.echo(f"  all together: {_effect_line(effects['all'], since)}")
    keys = ",".join(t.key for t in tweaks[:2])
    typer.echo(
        f"apply with `watcher profile apply {sid}` (or some: `watcher profile apply {sid} --only {keys}`)",
    )
    return sid


def _effect_json(e: Effect) -> dict[str, Any]:
    """The measured effect of a change as JSON: on the verdicts, the stored items, the labeled items."""
    obj: dict[str, Any] = {
        "precision_before": e.before.precision,
        "precision_after": e.after.precision,
        "relevant_kept": e.after.relevant,
        "relevant_total": e.after.relevant_total,
        "not_relevant_matched_before": e.before.not_relevant_matched,
        "not_relevant_matched_after": e.after.not_relevant_matched,
        "stored_added": e.added,
        "stored_dropped": e.dropped,
    }
    if e.labeled_before and e.labeled_after:
        for when_, prf in (("before", e.labeled_before), ("after", e.labeled_after)):
            obj[f"labeled_{when_}"] = {"precision": prf.precision, "recall": prf.recall, "f1": prf.f1}
    return obj


def _effect_line(e: Effect, since: str) -> str:
    line = (
        f"verdicts: precision {_pct(e.before.precision)} → {_pct(e.after.precision)}, "
        f"relevant kept {e.after.relevant}/{e.after.relevant_total}, "
        f"not relevant matched {e.before.not_relevant_matched} → {e.after.not_relevant_matched}; "
        f"stored items ({since}): +{e.added} -{e.dropped}"
    )
    if e.labeled_before and e.labeled_after:
        b, a = e.labeled_before, e.labeled_after
        line += (
            f"; labeled items: P {b.precision:.3f} → {a.precision:.3f}, R {b.recall:.3f} → {a.recall:.3f}, "
            f"F1 {b.f1:.3f} → {a.f1:.3f} ({a.f1 - b.f1:+.3f})"
        )
    return line


def _labeled(items: Path | None) -> list[Any]:
    """Labeled items from ``items`` when it carries grades; [] otherwise (then it is only mined)."""
    if items is None:
        return []
    from watcher.profiles.evaluate import EvalDataError, load_labeled

    try:
        return load_labeled(items)
    except (EvalDataError, OSError):
        return []


# --- apply -----------------------------------------------------------------------------------
@profile_app.command("apply")
def apply(
    suggestion: Annotated[int, typer.Argument(help="The suggestion id `watcher profile suggest` printed.")],
    only: Annotated[
        str | None, typer.Option("--only", help="Comma-separated keys of the changes to apply (e.g. x1,th).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the change to the config; write nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even though the profile changed since it was measured.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Write an accepted suggestion into the config, keeping comments and layout (a backup is kept)."""
    from watcher.store.suggestions import get_suggestion, mark_applied

    store = _store()
    found = get_suggestion(store, suggestion)
    if found is None:
        raise UserError(f"no suggestion {suggestion}; run `watcher profile suggest NAME` first")
    try:
        tweaks = [Tweak.from_json(c) for c in found.changes]
    except (KeyError, ValueError) as exc:
        raise UserError(f"suggestion {suggestion} cannot be read: {exc}") from None
    if only:
        wanted = [k.strip() for k in only.split(",") if k.strip()]
        unknown = [k for k in wanted if k not in {t.key for t in tweaks}]
        if unknown:
            keys = ", ".join(t.key for t in tweaks)
            raise UserError(f"suggestion {suggestion} has no change {', '.join(unknown)} (it has: {keys})")
        tweaks = [t for t in tweaks if t.key in wanted]
    if found.applied is not None:
        typer.echo(
            f"note: suggestion {suggestion} was already applied on {found.applied:%Y-%m-%d %H:%M}",
        )
    name = found.profile
    path = _config_file(config)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    old_text = path.read_text(encoding="utf-8")
    spec = _load_profiles(path).get(name)
    if spec is None:
        raise UserError(f"profile {name!r} is no longer in {path}")
    if fingerprint(spec) != found.base and not force:
        raise UserError(
            f"profile {name!r} in {path} was edited since suggestion {suggestion} was measured; "
            f"run `watcher profile suggest {name}` again (or pass --force)"
        )
    new_text, notes = _edit_toml(old_text, name, tweaks)
    try:
        table = tomllib.loads(new_text)["profiles"][name]
        ProfileSpec.model_validate(table)
    except (tomllib.TOMLDecodeError, KeyError, ValidationError) as exc:
        detail = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
        raise UserError(f"the edited profile would not be valid ({detail}); nothing written") from None
    assert apply_tweaks(spec, tweaks) is not None  # the same changes, as the measurement made them
    for n in notes:
        typer.echo(f"note: {n}")
    if new_text == old_text:
        typer.echo(f"{path}: nothing to change")
        return
    sys.stdout.write(
        "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                str(path),
                f"{path} (new)",
            )
        )
    )
    if dry_run:
        typer.echo("dry run: nothing written")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("nothing written: pass --yes to write these changes (or --dry-run to only look)")
        if not typer.confirm(f"write these changes to {path}?", default=False):
            typer.echo("nothing written")
            raise typer.Exit(1)
    if path.read_text(encoding="utf-8") != old_text:
        raise UserError(f"{path} changed while we were working; nothing written, run the command again")
    backup = path.with_name(f"{path.name}.{now():%Y%m%dT%H%M%SZ}.bak")
    shutil.copy2(path, backup)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    shutil.copymode(path, tmp)
    os.replace(tmp, path)
    mark_applied(store, suggestion, now())
    typer.echo(
        f"wrote {len(tweaks)} change(s) to [profiles.{name}] in {path} (the previous file is {backup}); "
        "a running service picks it up by itself",
    )


def _edit_toml(text: str, name: str, tweaks: list[Tweak]) -> tuple[str, list[str]]:
    """``text`` with the tweaks written into [profiles.NAME], everything else as it was."""
    doc = tomlkit.parse(text)
    table: Any = doc["profiles"][name]  # type: ignore[index]
    notes: list[str] = []
    for t in tweaks:
        if t.kind in ("exclude", "exclude_source"):
            key = "exclude" if t.kind == "exclude" else "exclude_sources"
            if key not in table:
                table[key] = tomlkit.array()
            arr = table[key]
            if t.value in list(arr):
                notes.append(f"{key} already has {t.value!r}")
                continue
            arr.append(t.value)
        elif t.kind == "term":
            if "terms" not in table:
                table["terms"] = tomlkit.table()
            if str(t.value) in table["terms"]:
                notes.append(f"terms already has {t.value!r}; its weight is left as it is")
                continue
            table["terms"][str(t.value)] = float(t.weight or 0.5)
        elif t.kind == "threshold":
            _set_keeping_comment(table, "threshold", float(t.value))
    return tomlkit.dumps(doc), notes


def _set_keeping_comment(table: Any, key: str, value: float) -> None:
    """Set ``key``, keeping the comment on its line exactly as the user wrote it."""
    old = table.get(key)
    trivia = getattr(old, "trivia", None)
    table[key] = value
    if trivia is not None and trivia.comment:
        new = table[key].trivia
        new.comment_ws, new.comment, new.trail = trivia.comment_ws, trivia.comment, trivia.trail
