"""Every SQL statement accounts run: customers, logins, profile changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from databases import Database

from board import mail_links
from board.db import conversations, one_at_a_time, users, utcnow, write_transaction
from board.pagecache import bump_forum_version
from board.search import indexing as search

Record = Any
FIRST_CUSTOMER_NUMBER = 10001


class EmailTaken(Exception):
    pass


async def user_by_login(db: Database, login: str) -> Record | None:
    """A customer number (digits, optionally with a leading #) or an email, any case."""
    login = login.strip()
    number = login.removeprefix("#")
    if number.isdigit():
        condition = users.c.customer_number == int(number)
    else:
        condition = users.c.email == login.lower()
    return await db.fetch_one(sa.select(users).where(condition, users.c.is_active.is_(True)))


async def user_by_id(db: Database, user_id: int) -> Record | None:
    return await db.fetch_one(sa.select(users).where(users.c.id == user_id))


async def email_in_use(db: Database, email: str, except_user_id: int | None = None) -> bool:
    query = sa.select(users.c.id).where(users.c.email == email.lower())
    if except_user_id is not None:
        query = query.where(users.c.id != except_user_id)
    return await db.fetch_val(query) is not None


async def create_customer(db: Database, name: str, email: str, password_hash: str) -> Record:
    """Creates the customer with the next free customer number (10001, 10002, …)."""
    async with write_transaction(db):
        if await email_in_use(db, email):
            raise EmailTaken(email)
        await one_at_a_time(db, "customer numbers")
        highest = await db.fetch_val(sa.select(sa.func.max(users.c.customer_number)))
        number = max(FIRST_CUSTOMER_NUMBER, (highest or 0) + 1)
        user_id = await db.fetch_val(
            users.insert()
            .values(
                customer_number=number,
                email=email.lower(),
                name=name,
                role="customer",
                password_hash=password_hash,
                created_at=utcnow(),
            )
            .returning(users.c.id)
        )
    return await user_by_id(db, user_id)


async def update_profile(
    db: Database,
    user_id: int,
    name: str,
    email: str,
    locale: str | None,
    notify: str = "each",
    notify_new: bool = False,
    daily_summary: bool = False,
    personal_summary: bool | None = None,
) -> None:
    """`personal_summary` None keeps the stored choice (a customer's form has none)."""
    async with write_transaction(db):
        if await email_in_use(db, email, except_user_id=user_id):
            raise EmailTaken(email)
        before = await db.fetch_one(
            sa.select(users.c.name, users.c.email).where(users.c.id == user_id)
        )
        if before is not None and (before.name, before.email) != (name, email.lower()):
            # Staff find conversations by the customer's name and address (the index's
            # staff-only fields): their conversations are indexed again with the new ones.
            await search.queue_selected(
                db,
                "conversation",
                sa.select(conversations.c.id).where(conversations.c.customer_id == user_id),
            )
        await db.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                name=name,
                email=email.lower(),
                locale=locale,
                notify=notify,
                notify_new=notify_new,
                daily_summary=daily_summary,
                **({} if personal_summary is None else {"personal_summary": personal_summary}),
            )
        )
        await bump_forum_version(db)  # the name shows beside the user's posts


async def set_password(db: Database, user_id: int, password_hash: str) -> None:
    await db.execute(
        users.update()
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, must_change_password=False)
    )
    # Whoever changes a password may fear that someone else reads along: the links in
    # mails already sent stop working too (board/mail_links.py).
    await mail_links.revoke_for_customer(db, user_id)


async def set_notify(db: Database, user_id: int, notify: str) -> None:
    await db.execute(users.update().where(users.c.id == user_id).values(notify=notify))


async def set_locale(db: Database, user_id: int, locale: str) -> None:
    await db.execute(users.update().where(users.c.id == user_id).values(locale=locale))
