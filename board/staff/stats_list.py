"""The requests of a statistics period, one row each: pages for the statistics page (keyset
pagination on ix_conversations_period) and batches for its CSV export (streamed).

PERIOD_COLUMNS is the one place that says what a row holds: the page's table, the CSV's
header and its cells all follow it. A column is added there with its SQL expression.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from databases import Database

from board.db import conversation_events, conversations, request_types, users
from board.staff.stats import Period
from board.staff.stats import _plain_rows as plain_rows

PAGE_SIZE = 50
EXPORT_BATCH = 1_000  # rows held at once while the CSV streams


def N_(message: str) -> str:
    """Marks a message id for extraction; the template translates it where it is shown."""
    return message


assignee = users.alias("assignee")
request_type_name = (
    sa.select(request_types.c.name)
    .where(request_types.c.id == conversations.c.type_id)
    .scalar_subquery()
)
last_solved = (
    sa.select(sa.func.max(conversation_events.c.created_at))
    .where(
        conversation_events.c.conversation_id == conversations.c.id,
        # `action || ''`: read through the row's own few changes (its conversation's index),
        # not every status change in ix_conversation_events_action, which SQLite's planner
        # took for `action = 'status'` (5 ms a row, minutes for an export).
        conversation_events.c.action.concat("") == "status",
        conversation_events.c.new_value == "solved",
    )
    .scalar_subquery()
)


@dataclass(frozen=True)
class ListColumn:
    key: str  # the CSV header and the row's attribute
    label: str  # English message id, translated by the page
    kind: str  # how it is shown: ticket, status, time, text
    expression: sa.ColumnElement


PERIOD_COLUMNS: tuple[ListColumn, ...] = (
    ListColumn("number", N_("Ticket"), "ticket", conversations.c.number),
    ListColumn("type", N_("Request type"), "text", request_type_name),
    ListColumn("order_number", N_("Order number"), "text", conversations.c.order_number),
    ListColumn("status", N_("Status"), "status", conversations.c.status),
    ListColumn("created_at", N_("Received"), "time", conversations.c.created_at),
    ListColumn(
        "first_response_at", N_("First response"), "time", conversations.c.first_response_at
    ),
    ListColumn("solved_at", N_("Last solved"), "time", last_solved),
    ListColumn("last_message_at", N_("Last message"), "time", conversations.c.last_message_at),
    ListColumn("assignee", N_("Assignee"), "text", assignee.c.name),
)


def _rows_after(period: Period, after: tuple | None, limit: int) -> sa.Select:
    """The period's requests (spam included: its status says so) in the order they came,
    from the one after `after` = (created_at, id)."""
    statement = (
        sa.select(
            *(column.expression.label(column.key) for column in PERIOD_COLUMNS),
            conversations.c.id.label("row_id"),
            conversations.c.created_at.label("row_created_at"),
        )
        .select_from(
            conversations.outerjoin(assignee, assignee.c.id == conversations.c.assignee_id)
        )
        .where(
            conversations.c.kind == "support",
            conversations.c.created_at >= period.start,
            conversations.c.created_at < period.end,
        )
        .order_by(conversations.c.created_at, conversations.c.id)
        .limit(limit)
    )
    if after is not None:
        created_at, row_id = after
        statement = statement.where(
            sa.or_(
                conversations.c.created_at > created_at,
                sa.and_(conversations.c.created_at == created_at, conversations.c.id > row_id),
            )
        )
    return statement


@dataclass(frozen=True)
class PeriodPage:
    rows: list
    next_after: int | None  # the id to continue after; None on the last page


async def period_page(db: Database, period: Period, after: int | None) -> PeriodPage:
    """A page of the period's requests after the request `after` (an id); the first page
    when it is None or names no request."""
    position = None
    if after is not None:
        found = await db.fetch_one(
            sa.select(conversations.c.created_at, conversations.c.id).where(
                conversations.c.id == after
            )
        )
        position = (found.created_at, found.id) if found else None
    rows = await db.fetch_all(_rows_after(period, position, PAGE_SIZE + 1))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return PeriodPage(rows=rows, next_after=rows[-1].row_id if more else None)


async def period_batches(
    db: Database, period: Period, batch: int = EXPORT_BATCH
) -> AsyncIterator[list[tuple]]:
    """All the period's requests, `batch` rows at a time, as plain tuples in the order of
    PERIOD_COLUMNS (the driver's values: SQLite's times as text). Memory stays bounded
    however long the period, and each query is short: no transaction is held open while
    the client reads."""
    position = None
    while True:
        async with db.connection() as connection:
            rows = await plain_rows(connection, _rows_after(period, position, batch))
        if not rows:
            return
        yield [row[: len(PERIOD_COLUMNS)] for row in rows]
        if len(rows) < batch:
            return
        row_id, created_at = rows[-1][len(PERIOD_COLUMNS) :]
        if isinstance(created_at, str):
            created_at = datetime.fromisoformat(created_at)
        position = (created_at, row_id)
