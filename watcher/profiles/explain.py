"""Render a `Score` as text a person can check."""

from __future__ import annotations

from collections.abc import Mapping

from watcher.values import Score


def explain_text(
    score: Score, threshold: float | None = None, origins: Mapping[str, str] | None = None
) -> str:
    """Which terms fired (and where each came from), the aboutness signals, total vs threshold."""
    verdict = "MATCH" if score.matched else "no match"
    thr = f" (threshold {threshold:g})" if threshold is not None else ""
    lines = [f"{score.profile}: {verdict}, score {score.score:.2f}{thr}"]
    if score.reason:
        lines.append(f"  reason: {score.reason}")
    width = max((len(t) for t, _ in score.hits), default=0)
    for term, contribution in score.hits:
        origin = f"  [{origins[term]}]" if origins and term in origins else ""
        if origin == "  [generic]":
            origin = "  [generic: ranks only, never decides a match]"
        lines.append(f"  {contribution:+6.2f}  {term.ljust(width)}{origin}".rstrip())
    if not score.hits and (score.reason is None or score.reason.startswith("no anchor")):
        lines.append("  (no anchor fired; context terms never count on their own)")
    if score.signals:
        lines.append("  aboutness:")
        for label, contribution in score.signals:
            lines.append(f"  {contribution:+6.2f}  {label}")
    return "\n".join(lines)
