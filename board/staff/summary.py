"""The daily summaries for staff, by mail through the outbox: the team's figures of the last
day to who asked for them, and each staff member's own summary (on unless they turned it off):
the team's figures, their own answered, solved and first-response time, and the requests
waiting past the business-hours limit, with links. Figures and ticket numbers only: no
customer's text."""

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


OVERDUE_LISTED = 20  # the mail lists the longest-waiting ones and says how many there are


async def overdue_requests(db: Database, settings: Settings, now: datetime) -> list[dict]:
    """The open requests waiting past BOARD_WAIT_ALERT_HOURS, in the queue's order (VIP
    first, then the longest waiting: ix_conversations_waiting), with their business hours."""
    moment = settings.office.moment_before(now, settings.wait_alert_hours)
    rows = await db.fetch_all(
        sa.select(
            conversations.c.number, conversations.c.waiting_since, conversations.c.assignee_id
        )
        .where(
            conversations.c.kind == QUEUE_KIND,
            conversations.c.status == "open",
            conversations.c.waiting_since < moment,
        )
        .order_by(conversations.c.vip.desc(), conversations.c.waiting_since, conversations.c.id)
        .limit(OVERDUE_LISTED)
    )
    return [
        {
            "number": row.number,
            "waiting_hours": round(settings.office.hours_between(row.waiting_since, now), 1),
            "assignee_id": row.assignee_id,
        }
        for row in rows
    ]


async def personal_figures(db: Database, since: datetime) -> dict[int, dict]:
    """Per staff member since `since`: the requests they answered, those they marked solved,
    and the median first response of the requests they answered first. Three grouped
    queries, whatever the team's size."""
    support = conversations.c.kind == QUEUE_KIND
    found: dict[int, dict] = {}

    def of(user_id: int) -> dict:
        return found.setdefault(
            user_id, {"answered": 0, "solved": 0, "median_first_response_hours": None}
        )

    answered = await db.fetch_all(
        sa.select(messages.c.author_id, sa.func.count(sa.distinct(messages.c.conversation_id)))
        .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id))
        .where(support, messages.c.created_at >= since, messages.c.internal.is_(False))
        .group_by(messages.c.author_id)
    )
    for row in answered:
        if row[0] is not None:
            of(row[0])["answered"] = row[1]
    solved = await db.fetch_all(
        sa.select(
            conversation_events.c.actor_id,
            sa.func.count(sa.distinct(conversation_events.c.conversation_id)),
        )
        .where(
            conversation_events.c.action == "status",
            conversation_events.c.new_value == "solved",
            conversation_events.c.created_at >= since,
        )
        .group_by(conversation_events.c.actor_id)
    )
    for row in solved:
        if row[0] is not None:
            of(row[0])["solved"] = row[1]
    first_answers = await db.fetch_all(
        sa.select(
            messages.c.author_id, conversations.c.created_at, conversations.c.first_response_at
        )
        .select_from(
            conversations.join(
                messages,
                sa.and_(
                    messages.c.conversation_id == conversations.c.id,
                    messages.c.created_at == conversations.c.first_response_at,
                    messages.c.internal.is_(False),
                ),
            )
        )
        .where(support, conversations.c.first_response_at >= since)
    )
    waits: dict[int, list[float]] = {}
    for row in first_answers:
        hours = (row.first_response_at - row.created_at).total_seconds() / 3600
        waits.setdefault(row.author_id, []).append(hours)
    for user_id, hours in waits.items():
        if user_id is not None:
            of(user_id)["median_first_response_hours"] = statistics.median(hours)
    return found


async def queue_summary(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Queues the summaries; returns how many. Every active staff member gets their own
    unless they turned it off; who turned it off but chose the team's gets that one.

    Call inside a write transaction: the daily job records its run in the same one.
    """
    now = now or utcnow()
    readers = await db.fetch_all(
        sa.select(users).where(
            users.c.role.in_(STAFF_ROLES),
            users.c.is_active.is_(True),
            sa.or_(users.c.personal_summary.is_(True), users.c.daily_summary.is_(True)),
        )
    )
    if not readers:
        return 0
    values = await figures(db, settings, now)
    if any(reader.personal_summary for reader in readers):
        overdue = await overdue_requests(db, settings, now)
        own = await personal_figures(db, now - PERIOD)
    for reader in readers:
        if not reader.personal_summary:
            await mail.queue_for(db, "summary", reader, values)
            continue
        mine = own.get(reader.id) or {
            "answered": 0, "solved": 0, "median_first_response_hours": None,
        }  # fmt: skip
        personal = {
            **values,
            "personal": mine,
            "overdue_list": [{**row, "mine": row["assignee_id"] == reader.id} for row in overdue],
        }
        await mail.queue_for(db, "summary", reader, personal)
    return len(readers)
