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


def _percentile_in_group(value: str, share: float) -> str:
    """The `share` percentile of `value` within a group, linearly between the two rows
    around position share × (n - 1) of the group's ranks (numbered in `_durations_sql`).
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


def _percentile_of_all(value: str, share: float) -> str:
    """The same over all rows of `durations`: the two values around the position are read
    with ORDER BY … LIMIT 2 OFFSET, cheaper in SQLite than numbering every row."""
    position = f"({share} * (SELECT last_rank FROM size))"
    below = f"CAST({position} AS INTEGER)"
    return (
        f"(SELECT MIN(v) + (MAX(v) - MIN(v)) * ({position} - {below})"
        f" FROM (SELECT {value} AS v FROM durations ORDER BY {value} LIMIT 2 OFFSET {below}))"
    )


def _durations_sql(durations: str, by: str | None = None) -> str:
    """Count, median and 90th percentile of the `calendar` and `business` hours of the
    `durations` query: one row for all (`scope` 'all'), then with `by` one per value of
    that column (`scope` 'group', the value in `grp`)."""
    per_group = (
        f"""
    UNION ALL
    SELECT 'group', grp, COUNT(*),
        {_percentile_in_group("calendar", 0.5)}, {_percentile_in_group("calendar", 0.9)},
        {_percentile_in_group("business", 0.5)}, {_percentile_in_group("business", 0.9)}
    FROM (
        SELECT {by} AS grp, calendar, business,
            ROW_NUMBER() OVER (PARTITION BY {by} ORDER BY calendar) - 1 AS calendar_rank,
            ROW_NUMBER() OVER (PARTITION BY {by} ORDER BY business) - 1 AS business_rank,
            COUNT(*) OVER (PARTITION BY {by}) - 1 AS last_rank
        FROM durations
    ) ranked
    GROUP BY grp"""
        if by
        else ""
    )
    return f"""
    WITH durations AS MATERIALIZED ({durations}),
    size AS MATERIALIZED (SELECT COUNT(*) - 1 AS last_rank FROM durations)
    SELECT 'all' AS scope, NULL AS grp, (SELECT last_rank + 1 FROM size) AS count,
        {_percentile_of_all("calendar", 0.5)} AS calendar_median,
        {_percentile_of_all("calendar", 0.9)} AS calendar_p90,
        {_percentile_of_all("business", 0.5)} AS business_median,
        {_percentile_of_all("business", 0.9)} AS business_p90
    {per_group}
    """


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
# it: the staff answer written at that moment (ix_messages_created finds it).
_FIRST_RESPONSES = _durations_sql(
    f"""
    SELECT COALESCE(m.author_id, 0) AS responder,
        {_hours_between("r.created_at", "r.first_response_at")} AS calendar,
        {_business_hours_between("r.created_at", "r.first_response_at")} AS business
    FROM ({RECEIVED}) r
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("r.created_at")}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("r.first_response_at")}
    LEFT JOIN messages m ON m.created_at = r.first_response_at AND m.conversation_id = r.id
        AND NOT m.internal AND +m.author_id IN {STAFF_IDS}
    WHERE r.first_response_at IS NOT NULL
    """,
    by="responder",
)
FIRST_RESPONSES = f"""
    SELECT f.*, u.name FROM ({_FIRST_RESPONSES}) f LEFT JOIN users u ON u.id = f.grp
"""

# Every request marked solved in the period, until the last time it was.
TIMES_TO_SOLVE = _durations_sql(
    f"""
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
)

COUNTS = f"""
    SELECT
        (SELECT COUNT(*) FROM ({RECEIVED})) AS received,
        (SELECT COUNT(*) FROM ({RECEIVED}) WHERE first_response_at IS NULL) AS unanswered,
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

# The period's messages in one pass: per staff member (NULL: customers and guests) and
# internal or not, with how many conversations each row touched; `answered` counts the
# conversations with any staff answer once.
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
        FROM written GROUP BY staff_id, internal
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

# Received requests per hour of UTC first (in index order), then by the calendar's local day
# or weekday and hour: a few thousand calendar lookups instead of one per conversation.
_RECEIVED_PER_HOUR = f"""
    WITH per_hour AS MATERIALIZED (
        SELECT {_hour_of("created_at")} AS hour, COUNT(*) AS received
        FROM ({RECEIVED}) GROUP BY 1
    )
"""

PER_DAY = f"""
    {_RECEIVED_PER_HOUR}
    SELECT h.day, SUM(p.received) AS received,
        RANK() OVER (ORDER BY SUM(p.received) DESC) AS busiest
    FROM per_hour p JOIN stats_hours h ON h.hour = p.hour
    GROUP BY h.day
    ORDER BY h.day
"""

WEEKDAY_HOUR = f"""
    {_RECEIVED_PER_HOUR}
    SELECT h.weekday, h.local_hour, SUM(p.received) AS received
    FROM per_hour p JOIN stats_hours h ON h.hour = p.hour
    GROUP BY h.weekday, h.local_hour
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


async def compute(db: Database, settings: Settings, period: Period) -> Stats:
    """The figures for the local days of `period`."""
    first_day, last_day, start, end = period.first_day, period.last_day, period.start, period.end
    await _ensure_calendar_for(db, settings)

    async def lane(*queries: str) -> list[list]:
        # A task of its own holds a connection of its own (`databases` keys them by task).
        async with db.connection():
            return [await db.fetch_all(_query(sql, start, end)) for sql in queries]

    # Two lanes side by side, one per core: the heavy queries split between them, and the
    # pool keeps connections free for everyone else.
    (
        (first_responses, counts, solved_by, per_day),
        (written, times_to_solve, weekday_hour),
    ) = await asyncio.gather(
        lane(FIRST_RESPONSES, COUNTS, STAFF_SOLVED, PER_DAY),
        lane(MESSAGES, TIMES_TO_SOLVE, WEEKDAY_HOUR),
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
    first_response = Durations()
    for found in first_responses:
        if found["scope"] == "all":
            first_response = _durations(found)
        elif found["name"] is not None:  # grp 0: no staff answer at that moment
            member(found["grp"], found["name"]).first_responses = _durations(found)
    time_to_solve = _durations(times_to_solve[0] if times_to_solve else None)

    received_on = {_as_date(found["day"]): found["received"] for found in per_day}
    days = [date.fromordinal(n) for n in range(first_day.toordinal(), last_day.toordinal() + 1)]
    busiest = sorted(
        (found for found in per_day if found["busiest"] <= BUSIEST_DAYS),
        key=lambda found: (found["busiest"], found["day"]),
    )[:BUSIEST_DAYS]
    return Stats(
        first_day=first_day,
        last_day=last_day,
        received=counts["received"],
        unanswered=counts["unanswered"],
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
        busiest_days=[(_as_date(found["day"]), found["received"]) for found in busiest],
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
