"""Propose new terms from the news stream: never added silently.

Later news on a story brings new names (a new envoy, a new prime minister, a
town fought over). They co-occur with the profile's anchors in matched items.
``suggest_terms`` ranks words and two-word names that are frequent in matched
items, rare in the background (the unmatched items, or general English when
no background is given) and not yet in the profile. The user decides.

Two kinds of names come first, because they are the story's own actors:
* other spellings of an anchor (same consonant skeleton: Hifter for Haftar,
  Dbeibah for Dbeibeh), which transliteration from Arabic and other scripts
  produces in every new source;
* institutions written out with their acronym, "Government of National
  Accord (GNA)": the acronym when the profile knows neither, or the name
  written out when the acronym is already an anchor.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

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
    note: str = ""  # why it is proposed, when it is more than frequency: "spelling of haftar"


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


_ACRONYM = re.compile(r"((?:[A-Z][\w'’-]*\s+(?:(?:of|the|and|for|de|al)\s+)*){1,7})\(([A-Z]{2,6})\)")


def _acronyms(texts: Sequence[str]) -> Counter[tuple[str, str]]:
    """(acronym, name written out) pairs: 'National Transitional Council (NTC)'."""
    found: Counter[tuple[str, str]] = Counter()
    for text in texts:
        seen = set()
        for m in _ACRONYM.finditer(text):
            words = m.group(1).split()
            acro = m.group(2)
            caps = [w for w in words if w[0].isupper()]
            # The capitalized words' initials, read from the end, must spell the acronym.
            if len(caps) < len(acro):
                continue
            caps = caps[-len(acro) :]
            if "".join(w[0] for w in caps).upper() != acro:
                continue
            start = words.index(caps[0], max(0, len(words) - len(words)))
            name = " ".join(fold(w) for w in words[start:])
            seen.add((acro.lower(), " ".join(name.replace("-", " ").split())))
        found.update(seen)
    return found


def _actors(spec: ProfileSpec, texts: Sequence[str], covered) -> list[Suggestion]:
    """Spellings of anchors and institutions with their acronyms, found in matched items."""
    from watcher.profiles.gazetteer import skeleton

    skeletons: dict[str, str] = {}
    for term in spec.anchors:
        if not term.endswith("*") and " " not in term and len(term) >= 5:
            skeletons.setdefault(skeleton(term), term)
    spelled: Counter[str] = Counter()
    for text in texts:
        words = {fold(m.group()) for m in _WORD.finditer(text) if m.group()[0].isupper()}
        spelled.update(w for w in words if len(w) >= 5 and not covered(w) and skeleton(w) in skeletons)
    out = []
    for w, n in spelled.items():
        anchor = skeletons[skeleton(w)]
        # Short skeletons are shared by unrelated words (Khamis, Khums): those must also look alike.
        alike = w[0] == anchor[0] and (len(skeleton(w)) >= 4 or fuzz.ratio(w, anchor) >= 85)
        if n >= _MIN_DOCS and alike:
            out.append(Suggestion(w, float(n), n, True, f"spelling of {anchor}"))
    for (acro, name), n in _acronyms(texts).items():
        if n < _MIN_DOCS:
            continue
        if covered(acro) and not covered(name):
            out.append(Suggestion(name, float(n), n, True, f"written out: {acro}"))
        elif not covered(acro) and not covered(name):
            out.append(Suggestion(acro, float(n), n, True, f"acronym of {name}"))
    return sorted(out, key=lambda s: (-s.docs, s.term))


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
    actors = _actors(spec, matched_texts, covered)
    # A pair and its own words often say the same thing: keep the better-ranked one.
    kept: list[Suggestion] = []
    seen_words: set[str] = set()
    seen_terms: set[str] = set()
    for s in [*actors, *out]:
        if s.term in seen_terms:
            continue
        seen_terms.add(s.term)
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
