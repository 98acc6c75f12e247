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
from collections.abc import Mapping
from dataclasses import dataclass

import ahocorasick

from watcher.profiles.aboutness import ItemText, Matcher, SignalWeights, read
from watcher.profiles.spec import REGEX_PREFIX, ProfileSpec
from watcher.profiles.text import fold, inflections, normalize, normalize_term
from watcher.values import Score

ANCHOR, TERM, VETO, EXCLUDE = 0, 1, 2, 3
SECONDARY_ANCHOR_FACTOR = 0.5
OTHER_THREAD_FLOOR = 1.5  # the most that words of other threads (negative weights) subtract
THREAD_CAP = 1.0  # the most that words of the seeds' own threads add (ranking only)
NO_ANCHOR = "no anchor term"


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
    groups: dict[int, tuple[_Entry, ...]]  # a key's entries for this profile, in the order they were added
    has_phrases: bool  # some context term has several words
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
                    places=frozenset(spec.origin.get("gazetteer", ())),
                    signals=weights[weights_key],
                    groups=groups,
                    has_phrases=any(" " in t for t in spec.terms),
                    threshold=spec.threshold,
                    context_cap=spec.context_cap,
                )
            )
        self._zeros = [p.zero for p in self._profiles]
        # Only anchors decide whether a profile needs any work, so the first scan looks for anchors
        # alone: most items hit none and cost one scan in C. An item with an anchor is then scanned
        # for every profile's keys at once (anchors, context, vetoes, exclusions), and each anchored
        # profile takes its own keys from what was found.
        self._keys = ahocorasick.Automaton()
        for key, number in key_ids.items():
            self._keys.add_word(key, number)
        if key_ids:
            self._keys.make_automaton()
        self._anchors = ahocorasick.Automaton()
        for key, pids in anchor_keys.items():
            self._anchors.add_word(key, frozenset(pids))
        if anchor_keys:
            self._anchors.make_automaton()
        self._empty = not anchor_keys

    def score(self, title: str, summary: str, source: str | None = None) -> list[Score]:
        """One `Score` per profile, in name order."""
        out = self._zeros.copy()
        if self._empty:
            return out
        # Feeds often open the summary with the title: scan that text once.
        head = title.rstrip("… .")
        text = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
        anchored: frozenset[int] | None = None
        for _, pids in self._anchors.iter(text):
            anchored = pids if anchored is None else anchored | pids
        if anchored is None:
            return out  # context terms alone never score: the shared zero Score is the answer
        item = ItemText(title, summary)  # words and country names, read once for every profile
        # Every profile's keys in the text, in the order a profile's own automaton gives its keys (by
        # end, the longer first): the first excluded word found names the reason.
        keys = [key for _, key in self._keys.iter(text)]
        for idx in anchored:
            groups = self._profiles[idx].groups
            found = [groups[key] for key in keys if key in groups]
            out[idx] = self._score_one(self._profiles[idx], found, title, summary, source, item)
        return out

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
        if prof.sources and source and any(s in fold(source) for s in prof.sources):
            return Score(prof.name, 0.0, False, reason=f"excluded source: {source!r}")
        if prof.regexes:
            raw = f"{title}\n{summary}"
            for label, rx in prof.regexes:
                if rx.search(raw):
                    return Score(prof.name, 0.0, False, reason=f"excluded: {label!r}")
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


_NOTHING: frozenset[str] = frozenset()


def compile_profiles(specs: Mapping[str, ProfileSpec]) -> Scorer:
    """Build one `Scorer` for all profiles (one automaton over all their terms)."""
    return Scorer(specs)
