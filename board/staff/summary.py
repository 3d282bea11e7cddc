"""The daily summary for staff: yesterday's figures of the queue, by mail to who asked."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

import sqlalchemy as sa
from databases import Database

from board import mail
from board.config import Settings
from board.db import conversation_events, conversations, messages, users, utcnow
from board.security import STAFF_ROLES
from board.staff.queries import QUEUE_KIND, count_waiting_since_before

PERIOD = timedelta(days=1)


async def figures(db: Database, settings: Settings, now: datetime) -> dict:
    """New, answered and solved requests of the last day, open and overdue ones now, and
    the median time to the first answer of the requests first answered in that day."""
    since = now - PERIOD
    support = conversations.c.kind == QUEUE_KIND
    staff = users.alias("staff")

    async def count(statement: sa.Select) -> int:
        return await db.fetch_val(statement) or 0

    new = await count(
        sa.select(sa.func.count()).where(support, conversations.c.created_at >= since)
    )
    answered = await count(
        sa.select(sa.func.count(sa.distinct(messages.c.conversation_id)))
        .select_from(
            messages.join(conversations, conversations.c.id == messages.c.conversation_id).join(
                staff, staff.c.id == messages.c.author_id
            )
        )
        .where(
            support,
            messages.c.created_at >= since,
            messages.c.internal.is_(False),
            staff.c.role.in_(STAFF_ROLES),
        )
    )
    solved = await count(
        sa.select(sa.func.count(sa.distinct(conversation_events.c.conversation_id))).where(
            conversation_events.c.action == "status",
            conversation_events.c.new_value == "solved",
            conversation_events.c.created_at >= since,
        )
    )
    still_open = await count(
        sa.select(sa.func.count()).where(support, conversations.c.status == "open")
    )
    overdue = await count_waiting_since_before(
        db, settings.office.moment_before(now, settings.wait_alert_hours)
    )
    first_answers = await db.fetch_all(
        sa.select(conversations.c.created_at, conversations.c.first_response_at).where(
            support, conversations.c.first_response_at >= since
        )
    )
    waits = [
        (row.first_response_at - row.created_at).total_seconds() / 3600 for row in first_answers
    ]
    return {
        "new": new,
        "answered": answered,
        "solved": solved,
        "open": still_open,
        "overdue": overdue,
        "median_first_response_hours": statistics.median(waits) if waits else None,
        "wait_alert_hours": settings.wait_alert_hours,
    }


async def queue_summary(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Queues the summary for every active staff member who chose it; returns how many.

    Call inside a write transaction: the daily job records its run in the same one.
    """
    now = now or utcnow()
    readers = await db.fetch_all(
        sa.select(users).where(
            users.c.role.in_(STAFF_ROLES),
            users.c.is_active.is_(True),
            users.c.daily_summary.is_(True),
        )
    )
    if not readers:
        return 0
    values = await figures(db, settings, now)
    for reader in readers:
        await mail.queue_for(db, "summary", reader, values)
    return len(readers)
