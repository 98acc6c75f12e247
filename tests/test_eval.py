"""Evaluation: metric arithmetic, and the derived profile against the targets on the dev split."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import need_shared
from watcher.profiles import compile_profiles, derive_profile
from watcher.profiles.evaluate import (
    LabeledItem,
    average_precision,
    best_threshold,
    compute_metrics,
    evaluate,
    format_report,
    load_labeled,
    tfidf_scores,
)

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_average_precision() -> None:
    assert average_precision([3, 2, 1, 0], [True, True, False, False]) == pytest.approx(1.0)
    assert average_precision([3, 2, 1, 0], [False, False, True, True]) == pytest.approx((1 / 3 + 2 / 4) / 2)
    # Ties are one step: no credit for a lucky order among equal scores.
    assert average_precision([1, 1], [True, False]) == pytest.approx(0.5)
    assert average_precision([1, 1], [False, True]) == pytest.approx(0.5)
    assert average_precision([1, 0], [False, False]) == 0.0


def test_best_threshold_maximizes_f1() -> None:
    scores = [0.9, 0.8, 0.4, 0.3, 0.1]
    rel = [True, True, False, True, False]
    assert best_threshold(scores, rel) == pytest.approx(0.3)  # F1 0.857 beats 0.8 at 0.8


def test_compute_metrics_counts_confusers_only_among_labeled() -> None:
    items = [
        LabeledItem("1", "a", "", 2, True),
        LabeledItem("2", "b", "", 1, True),
        LabeledItem("3", "c", "", 0, True),
        LabeledItem("4", "d", "", 0, False),
    ]
    m = compute_metrics("x", items, [3, 0, 2, 1], [True, False, True, True])
    assert (m.precision, m.recall, m.core_recall) == (pytest.approx(1 / 3), 0.5, 1.0)
    assert (m.confuser_fa, m.confusers) == (1, 1)


def test_tfidf_prefers_similar_text() -> None:
    seeds = ["ceasefire talks in Libya between rival governments"]
    s = tfidf_scores(seeds, ["Libya ceasefire talks resume", "Baking bread at home", "talks"])
    assert s[0] > s[2] > s[1] == 0.0


@pytest.mark.parametrize(("split", "max_false_alarms"), [("dev.jsonl", 0), ("dev-early.jsonl", 1)])
def test_dev_targets(split: str, max_false_alarms: int) -> None:
    """Each split: F1 >= 0.97, AP(core) >= 0.95, confuser false alarms 0 (dev) / <= 1 (dev-early);
    every figure at least as good as both baselines, F1 and both APs better."""
    dev = need_shared("eval", split)
    started = time.perf_counter()
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    items = load_labeled(dev)
    spec = derive_profile(seeds)
    report = evaluate(compile_profiles({"libya": spec}), "libya", items, seeds, explain_errors=5)
    ours, boolean, tfidf = report.rows
    print(format_report(report))
    assert ours.f1 >= 0.97
    assert ours.ap_core >= 0.95
    assert ours.confuser_fa <= max_false_alarms
    for base in (boolean, tfidf):
        assert ours.f1 > base.f1 and ours.ap_related > base.ap_related and ours.ap_core > base.ap_core
        for field in ("precision", "recall", "core_recall"):
            assert getattr(ours, field) >= getattr(base, field), (field, base.name)
        assert ours.confuser_fa <= base.confuser_fa
    assert time.perf_counter() - started < 60
