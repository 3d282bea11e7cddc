"""Support statistics for a period, computed in SQL.

What each figure counts (support conversations only: announcements and invoice notices
are not requests; conversations marked as spam are left out):

- received: conversations started in the period; `unanswered` of them have had no answer
  from staff yet, `spam` were started in the period and marked as spam.
- answered: conversations that got an answer from staff in the period (internal notes
  are no answer), however old they are.
- solved: conversations marked solved in the period, each counted once even when it was
  reopened and solved again; `reopened`: solved ones a customer wrote to again.
- first response: from the customer's first message to the first answer, for the
  conversations received in the period that have one.
- time to solve: from the customer's first message to the last time the conversation was
  marked solved within the period.
- messages: written in the period, by customers (guests included) or by staff.

Durations come in calendar hours and in business hours (the hours the shop is open,
BOARD_BUSINESS_DAYS/HOURS in BOARD_TIMEZONE), as the median and the 90th percentile
(linear interpolation between ranks, as PostgreSQL's percentile_cont). Days, weekdays and
hours are the shop's local ones, from the `stats_hours` calendar (board/staff/calendar.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime

import aiosqlite
import sqlalchemy as sa
from databases import Database
from databases.core import Connection
from sqlalchemy.dialects import sqlite

from board.config import Settings
from board.db import users, utcnow
from board.security import STAFF_ROLES
from board.staff.calendar import ensure_calendar

BUSIEST_DAYS = 5
SQLITE = sqlite.dialect()

# --- SQL pieces: SQLite's spelling ---------------------------------------------------------


def _hour_of(moment: str) -> str:
    """The `stats_hours` key of a stored timestamp ("2026-11-23 14:05:06.123" → "… 14")."""
    return f"substr({moment}, 1, 13)"


def _open_seconds(moment: str, hour: str) -> str:
    """Open seconds from the calendar's start until `moment`, whose hour row is `hour`."""
    into_hour = (
        f"(CAST(substr({moment}, 15, 2) AS INTEGER) * 60"
        f" + CAST(substr({moment}, 18, 2) AS INTEGER))"
    )
    return (
        f"({hour}.business_before"
        f" + MIN(MAX({into_hour}, {hour}.open_from), {hour}.open_until) - {hour}.open_from)"
    )


def _is_staff(role: str) -> str:
    return f"({role} IN ({', '.join(repr(name) for name in STAFF_ROLES)}))"


def _hours_between(start: str, end: str) -> str:
    return f"((julianday({end}) - julianday({start})) * 24.0)"


def _business_hours_between(start: str, end: str) -> str:
    """Joins `start_hour` and `end_hour` to the calendar in the query that uses it."""
    return f"(({_open_seconds(end, 'end_hour')} - {_open_seconds(start, 'start_hour')}) / 3600.0)"


def _in_period(column: str) -> str:
    return f"{column} >= :start AND {column} < :end"


# Requests: support conversations that are not spam. As a set of ids, so that the period's
# messages and status changes are read from their own indexes first, whatever the planner
# guesses about the sizes.
SUPPORT_IDS = "(SELECT id FROM conversations WHERE kind = 'support' AND status != 'spam')"
STAFF_IDS = f"(SELECT id FROM users WHERE {_is_staff('role')})"

# The period's new requests, in the columns of ix_conversations_created.
RECEIVED = f"""
    SELECT id, created_at, first_response_at FROM conversations
    WHERE kind = 'support' AND status != 'spam' AND {_in_period("created_at")}
"""

# How long each request received in the period waited for its first answer, and who gave
# it: the staff answer written at that moment (ix_messages_created finds it). One row per
# request; the percentiles are taken in Python (see `_durations`).
FIRST_RESPONSES = f"""
    SELECT COALESCE(m.author_id, 0) AS responder,
        {_hours_between("r.created_at", "r.first_response_at")} AS calendar,
        {_business_hours_between("r.created_at", "r.first_response_at")} AS business
    FROM ({RECEIVED}) r
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("r.created_at")}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("r.first_response_at")}
    LEFT JOIN messages m ON m.created_at = r.first_response_at AND m.conversation_id = r.id
        AND NOT m.internal AND +m.author_id IN {STAFF_IDS}
    WHERE r.first_response_at IS NOT NULL
"""

# Every request marked solved in the period, until the last time it was: one row each.
TIMES_TO_SOLVE = f"""
    SELECT {_hours_between("c.created_at", "s.solved_at")} AS calendar,
        {_business_hours_between("c.created_at", "s.solved_at")} AS business
    FROM (
        SELECT conversation_id, MAX(created_at) AS solved_at FROM conversation_events
        WHERE action = 'status' AND {_in_period("created_at")} AND new_value = 'solved'
            AND conversation_id IN {SUPPORT_IDS}
        GROUP BY conversation_id
    ) s
    JOIN conversations c ON c.id = s.conversation_id
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("c.created_at")}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("s.solved_at")}
"""

COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM conversations
            WHERE kind = 'support' AND {_in_period("created_at")} AND status = 'spam') AS spam,
        (SELECT COUNT(DISTINCT conversation_id) FROM conversation_events
            WHERE action = 'status' AND {_in_period("created_at")}
            AND old_value = 'solved' AND new_value = 'open'
            AND conversation_id IN {SUPPORT_IDS}) AS reopened,
        (SELECT COUNT(*) FROM topics
            WHERE {_in_period("created_at")} AND deleted_at IS NULL) AS topics,
        (SELECT COUNT(*) FROM posts WHERE {_in_period("created_at")} AND deleted_at IS NULL)
            AS posts,
        (SELECT COUNT(*) FROM users WHERE role = 'customer' AND {_in_period("created_at")})
            AS registrations
"""

# The period's messages in one pass: per staff member and internal or not, with how many
# conversations each row touched, then one row for customers and guests (staff_id NULL),
# whose conversations need no telling apart; `answered` counts the conversations with any
# staff answer once.
MESSAGES = f"""
    WITH written AS MATERIALIZED (
        SELECT conversation_id, internal,
            CASE WHEN author_id IN {STAFF_IDS} THEN author_id END AS staff_id
        FROM messages
        -- "+": find the period's rows by ix_messages_created, then check the set.
        WHERE {_in_period("created_at")} AND +conversation_id IN {SUPPORT_IDS}
    ),
    grouped AS (
        SELECT staff_id, internal, COUNT(*) AS messages,
            COUNT(DISTINCT conversation_id) AS conversations
        FROM written WHERE staff_id IS NOT NULL GROUP BY staff_id, internal
        UNION ALL
        SELECT NULL, 0, COUNT(*), NULL FROM written WHERE staff_id IS NULL
    )
    SELECT g.staff_id, u.name, g.internal, g.messages, g.conversations,
        (SELECT COUNT(DISTINCT conversation_id) FROM written
            WHERE staff_id IS NOT NULL AND NOT internal) AS answered
    FROM grouped g LEFT JOIN users u ON u.id = g.staff_id
"""

STAFF_SOLVED = f"""
    SELECT e.actor_id AS user_id, u.name, COUNT(DISTINCT e.conversation_id) AS solved
    FROM conversation_events e
    JOIN users u ON u.id = e.actor_id
    WHERE e.action = 'status' AND {_in_period("e.created_at")} AND e.new_value = 'solved'
        AND e.conversation_id IN {SUPPORT_IDS}
    GROUP BY e.actor_id, u.name
"""

# The period's new requests per hour of UTC (counted in index order), each with its local
# day, weekday and hour from the calendar: at most 24 rows a day, summed up in Python into
# days and the weekday × hour table, instead of one calendar lookup per conversation.
RECEIVED_PER_HOUR = f"""
    WITH per_hour AS MATERIALIZED (
        SELECT {_hour_of("created_at")} AS hour, COUNT(*) AS received,
            SUM(first_response_at IS NULL) AS unanswered
        FROM ({RECEIVED}) GROUP BY 1
    )
    SELECT h.day, h.weekday, h.local_hour, p.received, p.unanswered
    FROM per_hour p JOIN stats_hours h ON h.hour = p.hour
"""


# --- the figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local days from `first_day` to `last_day`, both included, as the naive UTC moments
    from the first day's local midnight (`start`) to the one after the last day (`end`)."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime


@dataclass
class Durations:
    """Hours; None when there was nothing to measure."""

    count: int = 0
    calendar_median: float | None = None
    calendar_p90: float | None = None
    business_median: float | None = None
    business_p90: float | None = None


@dataclass
class StaffFigures:
    user_id: int
    name: str
    replies: int = 0
    internal_notes: int = 0
    answered: int = 0
    solved: int = 0
    first_responses: Durations = field(default_factory=Durations)


@dataclass
class Stats:
    first_day: date
    last_day: date
    received: int
    unanswered: int
    spam: int
    answered: int
    solved: int
    reopened: int
    messages_from_customers: int
    messages_from_staff: int
    internal_notes: int
    first_response: Durations
    time_to_solve: Durations
    staff: list[StaffFigures]
    per_day: list[tuple[date, int]]  # every day of the period, quiet ones with 0
    busiest_days: list[tuple[date, int]]
    weekday_hour: dict[tuple[int, int], int]  # (weekday Monday = 0, local hour) → received
    topics: int
    posts: int
    registrations: int

    @property
    def by_weekday(self) -> list[int]:
        return [sum(self.weekday_hour.get((day, h), 0) for h in range(24)) for day in range(7)]

    @property
    def by_hour(self) -> list[int]:
        return [sum(self.weekday_hour.get((d, hour), 0) for d in range(7)) for hour in range(24)]


def _percentile(ordered: list[float], share: float) -> float:
    """Linear interpolation between the ranks around share × (n - 1), as percentile_cont."""
    position = share * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _durations(measured: list[tuple[float, float]]) -> Durations:
    """Count, median and 90th percentile of (calendar, business) hours.

    Taken here rather than in SQL: one sort per column of a list the query hands over
    anyway costs less than ranking the rows in SQLite (bench/stats.sh), and it is the
    same on every database."""
    if not measured:
        return Durations()
    calendar = sorted(hours for hours, _business in measured)
    business = sorted(hours for _calendar, hours in measured)
    return Durations(
        count=len(measured),
        calendar_median=_percentile(calendar, 0.5),
        calendar_p90=_percentile(calendar, 0.9),
        business_median=_percentile(business, 0.5),
        business_p90=_percentile(business, 0.9),
    )


def _query(sql: str, start: datetime, end: datetime) -> sa.TextClause:
    return sa.text(sql).bindparams(
        sa.bindparam("start", start, type_=sa.DateTime),
        sa.bindparam("end", end, type_=sa.DateTime),
    )


async def compute(db: Database, settings: Settings, period: Period) -> Stats:
    """The figures for the local days of `period`."""
    first_day, last_day, start, end = period.first_day, period.last_day, period.start, period.end
    await _ensure_calendar_for(db, settings)

    async def lane(*queries: str) -> list[list]:
        # A task of its own holds a connection of its own (`databases` keys them by task).
        async with db.connection() as connection:
            found = []
            for sql in queries:
                query = _query(sql, start, end)
                if sql in ROW_PER_REQUEST:
                    found.append(await _plain_rows(connection, query))
                else:
                    found.append(await connection.fetch_all(query))
            return found

    # Two lanes side by side, one per core, about even in cost (bench/stats.sh): the pool
    # keeps connections free for everyone else.
    (
        (first_responses, times_to_solve, received_per_hour),
        (written, solved_by, counts),
    ) = await asyncio.gather(
        lane(FIRST_RESPONSES, TIMES_TO_SOLVE, RECEIVED_PER_HOUR),
        lane(MESSAGES, STAFF_SOLVED, COUNTS),
    )
    counts = counts[0]

    staff: dict[int, StaffFigures] = {}

    def member(user_id: int, name: str) -> StaffFigures:
        return staff.setdefault(user_id, StaffFigures(user_id=user_id, name=name))

    from_customers = from_staff = internal_notes = answered = 0
    for found in written:
        answered = found["answered"]
        if found["staff_id"] is None:
            from_customers += found["messages"]
            continue
        figures = member(found["staff_id"], found["name"])
        if found["internal"]:
            figures.internal_notes = found["messages"]
            internal_notes += found["messages"]
        else:
            figures.replies = found["messages"]
            figures.answered = found["conversations"]
            from_staff += found["messages"]
    for found in solved_by:
        member(found["user_id"], found["name"]).solved = found["solved"]
    measured_by: dict[int, list[tuple[float, float]]] = {}
    for responder, calendar, business in first_responses:
        measured_by.setdefault(responder, []).append((calendar, business))
    first_response = _durations([pair for pairs in measured_by.values() for pair in pairs])
    measured_by.pop(0, None)  # no staff answer at that moment (an imported conversation)
    for found in await _names_of(db, measured_by.keys() - staff.keys()):
        member(found["id"], found["name"])
    for user_id, measured in measured_by.items():
        if user_id in staff:  # else the user row is gone
            staff[user_id].first_responses = _durations(measured)
    time_to_solve = _durations(times_to_solve)

    received = unanswered = 0
    received_on: dict[date, int] = {}
    weekday_hour: dict[tuple[int, int], int] = {}
    for day, weekday, local_hour, count, not_answered in received_per_hour:
        received += count
        unanswered += not_answered
        day = _as_date(day)
        received_on[day] = received_on.get(day, 0) + count
        weekday_hour[weekday, local_hour] = weekday_hour.get((weekday, local_hour), 0) + count
    days = [date.fromordinal(n) for n in range(first_day.toordinal(), last_day.toordinal() + 1)]
    busiest = sorted(received_on.items(), key=lambda day_count: (-day_count[1], day_count[0]))
    return Stats(
        first_day=first_day,
        last_day=last_day,
        received=received,
        unanswered=unanswered,
        spam=counts["spam"],
        answered=answered,
        solved=time_to_solve.count,
        reopened=counts["reopened"],
        messages_from_customers=from_customers,
        messages_from_staff=from_staff,
        internal_notes=internal_notes,
        first_response=first_response,
        time_to_solve=time_to_solve,
        staff=sorted(staff.values(), key=lambda member: (-member.replies, member.name)),
        per_day=[(day, received_on.get(day, 0)) for day in days],
        busiest_days=busiest[:BUSIEST_DAYS],
        weekday_hour=weekday_hour,
        topics=counts["topics"],
        posts=counts["posts"],
        registrations=counts["registrations"],
    )


# The queries that hand over many rows (one per request, or per hour) rather than totals.
ROW_PER_REQUEST = frozenset({FIRST_RESPONSES, TIMES_TO_SOLVE, RECEIVED_PER_HOUR})


async def _plain_rows(connection: Connection, query: sa.TextClause) -> list[tuple]:
    """The rows as plain tuples. On SQLite straight from the driver: for the year's tens of
    thousands of rows, `databases` wrapping each row in two objects took longer than the
    query itself (bench/stats.sh), and in the event loop's thread, where the two lanes
    cannot overlap."""
    if isinstance(connection.raw_connection, aiosqlite.Connection):
        compiled = query.compile(dialect=SQLITE)
        arguments = []
        for name in compiled.positiontup:
            bind_type = compiled.binds[name].type.dialect_impl(SQLITE)
            to_driver = bind_type.bind_processor(SQLITE)
            value = compiled.params[name]
            arguments.append(to_driver(value) if to_driver else value)
        return list(await connection.raw_connection.execute_fetchall(compiled.string, arguments))
    # A `databases` Record iterates over its keys: its mapping holds the values.
    return [tuple(record._mapping) for record in await connection.fetch_all(query)]


async def _names_of(db: Database, user_ids: set[int]) -> list:
    if not user_ids:
        return []
    return await db.fetch_all(sa.select(users.c.id, users.c.name).where(users.c.id.in_(user_ids)))


def _as_date(value) -> date:
    # A text query returns SQLite's dates as the stored text.
    return value if isinstance(value, date) else date.fromisoformat(value)


async def _ensure_calendar_for(db: Database, settings: Settings) -> None:
    """Calendar rows for every moment the queries look up, which all lie between the first
    request and now (a request solved in the period may have started long before it). The
    period's own ends do not matter: hours without conversations are never looked up."""
    first_conversation = await db.fetch_val(
        sa.text("SELECT MIN(created_at) FROM conversations WHERE kind = 'support'").columns(
            sa.column("first", sa.DateTime)
        )
    )
    if first_conversation is not None:
        await ensure_calendar(db, settings.office, first_conversation, utcnow())
