"""`make bench`: run every benchmark in sequence, print the tables and write BENCHMARKS.md.

.venv/bin/python -m benchmarks            # everything (about 10 minutes on 2 cores)
.venv/bin/python -m benchmarks --quick    # smaller sizes, for a smoke run
.venv/bin/python -m benchmarks --only parse digest
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Table

OUT = REPO / "BENCHMARKS.md"
FINDINGS = Path(__file__).resolve().parent / "FINDINGS.md"


class _Tee(io.TextIOBase):
    """Prints as it goes and keeps a copy (for benchmarks that print rather than return tables)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.copy = io.StringIO()

    def write(self, s: str) -> int:
        self.target.write(s)
        self.copy.write(s)
        return len(s)

    def flush(self) -> None:
        self.target.flush()


def plan(quick: bool) -> list[tuple[str, str, list[str]]]:
    """(short name, module, argv) in the order they run."""
    if quick:
        return [
            ("parse", "benchmarks.bench_parse", ["--repeat", "1"]),
            ("startup", "benchmarks.bench_startup", ["--repeat", "3"]),
            ("score", "benchmarks.bench_score", ["--repeat", "1"]),
            ("aboutness", "benchmarks.bench_aboutness", []),
            (
                "cycle",
                "benchmarks.bench_cycle",
                [
                    "--feeds",
                    "500",
                    "2000",
                    "--latency-feeds",
                    "2000",
                    "--pg-feeds",
                    "2000",
                    "--pg-workers",
                    "1",
                    "2",
                ],
            ),
            ("peers", "benchmarks.bench_peers", ["--feeds", "200", "--repeat", "1", "--latency-ms", "0"]),
            ("digest", "benchmarks.bench_digest", ["--sizes", "1000", "3000"]),
            ("growth", "benchmarks.bench_growth", ["--quick"]),
            ("hostile", "benchmarks.bench_hostile", ["--only", "entity-cp500", "slow-headers", "many-json"]),
        ]
    return [
        ("parse", "benchmarks.bench_parse", ["--repeat", "3"]),
        ("startup", "benchmarks.bench_startup", []),
        ("score", "benchmarks.bench_score", []),
        ("aboutness", "benchmarks.bench_aboutness", []),
        ("cycle", "benchmarks.bench_cycle", []),
        # watcher vs rss2email vs newsboat; its 100 ms pass waits ~100 s for rss2email (one feed at a time).
        # bench_rss2email (the 60/20/20 mix against rss2email alone) still runs by itself.
        ("peers", "benchmarks.bench_peers", []),
        ("digest", "benchmarks.bench_digest", []),
        # 500 feeds x 180 simulated days, with and without retention (the longest: ~30 min on 2 cores)
        ("growth", "benchmarks.bench_growth", []),
        ("hostile", "benchmarks.bench_hostile", []),
    ]


def run_one(module: str, argv: list[str]) -> tuple[list[Table], str, float]:
    """Call ``module.main(argv)`` and take its tables; a ``main()`` without parameters (it reads
    sys.argv itself) runs as ``python -m module`` instead and its printed text is kept."""
    mod = importlib.import_module(module)
    main: Callable[..., Any] = mod.main
    t0 = time.perf_counter()
    if not inspect.signature(main).parameters:
        text = run_module(module, argv)
        return [], text, time.perf_counter() - t0
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        result = main(argv)
    elapsed = time.perf_counter() - t0
    tables = [t for t in result if hasattr(t, "markdown")] if isinstance(result, list) else []
    return tables, tee.copy.getvalue(), elapsed


def run_module(module: str, argv: list[str], timeout: float = 900.0) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout.strip()
    cores = len([ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("processor")])
    return [
        f"- machine: `{uname}`",
        f"- CPU: {cpu} ({cores} logical cores)",
        f"- Python: {platform.python_version()} ({sys.executable})",
    ]


def load_average() -> str:
    """1/5/15-minute load average: other work on the machine skews wall times."""
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def write_report(
    sections: list[tuple[str, list[Table], str, float]], argv: list[str], load0: str, head: str
) -> None:
    command = "make bench" if not argv else "python -m benchmarks " + " ".join(argv)
    lines = [
        "# watcher benchmarks",
        "",
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "Re-run it to refresh this file; each benchmark also runs alone,",
        "e.g. `.venv/bin/python -m benchmarks.bench_parse`.",
        "",
        *machine(),
        f"- load average (1/5/15 min) at the start: {load0}, at the end: {load_average()}",
        f"- watcher code: {head}",
        "",
    ]
    for name, tables, text, elapsed in sections:
        lines += [f"## {name} ({elapsed:.0f} s)", ""]
        if tables:
            for t in tables:
                lines += [t.markdown(), ""]
        else:
            lines += ["```text", text.strip() or "(no output)", "```", ""]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text(encoding="utf-8").strip(), ""]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print(f"\nwrote {OUT}")


def git_head() -> str:
    """The commit under test, and whether watcher/ had uncommitted changes when the run began."""
    head = subprocess.run(["git", "log", "-1", "--format=%h %cd", "--date=iso"], **_GIT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "watcher"], **_GIT).stdout.strip()
    if not head:
        return "unknown"
    return head + (" + uncommitted changes in watcher/" if dirty else "")


_GIT: dict[str, Any] = {"cwd": REPO, "capture_output": True, "text": True, "check": False, "timeout": 30}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="parse, startup, score, cycle, peers, digest, growth, hostile",
    )
    args = ap.parse_args(argv)
    sections = []
    load0, head = load_average(), git_head()
    for name, module, bench_argv in plan(args.quick):
        if args.only and name not in args.only:
            continue
        if importlib.util.find_spec(module) is None:
            print(f"\n== {name}: {module} does not exist (yet); skipped")
            continue
        print(f"\n== {name} ({module})", flush=True)
        try:
            tables, text, elapsed = run_one(module, bench_argv)
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            print(f"  {name} failed: {exc!r}")
            tables, text, elapsed = [], f"failed: {exc!r}", 0.0
        sections.append((name, tables, text, elapsed))
    write_report(sections, argv, load0, head)


if __name__ == "__main__":
    main()
