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

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from databases import Database

from board.config import Settings
from board.db import utcnow
from board.security import STAFF_ROLES
from board.staff.calendar import ensure_calendar

BUSIEST_DAYS = 5

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


def _percentile(value: str, share: float) -> str:
    """The `share` percentile of `value` over the rows of a group, from ranks numbered by
    `_ranked`: the two rows around position share × (n - 1), weighted by their distance.
    Only those two rows have a weight; the others add nothing."""
    position = f"({share} * last_rank)"
    rank = f"{value}_rank"
    return (
        f"SUM(CASE WHEN {rank} <= {position} AND {position} < {rank} + 1"
        f" THEN {value} * (1 - ({position} - {rank}))"
        f" WHEN {rank} - 1 <= {position} AND {position} < {rank}"
        f" THEN {value} * ({position} - ({rank} - 1))"
        f" ELSE 0 END)"
    )


def _durations_sql(durations: str, group: str | None = None) -> str:
    """Count, median and 90th percentile of the `calendar` and `business` columns of the
    `durations` query, per `group` when given."""
    partition = f"PARTITION BY {group} " if group else ""
    grouped = f"{group} AS grp, " if group else ""
    return f"""
    WITH durations AS ({durations}),
    ranked AS (
        SELECT {grouped}calendar, business,
            ROW_NUMBER() OVER ({partition}ORDER BY calendar) - 1 AS calendar_rank,
            ROW_NUMBER() OVER ({partition}ORDER BY business) - 1 AS business_rank,
            COUNT(*) OVER ({partition.strip()}) - 1 AS last_rank
        FROM durations
    )
    SELECT {"grp, " if group else ""}COUNT(*) AS count,
        {_percentile("calendar", 0.5)} AS calendar_median,
        {_percentile("calendar", 0.9)} AS calendar_p90,
        {_percentile("business", 0.5)} AS business_median,
        {_percentile("business", 0.9)} AS business_p90
    FROM ranked
    {"GROUP BY grp" if group else ""}
    """


SUPPORT = "c.kind = 'support' AND c.status != 'spam'"
IN_PERIOD = "{column} >= :start AND {column} < :end"


def _in_period(column: str) -> str:
    return IN_PERIOD.format(column=column)




def _first_responses(by_responder: bool = False) -> str:
    """How long each conversation received in the period waited for its first answer; with
    `by_responder` also who gave it (the message written at that moment)."""
    responder = """
        JOIN messages m ON m.conversation_id = c.id AND m.created_at = c.first_response_at
            AND NOT m.internal AND m.author_id IS NOT NULL"""
    return f"""
    SELECT {"m.author_id AS responder, " if by_responder else ""}
        {_hours_between("c.created_at", "c.first_response_at")} AS calendar,
        {_business_hours_between("c.created_at", "c.first_response_at")} AS business
    FROM conversations c
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("c.created_at")}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("c.first_response_at")}
    {responder if by_responder else ""}
    WHERE {SUPPORT} AND {_in_period("c.created_at")} AND c.first_response_at IS NOT NULL
    """


# Every conversation marked solved in the period, with the last such moment.
SOLVES = f"""
    SELECT e.conversation_id, MAX(e.created_at) AS solved_at
    FROM conversation_events e
    WHERE e.action = 'status' AND e.new_value = 'solved' AND {_in_period("e.created_at")}
    GROUP BY e.conversation_id
"""

TIMES_TO_SOLVE = f"""
    SELECT {_hours_between("c.created_at", "s.solved_at")} AS calendar,
        {_business_hours_between("c.created_at", "s.solved_at")} AS business
    FROM ({SOLVES}) s
    JOIN conversations c ON c.id = s.conversation_id
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("c.created_at")}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("s.solved_at")}
    WHERE {SUPPORT}
"""

COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM conversations c
            WHERE {SUPPORT} AND {_in_period("c.created_at")}) AS received,
        (SELECT COUNT(*) FROM conversations c
            WHERE {SUPPORT} AND {_in_period("c.created_at")}
            AND c.first_response_at IS NULL) AS unanswered,
        (SELECT COUNT(*) FROM conversations c
            WHERE c.kind = 'support' AND c.status = 'spam'
            AND {_in_period("c.created_at")}) AS spam,
        (SELECT COUNT(*) FROM ({SOLVES}) s JOIN conversations c ON c.id = s.conversation_id
            WHERE {SUPPORT}) AS solved,
        (SELECT COUNT(DISTINCT e.conversation_id) FROM conversation_events e
            JOIN conversations c ON c.id = e.conversation_id
            WHERE e.action = 'status' AND e.old_value = 'solved' AND e.new_value = 'open'
            AND {_in_period("e.created_at")} AND {SUPPORT}) AS reopened,
        (SELECT COUNT(*) FROM topics t
            WHERE t.deleted_at IS NULL AND {_in_period("t.created_at")}) AS topics,
        (SELECT COUNT(*) FROM posts p
            WHERE p.deleted_at IS NULL AND {_in_period("p.created_at")}) AS posts,
        (SELECT COUNT(*) FROM users u
            WHERE u.role = 'customer' AND {_in_period("u.created_at")}) AS registrations
"""

_MESSAGES_IN_PERIOD = f"""
    FROM messages m
    JOIN conversations c ON c.id = m.conversation_id
    LEFT JOIN users u ON u.id = m.author_id
    WHERE {SUPPORT} AND {_in_period("m.created_at")}
"""

MESSAGES = f"""
    SELECT
        COALESCE(SUM(CASE WHEN u.id IS NULL OR NOT {_is_staff("u.role")}
            THEN 1 ELSE 0 END), 0) AS from_customers,
        COALESCE(SUM(CASE WHEN {_is_staff("u.role")} AND NOT m.internal
            THEN 1 ELSE 0 END), 0) AS from_staff,
        COALESCE(SUM(CASE WHEN m.internal THEN 1 ELSE 0 END), 0) AS internal_notes,
        COUNT(DISTINCT CASE WHEN {_is_staff("u.role")} AND NOT m.internal
            THEN m.conversation_id END) AS answered
    {_MESSAGES_IN_PERIOD}
"""

STAFF_MESSAGES = f"""
    SELECT u.id AS user_id, u.name,
        SUM(CASE WHEN NOT m.internal THEN 1 ELSE 0 END) AS replies,
        SUM(CASE WHEN m.internal THEN 1 ELSE 0 END) AS internal_notes,
        COUNT(DISTINCT CASE WHEN NOT m.internal THEN m.conversation_id END) AS answered
    {_MESSAGES_IN_PERIOD} AND {_is_staff("u.role")}
    GROUP BY u.id, u.name
"""

STAFF_SOLVED = f"""
    SELECT u.id AS user_id, u.name, COUNT(DISTINCT e.conversation_id) AS solved
    FROM conversation_events e
    JOIN conversations c ON c.id = e.conversation_id
    JOIN users u ON u.id = e.actor_id
    WHERE e.action = 'status' AND e.new_value = 'solved' AND {_in_period("e.created_at")}
        AND {SUPPORT}
    GROUP BY u.id, u.name
"""

STAFF_FIRST_RESPONSES = f"""
    SELECT f.grp AS user_id, u.name, f.count, f.calendar_median, f.calendar_p90,
        f.business_median, f.business_p90
    FROM ({_durations_sql(_first_responses(by_responder=True), group="responder")}) f
    JOIN users u ON u.id = f.grp
"""

_RECEIVED_BY_HOUR = f"""
    FROM conversations c
    JOIN stats_hours h ON h.hour = {_hour_of("c.created_at")}
    WHERE {SUPPORT} AND {_in_period("c.created_at")}
"""

PER_DAY = f"""
    SELECT h.day, COUNT(*) AS received,
        RANK() OVER (ORDER BY COUNT(*) DESC) AS busiest
    {_RECEIVED_BY_HOUR}
    GROUP BY h.day
    ORDER BY h.day
"""

WEEKDAY_HOUR = f"""
    SELECT h.weekday, h.local_hour, COUNT(*) AS received
    {_RECEIVED_BY_HOUR}
    GROUP BY h.weekday, h.local_hour
"""


# --- the figures ---------------------------------------------------------------------------


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


def _durations(row) -> Durations:
    if row is None or not row["count"]:
        return Durations()
    return Durations(
        count=row["count"],
        calendar_median=row["calendar_median"],
        calendar_p90=row["calendar_p90"],
        business_median=row["business_median"],
        business_p90=row["business_p90"],
    )


def _query(sql: str, start: datetime, end: datetime) -> sa.TextClause:
    return sa.text(sql).bindparams(
        sa.bindparam("start", start, type_=sa.DateTime),
        sa.bindparam("end", end, type_=sa.DateTime),
    )


async def compute(
    db: Database,
    settings: Settings,
    first_day: date,
    last_day: date,
    start: datetime,
    end: datetime,
) -> Stats:
    """The figures for the local days `first_day`…`last_day`, which run from `start` to
    `end` (naive UTC, end excluded)."""
    await _ensure_calendar_for(db, settings, start, end)

    async def rows(sql: str) -> list:
        return await db.fetch_all(_query(sql, start, end))

    async def row(sql: str):
        return await db.fetch_one(_query(sql, start, end))

    # One connection for the whole page: every query sees the same held connection.
    async with db.connection():
        counts = await row(COUNTS)
        messages = await row(MESSAGES)
        first_response = await row(_durations_sql(_first_responses()))
        time_to_solve = await row(_durations_sql(TIMES_TO_SOLVE))
        staff_messages = await rows(STAFF_MESSAGES)
        staff_solved = await rows(STAFF_SOLVED)
        staff_first = await rows(STAFF_FIRST_RESPONSES)
        per_day = await rows(PER_DAY)
        weekday_hour = await rows(WEEKDAY_HOUR)

    staff: dict[int, StaffFigures] = {}

    def member(found) -> StaffFigures:
        user_id = found["user_id"]
        return staff.setdefault(user_id, StaffFigures(user_id=user_id, name=found["name"]))

    for found in staff_messages:
        figures = member(found)
        figures.replies = found["replies"]
        figures.internal_notes = found["internal_notes"]
        figures.answered = found["answered"]
    for found in staff_solved:
        member(found).solved = found["solved"]
    for found in staff_first:
        member(found).first_responses = _durations(found)

    received_on = {_as_date(found["day"]): found["received"] for found in per_day}
    days = [date.fromordinal(n) for n in range(first_day.toordinal(), last_day.toordinal() + 1)]
    busiest = [found for found in per_day if found["busiest"] <= BUSIEST_DAYS]
    busiest.sort(key=lambda found: (found["busiest"], found["day"]))
    return Stats(
        first_day=first_day,
        last_day=last_day,
        received=counts["received"],
        unanswered=counts["unanswered"],
        spam=counts["spam"],
        answered=messages["answered"],
        solved=counts["solved"],
        reopened=counts["reopened"],
        messages_from_customers=messages["from_customers"],
        messages_from_staff=messages["from_staff"],
        internal_notes=messages["internal_notes"],
        first_response=_durations(first_response),
        time_to_solve=_durations(time_to_solve),
        staff=sorted(staff.values(), key=lambda member: (-member.replies, member.name)),
        per_day=[(day, received_on.get(day, 0)) for day in days],
        busiest_days=[(_as_date(found["day"]), found["received"]) for found in busiest][
            :BUSIEST_DAYS
        ],
        weekday_hour={
            (found["weekday"], found["local_hour"]): found["received"] for found in weekday_hour
        },
        topics=counts["topics"],
        posts=counts["posts"],
        registrations=counts["registrations"],
    )


def _as_date(value) -> date:
    # A text query returns SQLite's dates as the stored text.
    return value if isinstance(value, date) else date.fromisoformat(value)


async def _ensure_calendar_for(
    db: Database, settings: Settings, start: datetime, end: datetime
) -> None:
    """Calendar rows for every moment the queries look up: conversations solved in the
    period may have started long before it, answers may come up to now."""
    first_conversation = await db.fetch_val(
        sa.text("SELECT MIN(created_at) FROM conversations WHERE kind = 'support'").columns(
            sa.column("first", sa.DateTime)
        )
    )
    first = min(start, first_conversation or start)
    last = max(end, utcnow())
    await ensure_calendar(db, settings.office, first, last)
