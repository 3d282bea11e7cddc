"""The life of a conversation: status changes, assignment, the history of both.

open (waiting for staff) → a staff answer → pending (waiting for the customer) → the
customer writes → open again; staff set solved; a customer's message reopens a solved
conversation; spam hides it from the queue and blocks the guest's address. Every change
is written to the status history in the transaction that makes it, and every function
here expects to run inside a write transaction.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from databases import Database

from board import events, webhooks
from board.db import (
    absences,
    blocked_senders,
    conversation_events,
    conversations,
    staff_request_types,
    users,
    utcnow,
)
from board.notifications import queries as notifications
from board.security import STAFF_ROLES

STATUSES = ("open", "pending", "solved", "spam")


async def record_event(
    db: Database,
    conversation_id: int,
    actor_id: int | None,
    action: str,
    old_value: str | None,
    new_value: str | None,
    note: str = "",
    at: datetime | None = None,
) -> None:
    """One line of the status history. `actor_id` None: the customer, a guest or the system;
    `at` for a change that happened before now (imported mail)."""
    await db.execute(
        conversation_events.insert().values(
            conversation_id=conversation_id,
            actor_id=actor_id,
            action=action,
            old_value=old_value,
            new_value=new_value,
            note=note,
            created_at=at or utcnow(),
        )
    )
    # The staff queue on open pages shows the change (board/events.py).
    await events.record(
        db, "queue", {"action": action}, to_staff=True, conversation_id=conversation_id
    )


async def set_status(
    db: Database,
    conversation_id: int,
    actor_id: int | None,
    status: str,
    now: datetime | None = None,
    note: str = "",
) -> bool:
    """Moves the conversation to `status`; False when it already was there.

    `waiting_since` follows the status: an open conversation always has one (the queue
    sorts by it), every other status has none.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    now = now or utcnow()
    current = await db.fetch_one(
        sa.select(conversations.c.status, conversations.c.guest_email).where(
            conversations.c.id == conversation_id
        )
    )
    if current.status == status:
        return False
    waiting = sa.func.coalesce(conversations.c.waiting_since, now) if status == "open" else None
    await db.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        # A new pending period waits its own time for a reminder (board/conversations/
        # reminders.py); any other status ends the reminder's count.
        .values(status=status, waiting_since=waiting, reminded_at=None)
    )
    await record_event(db, conversation_id, actor_id, "status", current.status, status, note, now)
    if status == "solved":
        await webhooks.conversation_event(db, conversation_id, "conversation.solved")
    if current.guest_email:
        await _block_or_unblock_guest(db, conversation_id, actor_id, current.guest_email, status)
    return True


async def _block_or_unblock_guest(
    db: Database, conversation_id: int, actor_id: int | None, email: str, status: str
) -> None:
    """Spam from a guest blocks that address on /contact; taking the verdict back lifts it."""
    if status == "spam":
        exists = await db.fetch_val(
            sa.select(blocked_senders.c.email).where(blocked_senders.c.email == email)
        )
        if exists is None:
            await db.execute(
                blocked_senders.insert().values(
                    email=email,
                    conversation_id=conversation_id,
                    blocked_by=actor_id,
                    created_at=utcnow(),
                )
            )
    else:
        await db.execute(
            blocked_senders.delete().where(
                blocked_senders.c.email == email,
                blocked_senders.c.conversation_id == conversation_id,
            )
        )


async def is_blocked(db: Database, email: str) -> bool:
    found = await db.fetch_val(
        sa.select(blocked_senders.c.email).where(blocked_senders.c.email == email.lower())
    )
    return found is not None


async def assign(
    db: Database,
    conversation_id: int,
    actor_id: int | None,
    assignee_id: int | None,
    note: str = "",
    action: str = "assignee",
    *,
    opening: bool = False,
) -> bool:
    """Gives the conversation to `assignee_id` (None: nobody); False when nothing changed.

    `action` names the history line: "handover" when an absence moved it. `opening`: the
    first assignee of a new conversation, which its webhook event names."""
    current = await db.fetch_val(
        sa.select(conversations.c.assignee_id).where(conversations.c.id == conversation_id)
    )
    if current == assignee_id and not note:
        return False
    names = await _staff_names(db, {current, assignee_id} - {None})
    await db.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        .values(assignee_id=assignee_id)
    )
    await record_event(
        db,
        conversation_id,
        actor_id,
        action,
        names.get(current),
        names.get(assignee_id),
        note,
    )
    if assignee_id != current:
        await notifications.assigned(db, conversation_id, actor_id, assignee_id)
        if not opening:
            await webhooks.conversation_event(db, conversation_id, "conversation.reassigned")
    return True


async def is_active_staff(db: Database, user_id: int) -> bool:
    found = await db.fetch_val(
        sa.select(users.c.id).where(
            users.c.id == user_id, users.c.role.in_(STAFF_ROLES), users.c.is_active.is_(True)
        )
    )
    return found is not None


async def _staff_names(db: Database, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await db.fetch_all(sa.select(users.c.id, users.c.name).where(users.c.id.in_(ids)))
    return {row.id: row.name for row in rows}


async def next_in_rotation(db: Database, now: datetime, type_id: int | None = None) -> int | None:
    """Round-robin: the active, accepting, present staff member who was given one longest ago,
    the setup admin last.

    For a request of a type, those responsible for the type come first; when none of them
    is available, everyone else is, as without a type. An absence overrides the general
    availability for its period. The chosen one's turn is stamped at once, so the next new
    conversation goes to somebody else.
    """
    away = sa.select(absences.c.user_id).where(
        absences.c.starts_at <= now, absences.c.ends_at > now
    )
    # The account the first start created (the lowest admin id) runs the shop rather than
    # the queue: it takes its turn only while nobody else can.
    setup_admin = (
        sa.select(sa.func.min(users.c.id)).where(users.c.role == "admin").scalar_subquery()
    )
    order = [
        users.c.id == setup_admin,
        users.c.last_assigned_at.is_not(None),
        users.c.last_assigned_at,
        users.c.id,
    ]
    if type_id is not None:
        responsible = sa.exists().where(
            staff_request_types.c.user_id == users.c.id,
            staff_request_types.c.type_id == type_id,
        )
        order.insert(0, sa.not_(responsible))  # false sorts first: the responsible
    chosen = await db.fetch_val(
        sa.select(users.c.id)
        .where(
            users.c.role.in_(STAFF_ROLES),
            users.c.is_active.is_(True),
            users.c.accepting.is_(True),
            users.c.id.not_in(away),
        )
        .order_by(*order)
        .limit(1)
    )
    if chosen is not None:
        await db.execute(users.update().where(users.c.id == chosen).values(last_assigned_at=now))
    return chosen
