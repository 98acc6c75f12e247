"""Measure a profile on labeled items, next to two baselines.

Metrics (grade ≥ 1 counts as relevant):
precision / recall / F1 of ``matched``; average precision of the ranking by
score for grade ≥ 1 and for grade 2 (core); recall of core items; false
alarms among labeled grade-0 items (the confusers that were read by a person).

Baselines, computed on the same items:
* boolean ``Libya OR Libyan`` (score = number of distinct query words present);
* TF-IDF cosine to the seeds (idf from the items themselves, the seeds as one
  document), with the threshold that maximizes F1 on these items — an
  optimistic baseline on purpose.

Pure Python: 16k items take a few seconds.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watcher.profiles.scorer import Scorer
from watcher.profiles.text import normalize
from watcher.values import Score

BOOLEAN_QUERY = ("libya", "libyan")


@dataclass(frozen=True, slots=True)
class LabeledItem:
    id: str
    title: str
    summary: str
    grade: int
    labeled: bool
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Metrics:
    name: str
    precision: float
    recall: float
    f1: float
    ap_related: float
    ap_core: float
    core_recall: float
    confuser_fa: int
    confusers: int
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorCase:
    item: LabeledItem
    score: Score


@dataclass(frozen=True, slots=True)
class EvalReport:
    profile: str
    n_items: int
    n_related: int
    n_core: int
    rows: tuple[Metrics, ...]  # the profile first, then the baselines
    misses: tuple[ErrorCase, ...] = field(default=())  # relevant items not matched, core first
    false_alarms: tuple[ErrorCase, ...] = field(default=())  # matched grade-0 items, highest score first


class EvalDataError(ValueError):
    """A labeled file that cannot be evaluated; the message names file and line."""


def load_labeled(path: Path) -> list[LabeledItem]:
    items: list[LabeledItem] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                grade = int(obj["grade"])
                items.append(
                    LabeledItem(
                        id=str(obj.get("id", lineno)),
                        title=str(obj.get("title") or ""),
                        summary=str(obj.get("summary") or ""),
                        grade=grade,
                        labeled=bool(obj.get("labeled", True)),
                        source=obj.get("source"),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise EvalDataError(f"{path}:{lineno}: not a labeled item ({exc})") from None
    if not items:
        raise EvalDataError(f"{path}: no items")
    return items


def average_precision(scores: Sequence[float], relevant: Sequence[bool]) -> float:
    """AP of the ranking by score; tied scores form one step (no lucky tie order)."""
    total = sum(relevant)
    if total == 0:
        return 0.0
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ap = 0.0
    tp = seen = 0
    prev_recall = 0.0
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            tp += relevant[order[j]]
            seen += 1
            j += 1
        recall = tp / total
        ap += (recall - prev_recall) * (tp / seen)
        prev_recall = recall
        i = j
    return ap


def compute_metrics(
    name: str, items: Sequence[LabeledItem], scores: Sequence[float], matched: Sequence[bool], threshold=None
) -> Metrics:
    rel = [it.grade >= 1 for it in items]
    core = [it.grade >= 2 for it in items]
    tp = sum(m and r for m, r in zip(matched, rel, strict=True))
    n_match = sum(matched)
    precision = tp / n_match if n_match else 0.0
    recall = tp / sum(rel) if any(rel) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    core_hit = sum(m and c for m, c in zip(matched, core, strict=True))
    confusers = [i for i, it in enumerate(items) if it.labeled and it.grade == 0]
    return Metrics(
        name=name,
        precision=precision,
        recall=recall,
        f1=f1,
        ap_related=average_precision(scores, rel),
        ap_core=average_precision(scores, core),
        core_recall=core_hit / sum(core) if any(core) else 0.0,
        confuser_fa=sum(matched[i] for i in confusers),
        confusers=len(confusers),
        threshold=threshold,
    )


def boolean_baseline(items: Sequence[LabeledItem], words: Iterable[str] = BOOLEAN_QUERY) -> Metrics:
    keys = [f" {w} " for w in words]
    scores = []
    for it in items:
        text = normalize(f"{it.title} \n {it.summary}")
        scores.append(float(sum(k in text for k in keys)))
    return compute_metrics(
        "boolean " + " OR ".join(w.capitalize() for w in words), items, scores, [s > 0 for s in scores]
    )


_WORD = re.compile(r"[a-z][a-z0-9]+")


def tfidf_scores(seed_texts: Sequence[str], texts: Sequence[str]) -> list[float]:
    """Cosine between each text and the seeds (as one document), tf-idf with idf from the texts."""
    docs = [Counter(_WORD.findall(normalize(t))) for t in texts]
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    n = len(docs) + 1
    idf = {w: math.log(n / (1 + c)) + 1.0 for w, c in df.items()}
    seed = Counter(_WORD.findall(normalize("\n".join(seed_texts))))
    default_idf = math.log(n) + 1.0

    def vec(counts: Counter[str]) -> dict[str, float]:
        v = {w: (1 + math.log(c)) * idf.get(w, default_idf) for w, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    sv = vec(seed)
    return [sum(x * sv.get(w, 0.0) for w, x in vec(d).items()) for d in docs]


def best_threshold(scores: Sequence[float], relevant: Sequence[bool]) -> float:
    """The score cut-off with the best F1 (ties: the higher cut-off)."""
    total = sum(relevant)
    best_f1, best_t = -1.0, max(scores, default=0.0) + 1.0
    tp = seen = 0
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            tp += relevant[order[j]]
            seen += 1
            j += 1
        f1 = 2 * tp / (seen + total) if total else 0.0
        if f1 > best_f1:
            best_f1, best_t = f1, scores[order[i]]
        i = j
    return best_t


def tfidf_baseline(items: Sequence[LabeledItem], seed_texts: Sequence[str]) -> Metrics:
    scores = tfidf_scores(seed_texts, [f"{it.title}\n{it.summary}" for it in items])
    thr = best_threshold(scores, [it.grade >= 1 for it in items])
    return compute_metrics(
        "tf-idf cosine to seeds", items, scores, [s >= thr for s in scores], threshold=round(thr, 3)
    )


def evaluate(
    scorer: Scorer,
    profile: str,
    items: Sequence[LabeledItem],
    seed_texts: Sequence[str],
    explain_errors: int = 0,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Run the profile and both baselines over ``items``."""
    idx = scorer.names.index(profile)
    results: list[Score] = []
    for n, it in enumerate(items):
        results.append(scorer.score(it.title, it.summary, it.source)[idx])
        if progress and n % 1000 == 999:
            progress(1000)
    row = compute_metrics(
        f"profile {profile}",
        items,
        [s.score for s in results],
        [s.matched for s in results],
        threshold=None,
    )
    rows = [row, boolean_baseline(items)]
    if seed_texts:
        rows.append(tfidf_baseline(items, seed_texts))
    misses = sorted(
        (ErrorCase(it, s) for it, s in zip(items, results, strict=True) if it.grade >= 1 and not s.matched),
        key=lambda e: (-e.item.grade, -e.score.score, e.item.id),
    )
    fas = sorted(
        (ErrorCase(it, s) for it, s in zip(items, results, strict=True) if it.grade == 0 and s.matched),
        key=lambda e: (-e.score.score, e.item.id),
    )
    return EvalReport(
        profile=profile,
        n_items=len(items),
        n_related=sum(it.grade >= 1 for it in items),
        n_core=sum(it.grade >= 2 for it in items),
        rows=tuple(rows),
        misses=tuple(misses[:explain_errors]),
        false_alarms=tuple(fas[:explain_errors]),
    )


def format_report(report: EvalReport) -> str:
    """A plain-text table: the profile and the baselines side by side."""
    head = (
        f"{report.n_items} items, {report.n_related} related (grade >= 1), {report.n_core} core (grade 2), "
        f"{report.rows[0].confusers} labeled grade-0 (confusers)"
    )
    cols = ["P", "R", "F1", "AP(rel)", "AP(core)", "core-R", "confuser-FA"]
    name_w = max(len(r.name) + (12 if r.threshold is not None else 0) for r in report.rows) + 2
    lines = [head, "", "".ljust(name_w) + "".join(c.rjust(12) for c in cols)]
    for r in report.rows:
        name = r.name + (f" (thr {r.threshold:.3f})" if r.threshold is not None else "")
        vals = [r.precision, r.recall, r.f1, r.ap_related, r.ap_core, r.core_recall]
        cells = "".join(f"{v:12.3f}" for v in vals) + f"{r.confuser_fa:>8d}/{r.confusers}".rjust(12)
        lines.append(name.ljust(name_w) + cells)
    for title, cases in (("worst misses", report.misses), ("false alarms", report.false_alarms)):
        if not cases:
            continue
        lines += ["", f"{title}:"]
        for case in cases:
            terms = ", ".join(f"{t} {c:+.2f}" for t, c in case.score.hits) or "-"
            why = f" [{case.score.reason}]" if case.score.reason else ""
            head = f"  grade {case.item.grade}  score {case.score.score:.2f}{why}"
            lines.append(f"{head}  {case.item.title[:100]}")
            lines.append(f"      terms: {terms}")
            if case.score.signals:
                signals = "; ".join(f"{label} {c:+.2f}" for label, c in case.score.signals)
                lines.append(f"      signals: {signals}")
    return "\n".join(lines)
