"""Scoring throughput for 1, 10 and 100 profiles over ~100k items (dev.jsonl repeated).

Profile 0 is derived from seeds/; the others are derived from groups of four
random dev items, so they are real profiles on other stories with their own
vocabularies (deterministic: fixed random seed).

    .venv/bin/python benchmarks/bench_score.py [--items N]

Prints items/s, profile-items/s and the cost per profile relative to one
profile (below 1 means sub-linear growth). Not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from watcher.profiles import compile_profiles, derive_profile

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dev", type=Path, default=DEV)
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.dev.open(encoding="utf-8")]
    pairs = [(r.get("title") or "", r.get("summary") or "", r.get("source")) for r in rows]
    items = (pairs * (args.items // len(pairs) + 1))[: args.items]

    seeds = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
    rng = random.Random(0)
    specs = {"p000": derive_profile(seeds)}
    while len(specs) < 100:
        group = rng.sample(rows, 4)
        try:
            specs[f"p{len(specs):03d}"] = derive_profile([f"{r['title']}\n{r['summary']}" for r in group])
        except ValueError:
            continue  # a group with no usable entity: draw another

    base = None
    print(f"{len(items):,} items")
    for n in (1, 10, 100):
        scorer = compile_profiles({k: specs[k] for k in sorted(specs)[:n]})
        started = time.perf_counter()
        matched = 0
        for title, summary, source in items:
            for s in scorer.score(title, summary, source):
                matched += s.matched
        elapsed = time.perf_counter() - started
        per_item = elapsed / len(items)
        base = base or per_item
        ratio = per_item / (n * base)
        print(
            f"{n:4d} profile(s): {len(items) / elapsed:10,.0f} items/s  "
            f"{n * len(items) / elapsed:12,.0f} profile-items/s  "
            f"cost per profile vs 1 profile: {ratio:5.3f}  ({matched:,} matches)"
        )


if __name__ == "__main__":
    main()
