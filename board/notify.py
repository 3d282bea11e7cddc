"""Who gets a doorbell mail for what. Every function runs inside the caller's write
transaction, so the mail is queued together with the change it announces, and so is the
entry in the notification centre (board/notifications), which is written whatever the
mail setting says.

The doorbell of a conversation (`conversations.bell`) rings once: after a mail went out,
further answers stay quiet until the customer has opened the conversation. Customers
choose on /account: a mail for each answer, one daily digest, or none. Invoice notices
always go out; announcements respect "none".
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from databases import Database

from board import mail, mail_links
from board.db import conversations, outbox, users, utcnow
from board.notifications import queries as notifications
from board.security import STAFF_ROLES

NOTIFY_CHOICES = ("each", "digest", "off")


def doorbell_recipients() -> sa.Select:
    """Conversations with whom their doorbell reaches: the guest's address, or the
    customer's with their language and mail setting (the answer's doorbell here, the
    pending reminder in board/conversations/reminders.py)."""
    return sa.select(
        conversations.c.id,
        conversations.c.number,
        conversations.c.bell,
        conversations.c.customer_id,
        conversations.c.guest_name,
        conversations.c.guest_email,
        users.c.email,
        users.c.name,
        users.c.locale,
        users.c.notify,
        users.c.is_active,
    ).select_from(conversations.outerjoin(users, users.c.id == conversations.c.customer_id))


async def answer_waiting(db: Database, conversation_id: int) -> None:
    """Staff answered the customer (not an internal note)."""
    row = await db.fetch_one(doorbell_recipients().where(conversations.c.id == conversation_id))
    if row is None:
        return
    if row.customer_id is not None:
        await notifications.answered(db, conversation_id, row.customer_id)
    if row.bell is not None:
        return  # already rung (or waiting for the digest): the customer has not looked yet
    params = {"number": row.number}
    if row.customer_id is None:
        if not row.guest_email:
            return
        # Guests have no settings: they hear of each answer, through their secret link.
        params.update(guest=True, conversation_id=conversation_id)
        await mail.queue(db, "reply", row.guest_email, params, to_name=row.guest_name)
        bell = "rung"
    elif not row.is_active or row.notify == "off":
        return
    elif row.notify == "digest":
        bell = "digest"
    else:
        # The mail opens this one conversation without a password for a while
        # (board/mail_links.py); the sender decides from the settings whether to use it.
        params["link_id"] = await mail_links.issue(db, conversation_id, row.customer_id)
        await mail.queue(
            db,
            "reply",
            row.email,
            params,
            to_name=row.name,
            locale=row.locale,
            user_id=row.customer_id,
        )
        bell = "rung"
    await db.execute(
        conversations.update().where(conversations.c.id == conversation_id).values(bell=bell)
    )


async def opened(db: Database, conversation) -> None:
    """The customer (or the guest) looked at the conversation: the next answer may ring."""
    if conversation.bell is not None:
        await db.execute(
            conversations.update().where(conversations.c.id == conversation.id).values(bell=None)
        )


async def invoice_notice(db: Database, conversation) -> None:
    """An invoice notice reaches the customer whatever they chose: it is about money."""
    await notifications.invoiced(db, conversation)
    customer = await db.fetch_one(sa.select(users).where(users.c.id == conversation.customer_id))
    await mail.queue_for(db, "invoice", customer, {"number": conversation.number})
    await db.execute(
        conversations.update().where(conversations.c.id == conversation.id).values(bell="rung")
    )


def _params_of_number() -> sa.ColumnElement:
    # JSON built in SQL, so thousands of rows are queued by one statement.
    return sa.literal('{"number": ') + sa.cast(conversations.c.number, sa.String) + "}"


async def _queue_from(db: Database, template: str, rows: sa.Select) -> None:
    """Queues one mail per row of `rows` (user_id, to_address, to_name, locale, params)."""
    now = utcnow()
    selected = rows.add_columns(
        sa.literal(template).label("template"),
        sa.literal(now, sa.DateTime).label("created_at"),
        sa.literal(now, sa.DateTime).label("next_attempt_at"),
    )
    await db.execute(
        outbox.insert().from_select(
            [
                "user_id",
                "to_address",
                "to_name",
                "locale",
                "params",
                "template",
                "created_at",
                "next_attempt_at",
            ],
            selected,
        )
    )


async def announcement(db: Database, first_number: int) -> None:
    """An announcement went into every customer's inbox, numbered from `first_number`."""
    new = sa.and_(conversations.c.number >= first_number, conversations.c.kind == "announcement")
    recipients = (
        sa.select(users.c.id, users.c.email, users.c.name, users.c.locale, _params_of_number())
        .select_from(conversations.join(users, users.c.id == conversations.c.customer_id))
        .where(new, users.c.notify == "each")
    )
    await _queue_from(db, "announcement", recipients)
    choice = (
        sa.select(
            sa.case((users.c.notify == "each", "rung"), (users.c.notify == "digest", "digest"))
        )
        .where(users.c.id == conversations.c.customer_id)
        .scalar_subquery()
    )
    await db.execute(conversations.update().where(new).values(bell=choice))
    await notifications.announced(db, first_number)


async def new_request(db: Database, conversation, cc: str | None = None) -> None:
    """A customer or guest opened a conversation: staff who asked for it get a mail, and
    so does the team's shared mailbox `cc` (BOARD_NOTIFY_CC), in the shop's language."""
    staff = sa.select(
        users.c.id,
        users.c.email,
        users.c.name,
        users.c.locale,
        sa.literal(f'{{"number": {int(conversation.number)}}}'),
    ).where(
        users.c.role.in_(STAFF_ROLES), users.c.is_active.is_(True), users.c.notify_new.is_(True)
    )
    await _queue_from(db, "new_conversation", staff)
    if cc:
        await mail.queue(
            db, "new_conversation", cc, {"number": int(conversation.number), "team": True}
        )
    await notifications.new_conversation(db, conversation.id)


async def send_digests(db: Database) -> int:
    """One mail per customer who chose the digest, naming the conversations with news.

    Runs in a write transaction of its own (the daily job). Returns the mails queued.
    """
    waiting = await db.fetch_all(
        sa.select(
            conversations.c.id,
            conversations.c.number,
            users.c.id.label("user_id"),
            users.c.email,
            users.c.name,
            users.c.locale,
        )
        .select_from(conversations.join(users, users.c.id == conversations.c.customer_id))
        .where(
            conversations.c.bell == sa.literal_column("'digest'"),  # matches the index
            users.c.notify == "digest",
            users.c.is_active.is_(True),
        )
        .order_by(users.c.id, conversations.c.number)
    )
    by_customer: dict[int, list] = defaultdict(list)
    for row in waiting:
        by_customer[row.user_id].append(row)
    for rows in by_customer.values():
        first = rows[0]
        await mail.queue(
            db,
            "digest",
            first.email,
            {"numbers": [row.number for row in rows]},
            to_name=first.name,
            locale=first.locale,
            user_id=first.user_id,
        )
    # Whoever switched away from the digest meanwhile is not mailed about old news either.
    await db.execute(
        conversations.update().where(conversations.c.bell == "digest").values(bell="rung")
    )
    return len(by_customer)
