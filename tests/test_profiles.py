"""Profiles: spec validation, derivation, scoring, disambiguation, several profiles, suggestions, CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomlkit
from pydantic import ValidationError
from typer.testing import CliRunner

from watcher.cli import app
from watcher.profiles import ProfileSpec, compile_profiles, derive_profile, explain_text, spec_to_toml
from watcher.profiles.suggest import suggest_terms

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
OTHER_SEEDS = REPO / "tests" / "data" / "seeds_other"


def _texts(directory: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.txt"))]


@pytest.fixture(scope="module")
def libya() -> ProfileSpec:
    return derive_profile(_texts(SEEDS))


@pytest.fixture(scope="module")
def other() -> ProfileSpec:
    return derive_profile(_texts(OTHER_SEEDS))


def _matched(spec: ProfileSpec, title: str, summary: str = "") -> bool:
    return compile_profiles({"p": spec}).score(title, summary)[0].matched


# --- spec validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"anchors": {"libya": 3}, "treshold": 2}, "treshold"),
        ({"anchors": {}}, "anchors"),
        ({"anchors": {"libya": 3}, "exclude": ["re:(unclosed"]}, "exclude"),
        ({"anchors": {"libya": 3}, "threshold": -1}, "threshold"),
        ({"anchors": {"libya": -1}}, "anchors"),
        ({"anchors": {"libya": 3}, "ambiguous": {"tripoli": ["lebanon"]}}, "tripoli"),
    ],
)
def test_bad_profile_is_rejected_naming_the_key(table: dict, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProfileSpec.model_validate(table)
    assert key in str(info.value)


def test_spec_round_trips_through_toml(libya: ProfileSpec) -> None:
    doc = tomlkit.document()
    doc.add("libya", spec_to_toml(libya))
    text = tomlkit.dumps(doc)
    assert "#" in text  # comments explain the keys
    assert ProfileSpec.model_validate(tomllib.loads(text)["libya"]) == libya


def test_terms_are_normalized() -> None:
    spec = ProfileSpec(anchors={"  Erdoğan ": 2.0, "Libya*": 3.0})
    assert set(spec.anchors) == {"erdogan", "libya*"}


# --- derivation ------------------------------------------------------------------------------------


def test_derivation_is_deterministic(libya: ProfileSpec) -> None:
    assert derive_profile(_texts(SEEDS)) == libya
    assert derive_profile(list(reversed(_texts(SEEDS)))).anchors == libya.anchors


def test_derived_anchors_cover_the_country_and_its_actors(libya: ProfileSpec) -> None:
    for text in ["Libya", "Libyan", "Libyans", "Haftar", "Hafter", "Libyan National Army"]:
        assert _matched(libya, f"Talks about {text} resume"), text
    assert "tripoli" in libya.ambiguous


def test_common_words_weigh_nothing(libya: ProfileSpec) -> None:
    every = {**libya.anchors, **libya.terms}
    for word in ["the", "said", "will", "and", "on", "december", "wednesday"]:
        assert word not in every


def test_context_alone_never_matches(libya: ProfileSpec) -> None:
    assert not _matched(
        libya, "Ceasefire in Gaza", "Mercenaries and militias agree to an arms embargo at a conference"
    )
    assert not _matched(
        libya, "Blinken in Berlin", "Secretary of State Antony Blinken discusses Iran sanctions"
    )


def test_context_raises_the_score_of_an_anchored_item(libya: ProfileSpec) -> None:
    scorer = compile_profiles({"libya": libya})
    plain = scorer.score("Migrants drown off Libya", "")[0]
    core = scorer.score("Libya ceasefire talks", "Foreign forces and mercenaries must leave, envoy says")[0]
    assert plain.matched and core.matched
    assert core.score > plain.score


def test_ambiguous_anchor_is_disambiguated_by_context(libya: ProfileSpec) -> None:
    scorer = compile_profiles({"libya": libya})
    lebanon = scorer.score(
        "A riot breaks out at a prison in Tripoli, Lebanon", "Lebanese security forces respond"
    )[0]
    assert not lebanon.matched
    assert "ambiguous" in (lebanon.reason or "")
    libyan_capital = scorer.score("Rockets hit Tripoli as ceasefire talks collapse", "Militias clash")[0]
    assert libyan_capital.matched


def test_another_story_derives_its_own_profile(other: ProfileSpec, libya: ProfileSpec) -> None:
    assert _matched(other, "Venezuelan exiles return", "")
    assert not _matched(other, "Libya ceasefire holds", "")
    assert not _matched(libya, "Maduro meets the opposition in Caracas", "")


# --- scoring ---------------------------------------------------------------------------------------


def test_score_shape_and_explanation() -> None:
    spec = ProfileSpec(anchors={"libya": 3.0}, terms={"ceasefire": 1.0, "embargo": 0.5}, threshold=2.0)
    scorer = compile_profiles({"b": spec, "a": ProfileSpec(anchors={"mali": 3.0})})
    assert scorer.names == ["a", "b"]
    a, b = scorer.score("Libya ceasefire", "arms embargo on Libya. Libya ceasefire", None)
    assert (a.profile, a.matched, a.reason) == ("a", False, "no anchor term")
    assert b.matched and b.terms == ("libya", "ceasefire", "embargo")
    assert b.score == pytest.approx(4.5)  # each term once, however often it occurs
    assert b.signals == ()  # no [aboutness] table: a hand-written profile scores as it always did
    text = explain_text(b, 2.0, {"libya": "seed"})
    assert "MATCH" in text and "ceasefire" in text and "threshold 2" in text and "[seed]" in text
    with_signals = ProfileSpec(anchors={"libya": 3.0}, aboutness={"lead": 0.5})
    s = compile_profiles({"b": with_signals}).score("Libya ceasefire", "")[0]
    assert s.signals == (("lead: named early in the first sentence", 0.5),) and s.score == pytest.approx(3.5)
    assert "lead" in explain_text(s, 2.0)


def test_below_threshold_names_the_reason() -> None:
    spec = ProfileSpec(anchors={"tripoli": 1.0}, terms={"clash": 0.5}, threshold=2.0)
    s = compile_profiles({"p": spec}).score("Tripoli", "")[0]
    assert not s.matched and s.score == pytest.approx(1.0) and "below threshold" in (s.reason or "")


def test_plural_and_prefix_forms_match() -> None:
    spec = ProfileSpec(anchors={"militia": 3.0, "libya*": 3.0})
    scorer = compile_profiles({"p": spec})
    assert scorer.score("Militias clash", "")[0].matched
    assert scorer.score("Libyan coast", "")[0].matched
    assert not scorer.score("Militiaman", "")[0].matched


def test_exclusions() -> None:
    spec = ProfileSpec(
        anchors={"tripoli": 3.0},
        exclude=["tripoli, lebanon", "re:\\bgrand prix\\b"],
        exclude_sources=["Sports Desk"],
    )
    scorer = compile_profiles({"p": spec})
    assert scorer.score("Tripoli", "")[0].matched
    assert "excluded" in (scorer.score("Protest in Tripoli, Lebanon", "")[0].reason or "")
    assert not scorer.score("Tripoli Grand Prix", "")[0].matched
    assert not scorer.score("Tripoli", "", source="The Sports Desk")[0].matched


def test_item_can_match_several_profiles(libya: ProfileSpec, other: ProfileSpec) -> None:
    scorer = compile_profiles({"libya": libya, "venezuela": other})
    both = scorer.score("Libya and Venezuela", "Oil output in Libya and Venezuela rises")
    assert [s.profile for s in both] == ["libya", "venezuela"]
    assert all(s.matched for s in both)
    only_one = scorer.score("Haftar forces advance", "")
    assert [s.matched for s in only_one] == [True, False]


def test_empty_and_odd_text_does_not_crash(libya: ProfileSpec) -> None:
    scorer = compile_profiles({"libya": libya})
    for title, summary in [("", ""), ("???", "…"), ("Ünïcödé ☃", "\x00\n\t"), ("Libya" * 1000, "")]:
        assert len(scorer.score(title, summary)) == 1


# --- suggestions -----------------------------------------------------------------------------------


def test_suggest_proposes_new_cooccurring_names_not_known_terms(libya: ProfileSpec) -> None:
    matched = [
        "Fighting near Tobruk as Libya's rival governments trade blame; Bashagha holds out",
        "Libyan parliament backs Bashagha and rejects the new unity government",
        "Bashagha says his cabinet will enter Tripoli; Libya talks stall",
        "Libya: Bashagha sworn in by the parliament",
    ]
    background = ["Stocks rise in New York", "Rain expected in London", "Parliament debates budget"] * 5
    ranked = [t for t, _ in suggest_terms(libya, matched, background)]
    assert ranked and ranked[0] == "bashagha"
    assert "tobruk" not in ranked  # the gazetteer already put it in the profile
    assert "libya" not in ranked and "libyan" not in ranked


# --- CLI -------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_derive_writes_profile_and_keeps_the_rest(tmp_path: Path) -> None:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text('# my comment\n[database]\nurl = "sqlite:///x.db"  # keep me\n', encoding="utf-8")
    result = runner.invoke(app, ["profile", "derive", "--seeds", str(SEEDS), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["profile", "derive", "--name", "venezuela", "--seeds", str(OTHER_SEEDS), "--config", str(cfg)]
    )
    assert result.exit_code == 0, result.output
    text = cfg.read_text(encoding="utf-8")
    assert "# my comment" in text and "# keep me" in text
    data = tomllib.loads(text)
    assert set(data["profiles"]) == {"libya", "venezuela"}
    listed = runner.invoke(app, ["profile", "list", "--config", str(cfg)])
    assert "libya" in listed.output and "venezuela" in listed.output

    explained = runner.invoke(app, ["profile", "explain", "Haftar forces near Tripoli", "--config", str(cfg)])
    assert (
        explained.exit_code == 0
        and "haftar" in explained.output
        and "venezuela: no match" in explained.output
    )

    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps({"id": "a", "title": "Libya talks", "summary": ""})
        + "\n"
        + json.dumps({"id": "b", "title": "Weather", "summary": "sunny"})
        + "\n",
        encoding="utf-8",
    )
    scored = runner.invoke(app, ["score", "--items", str(items), "--config", str(cfg), "--profile", "libya"])
    assert scored.exit_code == 0, scored.output
    lines = [json.loads(x) for x in scored.stdout.splitlines()]
    assert [(x["id"], x["matched"], x["profile"]) for x in lines] == [
        ("a", True, "libya"),
        ("b", False, "libya"),
    ]
    assert "libya*" in lines[0]["terms"]


def test_cli_rejects_a_bad_profile_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text("[profiles.libya]\nanchors = {}\n", encoding="utf-8")
    result = runner.invoke(app, ["profile", "list", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "anchors" in result.output and "libya" in result.output and "Traceback" not in result.output


def test_cli_eval_derives_from_seeds_when_config_has_no_profile(tmp_path: Path) -> None:
    items = tmp_path / "labeled.jsonl"
    rows = [
        {"id": "1", "title": "Haftar forces shell Tripoli", "summary": "ceasefire collapses", "grade": 2},
        {"id": "2", "title": "Migrants drown off Libya", "summary": "", "grade": 1},
        {"id": "3", "title": "Tripoli, Lebanon protests", "summary": "", "grade": 0, "labeled": True},
        {"id": "4", "title": "Cake recipes", "summary": "", "grade": 0, "labeled": False},
    ]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = tmp_path / "none.toml"
    args = [
        "eval",
        "--items",
        str(items),
        "--config",
        str(cfg),
        "--seeds",
        str(SEEDS),
        "--explain-errors",
        "2",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "deriving" in result.stderr
    assert "profile libya" in result.stdout and "boolean Libya OR Libyan" in result.stdout
    assert "tf-idf" in result.stdout
    bad = runner.invoke(app, ["eval", "--items", str(tmp_path / "missing.jsonl"), "--config", str(cfg)])
    assert bad.exit_code == 2 and "missing.jsonl" in bad.output


def test_suggest_skips_words_a_wildcard_anchor_already_covers() -> None:
    from watcher.profiles import ProfileSpec
    from watcher.profiles.suggest import suggest_terms

    spec = ProfileSpec(anchors={"libya*": 3.0}, terms={"ceasefire": 1.0})
    matched = [f"Libyan officials meet in Tobruk, round {i}" for i in range(6)]
    background = ["Markets rise in Tokyo", "Football results", "Weather in Paris"] * 3
    terms = [t for t, _ in suggest_terms(spec, matched, background)]
    assert "tobruk" in terms
    assert not any(t.startswith("libya") for t in terms)
