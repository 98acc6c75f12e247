"""Propose new terms from the news stream: never added silently.

Later news on a story brings new names (a new envoy, a new prime minister, a
town fought over). They co-occur with the profile's anchors in matched items.
``suggest_terms`` ranks words and two-word names that are frequent in matched
items, rare in the background (the unmatched items, or general English when
no background is given) and not yet in the profile. The user decides.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.profiles.spec import ProfileSpec
from watcher.profiles.text import fold, inflections, singular, zipf

_WORD = re.compile(r"[^\W\d_][^\W_]*")
_MIN_DOCS = 2


@dataclass(frozen=True, slots=True)
class Suggestion:
    term: str
    score: float
    docs: int  # matched items containing it
    name: bool  # mostly written capitalized: a candidate anchor rather than a context term


def _candidates(text: str) -> tuple[set[str], set[str]]:
    """(terms, capitalized terms) of one text: words and adjacent word pairs."""
    words = [m.group() for m in _WORD.finditer(text)]
    terms: set[str] = set()
    caps: set[str] = set()
    prev: tuple[str, bool] | None = None
    for i, w in enumerate(words):
        low = fold(w)
        if len(low) < 3 or zipf(low) >= 5.5:  # function words never help
            prev = None
            continue
        cap = w[0].isupper() and i > 0
        base = low if cap else singular(low)
        terms.add(base)
        if cap:
            caps.add(base)
        if prev is not None:
            pair = f"{prev[0]} {base}"
            terms.add(pair)
            if cap and prev[1]:
                caps.add(pair)
        prev = (base, cap)
    return terms, caps


def suggest_details(
    spec: ProfileSpec, matched_texts: Sequence[str], background_texts: Sequence[str] = (), limit: int = 30
) -> list[Suggestion]:
    known: set[str] = set()
    prefixes: list[str] = []  # "libya*" already covers libyan, libyans, …
    for term in [*spec.anchors, *spec.terms]:
        known.update(inflections(term.rstrip("*")))
        known.add(term.rstrip("*"))
        if term.endswith("*"):
            prefixes.append(term[:-1])

    def covered(word: str) -> bool:
        return word in known or any(word.startswith(p) for p in prefixes)

    df: Counter[str] = Counter()
    cap_df: Counter[str] = Counter()
    for text in matched_texts:
        terms, caps = _candidates(text)
        df.update(terms)
        cap_df.update(caps)
    bg: Counter[str] = Counter()
    for text in background_texts:
        bg.update(_candidates(text)[0])
    n_bg = len(background_texts)
    out: list[Suggestion] = []
    for term, n in df.items():
        if n < _MIN_DOCS or covered(term) or any(covered(w) for w in term.split()):
            continue
        if n_bg:
            # How much likelier in matched items than in the rest (smoothed), like a lift.
            lift = (n / len(matched_texts)) / ((bg[term] + 1) / (n_bg + 1))
            specific = math.log(1 + lift)
        else:
            specific = max(0.0, (5.5 - zipf(term)) / 2.5)
        score = specific * math.log(1 + n)
        if score > 0:
            out.append(Suggestion(term, round(score, 3), n, cap_df[term] * 2 > n))
    out.sort(key=lambda s: (-s.score, s.term))
    # A pair and its own words often say the same thing: keep the better-ranked one.
    kept: list[Suggestion] = []
    seen_words: set[str] = set()
    for s in out:
        parts = s.term.split()
        if len(parts) > 1 and all(p in seen_words for p in parts):
            continue
        kept.append(s)
        seen_words.update(parts)
        if len(kept) >= limit:
            break
    return kept


def suggest_terms(
    spec: ProfileSpec, matched_texts: Sequence[str], background_texts: Sequence[str] = ()
) -> list[tuple[str, float]]:
    """Candidate anchors/terms not yet in the profile, best first."""
    return [(s.term, s.score) for s in suggest_details(spec, matched_texts, background_texts)]
