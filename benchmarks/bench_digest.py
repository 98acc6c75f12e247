"""Render a digest of many matches: grouping, HTML, text and the three webhook formats.

Items are built from the shared dev set as :class:`watcher.values.DigestItem`s (one
profile, scores spread so the order is not trivial). ``group_stories`` is timed on its
own; the renderers are timed with the grouped digest already cached (``grouped`` is an
``lru_cache``), so each row is that renderer's own cost. CPU seconds (user + system of this
process) beside wall seconds: on a shared machine the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import Table, dev_items, show, time_call
from watcher.digest import group_stories, grouped, render_html, render_text, webhook_bodies
from watcher.values import Digest, DigestItem

SIZES = (1_000, 10_000)
PROFILE = "libya"
FORMATS = ("json", "slack", "discord")


def digest_items(n: int) -> list[DigestItem]:
    items = []
    for k, row in enumerate(dev_items(n)):
        published = datetime.fromisoformat(row["published"].replace("Z", "+00:00")).astimezone(UTC)
        items.append(
            DigestItem(
                match_id=k + 1,
                profile=PROFILE,
                title=row.get("title") or "",
                link=row.get("link"),
                source=row.get("source"),
                published=published,
                excerpt=(row.get("summary") or "")[:300],
                score=2.0 + (k * 7919 % 1000) / 100,
                terms=("libya", "ceasefire") if k % 3 else ("tripoli",),
            )
        )
    return items


def size_of(value: Any) -> int:
    """Bytes as sent: UTF-8 text, or JSON for webhook bodies (summed over the parts)."""
    if isinstance(value, str):
        return len(value.encode())
    return sum(len(json.dumps(body).encode()) for body in value)


def measure(n: int) -> list[list[Any]]:
    items = digest_items(n)
    digest = Digest(
        name="bench",
        key=f"bench-{n}",
        created=datetime(2024, 6, 1, tzinfo=UTC),
        items=tuple(items),
        profiles=(PROFILE,),
    )
    rows = []
    timing, stories = time_call(lambda: group_stories(items, (PROFILE,)))
    rows.append([len(items), "group_stories", timing.wall, timing.cpu, f"{len(stories):,} stories", ""])
    grouped(digest)  # cache the grouping every renderer starts from
    steps = [
        ("render_html", lambda: render_html(digest)),
        ("render_text", lambda: render_text(digest)),
        *((f"webhook_bodies {f}", lambda f=f: webhook_bodies(digest, f)) for f in FORMATS),
    ]
    for name, fn in steps:
        timing, out = time_call(fn)
        parts = "" if isinstance(out, str) else f"{len(out):,} bodies"
        rows.append([len(items), name, timing.wall, timing.cpu, f"{size_of(out) / 1e6:.2f} MB", parts])
    return rows


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = ap.parse_args(argv)
    t = Table("Digest: grouping and rendering", ["matches", "step", "seconds", "CPU s", "output", "parts"])
    per_size = {}
    for n in args.sizes:
        rows = measure(n)
        per_size[n] = {r[1]: r[3] for r in rows}
        t.rows += rows
    if len(per_size) >= 2:
        lo, hi = min(per_size), max(per_size)
        for step in per_size[hi]:
            if per_size[lo][step] > 0:
                growth = per_size[hi][step] / per_size[lo][step]
                t.notes.append(f"{step}: {growth:.1f}x the CPU time for {hi // lo}x the matches")
    show([t])
    return [t]


if __name__ == "__main__":
    main()
