"""Profiles that know the story: gazetteer places, aboutness signals, other threads, term origins.

Two profiles are derived: Libya from the project's seeds and Venezuela from
tests/data/seeds_other, so every rule is checked on a second country too.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watcher.cli import app
from watcher.profiles import ProfileSpec, compile_profiles, derive_profile, gazetteer
from watcher.values import Score

REPO = Path(__file__).resolve().parents[1]


def _derive(directory: Path) -> ProfileSpec:
    return derive_profile([p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.txt"))])


@pytest.fixture(scope="module")
def libya() -> ProfileSpec:
    return _derive(REPO / "seeds")


@pytest.fixture(scope="module")
def venezuela() -> ProfileSpec:
    return _derive(REPO / "tests" / "data" / "seeds_other")


def _score(spec: ProfileSpec, text: str, summary: str = "") -> Score:
    return compile_profiles({"p": spec}).score(text, summary)[0]


def _signal_names(score: Score) -> set[str]:
    return {label.split(":", 1)[0] for label, _ in score.signals}


# --- gazetteer -------------------------------------------------------------------------------------


def test_country_names_and_adjectives_come_from_the_dataset() -> None:
    libya = gazetteer.country_for({"libya", "libyan"})
    assert libya is not None and libya.code == "LY"
    assert "libyan" in libya.forms
    assert "lebanese" in gazetteer.countries()["LB"].forms
    assert "tunisian" in gazetteer.countries()["TN"].forms
    # "nigerian" starts with "niger" but belongs to Nigeria
    assert "nigerian" not in gazetteer.countries()["NE"].forms


def test_transliterations_share_a_consonant_skeleton() -> None:
    assert gazetteer.skeleton("misratah") == gazetteer.skeleton("misurata") == gazetteer.skeleton("misrata")
    assert gazetteer.skeleton("haftar") == gazetteer.skeleton("hifter")
    assert gazetteer.skeleton("benghazi") != gazetteer.skeleton(
        "berenice"
    )  # a historical name is no spelling


def test_places_of_a_country_with_the_spellings_english_uses() -> None:
    places, homonyms = gazetteer.places("LY")
    forms = {f for p in places for f in p.forms}
    assert {"benghazi", "misrata", "misurata", "derna", "sirte", "bani walid"} <= forms
    assert "homs" not in forms  # an alternate name of Al Khums, but Homs is a bigger city in Syria
    shared = {h.form: h for h in homonyms}
    assert "tripoli" in shared and {p.country for p in shared["tripoli"].places} >= {"LB"}
    words = gazetteer.disambiguators(shared["tripoli"], set())
    assert {"lebanon", "beirut"} <= set(words)


# --- derivation ------------------------------------------------------------------------------------


def test_derived_profile_records_where_terms_came_from(libya: ProfileSpec) -> None:
    assert libya.origin_of("haftar") == "seed"
    assert libya.origin_of("benghazi") == "gazetteer"
    assert libya.origin_of("tripoli") == "seed+gazetteer"  # in the seeds and a city in the data
    assert libya.origin_of("migrant") == "generic"
    assert libya.origin_of("nonesuch") == "hand"
    assert "lebanon" in libya.ambiguous["tripoli"]
    assert libya.anchors["tripoli"] < libya.threshold  # ambiguous: needs the country or context


def test_derived_context_is_clean_of_generic_words(libya: ProfileSpec) -> None:
    positive = {t for t, w in libya.terms.items() if w > 0}
    for word in ("official", "discuss", "issue", "head", "led", "state antony", "antony", "kamala"):
        assert word not in positive, word
    assert "lpcm" not in libya.anchors  # no acronym from an institution name run into a person's name
    assert {"ceasefire", "mercenary", "embargo"} <= positive
    assert libya.terms["migrant"] < 0 < libya.terms["clash"]  # another thread; the seeds' own thread


def test_places_match_without_the_country_name(libya: ProfileSpec) -> None:
    for text in (
        "A car bomb in Benghazi kills three children",
        "A suicide bomber strikes a checkpoint near the city of Misrata",
        "Gunmen attack a checkpoint near Bani Walid",
        "Dozens of militants are killed in fighting in Derna",
    ):
        s = _score(libya, text)
        assert s.matched, (text, s)
    assert not _score(libya, "Floods hit Tripoli, Lebanon; the Lebanese army helps").matched


# --- aboutness -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("Travelers from Iran, Iraq, Libya, Somalia, Sudan and Yemen are blocked from entering", "list"),
        ("A storm forms, threatening Libya, Italy, Tunisia, and Greece", "list"),
        ("Tunisia's army kills five suspected militants in an operation near the Libyan border", "border"),
        ("The adviser urges a Libya-style disarmament for North Korea", "border"),
    ],
)
def test_passing_mentions_do_not_match(libya: ProfileSpec, text: str, signal: str) -> None:
    s = _score(libya, text)
    assert not s.matched, s
    assert signal in _signal_names(s)


def test_the_subject_is_read_in_the_lead(libya: ProfileSpec) -> None:
    s = _score(libya, "Libya appoints a new head of its armed forces")
    assert s.matched and "lead" in _signal_names(s)
    late = _score(
        libya,
        "The suspect in the concert attack is named.",
        "The suspect in the concert attack is named. He was born to Libyan parents.",
    )
    assert not late.matched and {"late", "border"} <= _signal_names(late)


def test_a_place_inside_another_name_is_no_anchor(libya: ProfileSpec) -> None:
    s = _score(libya, "The Rajya Sabha passes the bill on reservations")
    assert not s.matched and "inside other names" in (s.reason or "")
    assert _score(libya, "Fighting resumes in Sabha as tribes clash").matched


def test_core_news_ranks_above_another_thread_that_still_matches(libya: ProfileSpec) -> None:
    core = _score(libya, "Militias clash in Tripoli as the Libyan National Army advances")
    migrants = _score(libya, "At least 10 migrants drown off the coast of Libya when their dinghy sinks")
    assert core.matched and migrants.matched
    assert core.score > migrants.score
    assert "offshore" in _signal_names(migrants)


def test_the_same_rules_serve_another_country(venezuela: ProfileSpec, libya: ProfileSpec) -> None:
    assert venezuela.origin_of("maracaibo") == "gazetteer"
    assert _score(venezuela, "Maracaibo blackout leaves the city in the dark").matched
    listed = _score(venezuela, "Sanctions announced on Cuba, Iran, Venezuela and North Korea")
    assert not listed.matched and "list" in _signal_names(listed)
    compared = _score(venezuela, "Critics warn of a Venezuela-style collapse in Argentina")
    assert not compared.matched and "border" in _signal_names(compared)
    # Valencia is also Spain's: ruled out when the item says so
    assert "spain" in venezuela.ambiguous["valencia"]
    assert not _score(venezuela, "Storm floods streets in Valencia, Spain").matched
    assert not _score(libya, "Maracaibo blackout leaves the city in the dark").matched


def test_signal_weights_are_the_profiles_to_tune(libya: ProfileSpec) -> None:
    text = "Tunisia's army kills five suspected militants in an operation near the Libyan border"
    assert not _score(libya, text).matched
    off = libya.model_copy(update={"aboutness": {**libya.aboutness, "border": 0.0}})
    assert _score(off, text).matched  # a user who follows the neighbours can switch the signal off
    with pytest.raises(ValueError, match="unknown signal"):
        ProfileSpec.model_validate({"anchors": {"x": 3}, "aboutness": {"nearby": -1}})


# --- CLI -------------------------------------------------------------------------------------------

runner = CliRunner()


def _labeled(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"{path.stem}{i}", "title": t, "summary": t, "grade": g, "labeled": True})
            + "\n"
            for i, (t, g) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    return path


def test_cli_eval_prints_a_table_per_file_and_explains_errors(tmp_path: Path) -> None:
    a = _labeled(
        tmp_path / "a.jsonl",
        [("A car bomb in Benghazi kills three", 2), ("Travelers from Iran, Iraq, Libya and Yemen barred", 0)],
    )
    b = _labeled(
        tmp_path / "b.jsonl",
        [("The National Transitional Council faces a crisis", 2), ("Libya ceasefire holds", 2)],
    )
    config = tmp_path / "watcher.toml"
    config.write_text("", encoding="utf-8")
    args = [
        "eval",
        "--config",
        str(config),
        "--seeds",
        str(REPO / "seeds"),
        "--items",
        str(a),
        "--items",
        str(b),
    ]
    result = runner.invoke(app, [*args, "--explain-errors", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("profile libya") == 2
    assert f"== {a}" in result.stdout and f"== {b}" in result.stdout
    assert "National Transitional Council" in result.stdout  # the miss, explained
    missing = runner.invoke(app, [*args, "--items", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl" in missing.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    ours = {r["file"]: r for r in rows if r["name"] == "profile libya"}
    assert set(ours) == {str(a), str(b)} and all(r["profile"] == "libya" for r in rows)
    # a: the Benghazi bomb matched, the travel-ban list did not; b: the NTC item is the one miss.
    assert (ours[str(a)]["recall"], ours[str(a)]["confuser_fa"], ours[str(a)]["confusers"]) == (1.0, 0, 1)
    assert ours[str(b)]["recall"] == 0.5 and ours[str(b)]["items"] == 2


def test_cli_explain_shows_origins_and_signals(tmp_path: Path) -> None:
    config = tmp_path / "watcher.toml"
    config.write_text("", encoding="utf-8")
    derived = runner.invoke(
        app, ["profile", "derive", "--config", str(config), "--seeds", str(REPO / "seeds")]
    )
    assert derived.exit_code == 0, derived.output
    text = config.read_text(encoding="utf-8")
    assert "[profiles.libya.aboutness]" in text and "[profiles.libya.origin]" in text
    result = runner.invoke(
        app,
        [
            "profile",
            "explain",
            "--config",
            str(config),
            "Tunisia's army kills militants near the Libyan border",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no match" in result.stdout and "[seed]" in result.stdout and "border:" in result.stdout
    result = runner.invoke(
        app, ["profile", "explain", "--config", str(config), "A car bomb in Benghazi kills three"]
    )
    assert "MATCH" in result.stdout and "benghazi" in result.stdout and "[gazetteer]" in result.stdout


def test_suggest_proposes_spellings_and_institutions_from_the_stream(libya: ProfileSpec) -> None:
    from watcher.profiles.suggest import suggest_details

    matched = [
        "Forces loyal to Khalifa Hifter advance on Benghazi",
        "Hifter's forces shell the Government of National Accord (GNA) in Tripoli",
        "The Government of National Accord (GNA) says talks resume in Tripoli",
        "The National Transitional Council (NTC) meets in Tripoli as Libya votes",
        "Libya's National Transitional Council (NTC) names a cabinet",
    ]
    found = {s.term: s.note for s in suggest_details(libya, matched, ["Rain in London"] * 5)}
    assert found["hifter"] == "spelling of haftar"
    assert found["government of national accord"] == "written out: gna"
    assert found["ntc"] == "acronym of national transitional council"


def test_shipped_country_forms_are_what_the_dataset_gives() -> None:
    # The file saves every scoring process from importing wordfreq; it must stay a pure function
    # of the installed data (regenerate with scripts/build_word_data.py after an upgrade).
    shipped = json.loads(gazetteer.FORMS_FILE.read_text(encoding="utf-8"))["forms"]
    assert shipped == gazetteer.computed_forms()
    assert "libyan" in shipped["LY"] and "tunisian" in shipped["TN"]


def test_scoring_needs_neither_wordfreq_nor_the_cities(libya: ProfileSpec, tmp_path: Path) -> None:
    spec = tmp_path / "libya.json"
    spec.write_text(json.dumps(libya.model_dump(mode="json")), encoding="utf-8")
    child = (
        "import json, sys\n"
        "from watcher.profiles import ProfileSpec, compile_profiles\n"
        f"spec = ProfileSpec.model_validate(json.load(open({str(spec)!r})))\n"
        "scorer = compile_profiles({'libya': spec})\n"
        "listed = scorer.score('Bahrain, Egypt, Libya and the Maldives sever ties with Qatar', '')[0]\n"
        "about = scorer.score('Libyan rivals meet in Geneva', '')[0]\n"
        "place = scorer.score('In Tripoli, rival militias clash overnight near Sabha Road', '')[0]\n"
        "print(json.dumps([listed.matched, about.matched, place.matched, 'wordfreq' in sys.modules]))\n"
    )
    ran = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(ran.stdout) == [False, True, True, False]


def test_shipped_common_words_answer_as_wordfreq_does() -> None:
    from wordfreq import iter_wordlist

    from watcher.profiles.text import zipf, zipf_at_least

    words = [w for w in itertools.islice(iter_wordlist("en"), 60_000) if w.isalpha()]
    seeds = " ".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt")))
    words += sorted({w.lower() for w in re.findall(r"[^\W_]+", seeds)})
    words += ["gökçen", "zawiya", "qwxzv", "2019", "sabha"]
    for level in (3.0, 4.0):
        wrong = [w for w in words if zipf_at_least(w, level) != (zipf(w) >= level)]
        assert wrong == [], (level, wrong[:10])


def test_without_the_shipped_table_wordfreq_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from watcher.profiles import text

    monkeypatch.setattr(text, "COMMON_WORDS_FILE", tmp_path / "missing.txt")
    text._common_words.cache_clear()
    try:
        assert text._common_words() is None  # remembered: the file is not looked for per word
        for word in ("the", "tripoli", "brigade", "qwxzv"):
            assert text.zipf_at_least(word, 4.0) == (text.zipf(word) >= 4.0)
    finally:
        text._common_words.cache_clear()
