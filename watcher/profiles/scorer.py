"""Score items against many profiles at once.

An item is normalized once and scanned once for the anchors of all profiles
(one Aho-Corasick automaton); most items hit none and every profile gets a
shared zero `Score`. Only an item with an anchor is scanned again, once, for
every profile's keys (anchors, context, vetoes, exclusions); each profile with
an anchor in it takes its own keys from what was found and reads the item's
aboutness from words split once for every such profile (profiles with the
same anchors share that reading). Cost per profile
therefore shrinks as profiles are added.

Score of one item for one profile:

* no anchor (after disambiguation) → 0, not matched, reason "no anchor term";
* anchors: the strongest counts fully, each further distinct anchor counts
  half (several of the story's actors in one item means the item is about
  the story, not merely mentioning the country);
* context terms add their weights (capped at ``context_cap``) only when an
  anchor fired;
* aboutness signals (:mod:`watcher.profiles.aboutness`) add or subtract:
  the topic named early as the subject, or only in a list of countries, at a
  neighbour's border, late in the text; a place name inside another name
  (Lok Sabha) is no anchor;
* matched when the total reaches the profile's threshold.

Each distinct term counts once, so an item whose summary repeats its title is
not scored twice.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter

import ahocorasick

from watcher.profiles.aboutness import (
    CUES,
    ItemText,
    KeyTable,
    Matcher,
    SignalWeights,
    country_matcher,
    read,
)
from watcher.profiles.spec import REGEX_PREFIX, ProfileSpec
from watcher.profiles.text import (
    ascii_spaced,
    fold,
    inflections,
    normalize,
    normalize_term,
    plain_punctuation,
)
from watcher.values import Score, new_score

ANCHOR, TERM, VETO, EXCLUDE = 0, 1, 2, 3
SECONDARY_ANCHOR_FACTOR = 0.5
OTHER_THREAD_FLOOR = 1.5  # the most that words of other threads (negative weights) subtract
THREAD_CAP = 1.0  # the most that words of the seeds' own threads add (ranking only)
NO_ANCHOR = "no anchor term"
_second = itemgetter(1)
_third = itemgetter(2)


def _patterns(term: str) -> list[str]:
    """Automaton keys for a normalized term: whole words, or a prefix with '*'."""
    if term.endswith("*"):
        return [" " + term[:-1]]
    return [f" {form} " for form in inflections(term)]


# An automaton value: the entries of one key for one profile, each (kind, term, weight, context),
# where context is what a TERM contributes to the item's context: (rank, term, weight, role,
# (term, weight)); rank is the term's place in the profile's order of weight then name, so sorting
# contexts by it is that order without a key function.
_Context = tuple[int, str, float, int, tuple[str, float]]
_Entry = tuple[int, str, float, _Context | None]
DECIDING, THREAD, OTHER_THREAD, NO_ROLE = 0, 1, 2, 3  # roles of a context term


def _by_weight(kv: tuple[str, float]) -> tuple[float, str]:
    return (-kv[1], kv[0])


# A hit as the common path builds it: (-contribution, term, (term, rounded contribution)). A list of
# them sorts into a Score's order (largest first, then by name) without a key function, and each
# carries the pair the Score shows.
_Hit = tuple[float, str, tuple[str, float]]


def _hit(term: str, contribution: float) -> _Hit:
    return (-contribution, term, (term, round(contribution, 4)))


@dataclass(frozen=True, slots=True)
class _Codes:
    """A profile's entries as small numbers, for the common item (see `Scorer._score_common`).

    Each key whose only entry is an anchor or a context term has a code; sorting an item's codes
    puts its anchors first, by weight then name (the strongest first), then its deciding context
    terms, thread words and other threads' words, each in rank order, then terms of weight 0
    (which count for nothing). Every other key (vetoes, exclusions, keys with several entries)
    has the code ``special``: an item with one takes the general path.
    """

    of: dict[int, int]  # key -> code
    anchors_end: int  # first code after the anchors
    deciding_end: int
    thread_end: int
    other_end: int
    special: int
    terms: list[str]  # by code
    weights: list[float]  # by code: the weight (an anchor's when it is the strongest)
    hits: list[_Hit]  # by code: the hit at that weight
    secondary_weights: list[float]  # by anchor code: the anchor's weight as a further anchor
    secondary_hits: list[_Hit]
    covers: dict[int, frozenset[int]]  # a context phrase's code -> the codes of its words that are terms
    phrases: frozenset[int]  # the codes of `covers`


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    spec: ProfileSpec
    regexes: tuple[tuple[str, re.Pattern[str]], ...]
    sources: tuple[str, ...]
    vetoed_by: dict[str, frozenset[str]]  # ambiguous term -> its disambiguating words
    zero: Score
    anchor_matcher: Matcher  # one object for profiles with the same anchors: they share an item's reading
    places: frozenset[str]  # anchors that are place names (from the gazetteer)
    signals: SignalWeights  # aboutness signal weights (shared by profiles with the same weights)
    reading_id: int  # the same for profiles with the same anchors, places and signal weights
    groups: dict[int, tuple[_Entry, ...]]  # a key's entries for this profile, in the order they were added
    codes: _Codes
    has_phrases: bool  # some context term has several words
    by_codes: dict[tuple[int, ...], tuple[float, float, tuple[tuple[str, float], ...]]]  # see `_terms_worth`
    max_code_sets: int  # the memo starts over beyond this many code sets (`code_set_cap`)
    threshold: float
    context_cap: float


class Scorer:
    """Scores items against a fixed set of profiles; build with :func:`compile_profiles`."""

    def __init__(self, specs: Mapping[str, ProfileSpec]) -> None:
        self.names: list[str] = sorted(specs)
        self._profiles: list[_Compiled] = []
        anchor_keys: dict[str, set[int]] = {}
        key_ids: dict[str, int] = {}  # every profile's keys, numbered
        matchers: dict[tuple[str, ...], Matcher] = {}
        weights: dict[tuple[tuple[str, float], ...], SignalWeights] = {}
        reading_ids: dict[tuple[int, frozenset[str], int], int] = {}
        for idx, name in enumerate(self.names):
            spec = specs[name]
            table: dict[str, list[_Entry]] = {}

            def add(pattern_term: str, entry: _Entry, table: dict[str, list[_Entry]] = table) -> None:
                for key in _patterns(pattern_term):
                    table.setdefault(key, []).append(entry)

            for term, weight in spec.anchors.items():
                add(term, (ANCHOR, term, weight, None))
                for key in _patterns(term):
                    anchor_keys.setdefault(key, set()).add(idx)
            ranking_terms = frozenset(spec.origin.get("generic", ()))
            for rank, (term, weight) in enumerate(sorted(spec.terms.items(), key=_by_weight)):
                # Generic thread words (origin "generic") and negative weights only rank.
                if weight > 0:
                    role = THREAD if term in ranking_terms else DECIDING
                else:
                    role = OTHER_THREAD if weight < 0 else NO_ROLE
                add(term, (TERM, term, weight, (rank, term, weight, role, (term, weight))))
            vetoed_by: dict[str, frozenset[str]] = {}
            for term, words in spec.ambiguous.items():
                vetoed_by[term] = frozenset(words)
                for word in words:
                    add(word, (VETO, word, 0.0, None))
            regexes = []
            for item in spec.exclude:
                if item.startswith(REGEX_PREFIX):
                    regexes.append((item, re.compile(item[len(REGEX_PREFIX) :], re.IGNORECASE)))
                else:
                    add(normalize_term(item), (EXCLUDE, item, 0.0, None))
            groups = {key_ids.setdefault(key, len(key_ids)): tuple(entries) for key, entries in table.items()}
            anchor_list = tuple(spec.anchors)  # in order: the first of two terms with one form names it
            if anchor_list not in matchers:
                matchers[anchor_list] = Matcher(anchor_list)
            signal_weights = spec.signal_weights()
            places = frozenset(spec.origin.get("gazetteer", ()))
            weights_key = tuple(sorted(signal_weights.items()))
            if weights_key not in weights:
                weights[weights_key] = SignalWeights(signal_weights)
            self._profiles.append(
                _Compiled(
                    name=name,
                    spec=spec,
                    regexes=tuple(regexes),
                    sources=tuple(fold(s) for s in spec.exclude_sources),
                    vetoed_by=vetoed_by,
                    zero=Score(profile=name, score=0.0, matched=False, reason=NO_ANCHOR),
                    anchor_matcher=matchers[anchor_list],
                    places=places,
                    signals=weights[weights_key],
                    reading_id=reading_ids.setdefault(
                        (id(matchers[anchor_list]), places, id(weights[weights_key])), len(reading_ids)
                    ),
                    groups=groups,
                    codes=_codes(spec, groups),
                    has_phrases=any(" " in t for t in spec.terms),
                    by_codes={},
                    max_code_sets=code_set_cap(len(specs)),
                    threshold=spec.threshold,
                    context_cap=spec.context_cap,
                )
            )
        self._zeros = [p.zero for p in self._profiles]
        # Only anchors decide whether a profile needs any work, so the first scan looks for anchors
        # alone: most items hit none and cost one scan in C. An item with an anchor is then scanned
        # for every profile's keys at once (anchors, context, vetoes, exclusions), and each anchored
        # profile takes its own keys from what was found.
        # Built when an item first has an anchor (see `_key_scan`): it also holds the country names,
        # which load on first use.
        self._key_ids = key_ids
        self._key_automaton: ahocorasick.Automaton | None = None
        self._country_keys: KeyTable = {}
        for matcher in matchers.values():  # an item's anchors then come from the scan of its keys
            matcher.keyed = matcher.key_table(key_ids)
        # The keys an item's readings look up (`ItemText.mentions`): every anchor matcher's, and the
        # country names' once the key scan is built.
        self._anchor_key_ids = frozenset().union(*[matcher.keyed for matcher in matchers.values()])
        self._read_keys: frozenset[int] = self._anchor_key_ids
        self._cue_keys: frozenset[int] = frozenset()  # the words of `CUES`, in the key scan
        self._anchors = ahocorasick.Automaton()
        for key, pids in anchor_keys.items():
            self._anchors.add_word(key, frozenset(pids))
        # An ASCII item (once its typographic punctuation is ASCII) is first scanned for one word of
        # each anchor key in its lower-cased text with every other byte a space (`ascii_spaced`),
        # which needs no `normalize` (see `_first_word`).
        self._first_words = ahocorasick.Automaton()
        for key in {_first_word(key) for key in anchor_keys}:
            self._first_words.add_word(key, key)
        # The profiles each anchor key (by its number in the key scan) anchors.
        self._anchored_by = {key_ids[key]: frozenset(pids) for key, pids in anchor_keys.items()}
        if anchor_keys:
            self._anchors.make_automaton()
            self._first_words.make_automaton()
        self._empty = not anchor_keys

    def score(self, title: str, summary: str, source: str | None = None) -> list[Score]:
        """One `Score` per profile, in name order."""
        out = self._zeros.copy()
        if self._empty:
            return out
        # Feeds often open the summary with the title: scan that text once.
        head = title.rstrip("… .")
        raw = summary if head and summary.startswith(head) else f"{title} \n {summary}"
        anchored: frozenset[int] | None = None
        # Typographic punctuation as `normalize` makes it ASCII (most non-ASCII in news text).
        plain = raw if raw.isascii() else plain_punctuation(raw)
        if plain.isascii():
            # Most items: no word of any anchor occurs, and the answer comes without `normalize`.
            if next(self._first_words.iter(ascii_spaced(plain)), None) is None:
                return out  # context terms alone never score: the shared zero Score is the answer
            text = normalize(plain)  # (the same as of `raw`)
            matches = self._keys_in(text)
            # A summary that repeats its title repeats its keys: each profile looks each one up once.
            distinct = set(map(_second, matches))
            anchored_by = self._anchored_by
            hit = anchored_by.keys() & distinct
            if not hit:
                return out  # a word of an anchor, but no anchor
            anchored = frozenset().union(*map(anchored_by.__getitem__, hit))
        else:
            text = normalize(raw)
            for _, pids in self._anchors.iter(text):
                anchored = pids if anchored is None else anchored | pids
            if anchored is None:
                return out
            matches = self._keys_in(text)
            distinct = set(map(_second, matches))
        # The item's words, country names, first sentence, read once for every profile.
        item = self._item_text(title, summary, text, matches, distinct)
        for idx in anchored:
            prof = self._profiles[idx]
            score = self._score_common(prof, distinct, title, summary, source, item)
            if score is None:
                groups = prof.groups
                found = [groups[key] for _, key in matches if key in groups]
                score = self._score_one(prof, found, title, summary, source, item)
            out[idx] = score
        return out

    def _item_text(
        self, title: str, summary: str, text: str, matches: list[tuple[int, int]], distinct: set[int]
    ) -> ItemText:
        """The anchored item's `ItemText` from the key scan of its normalized ``text``.

        Its readings look only at anchor and country keys (a few of the scan's matches): picked
        out once here, not by each reading; whether a cue word of the border and offshore signals
        occurs is read off the scan's keys.
        """
        read_keys = self._read_keys
        scan = (text, [m for m in matches if m[1] in read_keys], self._country_keys)
        return ItemText(title, summary, scan, not self._cue_keys.isdisjoint(distinct))

    def _keys_in(self, text: str) -> list[tuple[int, int]]:
        """Every profile's keys and every country name in ``text``, by end, the longer first (the
        order of a profile's own automaton: in `_score_one` the first excluded word names the reason)."""
        automaton = self._key_automaton if self._key_automaton is not None else self._key_scan()
        return list(automaton.iter(text))

    def _key_scan(self) -> ahocorasick.Automaton:
        """Every profile's keys (anchors, context, vetoes, exclusions) and the country names' forms."""
        if self._key_automaton is None:
            key_ids = dict(self._key_ids)
            countries = country_matcher()[0]
            for key, *_ in countries.key_forms():
                key_ids.setdefault(key, len(key_ids))
            # The words the border and offshore signals look for: whether an item has one comes from
            # the scan too (a key no profile has is in no profile's groups or codes: it changes no Score).
            cue_keys = [key_ids.setdefault(f" {word} ", len(key_ids)) for word in sorted(CUES)]
            automaton = ahocorasick.Automaton()
            for key, number in key_ids.items():
                automaton.add_word(key, number)
            automaton.make_automaton()
            self._country_keys = countries.key_table(key_ids)
            self._read_keys = self._anchor_key_ids | frozenset(self._country_keys)
            self._cue_keys = frozenset(cue_keys)
            self._key_automaton = automaton
        return self._key_automaton

    def _score_common(
        self,
        prof: _Compiled,
        keys: set[int],
        title: str,
        summary: str,
        source: str | None,
        item: ItemText,
    ) -> Score | None:
        """`_score_one` for the common item, by C calls on the profile's codes; None for any other.

        Common: the item has none of the profile's vetoes, exclusions or context phrases, no key
        with several entries, and no anchor only inside another name. Then each distinct term
        counts once by its code, and the anchors and the context terms of each role come out of
        one sort in the order `_score_one` puts them in, so every sum adds the same floats in the
        same order. What a set of codes adds is remembered per profile (`_terms_worth`); the
        item's reading is not (it is read for each item).
        """
        codes_of = prof.codes
        codes = sorted(set(filter(None, map(codes_of.of.get, keys))))
        if not codes or codes[-1] == codes_of.special or codes[0] >= codes_of.anchors_end:
            return None
        if not codes_of.phrases.isdisjoint(codes):
            # A phrase that fired says what its words say: "united nations" does not count "nations" again.
            covered = frozenset().union(*[codes_of.covers[c] for c in codes if c in codes_of.covers])
            codes = [c for c in codes if c not in covered]
        if (prof.sources or prof.regexes) and (excluded := _excluded(prof, title, summary, source)):
            return excluded
        # What the item's reading is worth, once per item for profiles with the same anchors, places
        # and signal weights.
        worth = item.worth.get(prof.reading_id)
        if worth is None:
            reading = read(item, prof.anchor_matcher, _NOTHING, prof.places)
            worth = _NO_READING if reading is None else (reading.inside_names, *prof.signals.worth(reading))
            item.worth[prof.reading_id] = worth
        inside_names, signals, signal_deciding, signal_ranking = worth
        if inside_names:
            return None
        # What the codes add (everything but the reading) is the same whenever the same codes fire,
        # which on a stream of news is most of the time: worked out once per profile and code set.
        key = tuple(codes)
        terms = prof.by_codes.get(key)
        if terms is None:
            terms = _terms_worth(prof, codes)
            if len(prof.by_codes) >= prof.max_code_sets:
                prof.by_codes.clear()
            prof.by_codes[key] = terms
        terms_deciding, terms_ranking, pairs = terms
        deciding = terms_deciding
        deciding += signal_deciding
        ranking = terms_ranking + signal_ranking
        threshold = prof.threshold
        if deciding >= threshold:
            total = deciding + ranking
            if not total > threshold:  # max(threshold, total): the first of equals
                total = threshold
            return new_score(prof.name, _round4(total), True, pairs, None, signals)
        reason = f"below threshold ({deciding:.2f} < {threshold:g})"
        return new_score(prof.name, round(deciding, 4), False, pairs, reason, signals)

    def _score_one(
        self,
        prof: _Compiled,
        found: list[tuple[_Entry, ...]],
        title: str,
        summary: str,
        source: str | None,
        item: ItemText,
    ) -> Score:
        anchors: dict[str, float] = {}
        terms: dict[str, _Context] = {}
        vetoes: set[str] = set()
        for entries in found:
            for kind, key, weight, context_entry in entries:
                if kind == TERM:
                    terms[key] = context_entry  # type: ignore[assignment]
                elif kind == ANCHOR:
                    anchors[key] = weight
                elif kind == VETO:
                    vetoes.add(key)
                else:
                    return Score(prof.name, 0.0, False, reason=f"excluded: {key!r}")
        ruled_out: list[str] = []
        vetoed: frozenset[str] = _NOTHING
        if vetoes:
            ruled: set[str] = set()
            for term, words in prof.vetoed_by.items():
                if not words & vetoes:
                    continue
                if (anchors.pop(term, None) is not None) | (terms.pop(term, None) is not None):
                    ruled_out.append(f"{term!r} ({', '.join(sorted(words & vetoes))})")
                    ruled.add(term)
            vetoed = frozenset(ruled)
        # A phrase that fired says what its words say: "united nations" does not count "nations" again.
        if prof.has_phrases and len(terms) > 1:
            for phrase in [t for t in terms if " " in t]:
                for word in phrase.split():
                    if word in terms and word != phrase:
                        del terms[word]
        context = sorted(terms.values())  # by weight, then name (the rank)
        if not anchors:
            # Every anchor was ruled out as ambiguous; show what fired, it adds nothing.
            reason = NO_ANCHOR
            if ruled_out:
                reason += f"; ruled out as ambiguous: {', '.join(ruled_out)}"
            return Score(prof.name, 0.0, False, tuple([(c[1], 0.0) for c in context]), reason)
        if (prof.sources or prof.regexes) and (excluded := _excluded(prof, title, summary, source)):
            return excluded
        reading = read(item, prof.anchor_matcher, vetoed, prof.places)
        if reading is None:
            signals, signal_deciding, signal_ranking = (), 0, 0
        else:
            if reading.inside_names:
                for term in reading.inside_names:
                    anchors.pop(term, None)
                if not anchors:
                    reason = f"{NO_ANCHOR}; only inside other names: {', '.join(reading.inside_names)}"
                    return Score(prof.name, 0.0, False, tuple([(c[1], 0.0) for c in context]), reason)
            signals, signal_deciding, signal_ranking = prof.signals.worth(reading)
        if len(anchors) == 1:
            hits: list[tuple[str, float]] = list(anchors.items())
        else:
            ranked = sorted(anchors.items(), key=_by_weight)
            hits = [ranked[0]]
            hits.extend([(t, w * SECONDARY_ANCHOR_FACTOR) for t, w in ranked[1:]])
        # Context adds up to context_cap and helps decide the match. Generic thread words (origin
        # "generic": conflict, migration, sport…) and negative weights only rank: an item of another
        # thread still matches, below the story's own news, and a peripheral mention is not rescued.
        deciding_ctx: list[tuple[str, float]] = []
        thread: list[tuple[str, float]] = []
        other_thread: list[tuple[str, float]] = []
        for _, _, _, role, pair in context:
            if role == DECIDING:
                deciding_ctx.append(pair)
            elif role == THREAD:
                thread.append(pair)
            elif role == OTHER_THREAD:
                other_thread.append(pair)
        # (A factor of exactly 1.0 changes no weight: the pairs are taken as they are.)
        if deciding_ctx:
            ctx_sum = sum([w for _, w in deciding_ctx])
            cap = prof.context_cap
            scale = cap / ctx_sum if ctx_sum > cap > 0 else (0.0 if cap == 0 else 1.0)
            hits.extend(deciding_ctx if scale == 1.0 else [(t, w * scale) for t, w in deciding_ctx])
        ranking_hits: list[tuple[str, float]] = []
        for part, limit in ((thread, THREAD_CAP), (other_thread, OTHER_THREAD_FLOOR)):
            if part:
                total_part = abs(sum([w for _, w in part]))
                ratio = limit / total_part if total_part > limit else 1.0
                ranking_hits.extend(part if ratio == 1.0 else [(t, w * ratio) for t, w in part])
        deciding = sum([c for _, c in hits])
        deciding += signal_deciding
        ranking = sum([c for _, c in ranking_hits]) + signal_ranking
        threshold = prof.threshold
        matched = deciding >= threshold
        total = max(threshold, deciding + ranking) if matched else deciding
        hits.extend(ranking_hits)
        if len(hits) > 1:
            hits.sort(key=_by_weight)
        reason = None if matched else f"below threshold ({deciding:.2f} < {threshold:g})"
        rounded = tuple([(t, round(c, 4)) for t, c in hits])
        return Score(prof.name, round(total, 4), matched, rounded, reason, signals)


def _first_word(key: str) -> str:
    """What `ascii_spaced` text holds wherever ``key`` occurs in the `normalize` of the same ASCII text.

    `normalize` of ASCII text is its lower-cased runs of letters and digits (less the s of a
    possessive) between single spaces; `ascii_spaced` keeps every run, lower-cased, between one or more
    spaces. So each whole word of a key is there between spaces, and a key's last word when it is a
    prefix (" haftar") after one: of several, the longest (rarer, so fewer items take the full scan).
    """
    words = key.split()
    if not words:
        return key  # (no such key is made; a space is in every `ascii_spaced` text)
    if key.endswith(" "):
        return f" {max(words, key=len)} "
    if len(words) == 1:
        return key
    return f" {max(words[:-1], key=len)} "


def _terms_worth(prof: _Compiled, codes: list[int]) -> tuple[float, float, tuple[tuple[str, float], ...]]:
    """What a profile's codes add, as `_score_one` adds them: (the sum that decides a match, the
    sum that only ranks, the Score's hits in order). The reading's signals come on top."""
    codes_of = prof.codes
    weights_of, hits_of = codes_of.weights, codes_of.hits
    # Anchors: the strongest counts fully, each further one at SECONDARY_ANCHOR_FACTOR.
    n_anchors = bisect_left(codes, codes_of.anchors_end)
    first = codes[0]
    contributions = [weights_of[first]]
    hits = [hits_of[first]]
    if n_anchors > 1:
        further = codes[1:n_anchors]
        contributions.extend(map(codes_of.secondary_weights.__getitem__, further))
        hits.extend(map(codes_of.secondary_hits.__getitem__, further))
    # Context adds up to context_cap (see `_score_one`); thread words and other threads' words rank.
    n_codes = len(codes)
    n_deciding = bisect_left(codes, codes_of.deciding_end, n_anchors) if n_codes > n_anchors else n_anchors
    if n_deciding > n_anchors:
        deciding_codes = codes[n_anchors:n_deciding]
        weights = list(map(weights_of.__getitem__, deciding_codes))
        ctx_sum = sum(weights)
        cap = prof.context_cap
        scale = cap / ctx_sum if ctx_sum > cap > 0 else (0.0 if cap == 0 else 1.0)
        _add_scaled(codes_of, deciding_codes, weights, scale, contributions, hits)
    ranking_contributions: list[float] = []
    if n_codes > n_deciding:  # thread words and other threads' words (about half the items have none)
        start = n_deciding
        for end, limit in ((codes_of.thread_end, THREAD_CAP), (codes_of.other_end, OTHER_THREAD_FLOOR)):
            stop = bisect_left(codes, end, start)
            if stop > start:
                part = codes[start:stop]
                weights = list(map(weights_of.__getitem__, part))
                total_part = abs(sum(weights))
                ratio = limit / total_part if total_part > limit else 1.0
                _add_scaled(codes_of, part, weights, ratio, ranking_contributions, hits)
            start = stop
    if len(hits) > 1:
        hits.sort()
    return sum(contributions), sum(ranking_contributions), tuple(map(_third, hits))


# round(x, 4) goes through a decimal string (~2 us); a Score's total is one of few values per
# profile, so each is rounded once. Only floats, and not zero: a dict takes 0.0 and -0.0, or 2
# and 2.0, for one key.
_ROUNDED: dict[float, float] = {}
MAX_ROUNDED = 10_000
# The memo of `_terms_worth` holds at most this many code sets per profile, and about
# CODE_SETS_IN_ALL over all profiles (~360 bytes each: ~18 MB), so a service with many broad
# profiles stays bounded over months; a profile's own memo starts over when full.
MAX_CODE_SETS = 2_000
MIN_CODE_SETS = 250
CODE_SETS_IN_ALL = 50_000


def code_set_cap(profiles: int) -> int:
    """How many code sets each of ``profiles`` profiles remembers."""
    return min(MAX_CODE_SETS, max(MIN_CODE_SETS, CODE_SETS_IN_ALL // max(profiles, 1)))


def _round4(x: float) -> float:
    """``round(x, 4)``, remembered per float value (`round` goes through a decimal string; an int
    keeps its type, so it is neither looked up nor remembered: 2 and 2.0 are one key)."""
    if type(x) is float:
        rounded = _ROUNDED.get(x)
        if rounded is not None:
            return rounded
    rounded = round(x, 4)
    if x and type(x) is float:
        if len(_ROUNDED) >= MAX_ROUNDED:
            _ROUNDED.clear()
        _ROUNDED[x] = rounded
    return rounded


def _excluded(prof: _Compiled, title: str, summary: str, source: str | None) -> Score | None:
    """The Score of an item the profile excludes by its source or a pattern, or None."""
    if prof.sources and source and any(s in fold(source) for s in prof.sources):
        return Score(prof.name, 0.0, False, reason=f"excluded source: {source!r}")
    if prof.regexes:
        raw = f"{title}\n{summary}"
        for label, rx in prof.regexes:
            if rx.search(raw):
                return Score(prof.name, 0.0, False, reason=f"excluded: {label!r}")
    return None


def _add_scaled(
    codes_of: _Codes,
    part: list[int],
    weights: list[float],
    scale: float,
    contributions: list[float],
    hits: list[_Hit],
) -> None:
    """Add a run of codes (one role) at ``scale``: unscaled, their precomputed hits serve as they are."""
    if scale == 1.0:
        contributions.extend(weights)
        hits.extend(map(codes_of.hits.__getitem__, part))
    else:
        # As `_hit` makes them, each contribution rounded once per value (`_ROUNDED`): the same
        # words at the same cap give the same scaled values again and again.
        terms_of = codes_of.terms
        for code, weight in zip(part, weights, strict=True):
            contribution = weight * scale
            contributions.append(contribution)
            term = terms_of[code]
            hits.append((-contribution, term, (term, _round4(contribution))))


_NOTHING: frozenset[str] = frozenset()
_NO_READING: tuple[tuple[str, ...], tuple[tuple[str, float], ...], float, float] = ((), (), 0, 0)


def _codes(spec: ProfileSpec, groups: dict[int, tuple[_Entry, ...]]) -> _Codes:
    """Number a profile's anchors and context terms in the order `_score_common` needs them."""
    terms: list[str] = [""]  # code 0 is none: filter(None, …) drops a key without a code
    weights: list[float] = [0.0]
    hits: list[_Hit] = [_hit("", 0.0)]
    secondary_weights: list[float] = [0.0]
    secondary_hits: list[_Hit] = [_hit("", 0.0)]
    code_of_term: dict[tuple[int, str], int] = {}
    for term, weight in sorted(spec.anchors.items(), key=_by_weight):
        code_of_term[(ANCHOR, term)] = len(terms)
        terms.append(term)
        weights.append(weight)
        hits.append(_hit(term, weight))
        secondary_weights.append(weight * SECONDARY_ANCHOR_FACTOR)
        secondary_hits.append(_hit(term, weight * SECONDARY_ANCHOR_FACTOR))
    ends = [len(terms)]
    contexts = sorted({c for entries in groups.values() for kind, _, _, c in entries if kind == TERM and c})
    for role in (DECIDING, THREAD, OTHER_THREAD, NO_ROLE):
        for _, term, weight, term_role, _ in contexts:
            if term_role == role:
                code_of_term[(TERM, term)] = len(terms)
                terms.append(term)
                weights.append(weight)
                hits.append(_hit(term, weight))
        ends.append(len(terms))
    special = len(terms)
    of: dict[int, int] = {}
    for key, entries in groups.items():
        kind, term = entries[0][0], entries[0][1]
        of[key] = code_of_term[(kind, term)] if len(entries) == 1 and kind in (ANCHOR, TERM) else special
    covers = {
        code_of_term[(TERM, phrase)]: frozenset(
            code_of_term[(TERM, word)] for word in phrase.split() if (TERM, word) in code_of_term
        )
        for phrase in spec.terms
        if " " in phrase
    }
    covers = {code: words for code, words in covers.items() if words}
    return _Codes(
        of,
        ends[0],
        ends[1],
        ends[2],
        ends[3],
        special,
        terms,
        weights,
        hits,
        secondary_weights,
        secondary_hits,
        covers,
        frozenset(covers),
    )


def compile_profiles(specs: Mapping[str, ProfileSpec]) -> Scorer:
    """Build one `Scorer` for all profiles (one automaton over all their terms)."""
    return Scorer(specs)
