"""Shared helpers: where the data is, timing, and result tables that print as text and Markdown."""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
FEEDS_DIR = SHARED / "corpus" / "feeds"
DEV_JSONL = SHARED / "eval" / "dev.jsonl"
PYTHON = REPO / ".venv" / "bin" / "python"
WATCHER = REPO / ".venv" / "bin" / "watcher"


@dataclass
class Table:
    """One result table: printed to the terminal and written into BENCHMARKS.md."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def _cells(self) -> list[list[str]]:
        return [[fmt(c) for c in row] for row in self.rows]

    def text(self) -> str:
        cells = self._cells()
        widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(self.headers)]

        def line(row: list[str]) -> str:  # first column left-aligned, numbers right-aligned
            pairs = enumerate(zip(row, widths, strict=True))
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

        out = [self.title, "-" * len(self.title), line(self.headers)]
        out += [line(r) for r in cells]
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |"]
        out.append("|" + "|".join("---" for _ in self.headers) + "|")
        out += ["| " + " | ".join(r) + " |" for r in self._cells()]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def show(tables: list[Table]) -> None:
    for t in tables:
        print()
        print(t.text(), flush=True)


@dataclass
class Timing:
    wall: float
    cpu: float


def time_call(fn: Callable[[], Any]) -> tuple[Timing, Any]:
    """Wall and CPU (user+system of this process) time of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return Timing(time.perf_counter() - w0, time.process_time() - c0), result


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    """Best and all wall times of ``repeat`` calls (best is the least disturbed by the machine)."""
    times = [time_call(fn)[0].wall for _ in range(repeat)]
    return min(times), times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def children_usage() -> tuple[float, int]:
    """CPU seconds (user+sys) of all waited-for children so far, and their largest peak RSS in KiB."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def dev_items(limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Items of the labeled dev set (title, summary, link, published, source)."""
    with DEV_JSONL.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if limit is not None and n >= limit:
                return
            if line.strip():
                yield json.loads(line)


def quiet_env(**extra: str) -> dict[str, str]:
    """Environment for a child `watcher`: no inherited WATCHER_* settings, no proxies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_") and "proxy" not in k.lower()}
    env.update(extra)
    return env


@dataclass
class ChildRun:
    """What one child process cost: its own rusage from wait4, not the sum over all children."""

    returncode: int
    wall: float  # from the start of the batch to this child's exit
    cpu: float  # user + system seconds
    max_rss_mib: float
    stdout: str
    stderr: str


def run_children(argvs: list[list[str]], env: dict[str, str], cwd: Path, timeout: float) -> list[ChildRun]:
    """Start every argv at once, wait for all (killed after ``timeout`` s), measure each with wait4."""
    import subprocess
    import tempfile
    import threading

    files = [(tempfile.TemporaryFile(), tempfile.TemporaryFile()) for _ in argvs]  # noqa: SIM115 - closed below
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        for argv, (out, err) in zip(argvs, files, strict=True)
    ]
    killer = threading.Timer(timeout, lambda: [p.kill() for p in procs if p.returncode is None])
    killer.start()
    done: dict[int, tuple[int, float, Any, int]] = {}

    def reap(p: subprocess.Popen[bytes]) -> None:
        # ru_maxrss after fork+exec includes the parent's RSS at fork time on Linux, so the peak is
        # VmHWM of the child's own address space, sampled until it exits (the killer bounds this loop).
        hwm = 0
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)  # this child only: never reaps the farm
            if pid:
                break
            hwm = max(hwm, vm_hwm_kib(p.pid))
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        done[p.pid] = (p.returncode, time.perf_counter() - t0, ru, hwm)

    waiters = [threading.Thread(target=reap, args=(p,)) for p in procs]
    try:
        for w in waiters:
            w.start()
        for w in waiters:
            w.join()
    finally:
        killer.cancel()
    runs = []
    for p, (out, err) in zip(procs, files, strict=True):
        rc, wall, ru, hwm = done[p.pid]
        out.seek(0)
        err.seek(0)
        runs.append(
            ChildRun(
                rc,
                wall,
                ru.ru_utime + ru.ru_stime,
                hwm / 1024,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )
        )
        out.close()
        err.close()
    return runs


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set of a running process (its own address space), in KiB; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_child(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> ChildRun:
    return run_children([argv], env, cwd, timeout)[0]
