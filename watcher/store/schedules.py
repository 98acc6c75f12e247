"""When each cron digest last fired: one row per scheduled digest, shared by every worker.

A digest is due when its trigger has a fire time after ``fired_at`` that is not in the
future; handling it moves ``fired_at`` to now with a compare-and-set, so among several
workers, and across restarts, each fire is taken once. However many fire times were missed
(a machine asleep, a clock jump forwards, a service down overnight), catching up is one
digest. A schedule seen for the first time starts from that moment, so a new digest never
fires at start-up for a time before it existed; a changed schedule starts afresh the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from watcher.config import DigestSettings
from watcher.store.db import dialect_insert
from watcher.store.tables import digest_schedules as schedule_table

# A last fire further ahead than this means the clock was wrong and has been put right: start
# afresh from now rather than wait for the wrong time to come round. A smaller step back (a
# clock corrected by minutes or hours) keeps the last fire, so nothing goes out twice.
CLOCK_BACK_LIMIT = timedelta(days=1)


def sync_schedules(engine: Engine, digests: Iterable[DigestSettings], now: datetime) -> None:
    """Make a row for each cron digest of the config; drop the rest."""
    wanted = {d.name: d for d in digests if not d.immediate}
    with engine.begin() as conn:
        have = {r.digest: r for r in conn.execute(select(schedule_table))}
        fresh = [
            {"digest": n, "schedule": d.schedule, "timezone": d.timezone, "fired_at": now}
            for n, d in wanted.items()
            if n not in have
        ]
        if fresh:  # workers starting together: the first insert stands
            conn.execute(
                dialect_insert(engine, schedule_table).on_conflict_do_nothing(index_elements=["digest"]),
                fresh,
            )
        for name, row in have.items():
            d = wanted.get(name)
            if d is None:
                conn.execute(delete(schedule_table).where(schedule_table.c.digest == name))
            elif not row.schedule:  # carried over from the last run before this table existed
                conn.execute(
                    update(schedule_table)
                    .where(schedule_table.c.digest == name)
                    .values(schedule=d.schedule, timezone=d.timezone)
                )
            elif (row.schedule, row.timezone) != (d.schedule, d.timezone):
                conn.execute(
                    update(schedule_table)
                    .where(schedule_table.c.digest == name)
                    .values(schedule=d.schedule, timezone=d.timezone, fired_at=now)
                )


def last_fired(engine: Engine, name: str) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(schedule_table.c.fired_at).where(schedule_table.c.digest == name)).scalar()


def claim_fire(engine: Engine, name: str, seen: datetime, now: datetime) -> bool:
    """Move ``fired_at`` from ``seen`` to ``now``; False when another worker got there first."""
    with engine.begin() as conn:
        n = conn.execute(
            update(schedule_table)
            .where(schedule_table.c.digest == name, schedule_table.c.fired_at == seen)
            .values(fired_at=now)
        ).rowcount
    return n == 1
