"""Every SQL statement of the customer area: conversations, messages, attachments, markers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from databases import Database
from sqlalchemy.dialects import postgresql, sqlite

from board import events, notify, permissions
from board.db import (
    attachments,
    conversations,
    fetch_row,
    fetch_rows,
    fetch_value,
    messages,
    one_at_a_time,
    read_markers,
    users,
    utcnow,
    write_transaction,
)
from board.errors import NotFound
from board.inbox import workflow
from board.markup import render_markdown, subject_from
from board.notifications import queries as notifications
from board.search import indexing as search
from board.security import CurrentUser
from board.uploads import StoredFile, keep

Record = Any
FIRST_TICKET_NUMBER = 1001
KINDS = ("support", "announcement", "invoice")

author = users.alias("author")
assignee = users.alias("assignee")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- unread ------------------------------------------------------------------------------


def _marker_join(user_id: int):
    return conversations.outerjoin(
        read_markers,
        sa.and_(
            read_markers.c.conversation_id == conversations.c.id,
            read_markers.c.user_id == user_id,
        ),
    )


def _is_unread():
    """Something the customer can see arrived after what they last read."""
    return conversations.c.last_public_message_id > sa.func.coalesce(
        read_markers.c.last_read_message_id, 0
    )


async def unread_count(db: Database, user_id: int) -> int:
    return await fetch_value(
        db,
        sa.select(sa.func.count())
        .select_from(_marker_join(user_id))
        .where(conversations.c.customer_id == user_id, _is_unread()),
    )


async def mark_read(db: Database, user_id: int, conversation: Record) -> bool:
    """The customer opened the conversation: it is read, with its notifications, and the
    next answer may ring. True when notifications were marked read (the bell changed)."""
    await notify.opened(db, conversation)
    bell_changed = await notifications.mark_conversation_read(db, user_id, conversation.id)
    if conversation.last_public_message_id is None:
        return bell_changed
    if conversation.last_public_author_id != user_id:
        already_read = await db.fetch_val(
            sa.select(read_markers.c.last_read_message_id).where(
                read_markers.c.user_id == user_id,
                read_markers.c.conversation_id == conversation.id,
            )
        )
        if (already_read or 0) < conversation.last_public_message_id:
            # Staff looking at the conversation see that the answer has been read.
            await events.record(db, "seen", to_staff=True, conversation_id=conversation.id)
    await _upsert_marker(db, user_id, conversation.id, conversation.last_public_message_id)
    return bell_changed


async def _upsert_marker(db: Database, user_id: int, conversation_id: int, message_id: int) -> None:
    dialect = postgresql if db.url.dialect == "postgresql" else sqlite
    statement = dialect.insert(read_markers).values(
        user_id=user_id,
        conversation_id=conversation_id,
        last_read_message_id=message_id,
        read_at=utcnow(),
    )
    statement = statement.on_conflict_do_update(
        index_elements=[read_markers.c.user_id, read_markers.c.conversation_id],
        set_={
            "last_read_message_id": sa.func.max(
                read_markers.c.last_read_message_id, statement.excluded.last_read_message_id
            )
            if dialect is sqlite
            else sa.func.greatest(
                read_markers.c.last_read_message_id, statement.excluded.last_read_message_id
            ),
            "read_at": statement.excluded.read_at,
        },
    )
    await db.execute(statement)


async def mark_all_read(db: Database, user_id: int) -> None:
    async with write_transaction(db):
        unread = await db.fetch_all(
            sa.select(conversations.c.id, conversations.c.last_public_message_id)
            .select_from(_marker_join(user_id))
            .where(conversations.c.customer_id == user_id, _is_unread())
        )
        for row in unread:
            await _upsert_marker(db, user_id, row.id, row.last_public_message_id)
        # Seen, as far as the doorbell is concerned: the next answer rings again.
        await db.execute(
            conversations.update()
            .where(conversations.c.customer_id == user_id, conversations.c.bell.is_not(None))
            .values(bell=None)
        )
        await notifications.mark_all_read(db, user_id)


# --- lists -------------------------------------------------------------------------------


def search_condition(query: str):
    """Ticket number (`#1042`, `1042`) or words of the subject or the visible messages:
    the database's answer while the search index cannot give one (first start, rebuild)."""
    number = query.strip().removeprefix("#")
    if number.isdigit():
        return conversations.c.number == int(number)
    conditions = []
    for word in query.split()[:8]:
        pattern = f"%{word.replace('%', '').replace('_', '')}%"
        in_text = (
            sa.select(messages.c.id)
            .where(
                messages.c.conversation_id == conversations.c.id,
                messages.c.internal.is_(False),
                messages.c.body.ilike(pattern),
            )
            .exists()
        )
        conditions.append(sa.or_(conversations.c.subject.ilike(pattern), in_text))
    return sa.and_(*conditions) if conditions else sa.true()


def text_condition(query: str | None, numbers: Sequence[int] | None):
    """A list's search box: the ticket numbers the search index found, or, when it could
    not answer, the words looked up in the database."""
    if numbers is not None:
        return conversations.c.number.in_(numbers)
    return search_condition(query) if query else sa.true()


def _inbox_filter(
    user: CurrentUser, kind: str | None, query: str | None, numbers: Sequence[int] | None
):
    conditions = [conversations.c.customer_id == user.id]
    if kind in KINDS:
        conditions.append(conversations.c.kind == kind)
    if query:
        conditions.append(text_condition(query, numbers))
    return sa.and_(*conditions)


async def inbox_page(
    db: Database,
    user: CurrentUser,
    kind: str | None,
    query: str | None,
    page: int,
    per_page: int,
    numbers: Sequence[int] | None = None,
) -> list[Record]:
    """A page of the customer's conversations, newest activity first, with unread state.

    With a `query`, only the conversations `numbers` names (what the search index found);
    without `numbers`, the query's words are looked up in the database instead."""
    statement = (
        sa.select(
            conversations,
            assignee.c.name.label("assignee_name"),
            _is_unread().label("unread"),
        )
        .select_from(
            _marker_join(user.id).outerjoin(assignee, assignee.c.id == conversations.c.assignee_id)
        )
        .where(_inbox_filter(user, kind, query, numbers))
        .order_by(conversations.c.last_message_at.desc(), conversations.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return await fetch_rows(db, statement)


async def inbox_count(
    db: Database,
    user: CurrentUser,
    kind: str | None,
    query: str | None,
    numbers: Sequence[int] | None = None,
) -> int:
    return await db.fetch_val(
        sa.select(sa.func.count())
        .select_from(conversations)
        .where(_inbox_filter(user, kind, query, numbers))
    )


# --- one conversation --------------------------------------------------------------------

CONVERSATION = sa.select(conversations, assignee.c.name.label("assignee_name")).select_from(
    conversations.outerjoin(assignee, assignee.c.id == conversations.c.assignee_id)
)


async def conversation_by_number(db: Database, number: int) -> Record | None:
    return await fetch_row(db, CONVERSATION.where(conversations.c.number == number))


async def conversation_or_404(db: Database, number: int, viewer: CurrentUser | None) -> Record:
    conversation = await fetch_row(db, CONVERSATION.where(conversations.c.number == number))
    if conversation is None:
        raise NotFound()
    permissions.ensure_can_see_conversation(viewer, conversation)
    return conversation


async def conversation_for_token(db: Database, token: str) -> Record:
    if not token or len(token) > 100:
        raise NotFound()
    conversation = await db.fetch_one(
        CONVERSATION.where(conversations.c.guest_token_hash == token_hash(token))
    )
    if conversation is None:
        raise NotFound()
    return conversation


async def messages_of(
    db: Database, conversation_id: int, viewer: CurrentUser | None, only: int | None = None
) -> list[dict]:
    """All messages the viewer may see, oldest first, each with its author and files; with
    `only`, that one message if the viewer may see it (a live update)."""
    statement = (
        sa.select(
            messages,
            author.c.name.label("author_name"),
            author.c.role.label("author_role"),
            author.c.title.label("author_title"),
        )
        .select_from(messages.outerjoin(author, author.c.id == messages.c.author_id))
        .where(messages.c.conversation_id == conversation_id, permissions.visible_messages(viewer))
        .order_by(messages.c.id)
    )
    if only is not None:
        statement = statement.where(messages.c.id == only)
    rows = await db.fetch_all(statement)
    files = await db.fetch_all(
        sa.select(attachments)
        .where(attachments.c.message_id.in_([row.id for row in rows]))
        .order_by(attachments.c.id)
    )
    by_message: dict[int, list[Record]] = {}
    for file in files:
        by_message.setdefault(file.message_id, []).append(file)
    return [{**row._mapping, "attachments": by_message.get(row.id, [])} for row in rows]


async def attachment_or_404(db: Database, attachment_id: int) -> Record:
    row = await db.fetch_one(
        sa.select(
            attachments,
            conversations.c.customer_id,
            conversations.c.guest_token_hash,
            messages.c.internal,
        )
        .select_from(
            attachments.join(
                conversations, conversations.c.id == attachments.c.conversation_id
            ).join(messages, messages.c.id == attachments.c.message_id)
        )
        .where(attachments.c.id == attachment_id)
    )
    if row is None:
        raise NotFound()
    return row


# --- writing -----------------------------------------------------------------------------


async def next_ticket_number(db: Database) -> int:
    """Inside write_transaction; the number is this transaction's until it commits."""
    await one_at_a_time(db, "ticket numbers")
    highest = await db.fetch_val(sa.select(sa.func.max(conversations.c.number)))
    return max(FIRST_TICKET_NUMBER, (highest or 0) + 1)


async def open_conversation(
    db: Database,
    body: str,
    files: Sequence[StoredFile],
    customer: CurrentUser | Record | None = None,
    guest: tuple[str, str] | None = None,
    kind: str = "support",
    author: CurrentUser | None = None,
    side_effects=None,
    guest_token: Callable[[int], str] | None = None,
) -> Record:
    """A new conversation with its first message. `guest` is (name, email); the guest's
    secret link is `guest_token(conversation id)`, of which only the hash is stored.

    The customer writes it, unless staff open it for them (`author`: an invoice notice).
    A customer's request goes to the next staff member in the rotation.
    `side_effects(conversation)` runs inside the same transaction (mail to the outbox).
    """
    subject, cut = subject_from(body)
    from_staff = author is not None
    async with write_transaction(db):
        now = utcnow()
        values = dict(
            number=await next_ticket_number(db),
            kind=kind,
            subject=subject,
            subject_cut=cut,
            status="solved" if from_staff else "open",
            created_at=now,
            last_message_at=now,
        )
        if customer is not None:
            values["customer_id"] = customer.id
            values["vip"] = await db.fetch_val(
                sa.select(users.c.vip).where(users.c.id == customer.id)
            )
        else:
            name, email = guest
            values.update(guest_name=name, guest_email=email)
        conversation_id = await db.fetch_val(
            conversations.insert().values(**values).returning(conversations.c.id)
        )
        if guest is not None:
            await db.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id)
                .values(guest_token_hash=token_hash(guest_token(conversation_id)))
            )
        conversation = await db.fetch_one(CONVERSATION.where(conversations.c.id == conversation_id))
        if not from_staff:
            assignee_id = await workflow.next_in_rotation(db, now)
            if assignee_id is not None:
                await workflow.assign(db, conversation_id, None, assignee_id)
        await _add_message(db, conversation, author or customer, body, files, now)
        if from_staff:
            await notify.invoice_notice(db, conversation)
        elif kind == "support":
            await notify.new_request(db, conversation)
        if side_effects is not None:
            await side_effects(conversation)
    return conversation


async def add_reply(
    db: Database,
    conversation: Record,
    author_user: CurrentUser | None,
    body: str,
    files: Sequence[StoredFile],
    internal: bool = False,
    status: str | None = None,
) -> int:
    """A message in an existing conversation; staff choose the `status` it leaves behind."""
    async with write_transaction(db):
        message_id = await _add_message(
            db, conversation, author_user, body, files, utcnow(), internal, status
        )
        if author_user is not None and author_user.is_staff and not internal:
            await notify.answer_waiting(db, conversation.id)
    return message_id


async def _add_message(
    db: Database,
    conversation: Record,
    author_user: CurrentUser | None,
    body: str,
    files: Sequence[StoredFile],
    now: datetime,
    internal: bool = False,
    status: str | None = None,
) -> int:
    """Inserts the message and its files, keeps the derived columns and moves the status."""
    author_id = author_user.id if author_user else None
    message_id = await db.fetch_val(
        messages.insert()
        .values(
            conversation_id=conversation.id,
            author_id=author_id,
            body=body,
            body_html=render_markdown(body),
            internal=internal,
            created_at=now,
        )
        .returning(messages.c.id)
    )
    for file in files:
        await db.execute(
            attachments.insert().values(
                message_id=message_id,
                conversation_id=conversation.id,
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
                sha256=file.sha256,
                created_at=now,
            )
        )
    keep(files)  # into the store with their rows; a rollback leaves them to the sweep
    from_staff = author_user is not None and author_user.is_staff
    changes: dict[str, Any] = {}
    if not internal:
        # An internal note changes nothing the customer sees: not the activity time that
        # orders and dates their inbox and their data export.
        changes.update(
            last_message_at=now,
            message_count=conversations.c.message_count + 1,
            last_public_message_id=message_id,
            last_public_author_id=author_id,
        )
    if not from_staff:
        changes.update(
            last_customer_message_at=now,
            waiting_since=sa.func.coalesce(conversations.c.waiting_since, now),
        )
    elif not internal:
        # The first staff member to answer looks after the conversation from then on, and
        # whoever still waits has been answered: the wait starts anew from the next message.
        changes.update(
            assignee_id=sa.func.coalesce(conversations.c.assignee_id, author_id),
            first_response_at=sa.func.coalesce(conversations.c.first_response_at, now),
            waiting_since=None,
        )
    if changes:  # nothing for an internal note
        await db.execute(
            conversations.update().where(conversations.c.id == conversation.id).values(**changes)
        )
    if not from_staff:
        # The ball is in the shop's court again, even when the conversation had been solved.
        await workflow.set_status(db, conversation.id, None, "open", now)
    elif status is not None:
        await workflow.set_status(db, conversation.id, author_id, status, now)
    if author_user is not None and not internal:
        await _upsert_marker(db, author_user.id, conversation.id, message_id)
    await search.queue_message(db, message_id)
    await _announce_live(db, conversation, message_id, internal)
    return message_id


async def _announce_live(db: Database, conversation: Record, message_id: int, internal: bool):
    """Open pages of everyone who may read the message append it (board/events.py)."""
    about = {"conversation_id": conversation.id}
    await events.record(db, "message", {"message_id": message_id}, to_staff=True, **about)
    if internal:
        return
    if conversation.customer_id is not None:
        await events.record(
            db, "message", {"message_id": message_id}, to_user=conversation.customer_id, **about
        )
    else:
        await events.record(db, "message", {"message_id": message_id}, to_guest_of=conversation.id)


async def claim_guest_conversation(db: Database, conversation: Record, user: CurrentUser) -> bool:
    """The customer with the conversation's address takes it into their inbox (the route
    asked them first); from then on its guest link asks for a login."""
    if not permissions.customer_may_join(conversation, user):
        return False
    async with write_transaction(db):
        await db.execute(
            conversations.update()
            .where(conversations.c.id == conversation.id, conversations.c.customer_id.is_(None))
            .values(customer_id=user.id)
        )
        await search.queue_conversation(db, conversation.id)  # now the customer finds it
    return True
