"""Daily jobs: the staff summary and the customers' digest, each once a day at its hour;
and every minute, the reminders for pending requests (board/conversations/reminders.py).

The last run of each job is a row, written in the same transaction as the mail the job
queues: a restart, or a second worker, does not run a job twice on one day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases import Database
from sqlalchemy.dialects import postgresql, sqlite

from board import notify
from board.config import Settings
from board.conversations import reminders
from board.db import scheduled_jobs, utcnow, write_transaction
from board.staff import summary

log = logging.getLogger("board.schedule")

INTERVAL_SECONDS = 60


def todays_moment(settings: Settings, hour: int, now: datetime) -> datetime:
    """Today's `hour` o'clock in the shop's time zone, as naive UTC."""
    zone = ZoneInfo(settings.timezone)
    today = now.replace(tzinfo=UTC).astimezone(zone).date()
    moment = datetime.combine(today, time(hour), zone)
    return moment.astimezone(UTC).replace(tzinfo=None)


def daily_jobs(
    db: Database, settings: Settings, now: datetime
) -> list[tuple[str, int, Callable[[], Awaitable[int]]]]:
    return [
        ("summary", settings.summary_hour, lambda: summary.queue_summary(db, settings, now)),
        ("digest", settings.digest_hour, lambda: notify.send_digests(db)),
    ]


NEVER = datetime(2000, 1, 1)  # last_run_at of a job that has not run yet


async def _ensure_job_row(db: Database, name: str) -> None:
    """The job's row, so that workers starting together lock one row rather than race to
    insert it (the loser's insert would fail)."""
    dialect = postgresql if db.url.dialect == "postgresql" else sqlite
    statement = dialect.insert(scheduled_jobs).values(name=name, last_run_at=NEVER)
    await db.execute(statement.on_conflict_do_nothing(index_elements=[scheduled_jobs.c.name]))


async def run_due(db: Database, settings: Settings, now: datetime | None = None) -> list[str]:
    """Runs each job whose hour has come today and that has not run since; returns them."""
    now = now or utcnow()
    ran = []
    for name, hour, work in daily_jobs(db, settings, now):
        moment = todays_moment(settings, hour, now)
        if now < moment:
            continue
        last_run_query = sa.select(scheduled_jobs.c.last_run_at).where(
            scheduled_jobs.c.name == name
        )
        last_run = await db.fetch_val(last_run_query)  # a look without a lock, every minute
        if last_run is not None and last_run >= moment:
            continue
        if last_run is None:
            await _ensure_job_row(db, name)
        async with write_transaction(db):
            # Again, locked (the row on PostgreSQL; SQLite's BEGIN IMMEDIATE locks the
            # database): a second worker waits here, then sees this run.
            last_run = await db.fetch_val(last_run_query.with_for_update())
            if last_run >= moment:
                continue
            await db.execute(
                scheduled_jobs.update().where(scheduled_jobs.c.name == name).values(last_run_at=now)
            )
            mails = await work()
        log.info("daily job %s queued %s mails", name, mails)
        ran.append(name)
    return ran


async def run_forever(db: Database, settings: Settings, wake: asyncio.Event) -> None:
    while True:
        # Waits first: a start (or a restart loop) does not crowd the first minute.
        await asyncio.sleep(INTERVAL_SECONDS)
        try:
            if await run_due(db, settings):
                wake.set()  # the mail sender: there is mail now
        except Exception:
            log.exception("daily jobs failed")
        try:
            if await reminders.run_due(db, settings):
                wake.set()
        except Exception:
            log.exception("pending reminders failed")
