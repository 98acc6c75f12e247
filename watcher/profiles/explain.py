"""Render a `Score` as text a person can check."""

from __future__ import annotations

from watcher.values import Score


def explain_text(score: Score, threshold: float | None = None) -> str:
    """Which terms fired, what each added, total vs threshold, and why not matched."""
    verdict = "MATCH" if score.matched else "no match"
    thr = f" (threshold {threshold:g})" if threshold is not None else ""
    lines = [f"{score.profile}: {verdict}, score {score.score:.2f}{thr}"]
    if score.reason:
        lines.append(f"  reason: {score.reason}")
    for term, contribution in score.hits:
        lines.append(f"  {contribution:+6.2f}  {term}")
    if not score.hits and (score.reason is None or score.reason.startswith("no anchor")):
        lines.append("  (no anchor fired; context terms never count on their own)")
    return "\n".join(lines)
