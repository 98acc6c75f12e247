"""Derive a profile from seed articles: automatic, deterministic, no network.

The seeds tell us what the story is about, and general-English word
frequencies (wordfreq) tell us which words are specific. The steps:

1. Entities are capitalized words seen mid-sentence (headlines in Title Case
   only count for ALL-CAPS acronyms). URLs, handles, words with digits or
   inner capitals (bylines, hashtags run together) are dropped.
2. The *topic* is the entity family (same 5-letter prefix: Libya, Libyan,
   Libyans) that is frequent, in every seed and specific. Its forms anchor.
3. *Bound* entities share a name with the topic, i.e. sit in the same run of
   capitalized words ("Libya's Military Commander Haftar", "UN Envoy to Libya
   Jan Kubis"): the rare words of such runs become anchors, as do the
   acronyms of institution names that start with the topic ("Libyan National
   Army" → LNA). Given names that always precede an anchor surname are left
   out (they are shared by many people).
   A specific name present in most seeds (a head of state, a capital) anchors too.
4. *Second-order* entities are very rare names within a few words of a bound
   anchor ("Haftar … seized Sirte"); spelling variants of anchors in
   headlines (Hafter) join too. New envoys, prime ministers and towns in later
   news meet these anchors, which is how the profile generalizes.
5. Everything else specific (ceasefire, mercenaries, embargo, Berlin,
   Blinken…) becomes a *context* term weighted by specificity × how many
   seeds use it: it ranks items but can never make one match alone, so
   "Blinken on Iran" or "ceasefire in Gaza" stay out.
6. When the topic is a country, the gazetteer (:mod:`watcher.profiles.gazetteer`,
   GeoNames data shipped in a package) adds its cities and towns in the
   spellings English uses, and names shared with a place elsewhere get a
   disambiguation list (Tripoli: Lebanon, Beirut…), written into the profile
   where the user can edit it.
7. Context is cleaned of what says nothing about a story: the vocabulary
   every news report uses (``GENERIC_NEWS_WORDS``: said, official, issue,
   head…), given names (a capitalized word that always precedes another
   name: Antony, Kamala) and pairs ending in one ("state antony").

``origin`` records which terms came from the seeds and which from the
gazetteer, so ``profile explain`` can say where each one came from.
"""

from __future__ import annotations

import calendar
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from watcher.profiles import gazetteer
from watcher.profiles.aboutness import DEFAULT_WEIGHTS
from watcher.profiles.spec import ProfileSpec
from watcher.profiles.text import fold, singular, zipf
from watcher.profiles.threads import thread_terms

# The vocabulary of news reporting itself: it occurs in reports on any story, so it
# never says which story an item belongs to. Generic English, not tuned to any topic.
GENERIC_NEWS_WORDS = frozenset(
    """
    say said says tell told add added ask asked announce announced statement report reported
    according official officials spokesman spokesperson source sources issue issues head heads
    headed lead leads led discuss discussed hold held take taken make made meet met meeting
    attend attended participate participation participating expect expected plan planned
    schedule scheduled upcoming current recent week month year today time day days part include
    including also continue continued continuation importance important appreciate closely
    reiterate reiterated underscore stress stressed welcome welcomed remark remarked note noted
    trip visit event number way thing people country countries nation world wider partner
    partners organise organised organize organized renew expert experts retweet retweeted tweet
    twitter read post posted written
    """.split()  # noqa: SIM905
)


TOPIC_WEIGHT = 3.0
BOUND_WEIGHT = 3.0
ACRONYM_WEIGHT = 2.5
SECOND_ORDER_WEIGHT = 2.0
AMBIGUOUS_WEIGHT = 1.25  # below the threshold: an ambiguous anchor needs context to match
PLACE_WEIGHT = 2.5  # a city or town of the topic country: enough on its own
MINOR_PLACE_WEIGHT = 1.25  # a place English text rarely names: needs the country or context too
MINOR_PLACE_ZIPF = 1.5
THRESHOLD = 2.0
RARE_ZIPF = 2.5  # names rarer than this in general English are story-specific
BOUND_ZIPF = 3.6  # a repeated name bound to the topic may be somewhat more common (a capital city)
SECOND_ORDER_WINDOW = 6
MAX_TERMS = 100
MIN_TERM_WEIGHT = 0.2

_CONNECTORS = {"of", "to", "in", "on", "for", "al", "el", "bin", "ibn", "de", "le", "la"}
_CALENDAR = {
    fold(n) for n in [*calendar.month_name, *calendar.day_name, *calendar.month_abbr, *calendar.day_abbr]
}
_CALENDAR.discard("")
_URL = re.compile(r"https?://\S+|www\.\S+|[@#]\w*_\w*")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_TOKEN = re.compile(r"([^\W_]+)(?:['’]s\b)?")  # possessive 's kept out of the word
_GAP_JOINS = re.compile(r"^(?:['’]s?)?[ \t-]*$")  # what may sit between words of one name


@dataclass(slots=True)
class _Tok:
    text: str  # as written
    low: str  # folded
    doc: int
    sent: int
    pos: int  # index within the sentence
    cap: bool  # capitalized, in a position where that means a name
    joins_next: bool  # nothing but space/hyphen/possessive before the next token
    headline: bool  # in a Title Case line, where capitals say little


def _is_junk(word: str) -> bool:
    return any(c.isdigit() for c in word) or bool(re.search(r"[a-z][A-Z]", word)) or len(word) < 2


def _tokens(seeds: Sequence[str]) -> list[list[_Tok]]:
    sentences: list[list[_Tok]] = []
    for doc, text in enumerate(seeds):
        text = _URL.sub(" ", text)
        for sent_text in _SENTENCE.split(text):
            matches = list(_TOKEN.finditer(sent_text))
            if not matches:
                continue
            words = [m.group(1) for m in matches]
            # Title Case: most ordinary words (not names) are capitalized.
            common = [w for w in words[1:] if w.isalpha() and len(w) > 3 and zipf(w.lower()) >= 4.0]
            headline = len(common) >= 2 and sum(w[0].isupper() for w in common) / len(common) > 0.5
            sent: list[_Tok] = []
            for i, m in enumerate(matches):
                w = m.group(1)
                gap = sent_text[m.end() : matches[i + 1].start()] if i + 1 < len(matches) else "."
                is_upper = len(w) >= 2 and w.isupper() and w.isalpha()
                cap = w[0].isupper() and not _is_junk(w) and (is_upper or (i > 0 and not headline))
                joins = bool(_GAP_JOINS.match(gap))
                sent.append(_Tok(w, fold(w), doc, len(sentences), i, cap, joins, headline))
            sentences.append(sent)
    return sentences


def _runs(sent: list[_Tok]) -> list[list[_Tok]]:
    """Maximal runs of capitalized words, allowing 'of'/'al'… between them."""
    runs: list[list[_Tok]] = []
    cur: list[_Tok] = []
    for i, tok in enumerate(sent):
        nxt = sent[i + 1] if i + 1 < len(sent) else None
        connector = bool(cur) and tok.low in _CONNECTORS and nxt is not None and nxt.cap
        connector = connector and cur[-1].joins_next
        if tok.cap or connector:
            cur.append(tok)
        else:
            if cur:
                runs.append(cur)
            cur = []
            continue
        if not tok.joins_next:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [[t for t in r] for r in runs if any(t.cap for t in r)]


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _specificity(z: float) -> float:
    """0 for function words, ~1 for words like 'ceasefire', a bit more for rare names."""
    return max(0.0, min(1.2, (5.8 - z) / 2.5))


def derive_profile(seed_texts: Sequence[str], description: str = "") -> ProfileSpec:
    """Build an editable profile from seed articles (pure and deterministic)."""
    seeds = [s for s in seed_texts if s.strip()]
    if not seeds:
        raise ValueError("no seed text to derive a profile from")
    sentences = _tokens(seeds)
    all_toks = [t for s in sentences for t in s]
    cap_count: Counter[str] = Counter(t.low for t in all_toks if t.cap)
    low_count: Counter[str] = Counter(t.low for t in all_toks if t.text[0].islower())
    entities = {w for w, n in cap_count.items() if n >= low_count[w] and w not in _CONNECTORS}
    docs_of: dict[str, set[int]] = defaultdict(set)
    for t in all_toks:
        docs_of[t.low].add(t.doc)

    given = _given_names(sentences, entities)

    # 2. topic family
    families: dict[str, set[str]] = defaultdict(set)
    for w in entities:
        if len(w) >= 4:
            families[w[:5]].add(w)

    def family_score(forms: set[str]) -> float:
        count = sum(cap_count[f] for f in forms)
        docs = set().union(*(docs_of[f] for f in forms))
        head = max(forms, key=lambda f: (cap_count[f], f))
        return count * len(docs) * _specificity(zipf(head))

    topic_key = max(sorted(families), key=lambda k: family_score(families[k]))
    topic = families[topic_key]
    anchors: dict[str, float] = {f: TOPIC_WEIGHT for f in topic}

    # 3. bound entities and institution acronyms
    anchor_surnames: set[str] = set()
    bound_candidates: Counter[str] = Counter()
    institutions: set[str] = set()
    for sent in sentences:
        for run in _runs(sent):
            if not any(t.low in topic for t in run):
                continue
            for t in run:
                if t.cap and t.low in entities and t.low not in topic:
                    bound_candidates[t.low] += 1
            words = [t for t in run]
            if words[0].low in topic:
                name: list[_Tok] = []
                for t in words:
                    rare = t is not words[0] and zipf(t.low) < 3.0
                    if t.low in _CONNECTORS or rare or t.low in given:
                        break
                    name.append(t)
                if 3 <= len(name) <= 5:
                    institutions.add(" ".join(t.low for t in name))
        # In a Title Case headline only a rare name right next to the topic is bound.
        topic_pos = [t.pos for t in sent if t.low in topic and t.headline]
        for t in sent:
            rare_name = t.text[0].isupper() and not _is_junk(t.text) and zipf(t.low) < RARE_ZIPF
            if rare_name and t.low not in topic and any(abs(t.pos - p) <= 3 for p in topic_pos):
                entities.add(t.low)
                bound_candidates[t.low] += 1
    for w, _n in sorted(bound_candidates.items()):
        z = zipf(w)
        if z < RARE_ZIPF or (z < BOUND_ZIPF and cap_count[w] >= 3):
            anchors[w] = BOUND_WEIGHT
    # A specific name that runs through most seeds is part of the story too (a head of state, a capital).
    for w in sorted(entities - topic):
        if len(w) >= 4 and len(docs_of[w]) >= max(2, (len(seeds) + 1) // 2) and zipf(w) < BOUND_ZIPF:
            anchors[w] = BOUND_WEIGHT
    for inst in sorted(institutions):
        acro = "".join(w[0] for w in inst.split())
        if zipf(acro) < RARE_ZIPF:
            anchors[acro] = ACRONYM_WEIGHT

    # Given names: always right before an anchor (Khalifa Haftar) → not an anchor themselves.
    before_anchor: Counter[str] = Counter()
    for sent in sentences:
        for a, b in itertools.pairwise(sent):
            if a.cap and b.low in anchors and a.joins_next:
                before_anchor[a.low] += 1
    for w in list(anchors):
        if w not in topic and before_anchor[w] >= cap_count[w] and anchors[w] == BOUND_WEIGHT:
            anchor_surnames.add(w)
            del anchors[w]

    # 4. second-order names near bound anchors; spelling variants of anchors
    bound = {w for w in anchors if w not in topic}
    for sent in sentences:
        positions = [t.pos for t in sent if t.low in bound]
        for t in sent:
            if not t.cap or t.low in anchors or t.low not in entities or zipf(t.low) >= RARE_ZIPF:
                continue
            if len(t.low) < 4 or before_anchor[t.low] >= cap_count[t.low]:
                continue
            if any(abs(t.pos - p) <= SECOND_ORDER_WINDOW for p in positions):
                anchors[t.low] = SECOND_ORDER_WEIGHT
    for t in all_toks:
        if t.low in anchors or not t.text[0].isupper() or len(t.low) < 5 or _is_junk(t.text):
            continue
        for a in sorted(bound):
            if a[0] == t.low[0] and len(a) >= 5 and fuzz.ratio(a, t.low) >= 80:
                anchors[t.low] = anchors[a]
                break

    topic_name = max(sorted(topic), key=lambda f: cap_count[f])
    origin: dict[str, set[str]] = {"seed": set(), "gazetteer": set()}
    ambiguous: dict[str, list[str]] = {}
    country = gazetteer.country_for(set(topic))
    if country is not None:
        _add_places(country, anchors, ambiguous, origin["gazetteer"], set(topic))
        topic |= {f for f in country.forms if " " not in f}

    terms = _context_terms(sentences, len(seeds), anchors, entities, given)
    for inst in institutions:
        terms[inst] = max(terms.get(inst, 0.0), 1.0)
    # One stemmed anchor for the topic family (libya* = Libya, Libyan, Libyans, Libya's), so an item
    # saying both "Libya" and "Libyan" is not counted as naming two different actors.
    forms = sorted(topic)
    stem = _common_prefix(forms[0], forms[-1])
    if len(topic) > 1 and len(stem) >= 5:
        for form in topic:
            anchors.pop(form, None)
        anchors[stem + "*"] = TOPIC_WEIGHT
    else:
        for form in topic:
            anchors.setdefault(form, TOPIC_WEIGHT)
    words = seed_words(sentences)
    origin["seed"] = {t for t in [*anchors, *terms] if t not in origin["gazetteer"] or t in words}
    origin["generic"] = set()
    generic, _own_threads = thread_terms(words)
    for word, weight in generic.items():
        if word not in terms and word not in anchors:
            terms[word] = weight
            origin["generic"].add(word)
    description = description or f"derived from {len(seeds)} seed article(s); topic: {topic_name}"
    if country is not None:
        description += f" ({country.name}, places from GeoNames)"
    return ProfileSpec(
        description=description,
        threshold=THRESHOLD,
        anchors=anchors,
        terms=terms,
        ambiguous=ambiguous,
        aboutness=dict(DEFAULT_WEIGHTS),
        origin={k: sorted(v) for k, v in origin.items() if v},
    )


def seed_words(sentences: list[list[_Tok]]) -> set[str]:
    """Every word and adjacent pair of words in the seeds (folded)."""
    out: set[str] = set()
    for sent in sentences:
        out.update(t.low for t in sent)
        out.update(f"{a.low} {b.low}" for a, b in itertools.pairwise(sent))
    return out


def _add_places(
    country: gazetteer.Country,
    anchors: dict[str, float],
    ambiguous: dict[str, list[str]],
    added: set[str],
    topic: set[str],
) -> None:
    """The country's places from the gazetteer as anchors; shared names get disambiguation."""
    places, homonyms = gazetteer.places(country.code)
    for place in places:
        for form in place.forms:
            if form in topic:
                continue
            weight = PLACE_WEIGHT if zipf(form) >= MINOR_PLACE_ZIPF else MINOR_PLACE_WEIGHT
            anchors[form] = max(anchors.get(form, 0.0), weight)
            added.add(form)
    own = set(anchors) | set(country.forms)
    for homonym in homonyms:
        if homonym.form not in anchors:
            continue
        ambiguous[homonym.form] = gazetteer.disambiguators(homonym, own)
        anchors[homonym.form] = min(anchors[homonym.form], AMBIGUOUS_WEIGHT)


def _given_names(sentences: list[list[_Tok]], entities: set[str]) -> set[str]:
    """Capitalized words that always sit right before another name (Antony Blinken, Kamala Harris)."""
    before: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for sent in sentences:
        for i, t in enumerate(sent):
            if t.low not in entities or not t.text[0].isupper():
                continue
            seen[t.low] += 1
            j = i + 1
            if j < len(sent) and sent[j].low in _CONNECTORS and t.joins_next and sent[j].joins_next:
                j += 1  # Mohammed al-Menfi, Abdul Hamid bin…
            nxt = sent[j] if j < len(sent) else None
            if nxt is not None and t.joins_next and nxt.text[0].isupper() and nxt.low in entities:
                before[t.low] += 1
    # Only uncommon words: "United" always precedes "Nations" but is no one's given name.
    return {w for w, n in seen.items() if before[w] == n and zipf(w) < 4.0}


def _context_terms(
    sentences: list[list[_Tok]],
    n_docs: int,
    anchors: dict[str, float],
    entities: set[str],
    given_names: set[str] = frozenset(),  # type: ignore[assignment]
) -> dict[str, float]:
    """Specific words and repeated two-word phrases, weighted by specificity × seed coverage."""
    count: Counter[str] = Counter()
    docs: dict[str, set[int]] = defaultdict(set)
    surface_zipf: dict[str, float] = {}
    for sent in sentences:
        prev: str | None = None
        for t in sent:
            w = t.low
            ok = w.isalpha() and len(w) >= 3 and w not in _CALENDAR and not _is_junk(t.text)
            # Sentence-initial capitals ("Read:", "Meanwhile") say nothing unless the word is a name.
            ok = ok and (t.low in entities or t.text[0].islower())
            if not ok:
                prev = None
                continue
            base = w if w in entities else singular(w)
            if (
                base in anchors
                or base in GENERIC_NEWS_WORDS
                or w in GENERIC_NEWS_WORDS
                or base in given_names
            ):
                prev = None
                continue
            count[base] += 1
            docs[base].add(t.doc)
            surface_zipf[base] = min(surface_zipf.get(base, 9.0), zipf(w))
            if prev is not None and zipf(prev) < 5.8 and zipf(base) < 5.8:
                bigram = f"{prev} {base}"
                count[bigram] += 1
                docs[bigram].add(t.doc)
            prev = base
    weights: dict[str, float] = {}
    for term, n in count.items():
        if " " in term and n < 2:
            continue
        spec = _specificity(min(zipf(term), surface_zipf.get(term, 9.0)))
        coverage = 0.5 + 0.5 * len(docs[term]) / n_docs
        repeat = min(1.0, 0.6 + 0.2 * math.log2(n)) if n > 1 else 0.6
        # Once an anchor gates the item, even fairly common words central to the seeds say something.
        w = (0.3 + 0.7 * min(1.0, spec)) * coverage * repeat if spec > 0 else 0.0
        if w >= MIN_TERM_WEIGHT:
            weights[term] = round(w, 2)
    best = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TERMS]
    return dict(best)
