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
from functools import lru_cache
from typing import NamedTuple

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
_MOST_WORDS, _RANKS = 1_000, 1_000_000  # priorities of `Matcher.key_forms`: words of a term, prefix ranks

_TOKEN_SPLIT = re.compile(r"([^\W_]+)")  # capturing: split() returns gap, token, gap, token, …, gap
_SENTENCE_END = re.compile(r"[.!?…]|\n")
# Text whose letters and digits are ASCII: the same words by a byte table (every byte but a letter or
# digit to a space) and the possessive as a pattern: an apostrophe right after a word, s, no word
# (the apostrophe first, the look-behind after it: the search then skips to apostrophes instead of
# trying the look-behind at every character, ~4x faster).
_ASCII_SPACES = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_ASCII_POSSESSIVE = re.compile(r"['’](?<=[A-Za-z0-9]['’])[sS](?![A-Za-z0-9])")
_ASCII_BYTES = bytes(range(128))
_ASCII_SENTENCE_END = re.compile(r"[.!?\n]")  # "…" is no ASCII
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
# ASCII text's bytes as "x" for a letter or digit, else a space: a word starts at each " x".
_ASCII_WORD_STARTS = bytes(ord("x") if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_WORD_CHAR = re.compile(r"[^\W_]")
_GAP_JOIN = "a"  # no gap contains a letter: gaps joined with one can be counted back to their index
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
# Every word the border and offshore signals look for: an item with none of them has neither signal.
_CUES = frozenset(_BORDER | _COMPARE_AFTER | {"like"} | _COMPARE_BEFORE | _ORIGIN_AFTER | _SEA | {"off"})
CUES = _CUES  # (the scorer scans for them too: `ItemText.cued`)
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


class Tokens:
    """An item's words as parallel lists: C-level splitting instead of a Python object per word.

    ``lows[i]`` is word i folded to lower case, ``gaps[i]`` the raw text between word i-1 and
    word i, ``words[i]`` the word as written (its capital says whether it is a name). Words are
    runs of letters and digits; a possessive 's (after an apostrophe, never the first word) is
    no word of its own. ASCII text (most news) takes a path of a few C calls, and ``words`` and
    ``gaps`` are only split out when a reading asks for them.
    """

    __slots__ = ("_ascii", "_gaps", "_joined", "_spaced", "_text", "_words", "lows", "normalized")

    def __init__(self, title: str, summary: str, normalized: str | None = None) -> None:
        """``normalized``: the scorer's `normalize` of the same text, if it has one."""
        # Feeds often repeat the title as the summary's opening: read it once.
        head = title.rstrip(" .…")
        text = summary if head and summary.startswith(head) else f"{title}\n{summary}" if summary else title
        self._words: list[str] | None = None
        self._gaps: list[str] | None = None
        self._joined: str | None = None
        # The scorer's normalized text when the words are its words (`joined` is it less its last space).
        self.normalized: str | None = None
        # The ASCII path keeps the text's bytes with every byte but a letter or digit made a space.
        self._spaced: bytes | None = None
        # Letters and digits all ASCII (other characters may be typographic quotes, dashes, …):
        # a byte table finds the same words, since every byte of a non-ASCII character is a space to it.
        if text.isascii() or not _WORD_CHAR.search(text.encode().translate(None, _ASCII_BYTES).decode()):
            self._ascii = True
            if "'" in text or "’" in text:
                text = _ASCII_POSSESSIVE.sub("", text)
            elif normalized is not None and text.isascii():
                # No apostrophe, so no possessive: `normalize` made the same words by the same table.
                self._text = text
                self.lows = normalized.split()
                self.normalized = normalized
                return
            self._text = text
            self._spaced = text.encode().translate(_ASCII_SPACES)
            self.lows = self._spaced.lower().decode().split()
            return
        self._ascii = False
        parts = _TOKEN_SPLIT.split(text)
        words, gaps = parts[1::2], parts[0:-1:2]
        if ("'s" in text or "’s" in text or "'S" in text or "’S" in text) and ("s" in words or "S" in words):
            keep = [
                i == 0 or w not in ("s", "S") or g not in ("'", "’")
                for i, (w, g) in enumerate(zip(words, gaps, strict=True))
            ]
            words = [w for w, k in zip(words, keep, strict=True) if k]
            gaps = [g for g, k in zip(gaps, keep, strict=True) if k]
        self._text = ""
        self._words, self._gaps = words, gaps
        self.lows = [w.lower() if w.isascii() else fold(w) for w in words]

    def __len__(self) -> int:
        return len(self.lows)

    @property
    def spaced(self) -> bytes | None:
        """The ASCII path's text with every byte but a letter or digit a space; None on the other path."""
        if self._spaced is None and self._ascii:
            self._spaced = self._text.encode().translate(_ASCII_SPACES)
        return self._spaced

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = self.spaced.decode().split()  # type: ignore[union-attr]  # set on this path
        return self._words

    @property
    def gaps(self) -> list[str]:
        if self._gaps is None:
            self._gaps = _ASCII_WORD.split(self._text)[:-1]
        return self._gaps

    @property
    def joined(self) -> str:
        """The folded words, each after one space: a word starts with p only where " " + p occurs."""
        if self._joined is None:
            normalized = self.normalized
            self._joined = normalized[:-1] if normalized is not None else " " + " ".join(self.lows)
        return self._joined

    def upper(self, i: int) -> bool:
        return self.words[i][0].isupper()


def _first_sentence_end(toks: Tokens) -> int:
    """Index of the first word of the second sentence (len(toks) when there is one sentence)."""
    if toks._ascii and toks._text.isascii():  # bytes and characters line up
        return _ascii_first_sentence_end(toks._text, toks.lows)
    gaps, lows = toks.gaps, toks.lows
    if len(gaps) < 2:
        return len(gaps)
    joined = _GAP_JOIN.join(gaps)
    i = seen = 0
    at = 0
    for m in _SENTENCE_END.finditer(joined, len(gaps[0])):
        i += joined.count(_GAP_JOIN, at, m.start())
        at = m.start()
        if i == seen:
            continue  # another end mark in a gap already looked at
        seen = i
        gap = gaps[i]
        if "\n" in gap or "…" in gap:
            return i
        prev = lows[i - 1]
        if toks.upper(i) and len(prev) > 1 and prev not in _ABBREVIATIONS:
            return i
    return len(gaps)


def _ascii_first_sentence_end(text: str, lows: list[str]) -> int:
    """`_first_sentence_end` of ASCII text, from its end marks without splitting out the gaps.

    The first mark of a gap is the first one met in it, so the gap holds no mark before it:
    whether it holds a line break is decided by the text from the mark to the next word.
    """
    n = len(lows)
    i = seen = 0  # i: words before the mark (marks are never inside a word)
    starts = None  # " x" where a word starts: words before p are the " x" before p + 1 (no word objects)
    for m in _ASCII_SENTENCE_END.finditer(text):
        p = m.start()
        if starts is None:
            starts = f" {text}".encode().translate(_ASCII_WORD_STARTS)
        i = starts.count(b" x", 0, p + 1)
        if i == seen:
            continue  # before the first word, or another end mark in a gap already looked at
        if i >= n:
            break  # after the last word
        seen = i
        following = _ASCII_ALNUM.search(text, p).start()  # type: ignore[union-attr]  # word i
        if "\n" in text[p:following]:
            return i
        prev = lows[i - 1]
        if text[following].isupper() and len(prev) > 1 and prev not in _ABBREVIATIONS:
            return i
    return n


KeyTable = dict[int, tuple[int, int, str, int]]  # see `Matcher.key_table`
Scan = tuple[str, list[tuple[int, int]], KeyTable]


class Matcher:
    """Finds a set of terms (words, phrases, ``prefix*``) in an item's words."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.words: dict[str, str] = {}
        self.prefixes: list[tuple[str, str]] = []
        phrases: dict[str, list[tuple[list[str], str]]] = {}
        for term in terms:
            if term.endswith("*"):
                self.prefixes.append((term[:-1], term))
                continue
            for form in inflections(term):
                parts = form.split()
                if len(parts) == 1:
                    self.words.setdefault(parts[0], term)
                else:
                    phrases.setdefault(parts[0], []).append((parts, term))
        # Phrases by first word, then second word, longest first (the first to fit wins): a frequent
        # first word ("the", "new") costs one look-up of the word after it.
        self.phrases: dict[str, dict[str, list[tuple[list[str], str]]]] = {}
        for first, entries in phrases.items():
            entries.sort(key=lambda e: -len(e[0]))
            by_second = self.phrases[first] = {}
            for parts, term in entries:
                by_second.setdefault(parts[1], []).append((parts, term))
        self._starts = frozenset(self.words) | frozenset(self.phrases)  # words a term can start with
        self._prefix_keys = tuple(p for p, _ in self.prefixes)
        self._spaced_prefixes = tuple(" " + p for p in self._prefix_keys)
        # A word that only starts phrases ("the" of "the gambia", "new" of "new zealand") starts
        # nothing in an item without any of the words that can follow it: no need to visit it.
        self._seconds = {
            first: frozenset(by_second)
            for first, by_second in self.phrases.items()
            if first not in self.words and not (self._prefix_keys and first.startswith(self._prefix_keys))
        }
        self._phrase_only = frozenset(self._seconds)
        # Set by the scorer that owns this matcher: its `key_table` for that scorer's automaton.
        self.keyed: KeyTable | None = None

    def key_forms(self) -> list[tuple[str, int, str, int]]:
        """(automaton key, priority, words, term) of each form, in the scorer's key spelling.

        A phrase or word is " form ", a prefix " prefix". The priority orders what `find` prefers
        at one position: the longest phrase, then a word, then the first prefix (a lower number
        wins; of two equal keys the first listed). A term of several words ending in ``*`` never
        matches a word, so it has no key.
        """
        out: list[tuple[str, int, str, int]] = []
        for by_second in self.phrases.values():
            for entries in by_second.values():
                for parts, term in entries:  # longest first, the first to fit wins
                    out.append(
                        (f" {' '.join(parts)} ", (_MOST_WORDS - len(parts)) * _RANKS, term, len(parts))
                    )
        out.extend((f" {word} ", (_MOST_WORDS - 1) * _RANKS, term, 1) for word, term in self.words.items())
        for rank, (prefix, term) in enumerate(self.prefixes, start=1):
            if " " not in prefix:
                out.append((f" {prefix}", (_MOST_WORDS - 1) * _RANKS + rank, term, 1))
        return out

    def key_table(self, key_ids: Mapping[str, int]) -> KeyTable:
        """Key number (in ``key_ids``) -> (priority, words, term, key length), for `ItemText.mentions`."""
        table: KeyTable = {}
        for key, priority, term, words in self.key_forms():
            table.setdefault(key_ids[key], (priority, words, term, len(key)))
        return table

    def find(self, toks: Tokens) -> list[tuple[int, int, str]]:
        """(start, end, term) of each non-overlapping occurrence, left to right.

        Longest phrase first, then a word, then a prefix, at each position; only positions
        whose word can start a term are visited.
        """
        lows = toks.lows
        # set.intersection walks the item's few words, checking each in the (maybe large) set, in C.
        starts = self._starts.intersection(lows)
        if self._prefix_keys:
            joined = toks.joined
            if any(spaced in joined for spaced in self._spaced_prefixes):  # a C search before a word loop
                starts |= {w for w in lows if w.startswith(self._prefix_keys)}
        if not starts:
            return []
        if not self._phrase_only.isdisjoint(starts):
            idle = [w for w in self._phrase_only.intersection(starts) if self._seconds[w].isdisjoint(lows)]
            if idle:
                starts = starts.difference(idle)
                if not starts:
                    return []
        positions = []
        for w in starts:
            at = -1
            for _ in range(lows.count(w)):
                at = lows.index(w, at + 1)
                positions.append(at)
        if len(starts) > 1:
            positions.sort()
        n = len(lows)
        out: list[tuple[int, int, str]] = []
        end = 0
        for i in positions:
            if i < end:
                continue  # inside the previous occurrence
            low = lows[i]
            k = 0
            term = ""
            after = self.phrases.get(low)
            if after is not None and i + 1 < n:
                for parts, phrase_term in after.get(lows[i + 1], ()):
                    if i + len(parts) <= n and lows[i : i + len(parts)] == parts:
                        k, term = len(parts), phrase_term
                        break
            if not k:
                if low in self.words:
                    k, term = 1, self.words[low]
                else:
                    for prefix, prefix_term in self.prefixes:
                        if low.startswith(prefix):
                            k, term = 1, prefix_term
                            break
            if k:
                out.append((i, i + k, term))
                end = i + k
        return out

    def names(self, low: str) -> bool:
        """Whether one word on its own is one of the terms (what ``find`` says of a one-word text)."""
        return low in self.words or (bool(self._prefix_keys) and low.startswith(self._prefix_keys))


@lru_cache(maxsize=1)
def country_matcher() -> tuple[Matcher, dict[str, str]]:
    """Every country's name and adjective forms, and the country code of each form."""
    from watcher.profiles.gazetteer import countries

    code_of: dict[str, str] = {}
    for code, country in sorted(countries().items()):
        for form in country.forms:
            code_of.setdefault(form, code)
    return Matcher(code_of), code_of


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Each country's name as GeoNames writes it, by code."""
    from watcher.profiles.gazetteer import countries

    return {code: country.name for code, country in countries().items()}


class Reading(NamedTuple):
    """What the signals found; ``contributions`` turns them into score.

    A named tuple, not a dataclass: one is built per item and profile, and it keys the cache
    of what its signals are worth (:class:`SignalWeights`).
    """

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


class SignalWeights:
    """A profile's signal weights, with what each reading is worth under them, worked out once.

    ``worth(reading)`` is ``(signals, deciding, ranking)``: the (label, contribution) pairs of
    :meth:`Reading.contributions` rounded for a `Score`, and the sums of the contributions that
    decide a match and of those that only rank. Few distinct readings occur (six flags and a
    country), so profiles with the same weights share one cache.
    """

    MAX_CACHED = 10_000

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)
        self._worth: dict[Reading, tuple[tuple[tuple[str, float], ...], float, float]] = {}

    def worth(self, reading: Reading) -> tuple[tuple[tuple[str, float], ...], float, float]:
        got = self._worth.get(reading)
        if got is None:
            signals = reading.contributions(self.weights)
            deciding = sum(c for label, c in signals if not _ranking_only(label))
            ranking = sum(c for label, c in signals if _ranking_only(label))
            got = (tuple((label, round(c, 4)) for label, c in signals), deciding, ranking)
            if len(self._worth) >= self.MAX_CACHED:
                self._worth.clear()
            self._worth[reading] = got
        return got


def _ranking_only(label: str) -> bool:
    return label.split(":", 1)[0] in RANKING_SIGNALS


def _coordinated(toks: Tokens, left_end: int, right_start: int) -> bool:
    """Two mentions are entries of one list: only commas, 'and', 'or', 'the' between them."""
    between = toks.lows[left_end:right_start]
    if any(low not in _LIST_WORDS for low in between):
        return False
    gaps = "".join(toks.gaps[left_end : right_start + 1])
    if any(c not in " ,\t" for c in gaps):
        return False
    return "," in gaps or "and" in between or "or" in between


def _inside_name(toks: Tokens, s: int, e: int, known: Matcher, anchors: Matcher) -> bool:
    """A place name glued to another capitalized name is part of that name, not the place.

    Before it: Lok Sabha, Jabal al-Zawiya, San Beda; after it, a rare word
    (a surname, not "Airport" or "Brigade"): Sabiha Gökçen.
    """
    from watcher.profiles.text import zipf_at_least

    lows, gaps = toks.lows, toks.gaps

    def other_name(i: int) -> bool:
        low = lows[i]
        return toks.upper(i) and not known.names(low) and not anchors.names(low) and low not in _COMPASS

    if e < len(lows) and gaps[e] == " " and other_name(e) and not zipf_at_least(lows[e], 3.0):
        return True
    if s > 1 and lows[s - 1] in _ARTICLES and gaps[s] in (" ", "-"):
        s -= 1  # Jabal al-Zawiya: look past the article
    if s == 0 or gaps[s] not in (" ", "-"):
        return False
    # A common word before it is ordinary text starting a sentence ("In Tripoli", "The Benghazi…").
    return lows[s - 1] not in _ARTICLES and other_name(s - 1) and not zipf_at_least(lows[s - 1], 4.0)


class ItemText:
    """An item's words, country mentions and first sentence, worked out once for all profiles.

    ``scan``: the scorer's normalized text of the item, its automaton's (end, key) matches in it
    and the country names' `Matcher.key_table` for that automaton, from which `mentions` reads
    occurrences.
    """

    __slots__ = (
        "_countries",
        "_cued",
        "_first_end",
        "_readings",
        "_scan",
        "_scan_cued",
        "_scan_fits",
        "_toks",
        "summary",
        "title",
        "worth",
    )

    def __init__(self, title: str, summary: str, scan: Scan | None = None, cued: bool | None = None) -> None:
        """``cued``: whether the scan found a word of `CUES` (the scorer's scan holds them as keys)."""
        self.title, self.summary = title, summary
        self._scan = scan
        self._scan_cued = cued
        self._scan_fits: bool | None = None
        self._toks: Tokens | None = None
        self._countries: list[tuple[int, int, str]] | None = None
        self._first_end: int | None = None
        self._cued: bool | None = None
        self._readings: dict[tuple[int, frozenset[str], frozenset[str]], Reading | None] = {}
        # The scorer's memo of what this item's reading is worth to profiles alike (by its own number).
        self.worth: dict[int, tuple[tuple[str, ...], tuple[tuple[str, float], ...], float, float]] = {}

    @property
    def toks(self) -> Tokens:
        if self._toks is None:
            self._toks = Tokens(self.title, self.summary, self._scan[0] if self._scan else None)
        return self._toks

    @property
    def countries(self) -> list[tuple[int, int, str]]:
        """(start, end, form) of every country name or adjective."""
        if self._countries is None:
            self._countries = self.mentions(country_matcher()[0], self._scan[2] if self._scan else None)
        return self._countries

    @property
    def cued(self) -> bool:
        """Whether any word the border or offshore signal looks for occurs (most items have none)."""
        if self._cued is None:
            if self._scan_cued is not None and self.scan_fits:
                self._cued = self._scan_cued  # a cue word of the scan's words is one of the item's words
            else:
                self._cued = not _CUES.isdisjoint(self.toks.lows)
        return self._cued

    @property
    def scan_fits(self) -> bool:
        """Whether the scan's text is the item's words, each between single spaces (checked once)."""
        if self._scan_fits is None:
            scan = self._scan
            if scan is None:
                self._scan_fits = False
            else:
                toks = self.toks
                self._scan_fits = toks.normalized is scan[0] or toks.joined + " " == scan[0]
        return self._scan_fits

    @property
    def first_end(self) -> int:
        if self._first_end is None:
            self._first_end = _first_sentence_end(self.toks)
        return self._first_end

    def mentions(self, matcher: Matcher, keyed: KeyTable | None) -> list[tuple[int, int, str]]:
        """``matcher.find(self.toks)``, from the scorer's scan when ``keyed`` numbers its keys in it.

        The scan's words are the item's words whenever its normalized text is them between
        single spaces (checked once; otherwise ``find``): a key starting at the space before word
        i is an occurrence at i, and at each position the best key wins, left to right, skipping
        positions inside the previous occurrence, as ``find`` does.
        """
        if not keyed or self._scan is None or not self.scan_fits:
            return matcher.find(self.toks)
        text, matches, _ = self._scan
        best: KeyTable = {}
        for end, key in matches:
            got = keyed.get(key)
            if got is not None:
                at = text.count(" ", 0, end - got[3] + 1)  # the key starts at the space before word `at`
                have = best.get(at)
                if have is None or got[0] < have[0]:
                    best[at] = got
        out: list[tuple[int, int, str]] = []
        stop = 0
        for at in sorted(best):
            if at >= stop:
                _, words, term, _ = best[at]
                stop = at + words
                out.append((at, stop, term))
        return out


def read(
    item: ItemText,
    anchors: Matcher,
    skip: frozenset[str] = frozenset(),
    places: frozenset[str] = frozenset(),
) -> Reading | None:
    """Signals for one item; None when no anchor occurs in the text.

    ``skip``: anchors ruled out for this item (ambiguous); ``places``: anchors
    that are place names, which do not count inside another capitalized name.
    Profiles that share their anchors (one ``Matcher``) share the reading of an item.
    """
    key = (id(anchors), skip, places)
    cached = item._readings.get(key, item)
    if cached is not item:
        return cached  # type: ignore[return-value]
    reading = item._readings[key] = _read(item, anchors, skip, places)
    return reading


def _read(item: ItemText, anchors: Matcher, skip: frozenset[str], places: frozenset[str]) -> Reading | None:
    toks = item.toks
    found = item.mentions(anchors, anchors.keyed)
    if skip:
        found = [m for m in found if m[2] not in skip]
    if not found:
        return None
    countries, code_of = country_matcher()
    inside: set[str] = set()
    if places:
        topic = []
        for s, e, term in found:
            if term in places and _inside_name(toks, s, e, countries, anchors):
                inside.add(term)
            else:
                topic.append((s, e, term))
        inside -= {t for _, _, t in topic}
        if not topic:
            return Reading(False, False, False, False, None, False, tuple(sorted(inside)))
    else:
        topic = found
    lows = toks.lows
    n = len(lows)
    others: list[tuple[int, int, str]] = []
    if item.countries:
        # A country name that starts inside a mention of the topic is (part of) the topic.
        covered = {s for s, _, _ in topic}
        for s, e, _ in topic:
            if e - s > 1:
                covered.update(range(s + 1, e))
        others = [(s, e, code_of[t]) for s, e, t in item.countries if s not in covered]
    first_topic = topic[0][0]  # mentions come left to right
    if first_topic == 0:  # the first word: early in the first sentence (which has at least that word)
        lead, late = True, False
    else:
        first_end = item.first_end
        lead = first_topic < min(first_end, LEAD_WINDOW)
        late = first_topic >= first_end
    listed_all = bool(others) and _listed(toks, topic, others)
    border = offshore = False
    if item.cued:
        border = True
        for s, e, _ in topic:
            if border and not _peripheral(toks, n, s, e):
                border = False
            if not offshore and (
                (s > 0 and lows[s - 1] == "off") or not _SEA.isdisjoint(lows[max(0, s - 3) : e + 3])
            ):
                offshore = True

    foreign = None
    if others:
        first_other = others[0]
        n_topic = len(topic)
        code = first_other[2]
        leads = first_other[0] < first_topic and first_other[0] < item.first_end
        if leads and sum(1 for _, _, c in others if c == code) >= n_topic:
            foreign = _country_names()[code]
    return Reading(lead, late, listed_all, border, foreign, offshore, tuple(sorted(inside)) if inside else ())


def _listed(toks: Tokens, topic: list[tuple[int, int, str]], others: list[tuple[int, int, str]]) -> bool:
    """Every mention of the topic sits in a chain of coordinated places with two other countries."""
    if len({c for _, _, c in others}) < 2:
        return False  # no chain can hold two other countries: most items, read without the chains
    return _chained(toks, topic, others)


def _chained(toks: Tokens, topic: list[tuple[int, int, str]], others: list[tuple[int, int, str]]) -> bool:
    """`_listed` by following each mention's chain of coordinated places."""
    mentions: list[tuple[int, int, str | None]] = sorted(
        [(s, e, None) for s, e, _ in topic] + [(s, e, c) for s, e, c in others]  # type: ignore[misc]
    )
    for s, e, _ in topic:
        k = mentions.index((s, e, None))
        lo = hi = k
        while lo > 0 and _coordinated(toks, mentions[lo - 1][1], mentions[lo][0]):
            lo -= 1
        while hi + 1 < len(mentions) and _coordinated(toks, mentions[hi][1], mentions[hi + 1][0]):
            hi += 1
        if len({c for _, _, c in mentions[lo : hi + 1] if c}) < 2:
            return False
    return True


def _peripheral(toks: Tokens, n: int, s: int, e: int) -> bool:
    """The mention at s:e is at a border, a neighbour, a comparison or an origin."""
    lows = toks.lows
    if not _BORDER.isdisjoint(lows[max(0, s - 3) : e + 2]):
        return True
    if e < n and lows[e] in _COMPARE_AFTER and toks.gaps[e] == "-":
        return True
    if s > 0 and lows[s - 1] == "like":
        return True
    if not _COMPARE_BEFORE.isdisjoint(lows[max(0, s - 5) : s]):
        return True
    return e < n and lows[e] in _ORIGIN_AFTER
