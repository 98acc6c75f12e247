"""Start-up: from `watcher run --once` starting to its first feed request, in wall and CPU seconds.

A loopback server in this process serves one small feed and notes when the first request
arrives; at that moment the child's CPU time is read from /proc, so the CPU figure holds on a
busy machine. Each run gets the same existing database (the service's normal start: the
schema is current) and is repeated; medians are reported. The first run on a new database,
which also creates the schema, is shown apart. `python -X importtime` gives the modules that
cost the most to import.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.common import REPO, WATCHER, Table, quiet_env, show

TARGET_S = 0.3
REPEAT = 7
FEED = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>One</title><guid>1</guid><description>text</description></item></channel></rss>"""


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Probe:
    def __init__(self) -> None:
        self.pid = 0
        self.first: tuple[float, float] | None = None  # (monotonic time, child CPU s)
        self.lock = threading.Lock()
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with probe.lock:
                    if probe.first is None and probe.pid:
                        try:
                            probe.first = (time.monotonic(), _cpu_seconds(probe.pid))
                        except (OSError, IndexError, ValueError):
                            probe.first = (time.monotonic(), float("nan"))
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(FEED)))
                self.end_headers()
                self.wfile.write(FEED)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml"


def _run(probe: _Probe, config: Path, cwd: Path) -> tuple[float, float, float]:
    """(wall s to the first request, child CPU s at it, whole run's CPU s)."""
    probe.first = None
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(WATCHER), "--config", str(config), "run", "--once"],
        env=quiet_env(),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    probe.pid = proc.pid
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or probe.first is None:
        raise RuntimeError(f"watcher run --once failed ({proc.returncode}): {proc.stderr.read()[-400:]!r}")
    return probe.first[0] - t0, probe.first[1], usage.ru_utime + usage.ru_stime


def import_costs(top: int = 8, runs: int = 5) -> list[str]:
    """The packages whose own import time is largest when the CLI is imported (median of ``runs``
    runs of ``-X importtime``: one run is too noisy on a busy machine)."""
    per_run: list[Counter[str]] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import watcher.cli"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
            timeout=60,
        )
        costs: Counter[str] = Counter()
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
            if m:
                costs[m.group(2).split(".")[0]] += int(m.group(1))
        per_run.append(costs)
    names = set().union(*per_run)
    median = {name: statistics.median(c[name] for c in per_run) for name in names}
    total = statistics.median(sum(c.values()) for c in per_run)
    largest = sorted(median.items(), key=lambda kv: -kv[1])[:top]
    head = f"import watcher.cli: {total / 1e6:.3f} s of imports (-X importtime, median of {runs}); largest: "
    return [head + ", ".join(f"{name} {us / 1e3:.0f} ms" for name, us in largest)]


def measure(repeat: int) -> Table:
    probe = _Probe()
    with tempfile.TemporaryDirectory(prefix="watcher-startup-") as tmp:
        config = Path(tmp) / "watcher.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{tmp}/w.db"\n[polling]\nallow_private_networks = true\n'
            f'[[feeds]]\nurl = "{probe.url}"\n',
            encoding="utf-8",
        )
        fresh = _run(probe, config, Path(tmp))
        runs = []
        for _ in range(repeat):
            (Path(tmp) / "w.db").touch()
            subprocess.run(  # make the feed due again
                [
                    sys.executable,
                    "-c",
                    "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                    "c.execute('update feeds set next_poll_at=\"2000-01-01 00:00:00.000000\"'); c.commit()",
                    f"{tmp}/w.db",
                ],
                check=True,
            )
            runs.append(_run(probe, config, Path(tmp)))
    probe.server.shutdown()
    t = Table(
        f"Start-up: `watcher run --once` to its first feed request (one feed; median of {repeat})",
        ["database", "wall s to first request", "CPU s to first request", "CPU s whole run", "runs"],
    )
    t.add("new (schema created)", fresh[0], fresh[1], fresh[2], 1)
    med = [statistics.median(r[k] for r in runs) for k in range(3)]
    t.add("existing (current schema)", med[0], med[1], med[2], repeat)
    verdict = "meets" if med[0] <= TARGET_S else "misses"
    t.notes.append(
        f"target start-up to the first fetch <= {TARGET_S} s: {med[0]:.3f} s wall "
        f"({med[1]:.3f} s CPU) on an existing database, {verdict} it"
    )
    t.notes += import_costs()
    t.notes.append(
        "CPU s to first request: the child's user + system time (/proc) when the server saw the request; "
        "wall s depends on the machine's load, CPU s much less"
    )
    return t


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=REPEAT)
    args = ap.parse_args(argv)
    tables = [measure(max(1, args.repeat))]
    show(tables)
    return tables


if __name__ == "__main__":
    main()
