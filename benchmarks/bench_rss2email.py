"""watcher vs rss2email, one full pass each over the same loopback farm, without and with latency.

rss2email lives in its own venv (``benchmarks/.venv-r2e``, created on first use with
``pip install rss2email``). Its config is written directly (``r2e add`` for 1,000 feeds
would cost a process start each) and it delivers into a local Maildir, so nothing leaves
the machine. Both tools get a warm-up pass on the same farm phase (watcher: a cold
``run --once``; rss2email: ``run --no-send``, its documented first run), then the farm
moves on (60 % 304, 20 % same bytes, 20 % new items) and one full pass of each is timed:
``watcher run --once`` (poll, score, store, send the immediate webhook digest) against
``r2e run`` (poll, parse, one email per new item into the Maildir).

That measured pass is run twice, on the same feeds and databases: first with a farm that
answers at once (0 ms: CPU cost only), then, after the farm has moved to its next phase (the
same mix again), with every answer held ``--latency-ms`` (default 200 ms ± 20 %, a typical TLS
+ server time of a news site). The warm-up is the same for both tools and both settings.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_cycle import make_all_due, write_config
from benchmarks.common import WATCHER, ChildRun, Table, quiet_env, run_child, show
from benchmarks.farm import Farm

# All farm feeds share one host (127.0.0.1), so per_host = concurrency lets watcher use all of
# its slots; a real deployment spreads feeds over many hosts and keeps per_host small.
CONCURRENCY = PER_HOST = 32
LATENCY_MS = 200.0
JITTER = 0.2

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
        write_config(self.wconfig, self.db, farm, n_feeds, concurrency=CONCURRENCY, per_host=PER_HOST)
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
        for line in run.stdout.splitlines():
            if line.startswith(("feeds polled", "new items", "matches", "digest", "  feed error")):
                print(f"    {line.strip()}", flush=True)
        return run, delta(before, self.farm.stats())

    def mails(self) -> int:
        new = self.maildir / "INBOX" / "new"
        return sum(1 for _ in new.iterdir()) if new.exists() else 0


def matches(stdout: str) -> int:
    """Matches over all profiles, from the summary `watcher run --once` prints."""
    return sum(int(n) for n in re.findall(r"^matches for profile .*: (\d+)$", stdout, re.M))


def break_even(measured: list[Row], target: float = 10.0) -> list[str]:
    """Where a straight line through the 0 ms and the slow pass puts watcher at ``target`` x faster."""
    walls = {(r.tool, r.run_latency_ms): r.run.wall for r in measured}
    slow = sorted({ms for _, ms in walls if ms > 0})
    if not slow or ("watcher", 0.0) not in walls or ("rss2email", 0.0) not in walls:
        return []
    ms = slow[0]
    w0, r0 = walls[("watcher", 0.0)], walls[("rss2email", 0.0)]
    b = (walls[("watcher", ms)] - w0) / ms  # s of wall per ms of latency
    a = (walls[("rss2email", ms)] - r0) / ms
    if r0 >= target * w0:
        return [f"watcher is already >= {target:g}x faster at 0 ms"]
    if a <= target * b:
        return []
    at = (target * w0 - r0) / (a - target * b)
    return [
        f"a straight line through the two settings puts watcher at {target:g}x faster from about {at:.0f} ms "
        "per response on this farm (an interpolation, not a measurement)"
    ]


def compare(ours: float, theirs: float, better: str = "faster", worse: str = "slower") -> str:
    """'3.2x faster' or '1.5x slower': watcher's time against rss2email's."""
    if ours <= 0 or theirs <= 0:
        return "not comparable"
    return f"{theirs / ours:.1f}x {better}" if ours <= theirs else f"{ours / theirs:.1f}x {worse}"


@dataclass
class Row:
    tool: str
    label: str
    latency: str
    run_latency_ms: float
    run: ChildRun
    output: str
    answers: str


def measure(n_feeds: int, latency_ms: float, jitter: float) -> list[Table]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="watcher-r2e-") as tmp, Farm() as farm:
        pair = Pair(farm, Path(tmp), n_feeds)
        farm.set_phase(1)
        print("  warm-up (0 ms): watcher run --once, r2e run --no-send ...", flush=True)
        w, wa = pair.watcher(first=True)
        rows.append(Row("watcher", "warm-up (cold, all 200)", farm.latency_label(), 0.0, w, "", wa))
        r, ra = pair.r2e(send=False)
        rows.append(Row("rss2email", "warm-up (--no-send)", farm.latency_label(), 0.0, r, "", ra))
        settings = [0.0] + ([latency_ms] if latency_ms > 0 else [])
        floors: dict[str, float] = {}
        for phase, ms in enumerate(settings, start=2):
            farm.set_latency(ms, jitter if ms > 0 else 0.0)
            farm.set_phase(phase)
            lat = farm.latency_label()
            floors[lat] = sum(farm.feed_delays(n_feeds, phase))
            print(f"  measured ({lat}): watcher run --once, r2e run ...", flush=True)
            hooks = farm.stats().get("hook", 0)
            w, wa = pair.watcher(first=False)
            hooks = farm.stats().get("hook", 0) - hooks
            rows.append(
                Row(
                    "watcher",
                    "measured",
                    lat,
                    ms,
                    w,
                    f"{matches(w.stdout)} matches reported, {hooks} webhook",
                    wa,
                )
            )
            mails = pair.mails()
            r, ra = pair.r2e(send=True)
            rows.append(Row("rss2email", "measured", lat, ms, r, f"{pair.mails() - mails:,} emails", ra))
        farm.set_latency(0.0)
    return [detail_table(rows, n_feeds), summary_table(rows, n_feeds, floors)]


def detail_table(rows: list[Row], n_feeds: int) -> Table:
    t = Table(
        f"watcher vs rss2email: one pass over the same {n_feeds:,}-feed loopback farm",
        [
            "tool",
            "pass",
            "latency per response",
            "wall s",
            "CPU s",
            "peak RSS MiB",
            "feeds/s",
            "output",
            "farm answers",
        ],
    )
    for r in rows:
        t.add(
            r.tool,
            r.label,
            r.latency,
            r.run.wall,
            r.run.cpu,
            r.run.max_rss_mib,
            n_feeds / r.run.wall,
            r.output,
            r.answers,
        )
    warm = {r.tool: r.run for r in rows if r.label != "measured"}
    if {"watcher", "rss2email"} <= warm.keys():
        w0, r0 = warm["watcher"], warm["rss2email"]
        t.notes.append(
            f"warm-up pass (0 ms): watcher is {compare(w0.wall, r0.wall)} in wall time, "
            f"uses {compare(w0.cpu, r0.cpu, 'less', 'more')} CPU"
        )
    t.notes += [
        f"{r2e_version()} fetches feeds one after another (feedparser + urllib, no keep-alive) and has "
        "no option to fetch in parallel, so it runs with its defaults; watcher polls concurrently on "
        f"one keep-alive client with concurrency = {CONCURRENCY}, per_host = {PER_HOST}, and also "
        "scores and stores every item",
        f"per_host = {PER_HOST}: every farm feed is on the same host (127.0.0.1), so a smaller per_host "
        "(the default is 2) would cap watcher at that many fetches at once; a real deployment spreads "
        "feeds over many hosts, where the default per_host still lets `concurrency` fetches run at once",
        "watcher's output: matches as `run --once` reports them, and webhook posts the farm received; the "
        "farm's feeds draw on one pool of 16,000 items, so feeds overlap, and a match whose story was "
        "already matched through another feed is stored but not sent again (a pass can report matches "
        "and post no webhook)",
    ]
    return t


def summary_table(rows: list[Row], n_feeds: int, floors: dict[str, float]) -> Table:
    t = Table(
        f"watcher vs rss2email, measured pass ({n_feeds:,} feeds: 60 % 304, 20 % same bytes, 20 % new items)",
        [
            "latency per response",
            "watcher wall s",
            "rss2email wall s",
            "wall: watcher is",
            "watcher CPU s",
            "rss2email CPU s",
            "CPU: watcher uses",
            "sum of the farm's delays s",
        ],
    )
    measured = [r for r in rows if r.label == "measured"]
    for lat in dict.fromkeys(r.latency for r in measured):
        by = {r.tool: r.run for r in measured if r.latency == lat}
        w, r = by["watcher"], by["rss2email"]
        t.add(
            lat,
            w.wall,
            r.wall,
            compare(w.wall, r.wall),
            w.cpu,
            r.cpu,
            compare(w.cpu, r.cpu, "less", "more"),
            floors.get(lat, 0.0),
        )
        verdict = "meets" if r.wall / w.wall >= 10 else "misses"
        t.notes.append(
            f"target watcher >= 10x faster than rss2email: at {lat} watcher is "
            f"{compare(w.wall, r.wall)} in wall time, {verdict} it"
        )
    t.notes += break_even(measured)
    t.notes += [
        "latency per response: the loopback farm holds every answer (200, 304 and the webhook sink) "
        "this long before its headers, as a stand-in for TLS + server time of a real news site "
        "(typically 100-500 ms); the ± 20 % jitter is fixed per feed and phase, so both tools wait "
        "exactly the same for each feed. It is added per response whatever the connection: neither "
        "watcher's keep-alive nor rss2email's new connection per feed is charged for handshakes",
        "sum of the farm's delays: a client fetching one feed at a time cannot beat it; "
        f"one fetching {CONCURRENCY} at once waits about sum / {CONCURRENCY} "
        "(plus its CPU time where that does not overlap the waits); with watcher's default concurrency "
        f"(16) that wait would be sum / 16, {max(floors.values(), default=0.0) / 16:.1f} s here",
        "CPU s is the tool's own user + system time (wait4); at 0 ms the pass is CPU-bound for both "
        "tools, so the wall ratio there compares per-feed CPU cost, not concurrency",
    ]
    return t


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--feeds", type=int, default=FEEDS)
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS, help="second measured pass (0 to skip)")
    ap.add_argument("--jitter", type=float, default=JITTER, help="± fraction of the latency, fixed per feed")
    args = ap.parse_args(argv)
    ensure_r2e()
    tables = measure(args.feeds, args.latency_ms, args.jitter)
    show(tables)
    return tables


if __name__ == "__main__":
    main()
