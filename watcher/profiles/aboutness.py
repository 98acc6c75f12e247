"""Is the item about the topic, or does it only mention it?

Keyword hits say a topic's name occurs; these signals say in what role. They
are read from the item's own words, only for items where an anchor fired
(a few in a hundred), so they cost the scorer next to nothing:

* ``lead``: the topic is named early in the first sentence, where news names
  its subject ("Libya appoints…", "A car bomb in Benghazi kills…");
* ``late``: the topic appears only after the first sentence (a detail added
  at the end: "…born in Manchester to Libyan parents");
* ``list``: every mention of the topic is one entry in a list of countries
  ("Iran, Iraq, Libya, Somalia, Sudan…");
* ``border``: every mention places something at the topic's border, next to
  it, or compares with it ("near the Libyan border", "neighbouring Libya",
  "Libya-style", "similar to … Libya");
* ``foreign``: another country opens the item and is named at least as often
  as the topic ("Tunisia's army … Tunisian … near the Libyan border");
* ``offshore``: the topic is where something happens at sea, off its coast
  ("a boat capsizes off the coast of Libya"): another thread than the
  country's own affairs, so it ranks below them.

Each signal has a weight in the profile (``[profiles.NAME.aboutness]``); its
contribution is added to the score and shown by ``profile explain``. The cue
words are English grammar (border, neighbouring, style), not knowledge of any
topic, and country names come from the gazetteer, so the same rules serve a
profile on any country.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from watcher.profiles.text import fold, inflections

# Default weights: what each signal adds to an item's score (negative: it subtracts).
DEFAULT_WEIGHTS: dict[str, float] = {
    "lead": 0.5,
    "late": -0.5,
    "list": -2.5,
    "border": -2.0,
    "foreign": -0.5,
    "offshore": -0.75,
}
SIGNAL_NAMES = tuple(DEFAULT_WEIGHTS)
RANKING_SIGNALS = frozenset({"late", "offshore", "foreign"})  # they rank an item lower but never unmatch it
LEAD_WINDOW = 12  # tokens of the first sentence where its subject usually sits

_TOKEN = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"[.!?…]|\n")
_ABBREVIATIONS = {
    "gen",
    "dr",
    "mr",
    "mrs",
    "ms",
    "st",
    "lt",
    "col",
    "sgt",
    "no",
    "jr",
    "sr",
    "vs",
    "rep",
    "sen",
}
_BORDER = {"border", "borders", "frontier", "neighboring", "neighbouring", "neighbor", "neighbour"}
_BORDER |= {"neighbors", "neighbours", "bordering"}
_COMPARE_AFTER = {"style", "styled", "like", "type", "model", "esque"}  # Libya-style
_COMPARE_BEFORE = {"similar", "akin", "compared", "reminiscent", "resembling"}
_SEA = {"coast", "coasts", "coastline", "shore", "shores", "waters", "offshore"}
_ORIGIN_AFTER = {"descent", "origin", "parents", "parent", "born", "roots", "ancestry", "heritage"}
_LIST_WORDS = {"and", "or", "the", "as", "well"}
_ARTICLES = {"al", "el", "az", "as", "ar", "ash", "at", "an", "ad"}
_COMPASS = {
    "north",
    "south",
    "east",
    "west",
    "eastern",
    "western",
    "northern",
    "southern",
    "central",
    "greater",
}


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, and items make many
class _Tok:
    low: str
    start_gap: str  # raw text between the previous token and this one
    upper: bool


def _tokens(title: str, summary: str) -> list[_Tok]:
    # Feeds often repeat the title as the summary's opening: read it once.
    head = title.rstrip(" .…")
    text = summary if head and summary.startswith(head) else f"{title}\n{summary}" if summary else title
    out: list[_Tok] = []
    prev_end = 0
    for m in _TOKEN.finditer(text):
        word = m.group()
        gap = text[prev_end : m.start()]
        prev_end = m.end()
        if word in ("s", "S") and gap in ("'", "’") and out:
            continue  # possessive
        out.append(_Tok(word.lower() if word.isascii() else fold(word), gap, word[0].isupper()))
    return out


def _first_sentence_end(toks: list[_Tok]) -> int:
    for i in range(1, len(toks)):
        gap = toks[i].start_gap
        if not _SENTENCE_END.search(gap):
            continue
        if "\n" in gap or "…" in gap:
            return i
        prev = toks[i - 1].low
        if toks[i].upper and len(prev) > 1 and prev not in _ABBREVIATIONS:
            return i
    return len(toks)


class Matcher:
    """Finds a set of terms (words, phrases, ``prefix*``) in a token list."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.words: dict[str, str] = {}
        self.prefixes: list[tuple[str, str]] = []
        self.phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for term in terms:
            if term.endswith("*"):
                self.prefixes.append((term[:-1], term))
                continue
            for form in inflections(term):
                parts = tuple(form.split())
                if len(parts) == 1:
                    self.words.setdefault(parts[0], term)
                else:
                    self.phrases.setdefault(parts[0], []).append((parts, term))
        for entries in self.phrases.values():
            entries.sort(key=lambda e: -len(e[0]))

    def find(self, toks: list[_Tok]) -> list[tuple[int, int, str]]:
        """(start, end, term) of each non-overlapping occurrence, left to right."""
        out: list[tuple[int, int, str]] = []
        i = 0
        n = len(toks)
        while i < n:
            low = toks[i].low
            hit: tuple[int, str] | None = None
            for parts, term in self.phrases.get(low, ()):
                k = len(parts)
                if i + k <= n and all(toks[i + j].low == parts[j] for j in range(1, k)):
                    hit = (k, term)
                    break
            if hit is None and low in self.words:
                hit = (1, self.words[low])
            if hit is None:
                for prefix, term in self.prefixes:
                    if low.startswith(prefix):
                        hit = (1, term)
                        break
            if hit is None:
                i += 1
                continue
            out.append((i, i + hit[0], hit[1]))
            i += hit[0]
        return out


@lru_cache(maxsize=1)
def country_matcher() -> tuple[Matcher, dict[str, str]]:
    """Every country's name and adjective forms, and the country code of each form."""
    from watcher.profiles.gazetteer import countries

    code_of: dict[str, str] = {}
    for code, country in sorted(countries().items()):
        for form in country.forms:
            code_of.setdefault(form, code)
    return Matcher(code_of), code_of


@dataclass(frozen=True, slots=True)
class Reading:
    """What the signals found; ``contributions`` turns them into score."""

    lead: bool
    late: bool
    listed: bool
    border: bool
    foreign: str | None  # the other country that leads the item
    offshore: bool = False
    inside_names: tuple[str, ...] = ()  # places met only inside another name (Rajya Sabha, Jabal Zawiya)

    def contributions(self, weights: Mapping[str, float]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        if self.lead:
            out.append(("lead: named early in the first sentence", weights.get("lead", 0.0)))
        if self.late:
            out.append(("late: named only after the first sentence", weights.get("late", 0.0)))
        if self.listed:
            out.append(("list: one entry in a list of countries", weights.get("list", 0.0)))
        if self.border:
            out.append(("border: at the border, a neighbour or a comparison", weights.get("border", 0.0)))
        if self.foreign:
            out.append((f"foreign: {self.foreign} leads the item", weights.get("foreign", 0.0)))
        if self.offshore:
            out.append(("offshore: at sea off its coast", weights.get("offshore", 0.0)))
        return [
            (f"{label} (ranks only)" if label.split(":", 1)[0] in RANKING_SIGNALS else label, w)
            for label, w in out
            if w
        ]


def _coordinated(toks: list[_Tok], left_end: int, right_start: int) -> bool:
    """Two mentions are entries of one list: only commas, 'and', 'or', 'the' between them."""
    between = toks[left_end:right_start]
    if any(t.low not in _LIST_WORDS for t in between):
        return False
    gaps = "".join(t.start_gap for t in toks[left_end : right_start + 1])
    if any(c not in " ,\t" for c in gaps):
        return False
    return "," in gaps or any(t.low in ("and", "or") for t in between)


def _inside_name(toks: list[_Tok], s: int, e: int, known: Matcher, anchors: Matcher) -> bool:
    """A place name glued to another capitalized name is part of that name, not the place.

    Before it: Lok Sabha, Jabal al-Zawiya, San Beda; after it, a rare word
    (a surname, not "Airport" or "Brigade"): Sabiha Gökçen.
    """
    from watcher.profiles.text import zipf_at_least

    def other_name(tok: _Tok) -> bool:
        return tok.upper and not known.find([tok]) and not anchors.find([tok]) and tok.low not in _COMPASS

    if (
        e < len(toks)
        and toks[e].start_gap == " "
        and other_name(toks[e])
        and not zipf_at_least(toks[e].low, 3.0)
    ):
        return True
    if s > 1 and toks[s - 1].low in _ARTICLES and toks[s].start_gap in (" ", "-"):
        s -= 1  # Jabal al-Zawiya: look past the article
    if s == 0 or toks[s].start_gap not in (" ", "-"):
        return False
    prev = toks[s - 1]
    # A common word before it is ordinary text starting a sentence ("In Tripoli", "The Benghazi…").
    return prev.low not in _ARTICLES and other_name(prev) and not zipf_at_least(prev.low, 4.0)


class ItemText:
    """An item's tokens, country mentions and first sentence, worked out once for all profiles."""

    __slots__ = ("_countries", "_first_end", "_toks", "summary", "title")

    def __init__(self, title: str, summary: str) -> None:
        self.title, self.summary = title, summary
        self._toks: list[_Tok] | None = None
        self._countries: list[tuple[int, int, str]] | None = None
        self._first_end: int | None = None

    @property
    def toks(self) -> list[_Tok]:
        if self._toks is None:
            self._toks = _tokens(self.title, self.summary)
        return self._toks

    @property
    def countries(self) -> list[tuple[int, int, str]]:
        """(start, end, form) of every country name or adjective."""
        if self._countries is None:
            self._countries = country_matcher()[0].find(self.toks)
        return self._countries

    @property
    def first_end(self) -> int:
        if self._first_end is None:
            self._first_end = _first_sentence_end(self.toks)
        return self._first_end


def read(
    item: ItemText,
    anchors: Matcher,
    skip: frozenset[str] = frozenset(),
    places: frozenset[str] = frozenset(),
) -> Reading | None:
    """Signals for one item; None when no anchor occurs in the text.

    ``skip``: anchors ruled out for this item (ambiguous); ``places``: anchors
    that are place names, which do not count inside another capitalized name.
    """
    toks = item.toks
    found = [m for m in anchors.find(toks) if m[2] not in skip]
    countries, code_of = country_matcher()
    topic = []
    inside: set[str] = set()
    for s, e, term in found:
        if term in places and _inside_name(toks, s, e, countries, anchors):
            inside.add(term)
        else:
            topic.append((s, e, term))
    inside -= {t for _, _, t in topic}
    if not topic:
        return Reading(False, False, False, False, None, False, tuple(sorted(inside))) if inside else None
    topic_spans = {(s, e) for s, e, _ in topic}
    others = [(s, e, code_of[t]) for s, e, t in item.countries if (s, e) not in topic_spans]
    others = [o for o in others if not any(s <= o[0] < e for s, e in topic_spans)]
    first_end = item.first_end

    lead = any(s < min(first_end, LEAD_WINDOW) for s, _, _ in topic)
    late = all(s >= first_end for s, _, _ in topic)

    # Lists: chains of coordinated place mentions; the topic is listed when its chain has two other countries.
    places = sorted([(s, e, None) for s, e, _ in topic] + [(s, e, c) for s, e, c in others])
    listed_all = True
    for s, e, _ in topic:
        k = places.index((s, e, None))
        lo = hi = k
        while lo > 0 and _coordinated(toks, places[lo - 1][1], places[lo][0]):
            lo -= 1
        while hi + 1 < len(places) and _coordinated(toks, places[hi][1], places[hi + 1][0]):
            hi += 1
        if len({c for _, _, c in places[lo : hi + 1] if c}) < 2:
            listed_all = False
            break

    def peripheral(s: int, e: int) -> bool:
        window = {t.low for t in toks[max(0, s - 3) : e + 2]}
        if window & _BORDER:
            return True
        if e < len(toks) and toks[e].start_gap == "-" and toks[e].low in _COMPARE_AFTER:
            return True
        if s > 0 and toks[s - 1].low == "like":
            return True
        if {t.low for t in toks[max(0, s - 5) : s]} & _COMPARE_BEFORE:
            return True
        return e < len(toks) and toks[e].low in _ORIGIN_AFTER

    border = all(peripheral(s, e) for s, e, _ in topic)
    offshore = any(
        (s > 0 and toks[s - 1].low == "off") or {t.low for t in toks[max(0, s - 3) : e + 3]} & _SEA
        for s, e, _ in topic
    )

    foreign = None
    if others:
        first_other = others[0]
        first_topic = min(s for s, _, _ in topic)
        n_topic = len(topic)
        counts: dict[str, int] = {}
        for _, _, c in others:
            counts[c] = counts.get(c, 0) + 1
        code = first_other[2]
        if first_other[0] < first_topic and first_other[0] < first_end and counts[code] >= n_topic:
            from watcher.profiles.gazetteer import countries as _countries

            foreign = _countries()[code].name
    return Reading(lead, late, listed_all, border, foreign, offshore, tuple(sorted(inside)))
