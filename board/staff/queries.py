"""Every SQL statement of the staff queue: the queue, one conversation, answers, assignment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from databases import Database

from board.db import absences, conversation_events, fetch_rows, users, utcnow

Record = Any
STATUSES = ("open", "pending", "solved", "spam")


# --- team availability -------------------------------------------------------------------


async def current_absences(db: Database, now: datetime | None = None) -> dict[int, Record]:
    """Staff away right now, by user id, each with the absence that ends last."""
    now = now or utcnow()
    rows = await fetch_rows(
        db,
        sa.select(absences)
        .where(absences.c.starts_at <= now, absences.c.ends_at > now)
        .order_by(absences.c.ends_at),
    )
    return {row.user_id: row for row in rows}


async def record_event(
    db: Database,
    conversation_id: int,
    actor_id: int | None,
    action: str,
    old_value: str | None,
    new_value: str | None,
    note: str = "",
) -> None:
    """One line of the status history; written in the transaction of the change itself."""
    await db.execute(
        conversation_events.insert().values(
            conversation_id=conversation_id,
            actor_id=actor_id,
            action=action,
            old_value=old_value,
            new_value=new_value,
            note=note,
            created_at=utcnow(),
        )
    )


async def active_staff(db: Database) -> list[Record]:
    return await fetch_rows(
        db,
        sa.select(users.c.id, users.c.name, users.c.title, users.c.role, users.c.accepting)
        .where(users.c.role.in_(("staff", "admin")), users.c.is_active.is_(True))
        .order_by(users.c.name),
    )
