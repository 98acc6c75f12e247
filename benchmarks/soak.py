"""Soak: the service (`watcher run`, a real process) against a loopback feed farm for thousands
of scheduler ticks in compressed time: a tick every 0.1 s instead of 30 s, feeds due every few
seconds instead of every 15 minutes, retention of seconds instead of days.

Meanwhile the config is edited (profiles and feeds, picked up without a restart), feeds are
added and removed from the command line, the webhook endpoint goes down for a while, and the
service's PostgreSQL (a private cluster of the soak's own, never the machine's server) is
restarted and later stopped for a few seconds. Resident memory, open file descriptors, threads
and database connections of the service are sampled all along, and the series reported.

Afterwards: every error must be somewhere a user can see it (the log, `watcher feeds list`,
`watcher digest status`), each matched item must have been sent exactly once, and the
service must stop cleanly on SIGTERM.

    make soak                                       # 2,000 ticks, 200 feeds (about 5 minutes)
    .venv/bin/python -m benchmarks.soak --ticks 600 --feeds 40      # what the test suite runs
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit

from benchmarks.common import REPO, Table, show

sys.path.insert(0, str(REPO))  # the tests' loopback receivers and private PostgreSQL cluster

from benchmarks.farm import Farm
from tests.pgcluster import PgCluster
from tests.receivers import WebhookReceiver

POOL_SIZE, MAX_OVERFLOW = 4, 4


@dataclass
class Sample:
    t: float  # seconds since the service started
    ticks: int
    rss_mib: float
    fds: int
    threads: int
    db_connections: int


@dataclass
class SoakReport:
    ticks: int = 0
    wall_s: float = 0.0
    returncode: int | None = None
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    errors_logged: list[str] = field(default_factory=list)  # ERROR and WARNING lines of the service
    log_lines: int = 0
    bad_log_lines: list[str] = field(default_factory=list)  # lines that are not one JSON event
    status_during_outage: list[dict[str, object]] = field(default_factory=list)
    feeds_listed: list[dict[str, object]] = field(default_factory=list)
    runs: list[dict[str, object]] = field(default_factory=list)
    # (profile, link) -> the idempotency keys of the digests that carried it
    sent: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # match id -> the same, for the match each digest item leads with
    sent_matches: dict[int, set[str]] = field(default_factory=dict)
    matched: int = 0  # matches stored
    undelivered: int = 0  # matches neither withheld nor in a sent run of the "hook" digest
    twin_matches: int = 0  # one (profile, link) matched twice through two feeds polled at once
    cron_digests: int = 0
    pruned_log_lines: int = 0
    reloads_logged: int = 0

    def series(self, points: int = 20) -> list[Sample]:
        """About ``points`` samples, evenly spread over the run (first and last included)."""
        if len(self.samples) <= points:
            return list(self.samples)
        step = (len(self.samples) - 1) / (points - 1)
        return [self.samples[round(i * step)] for i in range(points)]

    def table(self) -> Table:
        t = Table(
            f"Soak: the service over {self.ticks:,} scheduler ticks ({self.wall_s:.0f} s)",
            ["t (s)", "ticks", "RSS (MiB)", "open fds", "threads", "DB connections"],
        )
        for s in self.series():
            conns = s.db_connections if s.db_connections >= 0 else "(server down)"
            t.add(round(s.t), s.ticks, s.rss_mib, s.fds, s.threads, conns)
        for at, what in self.events:
            t.notes.append(f"at {at:.0f} s: {what}")
        return t


def _proc_status(pid: int) -> tuple[float, int, int]:
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


class _LogTail:
    """Reads the service's log as it grows: counts ticks, keeps errors, checks one event a line."""

    def __init__(self, path: Path, report: SoakReport) -> None:
        self.path = path
        self.report = report
        self.pos = 0
        self.partial = ""

    def read(self) -> None:
        with self.path.open("rb") as fh:
            fh.seek(self.pos)
            chunk = fh.read()
            self.pos = fh.tell()
        text = self.partial + chunk.decode("utf-8", "replace")
        *lines, self.partial = text.split("\n")
        for line in lines:
            if not line.strip():
                continue
            self.report.log_lines += 1
            try:
                event = json.loads(line)
            except ValueError:
                self.report.bad_log_lines.append(line)
                continue
            message = str(event.get("message", ""))
            if message.startswith("tick ") and " done: " in message:
                self.report.ticks = max(self.report.ticks, int(message.split()[1]))
            elif event.get("level") in ("ERROR", "WARNING"):
                self.report.errors_logged.append(f"{event['level']} {message}")
            elif message.startswith("retention: "):
                self.report.pruned_log_lines += 1
            elif message.startswith("config reloaded"):
                self.report.reloads_logged += 1


def _config(path: Path, db_url: str, feeds: list[str], hook: str, tick: float, threshold: float) -> None:
    shipped = tomllib.loads((REPO / "config" / "watcher.toml").read_text("utf-8"))
    profile = dict(shipped["profiles"]["libya"])
    profile["threshold"] = threshold
    # A second profile on words common in the farm's items, so digests carry something all along.
    busy = {"threshold": 1.0, "anchors": {"president": 2.0, "police": 2.0, "trump": 2.0, "court": 2.0}}
    doc = {
        "database": {"url": db_url, "pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW},
        "polling": {
            "tick": f"{tick}s",
            "interval": "3s",
            "min_interval": "2s",
            "max_interval": "6s",
            "max_backoff": "10s",
            "lease": "10s",
            "deadline": "2s",
            "concurrency": 8,
            "per_host": 8,
            "allow_private_networks": True,
        },
        "retention": {"items": "20s", "keys": "40s", "every": "5s", "batch": 200},
        "logging": {"format": "json", "level": "debug"},
        "feeds": [{"url": u} for u in feeds],
        "profiles": {"libya": profile, "busy": busy},
        "digests": [
            {"name": "hook", "profiles": ["libya", "busy"], "channel": "webhook", "url": hook},
            {
                "name": "minutely",
                "profiles": ["libya"],
                "channel": "webhook",
                "url": hook + "?cron",
                "schedule": "* * * * *",
                "send_empty": True,
            },
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    tmp.replace(path)  # the service never reads a half-written file


def _cli(config: Path, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A different application_name: the sampler counts the service's own connections only.
    env = {
        **os.environ,
        "WATCHER_CONFIG": str(config),
        "WATCHER_DATABASE_URL": db_url + "?application_name=cli",
    }
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=config.parent,
    )  # fmt: skip


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def _service_connections(pg: PgCluster) -> int:
    import psycopg

    try:
        with psycopg.connect(pg.url(), autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = 'watcher' AND application_name = 'service'"
            ).fetchone()
    except psycopg.Error:
        return -1  # the server is down (stopped or restarting on purpose): no sample
    return int(row[0]) if row else 0


def run_soak(
    *,
    ticks: int = 2000,
    feeds: int = 200,
    tick_s: float = 0.1,
    min_seconds: float = 0.0,
    timeout_s: float = 1800.0,
    work: Path | None = None,
    progress: bool = False,
) -> SoakReport:
    """Run the soak; the service runs until it has done ``ticks`` ticks (and ``min_seconds``)
    and has no digest waiting to be sent."""
    work = work or Path(tempfile.mkdtemp(prefix="watcher-soak-"))
    report = SoakReport()
    pg = PgCluster(Path(tempfile.mkdtemp(prefix="watcher-soak-pg-")) / "pg")
    with pg, Farm(n_items=4000) as farm, WebhookReceiver() as hook:
        pg.create_database("watcher")
        service_url = pg.url("watcher") + "?application_name=service"
        cli_url = pg.url("watcher")
        urls = [farm.url(i) for i in range(feeds)] + [farm.base + "/nope.xml"]  # one broken feed
        extra = [farm.url(i) for i in range(feeds, feeds + 10)]
        config = work / "watcher.toml"
        threshold = 2.0
        _config(config, service_url, urls, hook.url, tick_s, threshold)
        log_path = work / "service.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
        env["WATCHER_CONFIG"] = str(config)
        with log_path.open("wb") as log_fh:
            service = subprocess.Popen(
                [sys.executable, "-m", "watcher.cli", "run"], env=env, cwd=work, stdout=log_fh, stderr=log_fh
            )
        tail = _LogTail(log_path, report)
        start = time.monotonic()

        def elapsed() -> float:
            return time.monotonic() - start

        def event(what: str) -> None:
            report.events.append((elapsed(), what))
            if progress:
                print(f"  {elapsed():6.1f} s, tick {report.ticks}: {what}", flush=True)

        # The plan, in fractions of the ticks (events that need time run on a thread).
        plan: list[tuple[float, str]] = [
            (0.01, "webhook down"),  # early: its retry comes a minute later, within the run
            (0.15, "config: threshold"),
            (0.25, "config: 10 feeds added"),
            (0.30, "cli: feeds add"),
            (0.40, "postgres restart"),
            (0.45, "config: 10 feeds removed"),
            (0.55, "postgres down 3 s"),
            (0.60, "cli: feeds remove"),
            (0.75, "config: threshold back"),
        ]
        busy: list[threading.Thread] = []

        def webhook_outage() -> None:
            hook.outage(503)
            # Down until a user can see it: `watcher digest status` shows a run waiting, and why
            # (up to a minute: on a loaded machine the first send once came after 20 s).
            until = time.monotonic() + 60
            while time.monotonic() < until:
                time.sleep(1.0)
                runs = _json_lines(_cli(config, cli_url, "digest", "status", "--json").stdout)
                report.status_during_outage = runs
                # The "hook" digest's run (the test looks at that one, not the minutely digest's).
                if any(r["digest"] == "hook" and r["status"] == "pending" and r["error"] for r in runs):
                    break
            hook.recover()
            event("webhook back")

        def postgres_down() -> None:
            pg.stop("fast")
            time.sleep(3.0)
            pg.start()
            event("postgres back")

        phase, next_phase, next_sample = 0, 0.0, 0.0
        try:
            while True:
                now = elapsed()
                tail.read()
                if service.poll() is not None:
                    event(f"the service exited ({service.returncode})")
                    break
                if now >= next_sample:
                    next_sample = now + 0.5
                    try:
                        rss, fds, threads = _proc_status(service.pid)
                    except (OSError, ValueError):
                        pass  # exiting
                    else:
                        conns = _service_connections(pg)
                        report.samples.append(Sample(now, report.ticks, rss, fds, threads, conns))
                if now >= next_phase and report.ticks < ticks:  # changing feeds put new items on top
                    phase += 1
                    next_phase = now + 3.0
                    farm.set_phase(phase)
                while plan and report.ticks >= plan[0][0] * ticks:
                    _, what = plan.pop(0)
                    event(what)
                    if what in ("webhook down", "postgres down 3 s"):
                        target = webhook_outage if what == "webhook down" else postgres_down
                        busy.append(threading.Thread(target=target, daemon=True))
                        busy[-1].start()
                    elif what == "postgres restart":
                        pg.restart()
                        event("postgres restarted")
                    elif what.startswith("config: threshold"):
                        threshold = 2.0 if what.endswith("back") else 2.5
                        _config(config, service_url, urls, hook.url, tick_s, threshold)
                    elif what == "config: 10 feeds added":
                        urls = urls + extra
                        _config(config, service_url, urls, hook.url, tick_s, threshold)
                    elif what == "config: 10 feeds removed":
                        urls = [u for u in urls if u not in extra]
                        _config(config, service_url, urls, hook.url, tick_s, threshold)
                    elif what == "cli: feeds add":
                        _cli(config, cli_url, "feeds", "add", farm.url(feeds + 20))
                    elif what == "cli: feeds remove":
                        _cli(config, cli_url, "feeds", "remove", farm.url(feeds + 20))
                done = report.ticks >= ticks and now >= min_seconds and not plan
                if done and all(not t.is_alive() for t in busy) and not _waiting(cli_url):
                    break
                if now > timeout_s:
                    event("timed out")
                    break
                time.sleep(0.1)
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                report.returncode = service.wait(60)
            except subprocess.TimeoutExpired:
                service.kill()
                report.returncode = service.wait(10)
            for t in busy:
                t.join(30)
        report.wall_s = elapsed()
        tail.read()
        report.feeds_listed = _json_lines(_cli(config, cli_url, "feeds", "list", "--json").stdout)
        status = _cli(config, cli_url, "digest", "status", "--json", "--limit", "100000")
        report.runs = _json_lines(status.stdout)
        for r in hook.accepted:
            if r.path.endswith("?cron"):
                report.cron_digests += 1
                continue
            key = r.headers["idempotency-key"]
            for item in r.json["items"]:
                report.sent_matches.setdefault(item["match_id"], set()).add(key)
                for link in [item["link"], *(a["link"] for a in item["also"])]:
                    report.sent.setdefault((item["profile"], link), set()).add(key)
        report.matched, report.undelivered, report.twin_matches = _delivery_check(cli_url)
    return report


def _waiting(url: str) -> int:
    """Digest runs waiting to be sent, and matches not yet in any run (withheld ones aside)."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            runs = conn.execute("SELECT count(*) FROM digest_runs WHERE status = 'pending'").fetchone()
            queued = conn.execute(
                "SELECT count(*) FROM matches m WHERE m.withheld_at IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.match_id = m.id AND d.digest = 'hook')"
            ).fetchone()
        return int(runs[0]) + int(queued[0]) if runs and queued else 1
    except psycopg.Error:
        return 1  # not answering right now: not done


def _delivery_check(url: str) -> tuple[int, int, int]:
    """(matches, matches neither withheld nor sent by the "hook" digest, twin matches)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        matched = conn.execute("SELECT count(*) FROM matches").fetchone()[0]
        undelivered = conn.execute(
            "SELECT count(*) FROM matches m WHERE m.withheld_at IS NULL AND NOT EXISTS ("
            " SELECT 1 FROM deliveries d JOIN digest_runs r ON r.id = d.run_id"
            " WHERE d.match_id = m.id AND d.digest = 'hook' AND r.status = 'sent')"
        ).fetchone()[0]
        twins = conn.execute(
            "SELECT count(*) FROM (SELECT m.profile, e.link FROM matches m"
            " JOIN entries e ON e.id = m.entry_id GROUP BY m.profile, e.link HAVING count(*) > 1) t"
        ).fetchone()[0]
    return int(matched), int(undelivered), int(twins)


def flatness(report: SoakReport, warm_fraction: float = 0.25) -> dict[str, tuple[float, float]]:
    """(median of the second quarter, median of the last quarter) of each series after warm-up."""
    after = [s for s in report.samples if s.ticks >= warm_fraction * report.ticks and s.db_connections >= 0]
    q = max(len(after) // 3, 1)
    early, late = after[:q], after[-q:]
    out = {}
    for name in ("rss_mib", "fds", "threads", "db_connections"):
        out[name] = (
            statistics.median(getattr(s, name) for s in early),
            statistics.median(getattr(s, name) for s in late),
        )
    return out


def main(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--tick", type=float, default=0.1, help="seconds between scheduler ticks")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    report = run_soak(ticks=args.ticks, feeds=args.feeds, tick_s=args.tick, progress=True)
    t = report.table()
    flat = flatness(report)
    for name, (early, late) in flat.items():
        t.notes.append(f"{name}: median {early:.1f} early, {late:.1f} late (after warm-up)")
    again = sum(1 for keys in report.sent_matches.values() if len(keys) > 1)
    twins_sent = sum(1 for keys in report.sent.values() if len(keys) > 1)
    t.notes.append(
        f"{report.matched} matches stored; {len(report.sent_matches)} sent, {again} of them in more than one "
        f"digest; {report.undelivered} neither sent nor withheld; service exit code {report.returncode}; "
        f"{report.cron_digests} cron digests"
    )
    t.notes.append(
        f"{report.twin_matches} stories matched twice, through two feeds carrying the same link polled "
        f"at the same moment (the cross-feed check sees only committed rows); {twins_sent} of them went "
        "out in two digests"
    )
    t.notes.append(
        f"log: {report.log_lines:,} lines, {len(report.bad_log_lines)} not one JSON event each; "
        f"{len(report.errors_logged)} warnings and errors, e.g. "
        + "; ".join(sorted({e[:120] for e in report.errors_logged})[:4])
    )
    show([t])
    return [t]


if __name__ == "__main__":
    main()
