"""The backtest core (pure) and the stored-items query it runs on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.profiles import ProfileSpec
from watcher.profiles.backtest import backtest, with_threshold
from watcher.store import feedback, items, open_store
from watcher.store import feeds as fs
from watcher.values import Entry, Score, StoredItem

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
SPEC = ProfileSpec(
    threshold=3.0,
    anchors={"libya*": 3.0, "tripoli": 3.0, "haftar": 3.0},
    terms={"ceasefire": 1.0, "berlin conference": 1.0},
)


def item(
    i: int, title: str, *, score: float | None = None, verdict: str | None = None, link: str = ""
) -> StoredItem:
    return StoredItem(
        id=i,
        title=title,
        summary="",
        source="Wire",
        link=link or f"https://news.example/{i}",
        published=NOW,
        match_id=100 + i if score is not None else None,
        stored_score=score,
        verdict=verdict,
    )


STORED = [
    item(1, "Libya ceasefire holds", score=4.0, verdict="relevant"),
    item(2, "Tripoli, Lebanon: port reopens", score=3.0, verdict="not_relevant"),
    item(3, "Haftar forces near Tripoli", score=4.5, verdict="relevant"),
    item(4, "Libyan football league resumes", score=3.0, verdict="not_relevant"),
    item(5, "Weather in Berlin", score=None),
    item(6, "Libya oil output", score=3.0),
]


def test_an_exclusion_drops_what_it_names_and_precision_is_measured() -> None:
    proposed = ProfileSpec.model_validate({**SPEC.model_dump(), "exclude": ["lebanon"]})
    r = backtest(STORED, proposed, profile="libya")
    assert [c.item.id for c in r.dropped] == [2]
    assert r.added == ()
    assert sorted(c.item.id for c in r.kept) == [1, 3, 4, 6]
    assert "excluded" in r.dropped[0].after.reason and "excluded" in r.dropped[0].explain
    assert (r.before.matched, r.before.relevant, r.before.precision) == (4, 2, 0.5)
    assert (r.after.matched, r.after.relevant) == (3, 2)
    assert r.after.precision == pytest.approx(2 / 3)
    assert r.after.relevant_kept == 1.0


def test_a_threshold_change_against_a_baseline_spec() -> None:
    # Against the spec itself nothing changes: the stored state is not consulted.
    same = backtest(STORED, SPEC, profile="libya", baseline=SPEC)
    assert same.added == () and same.dropped == ()
    higher = backtest(STORED, with_threshold(SPEC, 4.0), profile="libya", baseline=SPEC)
    # Scores: 1 = 3 + 1 (ceasefire) = 4; 3 = 3 + 1.5 (second anchor) = 4.5; 2, 4, 6 = 3.
    assert sorted(c.item.id for c in higher.dropped) == [2, 4, 6]
    assert sorted(c.item.id for c in higher.kept) == [1, 3]
    assert higher.after.precision == 1.0 and higher.before.precision == 0.5
    assert higher.dropped[0].before == 3.0 and not higher.dropped[0].after.matched
    lower = backtest(STORED, with_threshold(SPEC, 0.5), profile="libya", baseline=SPEC)
    assert lower.added == ()  # "Weather in Berlin" has no anchor: context never matches alone


def test_added_items_and_copies_count_once() -> None:
    stored = [
        item(7, "Libya talks resume", score=None, link="https://news.example/same"),
        item(8, "Libya talks resume", score=None, link="https://news.example/same"),
    ]
    r = backtest(stored, SPEC, profile="libya")
    assert [c.item.id for c in r.added] == [7] and r.items == 1
    assert r.added[0].before is None and r.added[0].after.score == 3.0
    assert r.before.precision is None and r.after.judged == 0


def test_with_threshold_validates() -> None:
    with pytest.raises(ValueError):
        with_threshold(SPEC, -1)


def test_stored_items_carry_match_and_verdict(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        fs.sync_config_feeds(engine, [("https://a.example/feed", "A", None)], NOW)
        (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
        rows = []
        for i, (title, hit) in enumerate([("Libya talks", True), ("Weather", False), ("Haftar", True)]):
            e = Entry(
                key=f"k{i}",
                title=title,
                summary="sum",
                link=f"https://x.example/{i}",
                published=NOW,
                source="A",
            )
            rows.append((e, [Score("libya", 3.0 + i, True, (("libya", 3.0),))] if hit else []))
        items.store_entries(engine, claim.id, rows, NOW)
        later = NOW + timedelta(days=3)
        (claim,) = fs.claim_due_feeds(engine, "w1", later, 10, 60)
        e = Entry(key="k9", title="Libya late", summary="", link="https://x.example/9", published=later)
        items.store_entries(engine, claim.id, [(e, [Score("libya", 5.0, True)])], later)

        got = items.stored_items(engine, "libya")
        assert [s.title for s in got] == ["Libya late", "Haftar", "Weather", "Libya talks"]
        by_title = {s.title: s for s in got}
        assert by_title["Weather"].match_id is None and not by_title["Weather"].matched
        assert by_title["Haftar"].stored_score == 5.0 and by_title["Haftar"].source == "A"
        feedback.record_verdict(
            engine, by_title["Haftar"].match_id, "relevant", note=None, now=NOW, via="cli"
        )
        assert [s.title for s in items.stored_items(engine, "libya", since=later)] == ["Libya late"]
        judged = items.stored_items(engine, "libya", judged=True)
        assert [(s.title, s.verdict) for s in judged] == [("Haftar", "relevant")]
        # Another profile sees the same entries, none matched.
        assert all(s.match_id is None for s in items.stored_items(engine, "sahel"))
    finally:
        engine.dispose()


def test_queued_matches_are_rechecked_when_a_digest_is_built(db_url: str) -> None:
    from sqlalchemy import select

    from watcher.profiles import compile_profiles
    from watcher.store import outbox
    from watcher.store.models import MatchRow

    engine = open_store(db_url)
    try:
        fs.sync_config_feeds(engine, [("https://a.example/feed", "A", None)], NOW)
        (claim,) = fs.claim_due_feeds(engine, "w1", NOW, 10, 60)
        titles = ["Libya ceasefire holds", "Tripoli, Lebanon: port reopens", "Haftar forces advance"]
        rows = [
            (
                Entry(key=f"k{i}", title=t, summary="", link=f"https://x.example/{i}", published=NOW),
                [Score("libya", 3.0, True)],
            )
            for i, t in enumerate(titles)
        ]
        items.store_entries(engine, claim.id, rows, NOW)
        edited = ProfileSpec.model_validate({**SPEC.model_dump(), "exclude": ["lebanon"]})
        run = outbox.create_run(engine, "d", ["libya"], 10, NOW, scorer=compile_profiles({"libya": edited}))
        sent = outbox.load_digest(engine, run, ["libya"])
        assert sorted(i.title for i in sent.items) == ["Haftar forces advance", "Libya ceasefire holds"]
        with engine.connect() as conn:
            held = (
                conn.execute(select(MatchRow.withheld_reason).where(MatchRow.withheld_at.is_not(None)))
                .scalars()
                .all()
            )
        assert held == ["no longer matches profile libya: excluded: 'lebanon'"]  # kept, with the reason
        assert any(m.withheld for m in items.recent_matches(engine))
        # The exclude is undone: the withheld match is queued again for the next digest.
        again = outbox.create_run(engine, "d", ["libya"], 10, NOW, scorer=compile_profiles({"libya": SPEC}))
        assert [i.title for i in outbox.load_digest(engine, again, ["libya"]).items] == [titles[1]]
    finally:
        engine.dispose()


def test_items_sharing_a_link() -> None:
    roundup = "https://news.example/2020_January_11"
    stored = [
        item(1, "Haftar accepts a ceasefire", score=4.0, link=roundup),
        item(2, "Merkel to host Libya talks in Berlin", score=3.5, link=roundup),
        item(3, "Merkel to host Libya talks in Berlin", score=None, link=roundup),  # another feed's copy
        item(4, "Libya talks resume", score=None, link="https://news.example/x"),
        item(5, "Libya talks resume", score=None, link="https://news.example/x"),
        item(6, "Libya oil output", score=None, link="https://news.example/x"),
    ]
    r = backtest(stored, SPEC, profile="libya")
    assert r.items == 4 and sorted(c.item.id for c in r.kept) == [1, 2]
    assert sorted(c.item.id for c in r.added) == [4, 6]


def test_tune_proposes_from_verdicts_and_edits_toml_in_place() -> None:
    from watcher.cli_tune import _edit_toml
    from watcher.profiles.tune import apply_tweaks, measure, propose

    judged = [
        item(1, "Libya ceasefire talks in Geneva", score=4.0, verdict="relevant"),
        item(2, "Haftar at Geneva ceasefire talks", score=5.5, verdict="relevant"),
        StoredItem(
            3, "Libya match report", "", "Sports Desk", "https://s.example/3", NOW, 103, 3.0, "not_relevant"
        ),
        StoredItem(
            4, "Libyan league", "", "Sports Desk", "https://s.example/4", NOW, 104, 3.0, "not_relevant"
        ),
    ]
    tweaks = {t.key: t for t in propose(SPEC, judged)}
    assert tweaks["s1"].value == "Sports Desk" and tweaks["t1"].value == "geneva"
    assert "th" not in tweaks  # the source exclusion already separates the verdicts
    other = [
        *judged[:3],
        StoredItem(4, "Libyan league", "", "Wire", "https://s.example/4", NOW, 104, 3.0, "not_relevant"),
    ]
    alone = {t.key: t for t in propose(SPEC, other)}
    assert "s1" not in alone and alone["th"].value == 3.5  # between the not relevant 3.0 and the relevant 4.0
    tweaks["th"] = alone["th"]
    effects = {e.key: e for e in measure(SPEC, list(tweaks.values()), judged)}
    assert effects["s1"].after.precision == 1.0 and effects["s1"].before.precision == 0.5
    assert effects["t1"].after.precision == 0.5 and effects["all"].after.relevant == 2
    assert apply_tweaks(SPEC, [tweaks["s1"]]).exclude_sources == ["Sports Desk"]

    text = (
        "[profiles.libya]  # mine\nthreshold = 3.0  # hand-tuned\n"
        'anchors = { "libya*" = 3.0 }\nterms = { ceasefire = 1.0 }\n\n[other]\nx = 1  # keep\n'
    )
    new, notes = _edit_toml(text, "libya", list(tweaks.values()))
    assert notes == []
    assert "threshold = 3.5  # hand-tuned" in new and "[profiles.libya]  # mine" in new
    assert 'exclude_sources = ["Sports Desk"]' in new and "geneva = 0.5" in new
    assert new.endswith("[other]\nx = 1  # keep\n")
    again, notes = _edit_toml(new, "libya", [tweaks["s1"], tweaks["t1"]])
    assert again == new and len(notes) == 2  # already there: nothing doubled
