"""Time: a daily 07:00 Europe/Berlin digest through both daylight-saving changes, catch-up after
a sleep or a clock jump (one digest, not one per missed fire), no fire at start-up for a time
before the digest existed, and digest dates in the digest's own time zone."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import tomlkit

from tests.receivers import WebhookReceiver
from watcher.config import DigestSettings, load_settings
from watcher.digest import render_text
from watcher.service import Worker
from watcher.values import Digest, DigestItem

BERLIN = ZoneInfo("Europe/Berlin")
STEP = timedelta(minutes=30)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def config(path: Path, db: Path, hook: str, schedule: str = "0 7 * * *", tz: str = "Europe/Berlin") -> Path:
    doc = {
        "database": {"url": f"sqlite:///{db}"},
        "digests": [
            {
                "name": "morning",
                "profiles": ["p"],
                "channel": "webhook",
                "url": hook,
                "schedule": schedule,
                "timezone": tz,
                "send_empty": True,  # every fire sends, so every fire can be counted
            }
        ],
        "profiles": {"p": {"threshold": 1.0, "anchors": {"libya": 2.0}}},
    }
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def sent_at(hook: WebhookReceiver) -> list[datetime]:
    """When each digest was made, in Berlin time (the webhook carries it as ISO 8601 UTC)."""
    out = []
    for r in hook.accepted:
        created = datetime.fromisoformat(r.json["created"].replace("Z", "+00:00"))
        out.append(created.astimezone(BERLIN))
    return out


def run_ticks(worker: Worker, clock: Clock, until: datetime) -> None:
    while clock.now < until:
        worker.tick()
        clock.now += STEP


def test_the_trigger_fires_at_seven_local_every_day_of_the_year() -> None:
    d = DigestSettings(
        name="m",
        profiles=["p"],
        channel="email",
        to=["a@b.example"],
        schedule="0 7 * * *",
        timezone="Europe/Berlin",
    )
    trigger = d.trigger()
    fire = trigger.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC))
    fires = []
    while fire.year == 2026:
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert len(fires) == 365
    assert {f.astimezone(BERLIN).strftime("%H:%M") for f in fires} == {"07:00"}
    offsets = {f.date().isoformat(): f.utcoffset() for f in fires}
    assert offsets["2026-03-28"] == timedelta(hours=1) and offsets["2026-03-29"] == timedelta(hours=2)
    assert offsets["2026-10-24"] == timedelta(hours=2) and offsets["2026-10-25"] == timedelta(hours=1)


def test_a_daily_digest_goes_out_once_a_day_at_seven_across_both_dst_changes(tmp_path: Path) -> None:
    with WebhookReceiver() as hook:
        for n, (start, end) in enumerate(
            [
                (datetime(2026, 3, 25, 12, tzinfo=BERLIN), datetime(2026, 4, 2, 12, tzinfo=BERLIN)),
                (datetime(2026, 10, 21, 12, tzinfo=BERLIN), datetime(2026, 10, 29, 12, tzinfo=BERLIN)),
            ]
        ):
            before = len(hook.accepted)
            clock = Clock(start.astimezone(UTC))
            cfg = config(tmp_path / f"w{n}.toml", tmp_path / f"w{n}.db", hook.url)
            with Worker(load_settings(cfg), clock=clock) as worker:
                run_ticks(worker, clock, end.astimezone(UTC))
            got = sent_at(hook)[before:]
            days = [(start + timedelta(days=i)).date() for i in range(1, 9)]
            assert [t.date() for t in got] == days  # one a day, none on the first (it began at noon)
            assert {t.strftime("%H:%M") for t in got} == {"07:00"}


def test_sleep_and_clock_jumps_send_one_catch_up(tmp_path: Path) -> None:
    start = datetime(2026, 1, 12, 5, 0, tzinfo=UTC)  # 06:00 in Berlin
    clock = Clock(start)
    with WebhookReceiver() as hook:
        cfg = config(tmp_path / "w.toml", tmp_path / "w.db", hook.url)
        with Worker(load_settings(cfg), clock=clock) as worker:
            run_ticks(worker, clock, start + timedelta(hours=3))
            assert len(hook.accepted) == 1  # 07:00 on the 12th
            # Asleep from 08:00 on the 12th to 10:00 on the 14th: two fire times missed, one catch-up.
            clock.now = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)
            run_ticks(worker, clock, clock.now + timedelta(hours=12))
            assert len(hook.accepted) == 2
            # The clock jumps three days forwards: one catch-up again.
            clock.now += timedelta(days=3)
            worker.tick()
            assert len(hook.accepted) == 3
            # Then run to the next 07:00 and just past it, and jump back two hours: 07:00 comes round
            # again, and nothing more goes out that day.
            run_ticks(worker, clock, datetime(2026, 1, 18, 6, 30, tzinfo=UTC))
            assert len(hook.accepted) == 4
            clock.now -= timedelta(hours=2)
            run_ticks(worker, clock, datetime(2026, 1, 18, 23, 0, tzinfo=UTC))
            assert len(hook.accepted) == 4
            run_ticks(worker, clock, datetime(2026, 1, 19, 7, 0, tzinfo=UTC))
            assert len(hook.accepted) == 5
            # A clock put back by far more than a day (it had been wrong) does not wait for the wrong
            # date to come round: the next 07:00 goes out.
            clock.now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
            run_ticks(worker, clock, datetime(2026, 1, 11, 7, 0, tzinfo=UTC))
            assert len(hook.accepted) == 6
    assert [t.strftime("%H:%M") for t in sent_at(hook)][:2] == ["07:00", "10:00"]


def test_a_new_cron_digest_does_not_fire_at_start_for_a_time_before_it_existed(tmp_path: Path) -> None:
    # A schedule whose last fire time was an hour ago: the old rule sent it at once on a first run.
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    schedule = f"{an_hour_ago.minute} {an_hour_ago.hour} * * *"
    with WebhookReceiver() as hook:
        cfg = config(tmp_path / "w.toml", tmp_path / "w.db", hook.url, schedule=schedule, tz="UTC")
        env = {**os.environ, "WATCHER_CONFIG": str(cfg)}
        env.pop("WATCHER_DATABASE_URL", None)
        proc = subprocess.run(
            [sys.executable, "-m", "watcher.cli", "run", "--once"],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "digests: nothing to send" in proc.stdout and hook.requests == []
        # It fires at its next time, once.
        clock = Clock(datetime.now(UTC))
        with Worker(load_settings(cfg), clock=clock) as worker:
            worker.tick()
            assert hook.requests == []
            clock.now += timedelta(days=1)
            worker.tick()
            worker.tick()
        assert len(hook.accepted) == 1


def test_digest_dates_are_shown_in_the_digest_time_zone() -> None:
    created = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
    item = DigestItem(
        match_id=1, profile="p", title="Libya talks", link="https://x.example/1", source="X",
        published=datetime(2026, 6, 30, 22, 30, tzinfo=UTC), excerpt="", score=3.0, terms=("libya",),
    )  # fmt: skip
    berlin = render_text(Digest("m", "k", created, (item,), ("p",), timezone="Europe/Berlin"))
    assert "Wed 01 Jul 2026, 07:00 CEST" in berlin and "Wed 01 Jul 2026, 00:30 CEST" in berlin
    utc = render_text(Digest("m", "k", created, (item,), ("p",)))
    assert "Wed 01 Jul 2026, 05:00 UTC" in utc and "Tue 30 Jun 2026, 22:30 UTC" in utc


def test_two_workers_on_postgres_send_each_fire_once(tmp_path: Path, pg_url: str) -> None:
    start = datetime(2026, 3, 28, 5, 0, tzinfo=UTC)  # 06:00 in Berlin, the day before the change
    clock = Clock(start)
    with WebhookReceiver() as hook:
        cfg = config(tmp_path / "w.toml", tmp_path / "unused.db", hook.url)
        doc = tomlkit.parse(cfg.read_text())
        doc["database"]["url"] = pg_url
        cfg.write_text(tomlkit.dumps(doc))
        with Worker(load_settings(cfg), clock=clock) as a, Worker(load_settings(cfg), clock=clock) as b:
            while clock.now < start + timedelta(days=2):
                a.tick()
                b.tick()
                clock.now += STEP
    assert [t.strftime("%m-%d %H:%M") for t in sent_at(hook)] == ["03-28 07:00", "03-29 07:00"]


def test_a_digest_that_ran_before_the_upgrade_carries_on_from_its_last_run(tmp_path: Path) -> None:
    from alembic import command

    from watcher.store.db import alembic_config, make_engine

    db = tmp_path / "w.db"
    eng = make_engine(f"sqlite:///{db}")
    cfg_alembic = alembic_config()
    with eng.begin() as conn:
        cfg_alembic.attributes["connection"] = conn
        command.upgrade(cfg_alembic, "0005_retention")
        conn.exec_driver_sql(
            "INSERT INTO digest_runs (digest, key, status, attempts, next_attempt_at, created_at) "
            "VALUES ('morning', 'k1', 'sent', 1, '2026-01-11 06:00:00', '2026-01-11 06:00:00')"
        )
    eng.dispose()
    # Upgraded (on start) at 10:00 on the 12th: the 12th's 07:00 was missed, so it goes out now.
    clock = Clock(datetime(2026, 1, 12, 9, 0, tzinfo=UTC))
    with WebhookReceiver() as hook:
        cfg = config(tmp_path / "w.toml", db, hook.url)
        with Worker(load_settings(cfg), clock=clock) as worker:
            worker.tick()
            worker.tick()
        assert len(hook.accepted) == 1
