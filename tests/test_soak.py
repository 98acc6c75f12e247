"""The soak in CI size: the service (a real process) for a few hundred scheduler ticks against a
loopback farm, with config reloads, feeds added and removed, a webhook outage, and its own
PostgreSQL restarted and stopped for a while. Memory, descriptors, threads and database
connections stay flat; every error is where a user can see it; each match goes out once.

The full soak (2,000 ticks, 200 feeds) is `make soak`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import MAX_OVERFLOW, POOL_SIZE, flatness, run_soak
from tests.conftest import IN_CI
from tests.pgcluster import pg_bin

TICKS = 300


def test_a_ci_sized_soak(tmp_path: Path) -> None:
    if pg_bin() is None:
        if IN_CI:
            pytest.fail("PostgreSQL's initdb and pg_ctl are needed in CI")
        pytest.skip("no PostgreSQL binaries to run a private cluster")
    report = run_soak(ticks=TICKS, feeds=30, work=tmp_path, timeout_s=300)
    series = "\n".join(str(s) for s in report.series())
    assert report.returncode == 0 and report.ticks >= TICKS, (report.events, report.errors_logged[-5:])

    # Flat: after warm-up, the last third of the run against the first.
    flat = flatness(report)
    rss_early, rss_late = flat["rss_mib"]
    assert rss_late - rss_early < 8, series
    assert flat["fds"][1] <= flat["fds"][0] + 4, series
    assert flat["threads"][1] <= flat["threads"][0] + 2, series
    assert max(s.db_connections for s in report.samples) <= POOL_SIZE + MAX_OVERFLOW, series

    # Every error where a user sees it: the log (one JSON event a line), the feed list, the
    # digest status.
    assert report.log_lines > TICKS and report.bad_log_lines == []
    assert any("database cannot be reached" in e for e in report.errors_logged), report.errors_logged
    broken = [f for f in report.feeds_listed if str(f["url"]).endswith("/nope.xml")]
    assert broken and broken[0]["status"] in ("error", "backoff") and "404" in str(broken[0]["last_error"])
    waiting = [r for r in report.status_during_outage if r["digest"] == "hook" and r["status"] == "pending"]
    # A run made just before the status was read may not have been tried yet: one of them says why.
    assert any("503" in str(r["error"]) for r in waiting), report.status_during_outage

    # Nothing lost, nothing twice: every match not withheld went out, each in one digest only.
    # (Two feeds carrying one story polled at the same moment may each match it, so a story may
    # come in two matches: that is counted, not asserted here.)
    assert report.sent_matches and report.undelivered == 0
    assert all(len(keys) == 1 for keys in report.sent_matches.values())
    assert [r for r in report.runs if r["digest"] == "hook" and r["status"] != "sent"] == []

    # The rest of the plan happened: reloads picked up, retention pruned, the cron digest fired.
    assert report.reloads_logged >= 4 and report.pruned_log_lines >= 1 and report.cron_digests >= 1
