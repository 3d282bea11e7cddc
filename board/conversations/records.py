"""How the service reads what it is about to change, and what a reader has seen."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from databases import Database
from sqlalchemy.dialects import postgresql, sqlite

from board.db import conversations, messages, read_markers, request_types, users, utcnow
from board.security import STAFF_ROLES

from .summary import Said

Record = Any

assignee = users.alias("assignee")

# A conversation with the name of whoever looks after it and of its request type: what
# pages and services get.
CONVERSATION = sa.select(
    conversations,
    assignee.c.name.label("assignee_name"),
    request_types.c.name.label("type_name"),
).select_from(
    conversations.outerjoin(assignee, assignee.c.id == conversations.c.assignee_id).outerjoin(
        request_types, request_types.c.id == conversations.c.type_id
    )
)


async def conversation_by_id(db: Database, conversation_id: int) -> Record | None:
    return await db.fetch_one(CONVERSATION.where(conversations.c.id == conversation_id))


async def history(db: Database, conversation_id: int) -> list[Said]:
    """Every message of the conversation as the summary columns see it."""
    rows = await db.fetch_all(
        sa.select(
            messages.c.id,
            messages.c.author_id,
            messages.c.internal,
            messages.c.created_at,
            users.c.role,
        )
        .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
        .where(messages.c.conversation_id == conversation_id)
    )
    return [
        Said(row.id, row.author_id, row.role in STAFF_ROLES, row.internal, row.created_at)
        for row in rows
    ]


async def mark_read_up_to(db: Database, user_id: int, conversation_id: int, message_id: int):
    """The reader has seen the conversation up to `message_id`; never moves backwards."""
    dialect = postgresql if db.url.dialect == "postgresql" else sqlite
    statement = dialect.insert(read_markers).values(
        user_id=user_id,
        conversation_id=conversation_id,
        last_read_message_id=message_id,
        read_at=utcnow(),
    )
    greatest = sa.func.max if dialect is sqlite else sa.func.greatest
    statement = statement.on_conflict_do_update(
        index_elements=[read_markers.c.user_id, read_markers.c.conversation_id],
        set_={
            "last_read_message_id": greatest(
                read_markers.c.last_read_message_id, statement.excluded.last_read_message_id
            ),
            "read_at": statement.excluded.read_at,
        },
    )
    await db.execute(statement)
    # The customer's own marker, mirrored on the conversation for the unread badge.
    await db.execute(
        conversations.update()
        .where(
            conversations.c.id == conversation_id,
            conversations.c.customer_id == user_id,
            sa.func.coalesce(conversations.c.customer_read_message_id, 0) < message_id,
        )
        .values(customer_read_message_id=message_id)
    )
