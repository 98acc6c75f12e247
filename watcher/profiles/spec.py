"""`ProfileSpec`: one ``[profiles.NAME]`` table of the config, validated.

A profile has three kinds of terms:

* ``anchors`` gate the match: at least one must occur (the country, its
  institutions, its actors). An anchor's weight is what it adds on its own.
* ``terms`` are context (ceasefire, conference, mercenaries…): they add to the
  score only when an anchor fired, so "ceasefire in Gaza" stays at zero.
* ``ambiguous`` names anchors or terms that only count when none of the listed
  words occur in the item (``tripoli = ["lebanon", "beirut"]``).

Terms are matched on whole words, case- and accent-insensitively, singular and
plural alike; a trailing ``*`` matches any word starting so (``libya*``).
``exclude`` holds phrases or ``re:`` regular expressions that veto an item.

``aboutness`` weighs the signals of :mod:`watcher.profiles.aboutness` (is the
topic the item's subject, or one entry of a list, a neighbour's border…);
a missing entry takes its default, 0 turns a signal off, and a profile
without the table uses no signal at all (derived profiles get the table). ``origin`` records
where derived terms came from (``seed``, ``gazetteer``, ``stream``, or
``generic`` for the other-thread words every profile gets) so that
``profile explain`` can say it; a term listed nowhere was added by hand.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watcher.profiles.aboutness import DEFAULT_WEIGHTS, SIGNAL_NAMES
from watcher.profiles.text import normalize_term

if TYPE_CHECKING:
    from tomlkit.items import Table

REGEX_PREFIX = "re:"
ORIGINS = ("seed", "gazetteer", "stream", "generic")


def _clean_terms(value: dict[str, float], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for raw, weight in value.items():
        term = normalize_term(raw)
        if not term or term == "*":
            raise ValueError(f"{what} term {raw!r} has no letters or digits")
        out[term] = max(float(weight), out.get(term, float("-inf")))
    return out


class ProfileSpec(BaseModel):
    """An editable keyword profile; see the module docstring for the semantics."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built when first used (watcher.config)

    description: str = ""
    threshold: float = Field(default=2.0, ge=0.0)
    anchors: dict[str, float]
    # Empty defaults as values, not factories: pydantic copies a mutable default for each instance
    # all the same, and a factory costs its validator build an `inspect.signature` of `dict` or
    # `list`, which tokenizes their text signature (~1 % of `watcher run`'s start-up, issue 14).
    terms: dict[str, float] = {}
    ambiguous: dict[str, list[str]] = {}
    exclude: list[str] = []
    exclude_sources: list[str] = []
    context_cap: float = Field(default=4.0, ge=0.0)  # the most that context terms can add
    aboutness: dict[str, float] = {}
    origin: dict[str, list[str]] = {}

    @field_validator("anchors")
    @classmethod
    def _anchors(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("anchor set is empty: name at least one term that must occur")
        for term, weight in value.items():
            if weight <= 0:
                raise ValueError(f"anchor {term!r} needs a positive weight, got {weight}")
        return _clean_terms(value, "anchor")

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: dict[str, float]) -> dict[str, float]:
        return _clean_terms(value, "context")

    @field_validator("ambiguous")
    @classmethod
    def _ambiguous(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for raw, words in value.items():
            cleaned = [normalize_term(w) for w in words]
            if not cleaned or not all(cleaned):
                raise ValueError(f"ambiguous term {raw!r} needs a list of disambiguating words")
            out[normalize_term(raw)] = cleaned
        return out

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.startswith(REGEX_PREFIX):
                try:
                    re.compile(item[len(REGEX_PREFIX) :])
                except re.error as exc:
                    raise ValueError(f"exclude regex {item!r} does not compile: {exc}") from None
            elif not normalize_term(item):
                raise ValueError(f"exclude phrase {item!r} has no letters or digits")
        return value

    @field_validator("aboutness")
    @classmethod
    def _aboutness(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if name not in SIGNAL_NAMES:
                raise ValueError(f"aboutness: unknown signal {name!r} (known: {', '.join(SIGNAL_NAMES)})")
        return {k: float(v) for k, v in value.items()}

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if name not in ORIGINS:
                raise ValueError(f"origin: unknown origin {name!r} (known: {', '.join(ORIGINS)})")
        return {k: [normalize_term(t) for t in terms] for k, terms in value.items()}

    def signal_weights(self) -> dict[str, float]:
        """Aboutness weights in force: the profile's, defaults for signals it does not name.

        A profile without an ``aboutness`` table (written by hand, or derived before
        signals existed) scores as it always did: no signal, so no score changes under it.
        """
        return {**DEFAULT_WEIGHTS, **self.aboutness} if self.aboutness else {}

    def origin_of(self, term: str) -> str:
        """Where a term came from: 'seed', 'gazetteer', 'seed+gazetteer', 'stream' or 'hand'."""
        found = [name for name in ORIGINS if term in self.origin.get(name, ())]
        return "+".join(found) or "hand"

    @model_validator(mode="after")
    def _ambiguous_known(self) -> ProfileSpec:
        known = set(self.anchors) | set(self.terms)
        for term in self.ambiguous:
            if term not in known:
                raise ValueError(f"ambiguous: {term!r} is neither an anchor nor a term of this profile")
        return self


def _weights_table(weights: dict[str, float]) -> Table:
    import tomlkit

    table = tomlkit.table()
    for term, weight in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add(term, round(float(weight), 2))
    return table


def spec_to_toml(spec: ProfileSpec) -> Table:
    """A readable TOML table for ``[profiles.NAME]``, comments included."""
    import tomlkit  # writing TOML only: loading a config does not need it

    table = tomlkit.table()
    if spec.description:
        table.add("description", spec.description)
    table.add("threshold", round(spec.threshold, 2))
    table["threshold"].comment("an item matches when an anchor fired and the score reaches this")
    table.add("context_cap", round(spec.context_cap, 2))
    table["context_cap"].comment("the most that context terms can add to one item")
    table.add("exclude", _multiline(spec.exclude))
    table.add("exclude_sources", _multiline(spec.exclude_sources))
    anchors = _weights_table(spec.anchors)
    anchors.comment("at least one must occur; weight = what the term adds on its own")
    table.add("anchors", anchors)
    terms = _weights_table(spec.terms)
    terms.comment("context: adds only when an anchor fired")
    table.add("terms", terms)
    ambiguous = tomlkit.table()
    ambiguous.comment("a term here counts only when none of its listed words occur")
    for term, words in sorted(spec.ambiguous.items()):
        ambiguous.add(term, _wrapped(words))
    table.add("ambiguous", ambiguous)
    about = tomlkit.table()
    about.comment("aboutness signals: what each adds to an item's score (0 turns it off)")
    if spec.aboutness:
        for name, weight in spec.signal_weights().items():
            about.add(name, round(weight, 2))
        table.add("aboutness", about)
    if spec.origin:
        origin = tomlkit.table()
        origin.comment("where derived terms came from; a term listed nowhere was added by hand")
        for name in ORIGINS:
            if spec.origin.get(name):
                origin.add(name, _wrapped(sorted(spec.origin[name])))
        table.add("origin", origin)
    return table


def _multiline(values: list[str], per_line: int = 1) -> Any:
    import tomlkit

    arr = tomlkit.array()
    arr.extend(values)
    if len(values) > per_line:
        arr.multiline(True)
    return arr


def _wrapped(values: list[str], width: int = 96) -> Any:
    """An array written several values a line, so long lists stay readable."""
    import tomlkit

    if len(values) <= 8:
        return _multiline(values, per_line=8)
    lines: list[str] = []
    line = ""
    for v in values:
        item = json.dumps(v, ensure_ascii=False) + ","
        if line and len(line) + 1 + len(item) > width:
            lines.append(line)
            line = ""
        line = f"{line} {item}" if line else item
    lines.append(line)
    return tomlkit.array("[\n" + "".join(f"    {ln}\n" for ln in lines) + "]")
