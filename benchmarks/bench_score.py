"""Scoring throughput for 1, 10 and 100 profiles over ~100k items (dev.jsonl repeated).

Profile 0 is derived from seeds/ (gazetteer places, aboutness signals, thread
words included); the others are derived from groups of four random dev items,
so they are real profiles on other stories with their own vocabularies
(deterministic: fixed random seed).

    .venv/bin/python benchmarks/bench_score.py [--items N] [--repeat 3]

Prints items/s (best of --repeat runs, by CPU time of this process, so other
load on a shared machine counts less; wall time beside it), profile-items/s
and the cost per profile relative to one profile (below 1 means sub-linear
growth). Target: >= 100,000 items/s with one profile on one core. Not run by
the tests.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watcher.profiles import ProfileSpec, compile_profiles, derive_profile

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def derived_profiles(rows: list[dict], count: int = 100) -> dict[str, ProfileSpec]:
    """p000 from seeds/, then profiles of groups of four random dev items (fixed random seed)."""
    seeds = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
    rng = random.Random(0)
    specs = {"p000": derive_profile(seeds)}
    while len(specs) < count:
        group = rng.sample(rows, 4)
        try:
            specs[f"p{len(specs):03d}"] = derive_profile([f"{r['title']}\n{r['summary']}" for r in group])
        except ValueError:
            continue  # a group with no usable entity: draw another
    return specs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dev", type=Path, default=DEV)
    args = parser.parse_args(argv)

    rows = [json.loads(line) for line in args.dev.open(encoding="utf-8")]
    pairs = [(r.get("title") or "", r.get("summary") or "", r.get("source")) for r in rows]
    items = (pairs * (args.items // len(pairs) + 1))[: args.items]

    specs = derived_profiles(rows)

    base = None
    print(f"{len(items):,} items, best of {args.repeat} runs")
    for n in (1, 10, 100):
        scorer = compile_profiles({k: specs[k] for k in sorted(specs)[:n]})
        for title, summary, source in items[:2000]:  # warm-up: lazy data (country names) loads once
            scorer.score(title, summary, source)
        best_cpu = best_wall = float("inf")
        matched = 0
        for _ in range(args.repeat):
            cpu, wall = time.process_time(), time.perf_counter()
            matched = 0
            for title, summary, source in items:
                for s in scorer.score(title, summary, source):
                    matched += s.matched
            best_cpu = min(best_cpu, time.process_time() - cpu)
            best_wall = min(best_wall, time.perf_counter() - wall)
        per_item = best_cpu / len(items)
        base = base or per_item
        ratio = per_item / (n * base)
        print(
            f"{n:4d} profile(s): {len(items) / best_cpu:10,.0f} items/s (cpu)  "
            f"{len(items) / best_wall:10,.0f} items/s (wall)  "
            f"{n * len(items) / best_cpu:12,.0f} profile-items/s  "
            f"cost per profile vs 1 profile: {ratio:5.3f}  ({matched:,} matches)"
        )


if __name__ == "__main__":
    main()
