"""The statistics from daily aggregates: any period, all time included, in a few queries.

`stats_days` holds, per local day, what the figures of board/staff/stats.py sum up: counts
per staff member, received requests per local hour, and histograms of the durations. A
period adds its days' rows. Two things need care:

- Distinct counts ("answered": conversations with a staff answer in the period, each once)
  are not sums of daily distinct counts. Each day's row carries a `link`: the ordinal of
  the conversation's previous day with the same fact (0: none). Over the days `first` to
  `last` a conversation counts on the first of its days in the period, the one whose link
  lies before `first`: exact for any period. Solves link to the next solve day instead
  (none: NO_NEXT), so that the time to solve is measured to the last solve in the period,
  as the exact computation does.
- Durations are kept as histograms with fixed buckets (`bucket_of`): exact zero, 4-second
  steps below a minute, then 32 buckets per doubling. A percentile interpolates within its
  bucket, so it is off by at most one bucket's width: 3.2 % of the value (4 seconds below
  a minute). Where a period has at most EXACT_DURATIONS durations of a kind, they are read
  and sorted exactly instead (a bounded query), so small periods show exact figures.

Triggers (migration 0016) write the UTC hours a change makes stale to `stats_dirty`, in the
transaction of the change, whichever code makes it (the site, imports, the demo). The stats
task (`run_forever`) recomputes those days with the exact per-day queries below and deletes
the rows it handled; a page that meets days not recomputed yet computes them itself, so the
figures are current either way.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases import Database

from board.config import Settings
from board.db import (
    conversations,
    one_at_a_time,
    stats_days,
    stats_dirty,
    stats_months,
    write_transaction,
)
from board.staff import stats
from board.staff.stats import (
    STAFF_IDS,
    Durations,
    Period,
    StaffFigures,
    Stats,
    _business_hours_between,
    _hour_of,
    _hours_between,
    _in_period,
    _unindexed,
)

log = logging.getLogger("board.stats")

NO_NEXT = 9_999_999  # the link of a solve with none after it: after every day's ordinal
EXACT_DURATIONS = 2_000  # up to this many durations a period sorts the real values
SUB_BUCKETS = 32  # per doubling: a bucket is at most 1/32 of its lower bound wide
MAX_DOUBLING = 24  # 2^24 minutes: 32 years
DAYS_PER_ROUND = 31  # days the stats task recomputes in one write transaction
INTERVAL_SECONDS = 5
HOUR = timedelta(hours=1)

# Metrics whose link is the next day (counted when it lies after the period); the others
# link to the previous day (counted when it lies before the period) or have link 0.
NEXT_LINKED = ("solve_calendar", "solve_business")


# --- histograms ------------------------------------------------------------------------------


def bucket_of(hours: float) -> int:
    seconds = hours * 3600
    if seconds <= 0:
        return 0
    if seconds < 60:
        return 1 + int(seconds // 4)  # 1 … 15
    doubling = min(int(math.log2(seconds / 60)), MAX_DOUBLING)
    step = int((seconds / (60 * 2**doubling) - 1) * SUB_BUCKETS)
    return 16 + doubling * SUB_BUCKETS + min(max(step, 0), SUB_BUCKETS - 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The bucket's lower and upper bound in hours."""
    if bucket == 0:
        return 0.0, 0.0
    if bucket < 16:
        return (bucket - 1) * 4 / 3600, bucket * 4 / 3600
    doubling, step = divmod(bucket - 16, SUB_BUCKETS)
    base = 60 * 2**doubling / 3600
    return base * (1 + step / SUB_BUCKETS), base * (1 + (step + 1) / SUB_BUCKETS)


def _value_at(ordered: list[tuple[int, int]], rank: int) -> float:
    """The rank-th smallest duration (0-based), spread evenly within its bucket."""
    below = 0
    for bucket, count in ordered:
        if rank < below + count:
            low, high = bucket_bounds(bucket)
            return low + (high - low) * (rank - below + 0.5) / count
        below += count
    raise IndexError(rank)


def histogram_percentile(histogram: dict[int, int], share: float) -> float | None:
    """percentile_cont over the histogram: linear between the ranks around share × (n - 1)."""
    total = sum(histogram.values())
    if not total:
        return None
    ordered = sorted((bucket, count) for bucket, count in histogram.items() if count)
    position = share * (total - 1)
    below = int(position)
    low = _value_at(ordered, below)
    high = _value_at(ordered, min(below + 1, total - 1))
    return low + (high - low) * (position - below)


def _histogram_durations(calendar: dict[int, int], business: dict[int, int]) -> Durations:
    count = sum(calendar.values())
    if not count:
        return Durations()
    return Durations(
        count=count,
        calendar_median=histogram_percentile(calendar, 0.5),
        calendar_p90=histogram_percentile(calendar, 0.9),
        business_median=histogram_percentile(business, 0.5),
        business_p90=histogram_percentile(business, 0.9),
    )


# --- one day's rows ---------------------------------------------------------------------------


def _day_queries(dialect: str) -> dict[str, str]:
    """The per-day questions that link a day's facts to the conversation's other days."""
    status = "action = 'status'"

    def earlier(column: str) -> str:
        # Found through the conversation's own rows (its index), never by scanning every
        # row before the day in time order, as SQLite's planner would for MAX(created_at).
        return f"{_unindexed(column, dialect)} < :start"

    def is_request(column: str) -> str:
        # A day has a few hundred rows: each looked up by its key, rather than the set of
        # every request's id built first (SUPPORT_IDS, which suits a year).
        return (
            f"EXISTS (SELECT 1 FROM conversations r WHERE r.id = {column}"
            " AND r.kind = 'support' AND r.status != 'spam')"
        )

    def by_conversation(alias: str) -> str:
        # The conversation's status changes through ix_conversation_events_conversation.
        return f"{_unindexed(alias + '.action', dialect)} = 'status'"

    return {
        "messages": f"""
    SELECT CASE WHEN m.author_id IN {STAFF_IDS} THEN m.author_id END AS staff_id,
        m.internal, COUNT(*) AS messages
    FROM messages m
    WHERE {_in_period("m.created_at")} AND {is_request("m.conversation_id")}
    GROUP BY 1, 2
""",
        "counts": f"""
    SELECT
        (SELECT COUNT(*) FROM conversations
            WHERE kind = 'support' AND {_in_period("created_at")} AND status = 'spam') AS spam,
        (SELECT COUNT(*) FROM topics
            WHERE {_in_period("created_at")} AND deleted_at IS NULL) AS topics,
        (SELECT COUNT(*) FROM posts WHERE {_in_period("created_at")} AND deleted_at IS NULL)
            AS posts,
        (SELECT COUNT(*) FROM users WHERE role = 'customer' AND {_in_period("created_at")})
            AS registrations
""",
        "answers": f"""
    SELECT m.conversation_id, m.author_id,
        (SELECT MAX(p.created_at) FROM messages p
            WHERE p.conversation_id = m.conversation_id AND {earlier("p.created_at")}
            AND NOT p.internal AND {_unindexed("p.author_id", dialect)} IN {STAFF_IDS})
            AS before_any,
        (SELECT MAX(p.created_at) FROM messages p
            WHERE p.conversation_id = m.conversation_id AND {earlier("p.created_at")}
            AND NOT p.internal AND {_unindexed("p.author_id", dialect)} = m.author_id)
            AS before_own
    FROM messages m
    WHERE {_in_period("m.created_at")} AND NOT m.internal
        AND {_unindexed("m.author_id", dialect)} IN {STAFF_IDS}
        AND {is_request("m.conversation_id")}
    GROUP BY m.conversation_id, m.author_id
""",
        "solves": f"""
    SELECT {_hours_between("c.created_at", "s.solved_at", dialect)} AS calendar,
        {_business_hours_between("c.created_at", "s.solved_at", dialect)} AS business,
        (SELECT MIN(n.created_at) FROM conversation_events n
            WHERE n.conversation_id = s.conversation_id AND {by_conversation("n")}
            AND n.new_value = 'solved' AND {_unindexed("n.created_at", dialect)} >= :end)
            AS next_solve
    FROM (
        SELECT conversation_id, MAX(created_at) AS solved_at FROM conversation_events
        WHERE {status} AND {_in_period("created_at")} AND new_value = 'solved'
            AND {is_request("conversation_id")}
        GROUP BY conversation_id
    ) s
    JOIN conversations c ON c.id = s.conversation_id
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("c.created_at", dialect)}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("s.solved_at", dialect)}
""",
        "reopens": f"""
    SELECT e.conversation_id,
        (SELECT MAX(p.created_at) FROM conversation_events p
            WHERE p.conversation_id = e.conversation_id AND {by_conversation("p")}
            AND p.old_value = 'solved' AND p.new_value = 'open' AND {earlier("p.created_at")})
            AS before_any
    FROM conversation_events e
    WHERE e.{status} AND {_in_period("e.created_at")} AND e.old_value = 'solved'
        AND e.new_value = 'open' AND {is_request("e.conversation_id")}
    GROUP BY e.conversation_id
""",
        "staff_solves": f"""
    SELECT e.actor_id, e.conversation_id,
        (SELECT MAX(p.created_at) FROM conversation_events p
            WHERE p.conversation_id = e.conversation_id AND {by_conversation("p")}
            AND p.new_value = 'solved' AND p.actor_id = e.actor_id AND {earlier("p.created_at")})
            AS before_own
    FROM conversation_events e JOIN users u ON u.id = e.actor_id
    WHERE e.{status} AND {_in_period("e.created_at")} AND e.new_value = 'solved'
        AND {is_request("e.conversation_id")}
    GROUP BY e.actor_id, e.conversation_id
""",
    }


DAY_QUERIES = {"sqlite": _day_queries("sqlite"), "postgresql": _day_queries("postgresql")}


def _moment(value) -> datetime | None:
    # A text query returns SQLite's timestamps as the stored text.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return (
        datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    )


async def day_rows(db: Database, settings: Settings, day: date) -> list[tuple]:
    """The aggregate rows of one local day: (metric, staff_id, link, bucket, n), computed
    with the exact computation's queries over that day. The calendar must cover it."""
    zone = ZoneInfo(settings.timezone)
    start, end = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
    exact = stats.SPELLINGS[db.url.dialect]
    linked = DAY_QUERIES[db.url.dialect]

    def ordinal(value) -> int:
        moment = _moment(value)
        if moment is None:
            return 0
        return moment.replace(tzinfo=UTC).astimezone(zone).date().toordinal()

    async def run(sql: str) -> list:
        async with db.connection() as connection:
            return await stats._plain_rows(connection, stats._query(sql, start, end))

    counted: dict[tuple, int] = defaultdict(int)
    for row in await run(exact.received_per_hour):
        counted["received", 0, 0, row[2]] += row[3]
        counted["unanswered", 0, 0, 0] += row[4]
    counts = (await run(linked["counts"]))[0]
    for metric, n in zip(("spam", "topics", "posts", "registrations"), counts, strict=True):
        counted[metric, 0, 0, 0] += n
    for row in await run(linked["messages"]):
        if row[0] is None:
            counted["customer_messages", 0, 0, 0] += row[2]
        else:
            counted["notes" if row[1] else "replies", row[0], 0, 0] += row[2]
    for row in await run(exact.first_responses):
        responder = row[0]
        counted["first_calendar", responder, 0, bucket_of(row[1])] += 1
        counted["first_business", responder, 0, bucket_of(row[2])] += 1
    answered: dict[int, int] = {}
    for row in await run(linked["answers"]):
        counted["staff_answered", row[1], ordinal(row[3]), 0] += 1
        answered[row[0]] = ordinal(row[2])
    for link in answered.values():
        counted["answered", 0, link, 0] += 1
    for row in await run(linked["solves"]):
        link = ordinal(row[2]) or NO_NEXT
        counted["solve_calendar", 0, link, bucket_of(row[0])] += 1
        counted["solve_business", 0, link, bucket_of(row[1])] += 1
    for row in await run(linked["reopens"]):
        counted["reopened", 0, ordinal(row[1]), 0] += 1
    for row in await run(linked["staff_solves"]):
        counted["staff_solved", row[0], ordinal(row[2]), 0] += 1
    return [(*key, n) for key, n in counted.items() if n]


# --- keeping the days ---------------------------------------------------------------------------


def days_of_hour(hour: str, zone: ZoneInfo) -> set[date]:
    """The local days a UTC hour ("2026-11-23 14") touches: two only where the time zone's
    offset is not whole hours."""
    start = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return {
        start.astimezone(zone).date(),
        (start + HOUR - timedelta(microseconds=1)).astimezone(zone).date(),
    }


async def stale_days(db: Database, settings: Settings) -> set[date]:
    zone = ZoneInfo(settings.timezone)
    hours = await db.fetch_all(sa.select(stats_dirty.c.hour).distinct())
    return {day for row in hours for day in days_of_hour(row.hour, zone)}


async def refresh(db: Database, settings: Settings, max_days: int = DAYS_PER_ROUND) -> int:
    """Recomputes up to `max_days` stale days, oldest first; returns how many."""
    await stats.ensure_calendar_for(db, settings)  # its own transaction, before this one
    zone = ZoneInfo(settings.timezone)
    if await db.fetch_val(sa.select(stats_dirty.c.id).limit(1)) is None:
        return 0  # the usual round: one look at an empty table, no transaction
    async with write_transaction(db):
        # Two stats tasks (two workers, two machines) must not rebuild a day side by side.
        await one_at_a_time(db, "stats days")
        # Read inside the transaction: every row deleted below was there when the days
        # were computed; a change committed later leaves its own row for the next round.
        hours = await db.fetch_all(sa.select(stats_dirty.c.hour).distinct())
        days_by_hour = {row.hour: days_of_hour(row.hour, zone) for row in hours}
        if not days_by_hour:
            return 0
        chosen = sorted(set().union(*days_by_hour.values()))[:max_days]
        done = sorted(hour for hour, days in days_by_hour.items() if days <= set(chosen))
        for day in chosen:
            rows = await day_rows(db, settings, day)
            await db.execute(stats_days.delete().where(stats_days.c.day == day))
            if rows:
                await _insert(db, day, rows)
        for month in sorted({day.replace(day=1) for day in chosen}):
            await _sum_month(db, month)
        for batch in range(0, len(done), 500):
            await db.execute(stats_dirty.delete().where(stats_dirty.c.hour.in_(done[batch:][:500])))
    return len(chosen)


def _month_after(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


async def _sum_month(db: Database, month: date) -> None:
    """The month's row in stats_months from its days, the received requests left out."""
    await db.execute(stats_months.delete().where(stats_months.c.month == month))
    keys = (stats_days.c.metric, stats_days.c.staff_id, stats_days.c.link, stats_days.c.bucket)
    summed = (
        sa.select(sa.literal(month, sa.Date), *keys, sa.func.sum(stats_days.c.n))
        .where(
            stats_days.c.day >= month,
            stats_days.c.day < _month_after(month),
            stats_days.c.metric != "received",
        )
        .group_by(*keys)
    )
    names = ["month", "metric", "staff_id", "link", "bucket", "n"]
    await db.execute(stats_months.insert().from_select(names, summed))


async def _insert(db: Database, day: date, rows: list[tuple]) -> None:
    # `databases` runs execute_many one statement at a time (a few hundred a day, 1 ms
    # each); the drivers' own executemany take the day in one call, as the calendar does.
    columns = "day, metric, staff_id, link, bucket, n"
    async with db.connection() as connection:
        if db.url.dialect == "sqlite":
            statement = f"INSERT INTO stats_days ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
            values = [(day.isoformat(), *row) for row in rows]
        else:
            statement = f"INSERT INTO stats_days ({columns}) VALUES ($1, $2, $3, $4, $5, $6)"
            values = [(day, *row) for row in rows]
        await connection.raw_connection.executemany(statement, values)


async def refresh_all(db: Database, settings: Settings) -> int:
    """Until no day is stale (tests, benchmarks, the command line)."""
    total = 0
    while done := await refresh(db, settings):
        total += done
        await asyncio.sleep(0.05)  # the writers that waited go first
    return total


async def run_forever(db: Database, settings: Settings) -> None:
    while True:
        await asyncio.sleep(INTERVAL_SECONDS)
        try:
            await refresh_all(db, settings)
        except Exception:
            log.exception("recomputing the statistics' days failed")


async def first_day(db: Database, settings: Settings) -> date | None:
    """The local day of the first request: where "all time" starts."""
    first = await db.fetch_val(
        sa.select(sa.func.min(conversations.c.created_at)).where(conversations.c.kind == "support")
    )
    if first is None:
        return None
    return first.replace(tzinfo=UTC).astimezone(ZoneInfo(settings.timezone)).date()


# --- a period from the days ----------------------------------------------------------------------


def counts_in_period(metric: str, link: int, first: int, last: int) -> bool:
    """Whether a day's row counts in the period of the ordinals `first` to `last`."""
    if metric in NEXT_LINKED:
        return link > last
    return link < first


def _linked(table: sa.Table, first_day: date, last_day: date) -> sa.ColumnElement[bool]:
    return sa.case(
        # An OR, not IN: no expanding parameter, so the driver gets the statement as is.
        (
            sa.or_(*(table.c.metric == metric for metric in NEXT_LINKED)),
            table.c.link > last_day.toordinal(),
        ),
        else_=table.c.link < first_day.toordinal(),
    )


def whole_months(first_day: date, last_day: date, stale: set[date]) -> list[date]:
    """The months wholly inside the period with no stale day: read from stats_months."""
    months = []
    month = first_day if first_day.day == 1 else _month_after(first_day)
    while _month_after(month) - timedelta(days=1) <= last_day:
        if not any(month <= day < _month_after(month) for day in stale):
            months.append(month)
        month = _month_after(month)
    return months


def _day_segments(first_day: date, last_day: date, months: list[date]) -> list[tuple[date, date]]:
    """The stretches of the period outside its whole months, first and last day each."""
    segments, start = [], first_day
    for month in months:
        if start < month:
            segments.append((start, month - timedelta(days=1)))
        start = _month_after(month)
    if start <= last_day:
        segments.append((start, last_day))
    return segments


def _period_sums(first_day: date, last_day: date, months: list[date], skipped: list[date]):
    """Everything but the received requests, summed over the period in SQL: the whole months
    from stats_months, the days around them (not stale) from stats_days."""
    keys = ("metric", "staff_id", "link", "bucket", "n")
    parts = []
    segments = _day_segments(first_day, last_day, months)
    if segments:
        parts.append(
            sa.select(*(stats_days.c[key] for key in keys)).where(
                sa.or_(*(stats_days.c.day.between(a, b) for a, b in segments)),
                stats_days.c.metric != "received",
                _linked(stats_days, first_day, last_day),
                *(stats_days.c.day != day for day in skipped),
            )
        )
    if months:
        parts.append(
            sa.select(*(stats_months.c[key] for key in keys)).where(
                sa.or_(*(stats_months.c.month == month for month in months)),
                _linked(stats_months, first_day, last_day),
            )
        )
    rows = sa.union_all(*parts).subquery()
    return sa.select(rows.c.metric, rows.c.staff_id, rows.c.bucket, sa.func.sum(rows.c.n)).group_by(
        rows.c.metric, rows.c.staff_id, rows.c.bucket
    )


def _received(first_day: date, last_day: date, skipped: list[date]) -> sa.Select:
    """The received requests per day and local hour: one stored row each."""
    statement = sa.select(stats_days.c.day, stats_days.c.bucket, stats_days.c.n).where(
        stats_days.c.day >= first_day,
        stats_days.c.day <= last_day,
        stats_days.c.metric == "received",
    )
    return statement.where(*(stats_days.c.day != day for day in skipped))


async def compute(db: Database, settings: Settings, period: Period) -> Stats:
    """The figures of stats.compute (the exact computation) for `period`, from the
    aggregates: at most a few thousand rows, however long the period."""
    await stats.ensure_calendar_for(db, settings)
    first, last = period.first_day, period.last_day
    stale = sorted(day for day in await stale_days(db, settings) if first <= day <= last)
    months = whole_months(first, last, set(stale))
    rows: list[tuple] = []
    async with db.connection() as connection:
        for metric, staff_id, bucket, n in await _raw(
            connection, _period_sums(first, last, months, stale)
        ):
            rows.append((metric, staff_id, bucket, None, n))
        for day, bucket, n in await _raw(connection, _received(first, last, stale)):
            rows.append(("received", 0, bucket, stats._as_date(day), n))
    for day in stale:  # not recomputed yet: computed here, not stored (a GET writes nothing)
        for metric, staff_id, link, bucket, n in await day_rows(db, settings, day):
            if counts_in_period(metric, link, first.toordinal(), last.toordinal()):
                rows.append((metric, staff_id, bucket, day if metric == "received" else None, n))
    return await _figures(db, settings, period, rows)


async def _raw(connection, statement: sa.Select) -> list[tuple]:
    """Plain tuples from the driver: `databases` wraps each row in objects whose values
    are converted on every access, which took longer than the query (thousands of rows)."""
    return await stats._plain_rows(connection, statement)


async def _figures(db: Database, settings: Settings, period: Period, rows: Iterable[tuple]):
    totals: dict[str, int] = defaultdict(int)
    per_staff: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    histograms: dict[tuple[str, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    received_on: dict[date, int] = defaultdict(int)
    weekday_hour: dict[tuple[int, int], int] = defaultdict(int)
    for metric, staff_id, bucket, day, n in rows:
        if metric == "received":
            received_on[day] += n
            weekday_hour[day.weekday(), bucket] += n
        if metric.startswith(("first_", "solve_")):
            histograms[metric, staff_id][bucket] += n
            if metric.startswith("first_"):
                histograms[metric, -1][bucket] += n  # -1: the whole team
            continue
        if metric in ("replies", "notes", "staff_answered", "staff_solved"):
            per_staff[staff_id][metric] += n
        totals[metric] += n

    first_count = sum(histograms["first_calendar", -1].values())
    solve_count = sum(histograms["solve_calendar", 0].values())
    exact_first = exact_solve = None
    if 0 < first_count <= EXACT_DURATIONS or 0 < solve_count <= EXACT_DURATIONS:
        exact_first, exact_solve = await stats.exact_durations(
            db,
            period,
            first_responses=0 < first_count <= EXACT_DURATIONS,
            times_to_solve=0 < solve_count <= EXACT_DURATIONS,
        )

    staff: dict[int, StaffFigures] = {}
    responders = {
        staff_id for metric, staff_id in histograms if metric == "first_calendar" and staff_id > 0
    }
    names = {row.id: row.name for row in await stats._names_of(db, set(per_staff) | responders)}
    for user_id, figures in per_staff.items():
        if user_id not in names:
            continue  # the user row is gone
        staff[user_id] = StaffFigures(
            user_id=user_id,
            name=names[user_id],
            replies=figures["replies"],
            internal_notes=figures["notes"],
            answered=figures["staff_answered"],
            solved=figures["staff_solved"],
        )
    for user_id in responders:
        if user_id not in names:
            continue
        member = staff.setdefault(user_id, StaffFigures(user_id=user_id, name=names[user_id]))
        if exact_first is not None:
            member.first_responses = exact_first.by_staff.get(user_id, Durations())
        else:
            member.first_responses = _histogram_durations(
                histograms["first_calendar", user_id], histograms["first_business", user_id]
            )

    if exact_first is not None:
        first_response = exact_first.team
    else:
        first_response = _histogram_durations(
            histograms["first_calendar", -1], histograms["first_business", -1]
        )
    if exact_solve is not None:
        time_to_solve = exact_solve
    else:
        time_to_solve = _histogram_durations(
            histograms["solve_calendar", 0], histograms["solve_business", 0]
        )

    days = [
        date.fromordinal(n)
        for n in range(period.first_day.toordinal(), period.last_day.toordinal() + 1)
    ]
    busiest = sorted(
        ((day, count) for day, count in received_on.items() if count),
        key=lambda day_count: (-day_count[1], day_count[0]),
    )
    return Stats(
        first_day=period.first_day,
        last_day=period.last_day,
        received=totals["received"],
        unanswered=totals["unanswered"],
        spam=totals["spam"],
        answered=totals["answered"],
        solved=time_to_solve.count,
        reopened=totals["reopened"],
        messages_from_customers=totals["customer_messages"],
        messages_from_staff=sum(figures["replies"] for figures in per_staff.values()),
        internal_notes=sum(figures["notes"] for figures in per_staff.values()),
        first_response=first_response,
        time_to_solve=time_to_solve,
        staff=sorted(staff.values(), key=lambda member: (-member.replies, member.name)),
        per_day=[(day, received_on.get(day, 0)) for day in days],
        busiest_days=busiest[: stats.BUSIEST_DAYS],
        weekday_hour={key: n for key, n in weekday_hour.items() if n},
        per_type=await stats.received_per_type(db, period),
        topics=totals["topics"],
        posts=totals["posts"],
        registrations=totals["registrations"],
    )
