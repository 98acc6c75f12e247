"""Re-deriving a profile the user has tuned: add what the seeds bring, keep every edit.

The config holds the user's work (exclusions, added anchors, changed weights, a tuned
threshold, comments). A fresh derivation may only add to it: new anchors, terms and
ambiguous words go in; everything already in the table stays as it is, values and
comments included. Pure: a tomlkit table in, the same table changed in place, a report out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tomlkit

from watcher.profiles.spec import ProfileSpec, spec_to_toml
from watcher.profiles.text import normalize_term


@dataclass
class MergeReport:
    added: dict[str, list[str]] = field(default_factory=dict)  # section -> terms added
    kept_weights: list[str] = field(default_factory=list)  # terms whose weight differs from the derivation
    kept_only_yours: list[str] = field(default_factory=list)  # anchors/terms the derivation did not propose
    kept_settings: list[str] = field(default_factory=list)  # e.g. "threshold 3 (derived: 2)"

    @property
    def changed(self) -> bool:
        return any(self.added.values())


def _index(table: Any) -> dict[str, str]:
    """Normalized term -> the key as written in the user's table."""
    return {normalize_term(str(k)): str(k) for k in table} if table is not None else {}


def merge_into(table: Any, derived: ProfileSpec) -> MergeReport:
    """Add ``derived``'s new terms to the user's ``[profiles.NAME]`` table, keeping all that is there."""
    report = MergeReport()
    for section, weights in (("anchors", derived.anchors), ("terms", derived.terms)):
        mine = table.get(section)
        if mine is None:
            mine = tomlkit.table()
            table.add(section, mine)
        index = _index(mine)
        added = []
        for term, weight in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
            if term in index:
                if abs(float(mine[index[term]]) - weight) > 0.005:
                    report.kept_weights.append(
                        f"{index[term]} = {float(mine[index[term]]):g} (derived: {weight:.2f})"
                    )
                continue
            mine.add(term, round(float(weight), 2))
            added.append(term)
        report.added[section] = added
        report.kept_only_yours += [f"{index[t]}" for t in index if t not in weights]
    mine_amb = table.get("ambiguous")
    if mine_amb is None:
        mine_amb = tomlkit.table()
        table.add("ambiguous", mine_amb)
    amb_index = _index(mine_amb)
    report.added["ambiguous"] = []
    for term, words in sorted(derived.ambiguous.items()):
        if term not in amb_index:
            mine_amb.add(term, list(words))
            report.added["ambiguous"].append(term)
    for key, value in (("threshold", derived.threshold), ("context_cap", derived.context_cap)):
        if key in table and abs(float(table[key]) - value) > 0.005:
            report.kept_settings.append(f"{key} {float(table[key]):g} (derived: {value:g})")
    # Any other part of a derived profile the table lacks (e.g. a newer version's tables) goes in whole.
    fresh = spec_to_toml(derived)
    for key in fresh:
        if key not in table:
            table.add(key, fresh[key])
            report.added.setdefault("sections", []).append(key)
    return report
