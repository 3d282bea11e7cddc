"""The shop's calendar for statistics: one `stats_hours` row per UTC hour.

Each row says which local day, weekday and hour the UTC hour falls on, which of its seconds
the shop is open and how many open seconds came before it. With it SQL groups by the shop's
local day (daylight saving time included) and counts business hours between two moments as
a difference of two lookups, `open_seconds(b) - open_seconds(a)`, instead of walking the
days in Python for every conversation.

The rows are derived from BOARD_TIMEZONE and the business hours and cover every moment
the statistics look at; they are rebuilt when the settings change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases import Database

from board.db import one_at_a_time, stats_hours, write_transaction
from board.hours import BusinessHours

HOUR = timedelta(hours=1)
AHEAD = timedelta(days=30)  # built ahead of time, so most requests find their rows ready
BATCH = 2_000


def schedule_of(office: BusinessHours) -> str:
    days = ",".join(str(day) for day in office.days)
    return f"{office.timezone}|{days}|{office.opens:%H:%M}-{office.closes:%H:%M}"


def hour_key(moment: datetime) -> str:
    """The row of a naive UTC moment, as SQL finds it: the first 13 characters of the
    stored timestamp."""
    return f"{moment:%Y-%m-%d %H}"


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def calendar_rows(
    office: BusinessHours, first: datetime, last: datetime, open_before: int = 0
) -> Iterator[dict]:
    """Rows for the UTC hours from the one holding `first` to the one holding `last`."""
    zone = ZoneInfo(office.timezone)
    schedule = schedule_of(office)
    windows: dict[date, tuple[datetime, datetime] | None] = {}

    def window(day: date) -> tuple[datetime, datetime] | None:
        # The day's opening hours in UTC; None when the shop is closed that day.
        if day not in windows:
            if day.weekday() in office.days:
                opens = datetime.combine(day, office.opens, tzinfo=zone).astimezone(UTC)
                closes = datetime.combine(day, office.closes, tzinfo=zone).astimezone(UTC)
                windows[day] = (opens.replace(tzinfo=None), closes.replace(tzinfo=None))
            else:
                windows[day] = None
        return windows[day]

    hour = _floor_hour(first)
    while hour <= last:
        local = hour.replace(tzinfo=UTC).astimezone(zone)
        open_from = open_until = 0
        # An hour can touch two local days only where the offset is not whole hours.
        for day in {local.date(), (local + HOUR - timedelta(microseconds=1)).date()}:
            span = window(day)
            if span is None:
                continue
            start = max(span[0], hour)
            end = min(span[1], hour + HOUR)
            if start < end:
                seconds_from = int((start - hour).total_seconds())
                seconds_until = int((end - hour).total_seconds())
                if open_until == 0:
                    open_from, open_until = seconds_from, seconds_until
                else:
                    open_from = min(open_from, seconds_from)
                    open_until = max(open_until, seconds_until)
        yield {
            "hour": hour_key(hour),
            "day": local.date(),
            "weekday": local.weekday(),
            "local_hour": local.hour,
            "open_from": open_from,
            "open_until": open_until,
            "business_before": open_before,
            "schedule": schedule,
        }
        open_before += open_until - open_from
        hour += HOUR


async def ensure_calendar(
    db: Database, office: BusinessHours, first: datetime, last: datetime
) -> None:
    """Makes sure rows exist from `first` to `last` (naive UTC) for the current schedule."""
    if await _covers(db, office, first, last):
        return
    async with write_transaction(db):
        # One builder at a time (two workers, two machines), or both insert the same hours.
        await one_at_a_time(db, "stats calendar")
        # Another request may have built them while this one waited for the write lock.
        if await _covers(db, office, first, last):
            return
        known = await db.fetch_one(
            sa.select(
                sa.func.min(stats_hours.c.hour).label("first"),
                sa.func.max(stats_hours.c.hour).label("last"),
                sa.func.min(stats_hours.c.schedule).label("schedule"),
            )
        )
        newest = None
        if known.first is not None and known.schedule == schedule_of(office):
            if known.first <= hour_key(first):
                newest = await db.fetch_one(
                    sa.select(stats_hours).where(stats_hours.c.hour == known.last)
                )
        if newest is None:  # a new schedule, or moments before the first row: start over
            await db.execute(stats_hours.delete())
            rows = calendar_rows(office, first, last + AHEAD)
        else:  # time went on: continue after the newest row
            after = datetime.strptime(newest.hour, "%Y-%m-%d %H") + HOUR
            open_before = newest.business_before + newest.open_until - newest.open_from
            rows = calendar_rows(office, after, last + AHEAD, open_before)
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                await _insert(db, batch)
                batch = []
        if batch:
            await _insert(db, batch)


async def _insert(db: Database, rows: list[dict]) -> None:
    # `databases` runs execute_many one statement at a time (1 ms each, 8,760 rows a year);
    # the drivers' own executemany take the batch in one call (asyncpg pipelines it).
    columns = [column.name for column in stats_hours.columns]
    if db.url.dialect != "sqlite":
        statement = (
            f"INSERT INTO stats_hours ({', '.join(columns)})"
            f" VALUES ({', '.join(f'${n}' for n in range(1, len(columns) + 1))})"
        )
        async with db.connection() as connection:
            await connection.raw_connection.executemany(
                statement, [tuple(row[name] for name in columns) for row in rows]
            )
        return
    statement = (
        f"INSERT INTO stats_hours ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    )
    values = [
        tuple(row[name].isoformat() if name == "day" else row[name] for name in columns)
        for row in rows
    ]
    async with db.connection() as connection:
        await connection.raw_connection.executemany(statement, values)


async def _covers(db: Database, office: BusinessHours, first: datetime, last: datetime) -> bool:
    # Both ends present under the current schedule: rows are only ever built as one run.
    found = await db.fetch_val(
        sa.select(sa.func.count()).where(
            stats_hours.c.hour.in_([hour_key(first), hour_key(last)]),
            stats_hours.c.schedule == schedule_of(office),
        )
    )
    return found == len({hour_key(first), hour_key(last)})
