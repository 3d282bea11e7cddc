"""The signed link in a doorbell mail: one conversation, for a while, without a password.

A staff answer rings the customer's doorbell (board/notify.py); the mail carries a link
that opens that one conversation for reading and answering, without logging in. What it
grants and how it ends is written in SECURITY.md ("Links in mail"); in short:

- a row per mailed link (`mail_links`), written with the mail in the answer's transaction;
  the token is the row's id signed with the secret key, so the outbox and the database
  hold nothing that opens it;
- it works while the row is younger than BOARD_MAIL_LINK_DAYS, not revoked, its account
  active and the conversation still that account's;
- a password change revokes every link of the account; the customer (on /account) and
  staff (on the conversation) revoke them too; erasure deletes them;
- it never starts a session: the page it opens knows nothing of the rest of the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from databases import Database

from board.db import Query, conversations, mail_links, users, utcnow
from board.security import CurrentUser, signed, signed_valid

PURPOSE = "mail-link"
TOKEN_MAX_LENGTH = 80  # an id of up to 18 digits, a dot and 43 characters of signature


def token_for(secret_key: str, link_id: int) -> str:
    return f"{link_id}.{signed(secret_key, PURPOSE, link_id)}"


def link_id_of(secret_key: str, token: str) -> int | None:
    """The id a token names, when this site signed it; None for anything else."""
    if len(token) > TOKEN_MAX_LENGTH or not token.isascii():
        return None
    number, _dot, signature = token.partition(".")
    if not (number.isdigit() and len(number) < 19 and signature):
        return None
    link_id = int(number)
    return link_id if signed_valid(secret_key, PURPOSE, link_id, signature) else None


async def issue(db: Database, conversation_id: int, user_id: int) -> int:
    """A new link for the mail being queued; inside the caller's write transaction."""
    return await db.fetch_val(
        mail_links.insert()
        .values(conversation_id=conversation_id, user_id=user_id, created_at=utcnow())
        .returning(mail_links.c.id)
    )


@dataclass(frozen=True)
class Holder:
    """Whom a working link speaks for: the customer, in that one conversation."""

    link_id: int
    conversation_id: int
    number: int
    customer: CurrentUser
    expires_at: datetime


@dataclass(frozen=True)
class Dead:
    """A link this site signed that no longer opens anything; `number` while its
    conversation is still its customer's, so the page can offer the login to it."""

    number: int | None


LINK = Query(
    sa.select(
        mail_links.c.id,
        mail_links.c.conversation_id,
        mail_links.c.user_id,
        mail_links.c.created_at,
        mail_links.c.revoked_at,
        conversations.c.number,
        conversations.c.customer_id,
        users.c.name,
        users.c.email,
        users.c.role,
        users.c.customer_number,
        users.c.title,
        users.c.locale,
        users.c.is_active,
    )
    .select_from(
        mail_links.join(conversations, conversations.c.id == mail_links.c.conversation_id).join(
            users, users.c.id == mail_links.c.user_id
        )
    )
    .where(mail_links.c.id == sa.bindparam("link_id"))
)


async def holder(
    db: Database, secret_key: str, token: str, days: float, now: datetime | None = None
) -> Holder | Dead | None:
    """What the token opens now: a Holder, a Dead link, or None when this site never
    signed it (a made-up or mistyped token)."""
    link_id = link_id_of(secret_key, token)
    if link_id is None:
        return None
    row = await LINK.row(db, link_id=link_id)
    if row is None:
        return Dead(None)  # deleted with the customer's data
    still_theirs = row.is_active and row.customer_id == row.user_id
    expires_at = row.created_at + timedelta(days=days)
    if (
        days <= 0
        or row.revoked_at is not None
        or (now or utcnow()) >= expires_at
        or not still_theirs
        or row.role != "customer"
    ):
        return Dead(row.number if still_theirs else None)
    customer = CurrentUser(
        id=row.user_id,
        name=row.name,
        email=row.email,
        role=row.role,
        customer_number=row.customer_number,
        title=row.title,
        locale=row.locale,
        must_change_password=False,
        session_hash="",  # no session: the link is no login
    )
    return Holder(link_id, row.conversation_id, row.number, customer, expires_at)


async def revoke_for_customer(db: Database, user_id: int) -> None:
    """Every link of the account stops working (a new password, or the customer's wish)."""
    await db.execute(
        mail_links.update()
        .where(mail_links.c.user_id == user_id, mail_links.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_for_conversation(db: Database, conversation_id: int) -> None:
    """Every link to the conversation stops working (staff's choice)."""
    await db.execute(
        mail_links.update()
        .where(mail_links.c.conversation_id == conversation_id, mail_links.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def forget_old(db: Database, days: float, now: datetime | None = None) -> None:
    """Deletes links past any use (the maintenance task): expired a day ago or more."""
    cutoff = (now or utcnow()) - timedelta(days=max(days, 0) + 1)
    await db.execute(mail_links.delete().where(mail_links.c.created_at < cutoff))
