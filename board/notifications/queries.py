"""Every SQL statement of the notification centre: writing notifications where things
happen, the header bell, the list with its search, and marking them read.

The writers run inside the caller's write transaction (answers, announcements, invoice
notices, new conversations, assignment), each with one live event per audience
(board/events.py), so open pages learn of the notification as it is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from board import events
from board.db import Query, conversations, fetch_rows, notifications, users, utcnow
from board.security import STAFF_ROLES

Record = Any
CUSTOMER_KINDS = ("answer", "announcement", "invoice")
STAFF_KINDS = ("new_conversation", "assigned")
BELL_SIZE = 5
NUMBER_DIGITS = 9  # a longer run of digits is no ticket number (and no SQLite integer)


# --- writing -----------------------------------------------------------------------------


async def _notify(db: Database, user_id: int, kind: str, conversation_id: int) -> None:
    await db.execute(
        notifications.insert().values(
            user_id=user_id, kind=kind, conversation_id=conversation_id, created_at=utcnow()
        )
    )
    await events.record(db, "notification", to_user=user_id)


async def answered(db: Database, conversation_id: int, customer_id: int) -> None:
    """Staff answered the customer publicly: whatever their mail setting, it is news."""
    await _notify(db, customer_id, "answer", conversation_id)


async def invoiced(db: Database, conversation: Record) -> None:
    await _notify(db, conversation.customer_id, "invoice", conversation.id)


async def assigned(
    db: Database, conversation_id: int, actor_id: int | None, assignee_id: int | None
) -> None:
    """The conversation went to `assignee_id`; news to them unless they took it themselves."""
    if assignee_id is None or assignee_id == actor_id:
        return
    await _notify(db, assignee_id, "assigned", conversation_id)


async def announced(db: Database, first_number: int) -> None:
    """One notification per announcement conversation numbered from `first_number`, in
    one statement however many customers there are."""
    now = utcnow()
    rows = sa.select(
        conversations.c.customer_id,
        sa.literal("announcement").label("kind"),
        conversations.c.id,
        sa.literal(now, sa.DateTime).label("created_at"),
    ).where(
        conversations.c.number >= first_number,
        conversations.c.kind == "announcement",
        conversations.c.customer_id.is_not(None),
    )
    await db.execute(
        notifications.insert().from_select(
            ["user_id", "kind", "conversation_id", "created_at"], rows
        )
    )
    await events.record(db, "notification", to_customers=True)


async def new_conversation(db: Database, conversation_id: int) -> None:
    """A customer or guest opened a conversation: news for every active staff member."""
    now = utcnow()
    staff = sa.select(
        users.c.id,
        sa.literal("new_conversation").label("kind"),
        sa.literal(conversation_id).label("conversation_id"),
        sa.literal(now, sa.DateTime).label("created_at"),
    ).where(users.c.role.in_(STAFF_ROLES), users.c.is_active.is_(True))
    await db.execute(
        notifications.insert().from_select(
            ["user_id", "kind", "conversation_id", "created_at"], staff
        )
    )
    await events.record(db, "notification", to_staff=True)


# --- reading -----------------------------------------------------------------------------


def _listed() -> sa.Select:
    """A notification as lists show it: with the number, subject and kind of its
    conversation."""
    return sa.select(
        notifications.c.id,
        notifications.c.kind,
        notifications.c.created_at,
        notifications.c.read_at,
        notifications.c.conversation_id,
        conversations.c.number,
        conversations.c.subject,
        conversations.c.subject_cut,
        conversations.c.kind.label("conversation_kind"),
    ).select_from(
        notifications.join(conversations, conversations.c.id == notifications.c.conversation_id)
    )


def _unread_of(user_id: int) -> sa.Select:
    # Matches the partial index ix_notifications_unread.
    return (
        sa.select(sa.func.count())
        .select_from(notifications)
        .where(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))
    )


async def unread_count(db: Database, user_id: int) -> int:
    return (await fetch_rows(db, _unread_of(user_id)))[0][0]


async def latest(db: Database, user_id: int, limit: int = BELL_SIZE) -> list[Record]:
    """The newest notifications, newest first."""
    return await fetch_rows(
        db,
        _listed()
        .where(notifications.c.user_id == user_id)
        .order_by(notifications.c.id.desc())
        .limit(limit),
    )


@dataclass(frozen=True)
class Bell:
    """The header's bell: how many are unread, and the newest few."""

    unread_count: int
    latest: list[Record]


# The newest notifications, each row carrying the unread count: the header bell in one
# query on every page.
BELL = Query(
    _listed()
    .add_columns(_unread_of(sa.bindparam("user_id")).scalar_subquery().label("unread_count"))
    .where(notifications.c.user_id == sa.bindparam("user_id"))
    .order_by(notifications.c.id.desc())
    .limit(BELL_SIZE)
)


async def bell(db: Database, user_id: int) -> Bell:
    """No rows means no notifications at all, so none unread either."""
    rows = await BELL.rows(db, user_id=user_id)
    return Bell(rows[0].unread_count if rows else 0, rows)


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(query: str) -> sa.ColumnElement[bool]:
    """`#1042` is a ticket number; `1042` the number or a word of the subject; other
    words must each appear in the subject (any case)."""
    query = query.strip()
    digits = query.removeprefix("#")
    if digits.isdigit() and len(digits) <= NUMBER_DIGITS:
        by_number = conversations.c.number == int(digits)
        if query.startswith("#"):
            return by_number
        return sa.or_(by_number, conversations.c.subject.ilike(_like_pattern(digits), escape="\\"))
    words = query.split()[:8]
    return sa.and_(
        sa.true(),
        *(conversations.c.subject.ilike(_like_pattern(word), escape="\\") for word in words),
    )


def _mine(user_id: int, query: str) -> sa.ColumnElement[bool]:
    conditions = [notifications.c.user_id == user_id]
    if query:
        conditions.append(search_condition(query))
    return sa.and_(*conditions)


async def notifications_page(
    db: Database, user_id: int, query: str, page: int, per_page: int
) -> list[Record]:
    """A page of the user's notifications, newest first; `query` narrows them."""
    return await db.fetch_all(
        _listed()
        .where(_mine(user_id, query))
        .order_by(notifications.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )


async def notifications_count(db: Database, user_id: int, query: str) -> int:
    statement = sa.select(sa.func.count()).select_from(notifications)
    if query:
        statement = statement.join(
            conversations, conversations.c.id == notifications.c.conversation_id
        )
    return await db.fetch_val(statement.where(_mine(user_id, query)))


# --- marking read ------------------------------------------------------------------------


async def mark_conversation_read(db: Database, user_id: int, conversation_id: int) -> bool:
    """The user opened the conversation: its notifications are read. True when there
    were unread ones."""
    unread = (
        sa.select(notifications.c.id)
        .where(
            notifications.c.user_id == user_id,
            notifications.c.conversation_id == conversation_id,
            notifications.c.read_at.is_(None),
        )
        .limit(1)
    )
    if await db.fetch_val(unread) is None:
        return False  # a read, not a write, for every page view without news
    marked = await db.fetch_all(
        notifications.update()
        .where(
            notifications.c.user_id == user_id,
            notifications.c.conversation_id == conversation_id,
            notifications.c.read_at.is_(None),
        )
        .values(read_at=utcnow())
        .returning(notifications.c.id)
    )
    return bool(marked)


async def mark_all_read(db: Database, user_id: int) -> None:
    await db.execute(
        notifications.update()
        .where(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))
        .values(read_at=utcnow())
    )
