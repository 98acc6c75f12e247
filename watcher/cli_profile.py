"""`watcher profile …`, `watcher eval` and `watcher score`.

Profiles come from the ``[profiles]`` tables of the config. Only that part of
the file is read here (``_load_profiles``), so profile work keeps going while
other sections are being edited. Errors are one line on stderr and exit 2.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn

import tomlkit
import typer
from pydantic import ValidationError
from rich.console import Console

from watcher.cli_common import ConfigOpt, JsonOpt, Listing, in_json_mode, json_line, json_mode
from watcher.profiles import ProfileSpec, compile_profiles, derive_profile, explain_text, spec_to_toml
from watcher.profiles.evaluate import EvalDataError, evaluate, format_report, load_labeled
from watcher.profiles.merge import MergeReport, merge_into
from watcher.profiles.suggest import suggest_details

profile_app = typer.Typer(help="Derive, inspect and tune keyword profiles.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, markup=False, soft_wrap=True, emoji=False)

SeedsOpt = Annotated[Path, typer.Option("--seeds", help="Directory of seed articles (*.txt).")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Only this profile.")]


def _fail(message: str) -> NoReturn:
    if in_json_mode():
        json_line({"error": message})
    err.print("error:", style="red", end=" ")
    err.print(message, markup=False)
    raise typer.Exit(2)


def _config_file(path: Path | None) -> Path:
    if path is not None:
        return path
    from watcher.config import config_path

    return config_path()


def _describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(table)"
        parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _load_profiles(path: Path) -> dict[str, ProfileSpec]:
    """The validated ``[profiles.*]`` tables of a config file ({} when absent)."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _fail(f"{path}: not valid TOML: {exc}")
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        _fail(f"{path}: [profiles] must be a table of profiles")
    specs: dict[str, ProfileSpec] = {}
    for name, table in tables.items():
        try:
            specs[name] = ProfileSpec.model_validate(table)
        except ValidationError as exc:
            _fail(f"{path}: profile {name!r}: {_describe(exc)}")
    return specs


def _read_seeds(seeds: Path) -> list[str]:
    files = sorted(seeds.glob("*.txt")) if seeds.is_dir() else []
    if not files:
        _fail(f"no seed articles (*.txt) in {seeds}")
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError as exc:
            # Decoding by a guess would put fragments of mis-read words into the profile: refuse instead.
            _fail(
                f"{f}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                "save it as UTF-8 (e.g. with iconv -f latin1 -t utf-8) and run again"
            )
        except OSError as exc:
            _fail(f"{f}: {exc.strerror or exc}")
    return texts


def _profiles_or_derived(config: Path | None, seeds: Path, only: str | None) -> dict[str, ProfileSpec]:
    """Profiles from config; with none configured, one derived from the seeds on the fly."""
    path = _config_file(config)
    specs = _load_profiles(path)
    if not specs:
        err.print(f"no profile in {path}: deriving 'libya' from {seeds}/ for this run", markup=False)
        specs = {"libya": derive_profile(_read_seeds(seeds))}
    if only is not None:
        if only not in specs:
            _fail(f"no profile named {only!r} (configured: {', '.join(sorted(specs))})")
        specs = {only: specs[only]}
    return specs


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                _fail(f"{path}:{lineno}: not JSON: {exc.msg}")
            if not isinstance(obj, dict):
                _fail(f"{path}:{lineno}: expected a JSON object")
            yield obj


@profile_app.command("derive")
def derive(
    name: Annotated[str, typer.Option("--name", help="Profile name.")] = "libya",
    seeds: SeedsOpt = Path("seeds"),
    config: ConfigOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="The profile exists: add what the seeds bring and keep all that is there (backup first).",
        ),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="With --force: replace the profile with the derivation (backup first)."
        ),
    ] = False,
) -> None:
    """Derive a profile from seed articles and write it into the config as [profiles.NAME].

    An existing profile is never overwritten silently: without --force nothing is written.
    """
    texts = _read_seeds(seeds)
    spec = derive_profile(texts)
    path = _config_file(config)
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except Exception as exc:  # tomlkit raises several parse error types
        _fail(f"{path}: not valid TOML: {exc}")
    profiles = doc.get("profiles")
    if profiles is None:
        profiles = tomlkit.table(is_super_table=True)
        doc.add("profiles", profiles)
    existing = profiles.get(name)
    if existing is not None and not force:
        _fail(
            f"[profiles.{name}] already exists in {path} and may hold your edits; nothing written. "
            f"--force adds what the seeds bring and keeps everything there; --force --replace starts "
            f"over (either way the old file is kept as a backup); --name NEW writes a new profile"
        )
    if replace and not force:
        _fail("--replace overwrites a profile: give --force with it")
    report = None
    if existing is None or replace:
        profiles[name] = spec_to_toml(spec)
    else:
        report = merge_into(existing, spec)
        try:
            ProfileSpec.model_validate(existing.unwrap())
        except ValidationError as exc:
            _fail(f"{path}: [profiles.{name}] would not be valid after the merge: {_describe(exc)}")
    if report is not None and not report.changed:
        out.print(
            f"[profiles.{name}] in {path} already holds all that the seeds give: nothing written",
            markup=False,
        )
        return
    backup = None
    if existing is not None:
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.bak")
        shutil.copy2(path, backup)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")
    if report is not None:
        _print_merge(name, path, backup, len(texts), report)
        return
    verb = "replaced" if existing is not None else "wrote"
    out.print(f"{verb} [profiles.{name}] in {path} from {len(texts)} seed article(s)", markup=False)
    if backup:
        out.print(f"  the previous file is {backup}", markup=False)
    anchors = ", ".join(sorted(spec.anchors, key=lambda t: (-spec.anchors[t], t)))
    out.print(f"  anchors ({len(spec.anchors)}): {anchors}", markup=False)
    top = ", ".join(list(spec.terms)[:15])
    out.print(f"  context terms: {len(spec.terms)} (top: {top})", markup=False)
    if spec.ambiguous:
        out.print(f"  ambiguous: {', '.join(spec.ambiguous)}", markup=False)
    out.print(f"  threshold: {spec.threshold:g}", markup=False)


def _print_merge(name: str, path: Path, backup: Path | None, n_seeds: int, report: MergeReport) -> None:
    added = report.added
    total = sum(len(v) for v in added.values())
    out.print(
        f"merged into [profiles.{name}] in {path} from {n_seeds} seed article(s): {total} added, "
        "everything already there kept",
        markup=False,
    )
    for section in ("anchors", "terms", "ambiguous", "sections"):
        if added.get(section):
            out.print(f"  added {section} ({len(added[section])}): {', '.join(added[section])}", markup=False)
    for label, items in (
        ("kept your weights", report.kept_weights),
        ("kept your settings", report.kept_settings),
        ("kept terms the seeds do not give", report.kept_only_yours),
    ):
        if items:
            out.print(f"  {label} ({len(items)}): {', '.join(items)}", markup=False)
    if backup:
        out.print(f"  the previous file is {backup}", markup=False)


@profile_app.command("explain")
def explain(
    text: Annotated[str | None, typer.Argument(help="Text to score (title and summary in one).")] = None,
    item: Annotated[
        Path | None, typer.Option("--item", help="A JSON file with one item (title, summary).")
    ] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    seeds: SeedsOpt = Path("seeds"),
) -> None:
    """Show which terms fired for one text or item, their contributions and the total vs threshold."""
    if (text is None) == (item is None):
        _fail("give either TEXT or --item FILE.json")
    title, summary, source = text or "", "", None
    if item is not None:
        try:
            obj = json.loads(item.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            _fail(f"{item}: cannot read a JSON item: {exc}")
        if not isinstance(obj, dict):
            _fail(f"{item}: expected a JSON object with title and summary")
        title, summary, source = str(obj.get("title") or ""), str(obj.get("summary") or ""), obj.get("source")
    specs = _profiles_or_derived(config, seeds, profile)
    scorer = compile_profiles(specs)
    for score in scorer.score(title, summary, source):
        spec = specs[score.profile]
        out.print(_explained(score, spec), markup=False)
        if score.reason and score.reason.startswith("excluded"):
            # Say what the exclusion vetoed: the same item scored as if the profile had no exclusions.
            bare = spec.model_copy(update={"exclude": [], "exclude_sources": []})
            would = compile_profiles({score.profile: bare}).score(title, summary, source)[0]
            if would.hits:
                lines = _explained(would, spec).splitlines()[1:]
                out.print(
                    f"  without the exclusion it would score {would.score:.2f}:\n" + "\n".join(lines),
                    markup=False,
                )


def _explained(score, spec: ProfileSpec) -> str:
    origins = {term: spec.origin_of(term) for term, _ in score.hits}
    text = explain_text(score, spec.threshold, origins)
    notes = _weight_notes(score, spec)
    if notes:
        text += "\n  less than the weight in the config:\n" + "\n".join(f"    {n}" for n in notes)
    return text


def _weight_notes(score, spec: ProfileSpec) -> list[str]:
    """Why a contribution differs from the configured weight (further anchors count half, the context cap)."""
    notes = []
    strongest = True
    for term, contribution in score.hits:
        if term in spec.anchors:
            weight = spec.anchors[term]
            if strongest and abs(contribution - weight) <= 0.005:
                strongest = False
            elif abs(contribution - weight) > 0.005:
                notes.append(f"{term}: weight {weight:g}, counts half: each anchor after the strongest does")
        elif term in spec.terms:
            weight = spec.terms[term]
            if contribution and abs(contribution - weight) > 0.005:
                notes.append(
                    f"{term}: weight {weight:g}, scaled down: context terms add at most {spec.context_cap:g}"
                )
    return notes


@profile_app.command("list")
def list_profiles(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Configured profiles: anchors, terms, threshold."""
    json_mode(as_json)
    path = _config_file(config)
    specs = _load_profiles(path)
    if as_json:
        for name, spec in sorted(specs.items()):
            json_line({"name": name, **spec.model_dump()})
        return
    listing = Listing("name", "anchors", "terms", "threshold", "ambiguous", "excludes", "description")
    for name, spec in sorted(specs.items()):
        listing.row(
            name,
            len(spec.anchors),
            len(spec.terms),
            f"{spec.threshold:g}",
            len(spec.ambiguous),
            len(spec.exclude) + len(spec.exclude_sources),
            spec.description,
        )
    listing.print(out, empty=f"no profiles in {path}; run `watcher profile derive`")


@profile_app.command("suggest")
def suggest(
    name: Annotated[str, typer.Argument(help="Profile to extend.")],
    items: Annotated[
        Path | None,
        typer.Option(
            "--items", help="JSONL of items to mine (title, summary); default: the stored news stream."
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 30,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    seeds: SeedsOpt = Path("seeds"),
) -> None:
    """Propose changes from recorded verdicts (measured) and terms from the news stream; changes nothing.

    With --json: one object per line, "kind" = "change" (a measured change: "change" names its
    kind, then its effect and the suggestion id for `profile apply`), "all" (all changes together)
    or "term" (a term from the stream).
    """
    json_mode(as_json)
    specs = _profiles_or_derived(config, seeds, name)
    from watcher.cli_tune import suggest_from_verdicts

    suggest_from_verdicts(name, specs[name], items, as_json=as_json)
    scorer = compile_profiles(specs)
    matched: list[str] = []
    background: list[str] = []
    if items is None:
        matched, background = _stored_texts(name)
        where = "the stored items"
    else:
        for obj in _iter_jsonl(items):
            title, summary = str(obj.get("title") or ""), str(obj.get("summary") or "")
            hit = scorer.score(title, summary, obj.get("source"))[0].matched
            (matched if hit else background).append(f"{title}\n{summary}")
        where = str(items)
    if not matched:
        _fail(f"no item in {where} matches profile {name!r}: nothing to learn from")
    found = suggest_details(specs[name], matched, background, limit=limit)
    if not found:
        (err if as_json else out).print(
            f"no new terms to suggest for {name}: every word that recurs in the {len(matched)} matched "
            f"item(s) of {where} is already in the profile, too common, or seen only once; "
            "try again when more items have matched",
            markup=False,
        )
        return
    if as_json:
        for s in found:
            kind = s.note or ("anchor?" if s.name else "term")
            json_line(
                {
                    "kind": "term",
                    "term": s.term,
                    "score": round(s.score, 3),
                    "matched_items": s.docs,
                    "as": kind,
                }
            )
        return
    listing = Listing(
        "term", "score", "matched items", "kind", title=f"suggestions for {name} ({len(matched)} matched)"
    )
    for s in found:
        listing.row(s.term, f"{s.score:.2f}", str(s.docs), s.note or ("anchor?" if s.name else "term"))
    listing.print()
    out.print(
        f"add the ones you want under [profiles.{name}.anchors] or [profiles.{name}.terms]",
        highlight=False,
        markup=False,
    )


def _stored_texts(profile: str) -> tuple[list[str], list[str]]:
    """Recent items from the database: those the profile matched, and the rest as background."""
    from watcher.config import load_settings
    from watcher.store import open_store
    from watcher.store.items import recent_texts

    db = load_settings().database
    engine = open_store(db.url, pool_size=db.pool_size, max_overflow=db.max_overflow)
    try:
        return recent_texts(engine, profile)
    finally:
        engine.dispose()


def score_command(
    items: Annotated[Path, typer.Option("--items", help="JSONL of items (id, title, summary, …).")],
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    seeds: SeedsOpt = Path("seeds"),
) -> None:
    """Score items: one JSON line per item per profile on stdout."""
    specs = _profiles_or_derived(config, seeds, profile)
    scorer = compile_profiles(specs)
    write = sys.stdout.write
    for obj in _iter_jsonl(items):
        title, summary = str(obj.get("title") or ""), str(obj.get("summary") or "")
        for s in scorer.score(title, summary, obj.get("source")):
            line = {"id": obj.get("id"), "score": s.score, "matched": s.matched, "profile": s.profile}
            line["terms"] = list(s.terms)
            write(json.dumps(line, ensure_ascii=False) + "\n")


def eval_command(
    items: Annotated[
        list[Path],
        typer.Option("--items", help="Labeled JSONL (grade 0/1/2, labeled); repeat for several files."),
    ],
    profile: ProfileOpt = None,
    explain_errors: Annotated[
        int,
        typer.Option("--explain-errors", min=0, help="List the N worst misses and false alarms, with why."),
    ] = 0,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    seeds: SeedsOpt = Path("seeds"),
) -> None:
    """Precision, recall, F1, average precision… of each profile next to the baselines, one table per file.

    With --json: one object per file, profile and system (the profile, then each baseline).
    """
    json_mode(as_json)
    specs = _profiles_or_derived(config, seeds, profile)
    files: list[tuple[Path, list]] = []
    for path in items:  # read every file first: a bad one fails before any table is printed
        try:
            files.append((path, load_labeled(path)))
        except OSError as exc:
            _fail(f"{path}: {exc.strerror or exc}")
        except EvalDataError as exc:
            _fail(str(exc))
    seed_texts = _read_seeds(seeds) if seeds.is_dir() else []
    if not seed_texts:
        err.print(f"no seeds in {seeds}: the TF-IDF baseline is skipped", markup=False)
    scorer = compile_profiles(specs)
    first = True
    for path, labeled in files:
        for name in scorer.names:
            started = time.perf_counter()
            report = evaluate(scorer, name, labeled, seed_texts, explain_errors=explain_errors)
            if as_json:
                for m in report.rows:
                    json_line({"file": str(path), "profile": name, "items": report.n_items, **asdict(m)})
                continue
            if not first:
                typer.echo()
            first = False
            if len(files) > 1:
                typer.echo(f"== {path}")
            typer.echo(format_report(report))  # plain text: never wrapped to the terminal width
            err.print(f"({time.perf_counter() - started:.1f}s)", markup=False)
