"""Benchmarks for watcher: `make bench` (or `python -m benchmarks`) runs them all and writes BENCHMARKS.md.

Each module is also runnable alone, e.g. `python -m benchmarks.bench_parse`. Benchmarks are
not tests: they measure, print tables and never assert on speed.
"""
