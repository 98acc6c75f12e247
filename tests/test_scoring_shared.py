"""Scoring many profiles at once shares an item's work; it must not change any profile's score.

The scorer reads an item once (words, country names, first sentence) for every profile with an
anchor in it, and profiles with the same anchors share one reading. These tests hold that to the
simple definitions: each profile scored alone, and the item's words and term occurrences found by
a plain left-to-right scan.
"""

from __future__ import annotations

import json
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from tests.conftest import need_shared
from watcher.profiles import ProfileSpec, compile_profiles, derive_profile
from watcher.profiles.aboutness import (
    CUES,
    ItemText,
    Matcher,
    Tokens,
    _chained,
    _first_sentence_end,
    _listed,
    country_matcher,
)
from watcher.profiles.scorer import ANCHOR, _add_scaled, _first_word, _hit, code_set_cap
from watcher.profiles.text import _NON_WORD, _POSSESSIVE, ascii_spaced, fold, normalize, plain_punctuation
from watcher.values import Score, new_score

REPO = Path(__file__).resolve().parents[1]

ODD_TEXTS = [
    ("Libya's army and Tunisia’s navy", "It's the EU's 's plan; 's first. Erdoğan’s visit…"),
    ("'s at the start", "x 's spaced; a's_b; it’S; U.S. talks. Next sentence"),
    ("Tripoli, Lebanon", "Near the Libyan border.\nA new line — and “quotes” – dashes…"),
    ("São Tomé and Príncipe", "Côte d'Ivoire, Iran, Iraq, Libya and Sudan were named."),
    ("", ""),
    ("...", "  "),
    ("The United States and the United Kingdom", "the united arab emirates; New Zealand's PM"),
    ("Gen. Haftar visits Benghazi", "Mr. Dbeibah. Dr. Smith spoke! Then? yes"),
    ("The Gambia and New Zealand", "the new government of the Gambia; Unhaftar and the Haftarists"),
    ("Boat sinks off Libya", "Libya-style talks near the Libyan border, off the coast, like Libya"),
]


def _dev_texts(limit: int) -> list[tuple[str, str, str | None]]:
    path = need_shared("eval", "dev.jsonl")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")][:limit]
    return [(r.get("title") or "", r.get("summary") or "", r.get("source")) for r in rows]


# --- the plain definitions the scorer's shortcuts must agree with ---------------------------------

_WORD = re.compile(r"[^\W_]+")


def _plain_tokens(title: str, summary: str) -> list[tuple[str, str, bool]]:
    """(folded word, text before it, capitalized) by one regex scan, possessive 's dropped."""
    head = title.rstrip(" .…")
    text = summary if head and summary.startswith(head) else f"{title}\n{summary}" if summary else title
    out: list[tuple[str, str, bool]] = []
    prev_end = 0
    for m in _WORD.finditer(text):
        word, gap = m.group(), text[prev_end : m.start()]
        prev_end = m.end()
        if word in ("s", "S") and gap in ("'", "’") and out:
            continue
        out.append((word.lower() if word.isascii() else fold(word), gap, word[0].isupper()))
    return out


def _plain_find(matcher: Matcher, lows: list[str]) -> list[tuple[int, int, str]]:
    """Every position in turn: the longest phrase, else a word, else a prefix; skip past a hit."""
    listed = [e for by_second in matcher.phrases.values() for entries in by_second.values() for e in entries]
    phrases = sorted(listed, key=lambda e: -len(e[0]))
    out, i = [], 0
    while i < len(lows):
        hit = next(((len(p), t) for p, t in phrases if lows[i : i + len(p)] == p), None)
        if hit is None and lows[i] in matcher.words:
            hit = (1, matcher.words[lows[i]])
        if hit is None:
            hit = next(((1, t) for p, t in matcher.prefixes if lows[i].startswith(p)), None)
        if hit is None:
            i += 1
            continue
        out.append((i, i + hit[0], hit[1]))
        i += hit[0]
    return out


def _plain_first_end(toks: list[tuple[str, str, bool]]) -> int:
    abbreviations = {"gen", "dr", "mr", "mrs", "ms", "st", "lt", "col", "sgt", "no", "jr", "sr", "vs"}
    abbreviations |= {"rep", "sen"}
    for i in range(1, len(toks)):
        gap = toks[i][1]
        if not re.search(r"[.!?…]|\n", gap):
            continue
        if "\n" in gap or "…" in gap:
            return i
        prev = toks[i - 1][0]
        if toks[i][2] and len(prev) > 1 and prev not in abbreviations:
            return i
    return len(toks)


def test_words_gaps_and_first_sentence_match_a_plain_scan() -> None:
    for title, summary, _ in [*((t, s, None) for t, s in ODD_TEXTS), *_dev_texts(3000)]:
        plain = _plain_tokens(title, summary)
        toks = Tokens(title, summary)
        assert toks.lows == [w for w, _, _ in plain], (title, summary)
        assert toks.gaps == [g for _, g, _ in plain], (title, summary)
        assert [toks.upper(i) for i in range(len(toks))] == [u for _, _, u in plain], (title, summary)
        assert _first_sentence_end(toks) == _plain_first_end(plain), (title, summary)


def test_words_from_the_scorers_normalized_text_match_a_plain_scan() -> None:
    """Tokens that take their words from `normalize`'s text give what a plain scan gives."""
    shortcut = 0
    # Non-ASCII text whose letters are ASCII and has no apostrophe: normalize folds it ("™" to
    # "TM"), Tokens reads its bytes, so its words must not come from the normalized text.
    odd = [*ODD_TEXTS, ("Acme™ Corp — “new” plan", "A plain line")]
    for title, summary, _ in [*((t, s, None) for t, s in odd), *_dev_texts(3000)]:
        head = title.rstrip("… .")
        normalized = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
        toks = Tokens(title, summary, normalized)
        shortcut += toks._spaced is None and toks._ascii  # the words came from the normalized text
        plain = _plain_tokens(title, summary)
        assert toks.lows == [w for w, _, _ in plain], (title, summary)
        assert toks.joined == " " + " ".join(w for w, _, _ in plain), (title, summary)
        assert toks.gaps == [g for _, g, _ in plain], (title, summary)
        assert [toks.upper(i) for i in range(len(toks))] == [u for _, _, u in plain], (title, summary)
        assert _first_sentence_end(toks) == _plain_first_end(plain), (title, summary)
    assert shortcut > 600


def test_new_score_is_the_dataclass_score() -> None:
    """The scorer's constructor fills the same fields in the same order and leaves a frozen Score."""
    for args in [
        ("libya", 2.5, True, (("libya", 2.0), ("haftar", 0.5)), None, (("lead", 0.5),)),
        ("peru", 0.75, False, (("lima", 0.75),), "below threshold (0.75 < 2)", ()),
        ("x", 0.0, False, (), "no anchor term", ()),
    ]:
        built, plain = new_score(*args), Score(*args)
        assert built == plain
        assert repr(built) == repr(plain)
        assert hash(built) == hash(plain)
        with pytest.raises(FrozenInstanceError):
            built.score = 1.0  # type: ignore[misc]


def test_term_occurrences_match_a_plain_scan() -> None:
    terms = ["libya", "tripoli", "united nations", "united nations support mission", "haftar*", "new"]
    anchors = Matcher(terms)
    # Words that only start phrases ("the", "new" here) and prefixes met only inside words.
    phrases = Matcher(["the gambia", "new zealand", "new york times", "united*", "al qaeda", "haftar*", "a*"])
    countries = country_matcher()[0]
    for title, summary, _ in [*((t, s, None) for t, s in ODD_TEXTS), *_dev_texts(3000)]:
        toks = Tokens(title, summary)
        for matcher in (anchors, phrases, countries):
            assert matcher.find(toks) == _plain_find(matcher, toks.lows), (title, summary)


# --- many profiles at once == each alone ----------------------------------------------------------


@pytest.fixture(scope="module")
def profiles() -> dict[str, ProfileSpec]:
    libya = derive_profile([p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))])
    hand = {
        "anchors": {"libya": 3.0, "tripoli": 2.0, "haftar*": 2.0},
        "terms": {"ceasefire": 1.0, "oil": 0.5, "united nations": 1.0, "nations": 0.7, "football": -1.0},
        "ambiguous": {"tripoli": ["lebanon", "lebanese"]},
        "threshold": 2.5,
        "context_cap": 1.5,
    }
    return {
        "libya": libya,
        "libya-copy": libya.model_copy(update={"threshold": 3.0}),  # same anchors: shares the reading
        "hand": ProfileSpec(**hand),
        "hand-excl": ProfileSpec(
            **hand, exclude=["oil price", "re:(?i)\\bsport"], exclude_sources=["Reuters"]
        ),
        "hand-weights": ProfileSpec(**{**hand, "aboutness": {"lead": 1.0, "list": -1.0, "foreign": -0.25}}),
        "covid": ProfileSpec(
            anchors={"covid": 2.0, "coronavirus": 2.0}, terms={"vaccine": 1.0, "lockdown": 0.5}
        ),
        "zero-ctx": ProfileSpec(anchors={"trump": 2.5}, terms={"election": 1.0}, context_cap=0.0),
    }


def test_scoring_profiles_together_gives_each_profile_its_own_score(profiles: dict[str, ProfileSpec]) -> None:
    items = [*((t, s, "Reuters") for t, s in ODD_TEXTS), *_dev_texts(4000)]
    together = compile_profiles(profiles)
    alone = {name: compile_profiles({name: spec}) for name, spec in profiles.items()}
    fired = 0
    for title, summary, source in items:
        scores = together.score(title, summary, source)
        assert [s.profile for s in scores] == sorted(profiles)
        for score in scores:
            assert score == alone[score.profile].score(title, summary, source)[0], (score.profile, title)
            fired += score.score != 0
    assert fired > 100  # the items exercise the scoring, not only the shared zero


def test_mentions_from_the_scorers_scan_match_a_plain_scan(profiles: dict[str, ProfileSpec]) -> None:
    # Terms that compete for one position: phrases, a longer phrase, a word and prefixes.
    phrases = {"united*": 1.0, "united nations": 1.0, "united nations support mission": 2.0, "unit*": 1.0}
    phrases |= {"new zealand": 2.0, "new": 0.5, "al qaeda": 2.0, "a*": 1.0, "al*": 1.0, "the gambia": 1.0}
    scorer = compile_profiles({**profiles, "phrases": ProfileSpec(anchors=phrases)})
    automaton = scorer._key_scan()
    countries = country_matcher()[0]
    matchers = {id(p.anchor_matcher): p.anchor_matcher for p in scorer._profiles}
    scanned = 0
    competing = (
        "UN",
        "The United Nations Support Mission and the united nations; al Qaeda, al-Qaeda; A new ally",
    )
    for title, summary in [competing, *ODD_TEXTS, *((t, s) for t, s, _ in _dev_texts(3000))]:
        head = title.rstrip("… .")
        text = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
        item = ItemText(title, summary, (text, list(automaton.iter(text)), scorer._country_keys))
        lows = item.toks.lows
        assert item.countries == _plain_find(countries, lows), (title, summary)
        for matcher in matchers.values():
            assert matcher.keyed is not None
            assert item.mentions(matcher, matcher.keyed) == _plain_find(matcher, lows), (title, summary)
        scanned += bool(item._scan_fits)
    assert scanned > 3000  # the scan served nearly every item, not the fall-back


def test_common_scores_match_the_general_path(profiles: dict[str, ProfileSpec]) -> None:
    """The common path (codes sorted in C) gives every Score the general path gives, whether what
    the codes add was worked out for the item or remembered from an earlier item."""
    scorer = compile_profiles(profiles)
    automaton = scorer._key_scan()
    common = remembered = 0
    for title, summary, source in [*((t, s, "Reuters") for t, s in ODD_TEXTS), *_dev_texts(4000)]:
        head = title.rstrip("… .")
        text = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
        matches = list(automaton.iter(text))
        keys = [key for _, key in matches]
        item = ItemText(title, summary, (text, matches, scorer._country_keys))
        for prof in scorer._profiles:
            if not any(e[0] == ANCHOR for key in keys for e in prof.groups.get(key, ())):
                continue  # not anchored: the shared zero Score
            known = len(prof.by_codes)
            fast = scorer._score_common(prof, set(keys), title, summary, source, item)
            found = [prof.groups[key] for key in keys if key in prof.groups]
            if fast is not None:
                general = scorer._score_one(prof, found, title, summary, source, item)
                assert fast == general, (prof.name, title)
                assert repr(fast) == repr(general), (prof.name, title)  # 2.0 is not 2, -0.0 not 0.0
                common += 1
                remembered += len(prof.by_codes) == known
                assert len(prof.by_codes) <= prof.max_code_sets
    assert common > 300
    assert common - remembered > 20 and remembered > 300


def test_the_code_set_memo_is_bounded_over_all_profiles(profiles: dict[str, ProfileSpec]) -> None:
    """Each profile remembers at most its share of a budget for all profiles, and starts over when
    full: a service with many profiles and months of items keeps a bounded memo."""
    assert [code_set_cap(n) for n in (1, 10, 25, 100, 1000)] == [2000, 2000, 2000, 500, 250]
    scorer = compile_profiles(profiles)
    assert {p.max_code_sets for p in scorer._profiles} == {code_set_cap(len(profiles))}
    for prof in scorer._profiles:
        object.__setattr__(prof, "max_code_sets", 2)  # a small cap, to see it start over
    largest = started_over = 0
    for title, summary, source in _dev_texts(20_000):
        before = [len(p.by_codes) for p in scorer._profiles]
        scorer.score(title, summary, source)
        after = [len(p.by_codes) for p in scorer._profiles]
        largest = max(largest, *after)
        started_over += sum(a < b for a, b in zip(after, before, strict=True))
    assert largest == 2  # filled up to the cap, never beyond
    assert started_over > 0


def test_a_list_needs_two_other_countries() -> None:
    """`_listed` skips the chains when fewer than two other countries occur: the same answer."""
    _, code_of = country_matcher()
    seen = {"skipped": 0, "chained": 0, "listed": 0}
    for title, summary, _ in _dev_texts(4000) + [(t, s, None) for t, s in ODD_TEXTS]:
        item = ItemText(title, summary)
        found = item.countries
        # Each country in turn is the topic and the rest are the others, as `_read` splits them.
        for code in {code_of[t] for _, _, t in found}:
            topic = [m for m in found if code_of[m[2]] == code]
            others = [(s, e, code_of[t]) for s, e, t in found if code_of[t] != code]
            if not others:
                continue
            got = _listed(item.toks, topic, others)
            assert got == _chained(item.toks, topic, others), (title, summary, code)
            seen["skipped" if len({c for _, _, c in others}) < 2 else "chained"] += 1
            seen["listed"] += got
    assert seen["skipped"] > 100 and seen["chained"] > 100 and seen["listed"] > 10, seen


def _folded_normalize(text: str) -> str:
    """`normalize` of non-ASCII text by its plain definition: fold, drop possessives, words."""
    text = fold(text)
    if "'s" in text:
        text = _POSSESSIVE.sub(" ", text)
    return " " + " ".join(_NON_WORD.sub(" ", text).split()) + " "


def test_typographic_punctuation_takes_the_ascii_path_to_the_same_words() -> None:
    """Text whose only non-ASCII is typographic quotes, dashes, ellipses skips folding: same text."""
    texts = [f"{t} \n {s}" for t, s, _ in _dev_texts(6000)] + [f"{t} \n {s}" for t, s in ODD_TEXTS]
    texts += ["LIBYA’S “Army”—ITS ‘S’ plan…", "It’S Kelvin \u212a’s", "O’Sullivan’s ’s_x’s", "–—…"]
    plain = 0
    for text in texts:
        if not text.isascii():
            assert normalize(text) == _folded_normalize(text), text
            plain += _plain_only(text)
    assert plain > 500, plain


def _plain_only(text: str) -> bool:
    return all(c.isascii() or c in "’‘…–—“”" for c in text)


# --- the first look at ASCII text, before `normalize` ---------------------------------------------

FIRST_LOOK_TEXTS = [
    ("The White-House; white,  house. WHITE HOUSE", "al-Qaeda's AL QAEDAS al  qaeda; Haftar's men"),
    ("Libya's", "LIBYA’S “army” — libya'S; x'libya; 'libya' (Libya) Libya_x libya2"),
    ("U.N. Support Mission", "United  Nations Support, Mission; the united-nations support mission’s"),
    ("Trump’s tweets…", "trumpcard; TRUMP cards – Trumps; a\ttrump\nb"),
    ("AL QAEDAISTS", "meet"),  # only the phrase's last word is longer (the prefix)
    ("Ünïcode Libya", "Erdoğan in Tripoli"),  # not ASCII after the punctuation: the full steps
]


def _scores_by_the_full_steps(scorer, title: str, summary: str, source: str | None) -> list[Score]:
    """What `Scorer.score` gave before the first look: `normalize`, then the anchors' automaton."""
    out = list(scorer._zeros)
    head = title.rstrip("… .")
    text = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
    anchored: set[int] = set()
    for _, pids in scorer._anchors.iter(text):
        anchored |= pids
    if not anchored:
        return out
    matches = scorer._keys_in(text)
    item = ItemText(title, summary, (text, matches, scorer._country_keys))
    for idx in sorted(anchored):
        prof = scorer._profiles[idx]
        score = scorer._score_common(prof, {key for _, key in matches}, title, summary, source, item)
        if score is None:
            found = [prof.groups[key] for _, key in matches if key in prof.groups]
            score = scorer._score_one(prof, found, title, summary, source, item)
        out[idx] = score
    return out


def test_the_first_look_before_normalize_gives_every_score_the_full_steps_give(
    profiles: dict[str, ProfileSpec],
) -> None:
    """ASCII items are first looked at without `normalize` (one word of each anchor key in the
    lower-cased text, other bytes spaces); anchored profiles then come from the key scan. Every
    Score is what `normalize` and the anchors' own automaton give, for anchors of one word,
    phrases, prefixes and phrases ending in a prefix."""
    phrases = ProfileSpec(
        anchors={"white house": 2.0, "united nations support mission": 2.0, "al qaeda*": 2.0, "trump": 1.0},
        terms={"mission": 0.5, "support": 0.5},
        threshold=1.0,
    )
    scorer = compile_profiles({**profiles, "phrases": phrases})
    reference = compile_profiles({**profiles, "phrases": phrases})
    items = [*((t, s, "Reuters") for t, s in FIRST_LOOK_TEXTS + ODD_TEXTS), *_dev_texts(4000)]
    looked = skipped = 0
    for title, summary, source in items:
        fresh = _scores_by_the_full_steps(reference, title, summary, source)
        got = scorer.score(title, summary, source)
        assert got == fresh, (title, summary)
        assert [repr(s) for s in got] == [repr(s) for s in fresh]
        head = title.rstrip("… .")
        raw = summary if head and summary.startswith(head) else f"{title} \n {summary}"
        plain = plain_punctuation(raw)
        if plain.isascii():
            hit = next(scorer._first_words.iter(ascii_spaced(plain)), None) is not None
            looked += 1
            skipped += not hit
            if not hit:  # the look may pass an item without anchors, never miss one
                assert next(scorer._anchors.iter(normalize(raw)), None) is None, (title, summary)
    assert looked > 3000 and skipped > 1000, (looked, skipped)
    for title, summary in FIRST_LOOK_TEXTS[:4]:  # each has an anchor, in spellings to look past
        assert any(s.hits for s in scorer.score(title, summary)), title


def test_each_normalized_word_is_a_spaced_word_of_the_ascii_text() -> None:
    """`ascii_spaced` keeps every word `normalize` makes (and more: the s of a possessive)."""
    texts = [f"{t} \n {s}" for t, s, _ in _dev_texts(3000)] + [f"{t} \n {s}" for t, s in FIRST_LOOK_TEXTS]
    texts += ["It'S O'Neil's 's_x x's_y", "", "'s", "a--b__c", "A1b2 C3'S"]
    checked = 0
    for text in texts:
        plain = plain_punctuation(text)
        if plain.isascii():
            spaced = ascii_spaced(plain)
            assert spaced.startswith(" ") and spaced.endswith(" ") and len(spaced) == len(plain) + 2
            words = set(spaced.split())
            assert set(normalize(text).split()) <= words, text
            checked += 1
    assert checked > 2500
    assert _first_word(" white house ") == " white "
    assert _first_word(" united nations support mission ") == " nations "  # the longest word
    assert _first_word(" al qaeda") == " al "  # a phrase ending in a prefix: a whole word of it
    assert _first_word(" haftar") == " haftar"


CUE_TEXTS = [
    ("Boat sinks off Libya", "Libya-style talks near the Libyan border, off the coast, like Libya"),
    ("Libyan-born striker", "His parents' roots: born in Tripoli; Libya's neighbours and the Sahel"),
    ("Border town", "BORDERS, Offshore; coastline… similar to Libya's; “like” it"),
    ("Libya", "Unlike the offshoot, a bordered likeness: no cue word here"),  # cue words inside words
    ("Ünïcode Libya", "Erdoğan near the Libyan frontier"),  # not ASCII: the full normalize
]


def test_items_as_the_scorer_builds_them_read_as_a_plain_scan(profiles: dict[str, ProfileSpec]) -> None:
    """An anchored item's `ItemText` keeps only anchor and country keys of the scan and takes
    whether a cue word occurs from the scan's keys: its mentions, countries, cue and first sentence
    are what the item's own words give."""
    scorer = compile_profiles(profiles)
    automaton = scorer._key_scan()
    countries = country_matcher()[0]
    matchers = {id(p.anchor_matcher): p.anchor_matcher for p in scorer._profiles}
    fitted = cued = 0
    for title, summary in [*CUE_TEXTS, *ODD_TEXTS, *((t, s) for t, s, _ in _dev_texts(3000))]:
        head = title.rstrip("… .")
        text = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
        matches = list(automaton.iter(text))
        item = scorer._item_text(title, summary, text, matches, {key for _, key in matches})
        assert len(item._scan[1]) <= len(matches)  # type: ignore[index]
        plain = Tokens(title, summary)
        lows = plain.lows
        assert item.toks.lows == lows, (title, summary)
        assert item.cued == (not CUES.isdisjoint(lows)), (title, summary)
        assert item.countries == _plain_find(countries, lows), (title, summary)
        for matcher in matchers.values():
            assert item.mentions(matcher, matcher.keyed) == _plain_find(matcher, lows), (title, summary)
        assert item.first_end == _first_sentence_end(plain), (title, summary)
        fitted += item.scan_fits
        cued += item.cued
    assert fitted > 3000 and cued > 100
    for title, summary in CUE_TEXTS:
        head = title.rstrip("… .")
        text = normalize(summary if head and summary.startswith(head) else f"{title} \n {summary}")
        matches = list(automaton.iter(text))
        item = scorer._item_text(title, summary, text, matches, {key for _, key in matches})
        assert item.cued == ("no cue word" not in summary), title


def test_scaled_hits_are_rounded_as_hit_makes_them() -> None:
    """Scaled contributions are rounded once per value; the hits are `_hit`'s, whether the value is
    rounded afresh or remembered (and zeros keep their sign, ints their type)."""
    spec = ProfileSpec(anchors={"libya": 2.0}, terms={"oil": 0.7, "gas": 1.3, "war": -0.9, "tax": 3})
    codes = compile_profiles({"p": spec})._profiles[0].codes
    part = list(range(1, len(codes.terms)))
    assert len(part) == 5
    weights = [codes.weights[c] for c in part]
    for scale in (1 / 3, 0.0, -0.0, 0.61, 1 / 3, 0.61, 1):
        for _ in range(2):  # the second time from the memo
            contributions: list[float] = []
            hits: list[tuple[float, str, tuple[str, float]]] = []
            _add_scaled(codes, part, weights, scale, contributions, hits)
            expected = [_hit(codes.terms[c], w * scale) for c, w in zip(part, weights, strict=True)]
            assert hits == expected
            assert repr(hits) == repr(expected)
            assert contributions == [w * scale for w in weights]
