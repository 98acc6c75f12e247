"""parse_feed vs bare feedparser.parse on the real feeds of the shared corpus.

Both get the same bytes (from memory, no I/O in the timed part); the ratio of the two
times is what the watcher stage (HTML to text, canonical links, dates, keys, the
defused XML pre-check) adds on top of feedparser.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser

from benchmarks.common import FEEDS_DIR, Table, show, time_call
from watcher.parse import parse_feed

NOW = datetime(2024, 6, 1, tzinfo=UTC)
REPEAT = 3


@dataclass(frozen=True)
class Body:
    path: str
    url: str
    data: bytes


def real_feeds(feeds_dir: Path = FEEDS_DIR) -> list[Body]:
    """Every corpus feed whose manifest group is not a synthetic edge case."""
    bodies = []
    with (feeds_dir / "manifest.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if "synthetic" in row["group"]:
                continue
            url = f"https://corpus.invalid/{row['path']}"
            bodies.append(Body(row["path"], url, (feeds_dir / row["path"]).read_bytes()))
    return bodies


def run_feedparser(bodies: list[Body]) -> int:
    return sum(len(feedparser.parse(b.data).entries) for b in bodies)


def run_watcher(bodies: list[Body]) -> int:
    return sum(len(parse_feed(b.data, url=b.url, now=NOW).entries) for b in bodies)


def measure(bodies: list[Body], repeat: int) -> Table:
    mb = sum(len(b.data) for b in bodies) / 1e6
    table = Table(
        f"Parse: {len(bodies)} real corpus feeds, {mb:.1f} MB, best of {repeat}",
        ["stage", "entries", "best s", "median s", "items/s", "MB/s", "CPU s (best)", "ratio"],
    )
    results = {}
    for name, fn in (("feedparser.parse", run_feedparser), ("watcher.parse.parse_feed", run_watcher)):
        runs = [time_call(lambda fn=fn: fn(bodies)) for _ in range(repeat)]
        walls = sorted(t.wall for t, _ in runs)
        best = min(runs, key=lambda r: r[0].wall)
        results[name] = (best[1], walls[0], walls[len(walls) // 2], best[0].cpu)
    base = results["feedparser.parse"][1]
    for name, (entries, best, med, cpu) in results.items():
        table.add(name, entries, best, med, entries / best, mb / best, cpu, f"{best / base:.2f}x")
    overhead = results["watcher.parse.parse_feed"][1] / base - 1
    table.notes.append(
        f"watcher stage overhead over bare feedparser: {overhead:+.0%} of wall time "
        f"(ratio = time / feedparser time; lower is better)"
    )
    table.notes.append("parse_feed may find more entries than feedparser (JSON Feed, recovered bodies)")
    return table


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=REPEAT)
    args = ap.parse_args(argv)
    tables = [measure(real_feeds(), max(1, args.repeat))]
    show(tables)
    return tables


if __name__ == "__main__":
    main()
