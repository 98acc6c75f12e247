"""watcher vs rss2email, one full pass each over the same loopback farm.

rss2email lives in its own venv (``benchmarks/.venv-r2e``, created on first use with
``pip install rss2email``). Its config is written directly (``r2e add`` for 1,000 feeds
would cost a process start each) and it delivers into a local Maildir, so nothing leaves
the machine. Both tools get a warm-up pass on the same farm phase (watcher: a cold
``run --once``; rss2email: ``run --no-send``, its documented first run), then the farm
moves on (60 % 304, 20 % same bytes, 20 % new items) and one full pass of each is timed:
``watcher run --once`` (poll, score, store, send the immediate webhook digest) against
``r2e run`` (poll, parse, one email per new item into the Maildir).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.bench_cycle import make_all_due, write_config
from benchmarks.common import WATCHER, ChildRun, Table, quiet_env, run_child, show
from benchmarks.farm import Farm

R2E_VENV = Path(__file__).resolve().parent / ".venv-r2e"
R2E = R2E_VENV / "bin" / "r2e"
FEEDS = 1_000
RUN_TIMEOUT = 600.0
INSTALL_TIMEOUT = 300.0


def ensure_r2e() -> None:
    """Create the rss2email venv on first use (its own venv: never in watcher's dependencies)."""
    if R2E.exists():
        return
    print(f"  creating {R2E_VENV} and installing rss2email ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(R2E_VENV)], check=True, timeout=INSTALL_TIMEOUT)
    pip = [str(R2E_VENV / "bin" / "pip"), "install", "--quiet", "rss2email"]
    subprocess.run(pip, check=True, timeout=INSTALL_TIMEOUT)


def r2e_version() -> str:
    out = subprocess.run([str(R2E), "--version"], capture_output=True, text=True, timeout=60, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def write_r2e_config(path: Path, maildir: Path, farm: Farm, n_feeds: int) -> None:
    lines = [
        "[DEFAULT]",
        "to = bench@localhost",
        "from = r2e@localhost",
        "email-protocol = maildir",
        f"maildir-path = {maildir}",
        "maildir-mailbox = INBOX",
        "feed-timeout = 30",
        "verbose = warning",
        "",
    ]
    for i in range(n_feeds):
        lines += [f"[feed.bench{i:05d}]", f"url = {farm.url(i)}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def delta(before: dict[str, int], after: dict[str, int]) -> str:
    d = Counter(after)
    d.subtract(before)
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items()) if v)


class Pair:
    def __init__(self, farm: Farm, tmp: Path, n_feeds: int) -> None:
        self.farm = farm
        self.tmp = tmp
        self.db = f"sqlite:///{tmp}/watcher.db"
        self.wconfig = tmp / "watcher.toml"
        self.rconfig = tmp / "r2e.cfg"
        self.rdata = tmp / "r2e.json"
        self.maildir = tmp / "Maildir"
        write_config(self.wconfig, self.db, farm, n_feeds)
        write_r2e_config(self.rconfig, self.maildir, farm, n_feeds)
        self.maildir.mkdir()  # rss2email creates the mailbox but not its parent

    def watcher(self, *, first: bool) -> tuple[ChildRun, str]:
        if not first:
            make_all_due(self.db)
        return self._run([str(WATCHER), "--config", str(self.wconfig), "run", "--once"])

    def r2e(self, send: bool) -> tuple[ChildRun, str]:
        argv = [str(R2E), "-c", str(self.rconfig), "-d", str(self.rdata), "run"]
        return self._run(argv if send else [*argv, "--no-send"])

    def _run(self, argv: list[str]) -> tuple[ChildRun, str]:
        before = self.farm.stats()
        run = run_child(argv, quiet_env(), self.tmp, RUN_TIMEOUT)
        if run.returncode != 0:
            print(f"  {Path(argv[0]).name} exited {run.returncode}: {run.stderr.strip()[-600:]}", flush=True)
        return run, delta(before, self.farm.stats())

    def mails(self) -> int:
        new = self.maildir / "INBOX" / "new"
        return sum(1 for _ in new.iterdir()) if new.exists() else 0


def compare(ours: float, theirs: float, better: str = "faster", worse: str = "slower") -> str:
    """'3.2x faster' or '1.5x slower': watcher's time against rss2email's."""
    if ours <= 0 or theirs <= 0:
        return "not comparable"
    return f"{theirs / ours:.1f}x {better}" if ours <= theirs else f"{ours / theirs:.1f}x {worse}"


def measure(n_feeds: int) -> Table:
    t = Table(
        f"watcher vs rss2email: one pass over the same {n_feeds:,}-feed loopback farm",
        ["tool", "pass", "wall s", "CPU s", "peak RSS MiB", "feeds/s", "output", "farm answers"],
    )
    with tempfile.TemporaryDirectory(prefix="watcher-r2e-") as tmp, Farm() as farm:
        pair = Pair(farm, Path(tmp), n_feeds)
        farm.set_phase(1)
        print("  warm-up: watcher run --once, r2e run --no-send ...", flush=True)
        w0, wa0 = pair.watcher(first=True)
        r0, ra0 = pair.r2e(send=False)
        farm.set_phase(2)
        print("  measured: watcher run --once, r2e run ...", flush=True)
        w1, wa1 = pair.watcher(first=False)
        r1, ra1 = pair.r2e(send=True)
        rows = [
            ("watcher", "warm-up (cold, all 200)", w0, "", wa0),
            ("rss2email", "warm-up (--no-send)", r0, "", ra0),
            ("watcher", "measured", w1, "1 webhook digest", wa1),
            ("rss2email", "measured", r1, f"{pair.mails():,} emails", ra1),
        ]
        for tool, label, run, output, answers in rows:
            t.add(tool, label, run.wall, run.cpu, run.max_rss_mib, n_feeds / run.wall, output, answers)
    t.notes += [
        f"measured pass, wall time: watcher is {compare(w1.wall, r1.wall)} than rss2email "
        "(target: >= 10x faster)",
        f"measured pass, CPU time: watcher uses {compare(w1.cpu, r1.cpu, 'less', 'more')} CPU",
        f"warm-up pass: watcher is {compare(w0.wall, r0.wall)} in wall time, "
        f"uses {compare(w0.cpu, r0.cpu, 'less', 'more')} CPU",
        f"{r2e_version()} fetches feeds one after another (feedparser + urllib, no keep-alive); "
        "watcher polls concurrently on one keep-alive client, and also scores and stores every item",
    ]
    return t


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--feeds", type=int, default=FEEDS)
    args = ap.parse_args(argv)
    ensure_r2e()
    tables = [measure(args.feeds)]
    show(tables)
    return tables


if __name__ == "__main__":
    main()
