"""watcher vs rss2email vs newsboat: 1,000 loopback feeds x 20 items, all new, fresh databases.

Each tool starts from nothing (a fresh database, cache or state file) and reads every feed once,
so every item is new: watcher polls, parses, scores and stores them all and posts its immediate
webhook digest; rss2email (``r2e run``) parses them and writes one email per item into a local
Maildir; newsboat (``newsboat -x reload``, ``reload-threads`` as configured) parses them into
its SQLite cache. At 0 ms per response the pass is CPU-bound, so the CPU seconds (user + system
of the process, from wait4) compare the cost per feed: median of ``--repeat`` runs, each on
fresh state. Then the same pass once more with every answer held ``--latency-ms`` (default 100 ms
± 20 %), where the wall time compares how the tools wait.

rss2email lives in its own venv (``benchmarks/.venv-r2e``, made on first use). newsboat is the
Debian package ``newsboat``: when it is missing the benchmark installs it with apt-get where it
runs as root, else it says how and measures the other two.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_cycle import write_config
from benchmarks.bench_rss2email import R2E, ensure_r2e, r2e_version, write_r2e_config
from benchmarks.common import WATCHER, ChildRun, Table, quiet_env, run_child, show
from benchmarks.farm import Farm

FEEDS = 1_000
ITEMS = 20
REPEAT = 3
LATENCY_MS = 100.0
JITTER = 0.2
CONCURRENCY = PER_HOST = 32  # one host (127.0.0.1): per_host = concurrency, as for many hosts
NEWSBOAT_THREADS = 16
RUN_TIMEOUT = 900.0
TOOLS = ("watcher", "rss2email", "newsboat")


def find_newsboat(install: bool = True) -> str | None:
    """newsboat's path; installed from Debian's packages when missing and we are root."""
    found = shutil.which("newsboat")
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("  newsboat is not installed (Debian: apt-get install newsboat); measuring without it")
        return None
    print("  installing newsboat (apt-get install newsboat) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "newsboat"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 and argv[1] == "install":
            print(f"  could not install newsboat: {done.stderr.strip()[-300:]}; measuring without it")
            return None
    return shutil.which("newsboat")


def newsboat_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (out.stdout.splitlines() or ["newsboat"])[0].split(" - ")[0]


@dataclass
class Run:
    tool: str
    latency: str
    run: ChildRun
    output: str


class Peers:
    """Fresh state per run: each call gets its own directory under ``tmp``."""

    def __init__(self, farm: Farm, tmp: Path, n_feeds: int, newsboat: str | None) -> None:
        self.farm, self.tmp, self.n_feeds, self.newsboat = farm, tmp, n_feeds, newsboat
        self.count = 0

    def _dir(self, tool: str) -> Path:
        self.count += 1
        d = self.tmp / f"{tool}-{self.count}"
        d.mkdir()
        return d

    def watcher(self) -> Run:
        d = self._dir("watcher")
        config = d / "watcher.toml"
        write_config(config, f"sqlite:///{d}/watcher.db", self.farm, self.n_feeds, CONCURRENCY, PER_HOST)
        hooks = self.farm.stats().get("hook", 0)
        run = self._run([str(WATCHER), "--config", str(config), "run", "--once"], d)
        new = _number(run.stdout, "new items: ")
        hooks = self.farm.stats().get("hook", 0) - hooks
        return Run("watcher", self.farm.latency_label(), run, f"{new:,} items stored, {hooks} webhook")

    def rss2email(self) -> Run:
        d = self._dir("r2e")
        maildir = d / "Maildir"
        maildir.mkdir()
        write_r2e_config(d / "r2e.cfg", maildir, self.farm, self.n_feeds)
        run = self._run([str(R2E), "-c", str(d / "r2e.cfg"), "-d", str(d / "r2e.json"), "run"], d)
        new = maildir / "INBOX" / "new"
        mails = sum(1 for _ in new.iterdir()) if new.exists() else 0
        return Run("rss2email", self.farm.latency_label(), run, f"{mails:,} emails")

    def newsboat_run(self) -> Run:
        assert self.newsboat
        d = self._dir("newsboat")
        (d / "urls").write_text("".join(f"{self.farm.url(i)}\n" for i in range(self.n_feeds)))
        (d / "config").write_text(f"reload-threads {NEWSBOAT_THREADS}\nshow-read-feeds yes\n")
        argv = [self.newsboat, "-u", str(d / "urls"), "-c", str(d / "cache.db"), "-C", str(d / "config")]
        run = self._run([*argv, "-x", "reload"], d, home=d)
        items = _sqlite_count(d / "cache.db", "rss_item")
        return Run("newsboat", self.farm.latency_label(), run, f"{items:,} items cached")

    def _run(self, argv: list[str], cwd: Path, home: Path | None = None) -> ChildRun:
        env = quiet_env(
            **({"HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_DATA_HOME": str(home)} if home else {})
        )
        run = run_child(argv, env, cwd, RUN_TIMEOUT)
        if run.returncode != 0:
            print(f"  {Path(argv[0]).name} exited {run.returncode}: {run.stderr.strip()[-400:]}", flush=True)
        return run

    def one(self, tool: str) -> Run:
        r = {"watcher": self.watcher, "rss2email": self.rss2email, "newsboat": self.newsboat_run}[tool]()
        print(
            f"    {tool:9} {r.latency}: {r.run.wall:6.1f} s wall, {r.run.cpu:6.1f} s CPU, {r.output}",
            flush=True,
        )
        return r


def _number(text: str, prefix: str) -> int:
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix) :].split()[0].replace(",", ""))
    return 0


def _sqlite_count(path: Path, table: str) -> int:
    import sqlite3

    try:
        with sqlite3.connect(path) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def measure(n_feeds: int, items: int, repeat: int, latency_ms: float, jitter: float) -> list[Table]:
    newsboat = find_newsboat()
    tools = [t for t in TOOLS if t != "newsboat" or newsboat]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="watcher-peers-") as tmp, Farm() as farm:
        farm.set_items_per_feed(items)
        farm.set_phase(1)
        peers = Peers(farm, Path(tmp), n_feeds, newsboat)
        for k in range(repeat):
            print(f"  0 ms, run {k + 1} of {repeat} ...", flush=True)
            for tool in tools:  # interleaved, so a busy moment on the machine hits every tool alike
                runs.append(peers.one(tool))
        if latency_ms > 0:
            farm.set_latency(latency_ms, jitter)
            print(f"  {farm.latency_label()} per response ...", flush=True)
            for tool in tools:
                runs.append(peers.one(tool))
            farm.set_latency(0.0)
    versions = {"rss2email": r2e_version(), "newsboat": newsboat_version(newsboat) if newsboat else "-"}
    return [detail(runs, n_feeds, items), summary(runs, n_feeds, items, versions)]


def detail(runs: list[Run], n_feeds: int, items: int) -> Table:
    t = Table(
        f"Peers: every run, {n_feeds:,} feeds x {items} new items, fresh state each",
        ["tool", "latency per response", "wall s", "CPU s", "peak RSS MiB", "output"],
    )
    for r in runs:
        t.add(r.tool, r.latency, r.run.wall, r.run.cpu, r.run.max_rss_mib, r.output)
    return t


def summary(runs: list[Run], n_feeds: int, items: int, versions: dict[str, str]) -> Table:
    zero = [r for r in runs if r.latency == "0 ms"]
    slow = [r for r in runs if r.latency != "0 ms"]
    tools = list(dict.fromkeys(r.tool for r in runs))
    cpu = {t: statistics.median(r.run.cpu for r in zero if r.tool == t) for t in tools}
    wall0 = {t: statistics.median(r.run.wall for r in zero if r.tool == t) for t in tools}
    wall_slow = {r.tool: r.run.wall for r in slow}
    lat = slow[0].latency if slow else "-"
    t = Table(
        f"watcher vs rss2email vs newsboat: {n_feeds:,} feeds x {items} all-new items",
        [
            "tool",
            "version",
            "CPU s at 0 ms (median)",
            "CPU vs rss2email",
            "wall s at 0 ms (median)",
            f"wall s at {lat}",
            "wall vs rss2email",
        ],
    )
    for tool in tools:
        t.add(
            tool,
            versions.get(tool, "this checkout"),
            cpu[tool],
            f"{cpu[tool] / cpu['rss2email']:.2f}x" if "rss2email" in cpu else "-",
            wall0[tool],
            wall_slow.get(tool, 0.0),
            f"{wall_slow['rss2email'] / wall_slow[tool]:.1f}x shorter" if "rss2email" in wall_slow else "-",
        )
    n0 = sum(1 for r in zero if r.tool == "watcher")
    if "rss2email" in cpu:
        ratio = cpu["watcher"] / cpu["rss2email"]
        verdict = "meets" if ratio <= 1 / 3 else "misses"
        t.notes.append(
            f"target watcher CPU <= 1/3 of rss2email's at 0 ms: {ratio:.2f} "
            f"(median of {n0} runs each), {verdict} it"
        )
    if "newsboat" in cpu:
        t.notes.append(f"watcher's CPU is {cpu['watcher'] / cpu['newsboat']:.2f}x newsboat's (C++)")
    if "rss2email" in wall_slow:
        x = wall_slow["rss2email"] / wall_slow["watcher"]
        verdict = "meets" if x >= 10 else "misses"
        t.notes.append(
            f"target watcher wall >= 10x shorter than rss2email's at {lat}: {x:.1f}x, {verdict} it"
        )
    t.notes += [
        "each run starts from nothing, so all items are new: watcher parses, scores and stores every item "
        "and posts its immediate webhook digest; rss2email writes one email per item into a Maildir; "
        "newsboat "
        "stores every item in its SQLite cache",
        f"watcher: concurrency {CONCURRENCY}, per_host {PER_HOST} (every farm feed is on 127.0.0.1; with "
        f"many hosts the default per_host lets `concurrency` fetches run at once); newsboat: reload-threads "
        f"{NEWSBOAT_THREADS}; rss2email fetches one feed after another (it has no option to do otherwise)",
        "CPU s: user + system seconds of the tool's process (wait4); the farm runs in another process and is "
        "not counted; the machine has 2 cores shared with other work, so each figure is a median and the "
        "tools' runs are interleaved",
    ]
    return t


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=FEEDS)
    ap.add_argument("--items", type=int, default=ITEMS, help="items per feed, all new")
    ap.add_argument("--repeat", type=int, default=REPEAT, help="runs at 0 ms per tool (median)")
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS, help="one more run per tool (0 to skip)")
    ap.add_argument("--jitter", type=float, default=JITTER)
    args = ap.parse_args(argv)
    ensure_r2e()
    tables = measure(args.feeds, args.items, max(1, args.repeat), args.latency_ms, args.jitter)
    show(tables)
    return tables


if __name__ == "__main__":
    main()
