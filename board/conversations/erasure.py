"""The conversation side of erasing a customer (board.accounts.erasure), run inside its
write transaction: their uploads go, the texts are redacted as the confirmation page
showed, subjects are cut anew, the guest details go, and the history says so."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import sqlalchemy as sa
from databases import Database

from board.db import attachments, blocked_senders, conversation_events, conversations, messages
from board.markup import render_markdown, subject_from

from . import workflow

TABLES = (messages, conversation_events, attachments)  # the texts this side writes


class TextChange(Protocol):
    table: sa.Table
    column: str
    row_id: int
    after: str
    html_column: str | None


def theirs(customer_id: int) -> sa.ColumnElement[bool]:
    """Their account's, guest conversations they took into it included: that proved the
    address theirs. One that merely uses their address may be anybody's."""
    return conversations.c.customer_id == customer_id


def written_by_them(customer_id: int) -> sa.ColumnElement[bool]:
    """In their conversations: their messages, and those written as a guest (no author)."""
    return sa.or_(messages.c.author_id == customer_id, messages.c.author_id.is_(None))


def their_uploads(customer_id: int, conversation_ids: sa.Select | list[int]) -> sa.Select:
    return sa.select(attachments.c.id, attachments.c.sha256).where(
        attachments.c.message_id.in_(
            sa.select(messages.c.id).where(
                messages.c.conversation_id.in_(conversation_ids), written_by_them(customer_id)
            )
        )
    )


async def erase(
    db: Database,
    customer_id: int,
    email: str,
    conversation_ids: list[int],
    changes: Iterable[TextChange],
    redact: Callable[[str], str],
    staff_id: int,
) -> list[str]:
    """Returns the hashes of the files removed, to delete once the transaction committed."""
    rows = await db.fetch_all(their_uploads(customer_id, conversation_ids))
    if rows:
        await db.execute(attachments.delete().where(attachments.c.id.in_([r.id for r in rows])))
    await write_texts(db, [change for change in changes if change.table in TABLES])
    await _recut_subjects(db, conversation_ids, redact)
    # What they typed into the contact form as a guest, in the conversations they took
    # into their account, and a spam block on their address.
    await db.execute(
        conversations.update().where(theirs(customer_id)).values(guest_name=None, guest_email=None)
    )
    await db.execute(blocked_senders.delete().where(blocked_senders.c.email == email))
    for conversation_id in conversation_ids:
        await workflow.record_event(db, conversation_id, staff_id, "erased", None, None)
    return sorted({row.sha256 for row in rows})


async def write_texts(db: Database, changes: Iterable[TextChange]) -> None:
    """One statement per changed row: erasures are rare and touch few rows."""
    for change in changes:
        values = {change.column: change.after}
        if change.html_column is not None:
            values[change.html_column] = render_markdown(change.after)
        await db.execute(
            change.table.update().where(change.table.c.id == change.row_id).values(values)
        )


async def _recut_subjects(
    db: Database, conversation_ids: list[int], redact: Callable[[str], str]
) -> None:
    """The subject is the first message's first 100 characters: cut anew from the redacted
    text, since the stored one may end in half a name that no pattern recognises. The VIP
    mark the conversations carry goes with the account's."""
    if not conversation_ids:
        return
    first_ids = (
        sa.select(sa.func.min(messages.c.id))
        .where(messages.c.conversation_id.in_(conversation_ids))
        .group_by(messages.c.conversation_id)
    )
    first_bodies = {
        row.conversation_id: row.body
        for row in await db.fetch_all(
            sa.select(messages.c.conversation_id, messages.c.body).where(
                messages.c.id.in_(first_ids)
            )
        )
    }
    subjects = await db.fetch_all(
        sa.select(conversations.c.id, conversations.c.subject).where(
            conversations.c.id.in_(conversation_ids)
        )
    )
    for row in subjects:
        first = first_bodies.get(row.id)
        subject, cut = subject_from(first) if first else (redact(row.subject), False)
        await db.execute(
            conversations.update()
            .where(conversations.c.id == row.id)
            .values(subject=subject, subject_cut=cut, vip=False)
        )
