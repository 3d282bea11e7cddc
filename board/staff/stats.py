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
import asyncpg
import asyncpg.pool
import sqlalchemy as sa
from databases import Database
from databases.core import Connection
from sqlalchemy.dialects import postgresql, sqlite

from board.config import Settings
from board.db import stats_hours, users, utcnow, write_transaction
from board.security import STAFF_ROLES
from board.staff.calendar import ensure_calendar, schedule_of

BUSIEST_DAYS = 5
SQLITE = sqlite.dialect()
POSTGRESQL = postgresql.asyncpg.dialect()

# --- SQL pieces, in each database's spelling --------------------------------------------
#
# Each piece takes the dialect's name ("sqlite" or "postgresql"). SQLite keeps its own
# spelling, the one bench/stats.sh measures; PostgreSQL gets the same figures in its own:
# timestamps there are `timestamp without time zone` (UTC), not text.


def _hour_of(moment: str, dialect: str) -> str:
    """The `stats_hours` key of a stored timestamp ("2026-11-23 14:05:06.123" → "… 14")."""
    if dialect == "postgresql":
        return f"to_char({moment}, 'YYYY-MM-DD HH24')"
    return f"substr({moment}, 1, 13)"


def _seconds_into_hour(moment: str, dialect: str) -> str:
    """Whole seconds since the start of the hour (fractions dropped)."""
    if dialect == "postgresql":
        return (
            f"(CAST(EXTRACT(MINUTE FROM {moment}) AS integer) * 60"
            f" + CAST(FLOOR(EXTRACT(SECOND FROM {moment})) AS integer))"
        )
    return (
        f"(CAST(substr({moment}, 15, 2) AS INTEGER) * 60"
        f" + CAST(substr({moment}, 18, 2) AS INTEGER))"
    )


def _least(first: str, second: str, dialect: str) -> str:
    return f"LEAST({first}, {second})" if dialect == "postgresql" else f"MIN({first}, {second})"


def _greatest(first: str, second: str, dialect: str) -> str:
    return f"GREATEST({first}, {second})" if dialect == "postgresql" else f"MAX({first}, {second})"


def _open_seconds(moment: str, hour: str, dialect: str) -> str:
    """Open seconds from the calendar's start until `moment`, whose hour row is `hour`."""
    into_hour = _seconds_into_hour(moment, dialect)
    clamped = _least(
        _greatest(into_hour, f"{hour}.open_from", dialect), f"{hour}.open_until", dialect
    )
    return f"({hour}.business_before + {clamped} - {hour}.open_from)"


def _is_staff(role: str) -> str:
    return f"({role} IN ({', '.join(repr(name) for name in STAFF_ROLES)}))"


def _hours_between(start: str, end: str, dialect: str) -> str:
    if dialect == "postgresql":
        # EXTRACT gives numeric (Decimal in Python): as a double, like SQLite's.
        return f"(CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS double precision) / 3600.0)"
    return f"((julianday({end}) - julianday({start})) * 24.0)"


def _business_hours_between(start: str, end: str, dialect: str) -> str:
    """Joins `start_hour` and `end_hour` to the calendar in the query that uses it."""
    seconds = (
        f"{_open_seconds(end, 'end_hour', dialect)} - {_open_seconds(start, 'start_hour', dialect)}"
    )
    if dialect == "postgresql":
        # integer / 3600.0 would be numeric there: a double, like SQLite's.
        return f"(CAST({seconds} AS double precision) / 3600.0)"
    return f"(({seconds}) / 3600.0)"


def _in_period(column: str) -> str:
    return f"{column} >= :start AND {column} < :end"


def _unindexed(column: str, dialect: str) -> str:
    """SQLite's "+": the term is checked on the rows found, no index looked up for it.
    PostgreSQL's planner weighs the indexes by its statistics and needs no such hint."""
    return f"+{column}" if dialect == "sqlite" else column


def _false(dialect: str) -> str:
    return "FALSE" if dialect == "postgresql" else "0"


def _count_where(condition: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"COUNT(*) FILTER (WHERE {condition})"
    return f"SUM({condition})"


def _named(alias: str, dialect: str) -> str:
    """A subquery in FROM needs a name on PostgreSQL (before 16)."""
    return f" AS {alias}" if dialect == "postgresql" else ""


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


@dataclass(frozen=True)
class Queries:
    """The statistics' queries in one database's spelling."""

    first_responses: str
    times_to_solve: str
    counts: str
    messages: str
    staff_solved: str
    received_per_hour: str
    received_per_type: str


def queries_for(dialect: str) -> Queries:
    request_of_message = _unindexed("conversation_id", dialect)
    return Queries(
        # How long each request received in the period waited for its first answer, and
        # who gave it: the staff answer written at that moment (ix_messages_created finds
        # it). One row per request; the percentiles are taken in Python (`_durations`).
        first_responses=f"""
    SELECT COALESCE(m.author_id, 0) AS responder,
        {_hours_between("r.created_at", "r.first_response_at", dialect)} AS calendar,
        {_business_hours_between("r.created_at", "r.first_response_at", dialect)} AS business
    FROM ({RECEIVED}) r
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("r.created_at", dialect)}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("r.first_response_at", dialect)}
    LEFT JOIN messages m ON m.created_at = r.first_response_at AND m.conversation_id = r.id
        AND NOT m.internal AND {_unindexed("m.author_id", dialect)} IN {STAFF_IDS}
    WHERE r.first_response_at IS NOT NULL
""",
        # Every request marked solved in the period, until the last time it was: one row each.
        times_to_solve=f"""
    SELECT {_hours_between("c.created_at", "s.solved_at", dialect)} AS calendar,
        {_business_hours_between("c.created_at", "s.solved_at", dialect)} AS business
    FROM (
        SELECT conversation_id, MAX(created_at) AS solved_at FROM conversation_events
        WHERE action = 'status' AND {_in_period("created_at")} AND new_value = 'solved'
            AND conversation_id IN {SUPPORT_IDS}
        GROUP BY conversation_id
    ) s
    JOIN conversations c ON c.id = s.conversation_id
    JOIN stats_hours start_hour ON start_hour.hour = {_hour_of("c.created_at", dialect)}
    JOIN stats_hours end_hour ON end_hour.hour = {_hour_of("s.solved_at", dialect)}
""",
        counts=f"""
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
""",
        # The period's messages in one pass: per staff member and internal or not, with how
        # many conversations each row touched, then one row for customers and guests
        # (staff_id NULL), whose conversations need no telling apart; `answered` counts the
        # conversations with any staff answer once.
        messages=f"""
    WITH written AS MATERIALIZED (
        SELECT conversation_id, internal,
            CASE WHEN author_id IN {STAFF_IDS} THEN author_id END AS staff_id
        FROM messages
        -- "+": find the period's rows by ix_messages_created, then check the set.
        WHERE {_in_period("created_at")} AND {request_of_message} IN {SUPPORT_IDS}
    ),
    grouped AS (
        SELECT staff_id, internal, COUNT(*) AS messages,
            COUNT(DISTINCT conversation_id) AS conversations
        FROM written WHERE staff_id IS NOT NULL GROUP BY staff_id, internal
        UNION ALL
        SELECT NULL, {_false(dialect)}, COUNT(*), NULL FROM written WHERE staff_id IS NULL
    )
    SELECT g.staff_id, u.name, g.internal, g.messages, g.conversations,
        (SELECT COUNT(DISTINCT conversation_id) FROM written
            WHERE staff_id IS NOT NULL AND NOT internal) AS answered
    FROM grouped g LEFT JOIN users u ON u.id = g.staff_id
""",
        staff_solved=f"""
    SELECT e.actor_id AS user_id, u.name, COUNT(DISTINCT e.conversation_id) AS solved
    FROM conversation_events e
    JOIN users u ON u.id = e.actor_id
    WHERE e.action = 'status' AND {_in_period("e.created_at")} AND e.new_value = 'solved'
        AND e.conversation_id IN {SUPPORT_IDS}
    GROUP BY e.actor_id, u.name
""",
        # The period's new requests per hour of UTC (counted in index order), each with its
        # local day, weekday and hour from the calendar: at most 24 rows a day, summed up in
        # Python into days and the weekday × hour table, instead of one calendar lookup per
        # conversation.
        received_per_hour=f"""
    WITH per_hour AS MATERIALIZED (
        SELECT {_hour_of("created_at", dialect)} AS hour, COUNT(*) AS received,
            {_count_where("first_response_at IS NULL", dialect)} AS unanswered
        FROM ({RECEIVED}){_named("received", dialect)} GROUP BY 1
    )
    SELECT h.day, h.weekday, h.local_hour, p.received, p.unanswered
    FROM per_hour p JOIN stats_hours h ON h.hour = p.hour
""",
        # The period's new requests per request type (none: NULL), and how many of them
        # named an order number; deactivated types are counted under their name too.
        received_per_type=f"""
    SELECT r.type_id, t.name, COUNT(*) AS received, COUNT(r.order_number) AS with_order
    FROM (
        SELECT type_id, order_number FROM conversations
        WHERE kind = 'support' AND status != 'spam' AND {_in_period("created_at")}
    ) AS r
    LEFT JOIN request_types t ON t.id = r.type_id
    GROUP BY r.type_id, t.name
""",
    )


SPELLINGS = {"sqlite": queries_for("sqlite"), "postgresql": queries_for("postgresql")}


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


@dataclass(frozen=True)
class TypeFigures:
    """The period's new requests of one request type (name None: without a type)."""

    name: str | None
    received: int
    with_order_number: int


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
    per_type: list[TypeFigures]  # the busiest type first; requests without a type last
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
    """The figures for the local days of `period`, exactly, from the messages and the status
    history: about a second per year of 50,000 conversations. The page sums the daily
    aggregates instead (board/staff/stats_days.py); tests compare the two."""
    first_day, last_day, start, end = period.first_day, period.last_day, period.start, period.end
    sql = SPELLINGS[db.url.dialect]
    await ensure_calendar_for(db, settings)

    async def lane(*queries: str) -> list[list]:
        # A task of its own holds a connection of its own (`databases` keys them by task).
        async with db.connection() as connection:
            found = []
            for text in queries:
                query = _query(text, start, end)
                if text in ROW_PER_REQUEST:
                    found.append(await _plain_rows(connection, query))
                else:
                    found.append(await connection.fetch_all(query))
            return found

    # Two lanes side by side, one per core, about even in cost (bench/stats.sh): the pool
    # keeps connections free for everyone else.
    (
        (first_responses, times_to_solve, received_per_hour),
        (written, solved_by, counts, received_per_type),
    ) = await asyncio.gather(
        lane(sql.first_responses, sql.times_to_solve, sql.received_per_hour),
        lane(sql.messages, sql.staff_solved, sql.counts, sql.received_per_type),
    )
    per_type = _per_type(received_per_type)
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
        per_type=per_type,
        topics=counts["topics"],
        posts=counts["posts"],
        registrations=counts["registrations"],
    )


# The queries that hand over many rows (one per request, or per hour) rather than totals.
ROW_PER_REQUEST = frozenset(
    text
    for queries in SPELLINGS.values()
    for text in (queries.first_responses, queries.times_to_solve, queries.received_per_hour)
)


async def _plain_rows(connection: Connection, query: sa.TextClause) -> list[tuple]:
    """The rows as plain tuples, straight from the driver: for the year's tens of thousands
    of rows, `databases` wrapping each row in two objects took longer than the query itself
    on SQLite (bench/stats.sh), and in the event loop's thread, where the two lanes cannot
    overlap. On PostgreSQL too it wraps each row in an object (25 ms for 50,000 rows)."""
    raw = connection.raw_connection
    if isinstance(raw, aiosqlite.Connection):
        statement, arguments = _for_driver(query, SQLITE)
        return list(await raw.execute_fetchall(statement, arguments))
    if isinstance(raw, (asyncpg.Connection, asyncpg.pool.PoolConnectionProxy)):
        statement, arguments = _for_driver(query, POSTGRESQL)
        return [tuple(row) for row in await raw.fetch(statement, *arguments)]
    # A `databases` Record iterates over its keys: its mapping holds the values.
    return [tuple(record._mapping) for record in await connection.fetch_all(query)]


def _for_driver(query: sa.TextClause, dialect: sa.Dialect) -> tuple[str, list]:
    """The statement in the driver's parameter style, and its arguments in order."""
    compiled = query.compile(dialect=dialect)
    arguments = []
    for name in compiled.positiontup:
        bind_type = compiled.binds[name].type.dialect_impl(dialect)
        to_driver = bind_type.bind_processor(dialect)
        value = compiled.params[name]
        arguments.append(to_driver(value) if to_driver else value)
    return compiled.string, arguments


async def _names_of(db: Database, user_ids: set[int]) -> list:
    if not user_ids:
        return []
    return await db.fetch_all(sa.select(users.c.id, users.c.name).where(users.c.id.in_(user_ids)))


def _as_date(value) -> date:
    # A text query returns SQLite's dates as the stored text.
    return value if isinstance(value, date) else date.fromisoformat(value)


async def ensure_calendar_for(db: Database, settings: Settings) -> None:
    """Calendar rows for every moment the queries look up, which all lie between the first
    request and now (a request solved in the period may have started long before it). The
    period's own ends do not matter: hours without conversations are never looked up.

    When the time zone or the opening hours changed, every day's aggregates are stale (their
    local days and business hours): all hours are marked for the stats task."""
    first_conversation = await db.fetch_val(
        sa.text("SELECT MIN(created_at) FROM conversations WHERE kind = 'support'").columns(
            sa.column("first", sa.DateTime)
        )
    )
    if first_conversation is None:
        return
    built_for = await db.fetch_val(sa.select(sa.func.min(stats_hours.c.schedule)))
    await ensure_calendar(db, settings.office, first_conversation, utcnow())
    if built_for is not None and built_for != schedule_of(settings.office):
        async with write_transaction(db):
            hour_of = _hour_of("created_at", db.url.dialect)
            await db.execute(
                sa.text(
                    "INSERT INTO stats_dirty (hour) "
                    + " UNION ".join(
                        f"SELECT {hour_of} FROM {table}"
                        for table in (
                            "conversations",
                            "messages",
                            "conversation_events",
                            "topics",
                            "posts",
                            "users",
                        )
                    )
                )
            )


@dataclass
class FirstResponses:
    team: Durations
    by_staff: dict[int, Durations]


def _per_type(found_rows) -> list[TypeFigures]:
    """The busiest type first; requests without a type last."""
    return sorted(
        (
            TypeFigures(
                found["name"] if found["type_id"] is not None else None,
                found["received"],
                found["with_order"],
            )
            for found in found_rows
        ),
        key=lambda figures: (figures.name is None, -figures.received, figures.name or ""),
    )


async def received_per_type(db: Database, period: Period) -> list[TypeFigures]:
    """The period's new requests per request type, counted from the conversations (one
    grouped read of the period's rows; the daily aggregates keep no types)."""
    sql = SPELLINGS[db.url.dialect]
    async with db.connection() as connection:
        found = await connection.fetch_all(_query(sql.received_per_type, period.start, period.end))
    return _per_type(found)


async def exact_durations(
    db: Database, period: Period, first_responses: bool, times_to_solve: bool
) -> tuple[FirstResponses | None, Durations | None]:
    """The period's first responses and times to solve from the real values: for periods
    with few of them (stats_days.EXACT_DURATIONS), where a sort costs little."""
    sql = SPELLINGS[db.url.dialect]
    first = solve = None
    async with db.connection() as connection:
        if first_responses:
            rows = await _plain_rows(
                connection, _query(sql.first_responses, period.start, period.end)
            )
            measured_by: dict[int, list[tuple[float, float]]] = {}
            for responder, calendar, business in rows:
                measured_by.setdefault(responder, []).append((calendar, business))
            team = _durations([pair for pairs in measured_by.values() for pair in pairs])
            measured_by.pop(0, None)
            first = FirstResponses(
                team, {user_id: _durations(pairs) for user_id, pairs in measured_by.items()}
            )
        if times_to_solve:
            rows = await _plain_rows(
                connection, _query(sql.times_to_solve, period.start, period.end)
            )
            solve = _durations(rows)
    return first, solve
