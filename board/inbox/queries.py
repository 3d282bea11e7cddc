"""What the customer area reads: its lists, a conversation, its messages and files; read marks."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from databases import Database

from board import events, notify, permissions
from board.conversations.numbers import token_hash
from board.conversations.records import CONVERSATION, Record, assignee, mark_read_up_to
from board.db import (
    Query,
    as_dict,
    attachments,
    conversations,
    fetch_row,
    fetch_rows,
    messages,
    users,
    write_transaction,
)
from board.errors import NotFound
from board.notifications import queries as notifications
from board.security import CurrentUser

KINDS = ("support", "announcement", "invoice")
# The inbox's status filter, in the customer's terms: a request still "open" waits for
# an answer from either side; a "done" one is solved (or closed as spam). Only requests
# have a status a customer follows, so the filter shows requests only.
STATUS_FILTERS = {"open": ("open", "pending"), "done": ("solved", "spam")}

author = users.alias("author")


# --- unread ------------------------------------------------------------------------------


def _is_unread():
    """Something the customer can see arrived after what they last read (their read marker,
    mirrored on the conversation, so lists and the badge read no other table)."""
    return conversations.c.last_public_message_id > sa.func.coalesce(
        conversations.c.customer_read_message_id, 0
    )


UNREAD_COUNT = Query(
    sa.select(sa.func.count())
    .select_from(conversations)
    .where(conversations.c.customer_id == sa.bindparam("user_id"), _is_unread())
)


async def unread_count(db: Database, user_id: int) -> int:
    """The customer's conversations with something they have not read: the header badge."""
    return await UNREAD_COUNT.value(db, user_id=user_id)


async def mark_read(db: Database, user_id: int, conversation: Record) -> bool:
    """The customer opened the conversation: it is read, with its notifications, and the
    next answer may ring. True when notifications were marked read (the bell changed)."""
    await notify.opened(db, conversation)
    bell_changed = await notifications.mark_conversation_read(db, user_id, conversation.id)
    if conversation.last_public_message_id is None:
        return bell_changed
    if conversation.last_public_author_id != user_id:
        already_read = conversation.customer_read_message_id  # the reader is its customer
        if (already_read or 0) < conversation.last_public_message_id:
            # Staff looking at the conversation see that the answer has been read.
            await events.record(db, "seen", to_staff=True, conversation_id=conversation.id)
    await mark_read_up_to(db, user_id, conversation.id, conversation.last_public_message_id)
    return bell_changed


async def mark_all_read(db: Database, user_id: int) -> None:
    async with write_transaction(db):
        unread = await db.fetch_all(
            sa.select(conversations.c.id, conversations.c.last_public_message_id).where(
                conversations.c.customer_id == user_id, _is_unread()
            )
        )
        for row in unread:
            await mark_read_up_to(db, user_id, row.id, row.last_public_message_id)
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
    user: CurrentUser,
    kind: str | None,
    query: str | None,
    numbers: Sequence[int] | None,
    status: str | None = None,
):
    conditions = [conversations.c.customer_id == user.id]
    if kind in KINDS:
        conditions.append(conversations.c.kind == kind)
    if status in STATUS_FILTERS:
        conditions.append(conversations.c.kind == "support")
        conditions.append(conversations.c.status.in_(STATUS_FILTERS[status]))
    if query:
        conditions.append(text_condition(query, numbers))
    return sa.and_(*conditions)


def _inbox_select(condition) -> sa.Select:
    return (
        sa.select(
            conversations,
            assignee.c.name.label("assignee_name"),
            _is_unread().label("unread"),
        )
        .select_from(
            conversations.outerjoin(assignee, assignee.c.id == conversations.c.assignee_id)
        )
        .where(condition)
        .order_by(conversations.c.last_message_at.desc(), conversations.c.id.desc())
    )


# The inbox as it opens (every kind, no search): prepared once, the page that is read most.
INBOX_ALL = Query(
    _inbox_select(conversations.c.customer_id == sa.bindparam("user_id"))
    .limit(sa.bindparam("limit"))
    .offset(sa.bindparam("offset"))
)
INBOX_ALL_COUNT = Query(
    sa.select(sa.func.count())
    .select_from(conversations)
    .where(conversations.c.customer_id == sa.bindparam("user_id"))
)


async def inbox_page(
    db: Database,
    user: CurrentUser,
    kind: str | None,
    query: str | None,
    page: int,
    per_page: int,
    numbers: Sequence[int] | None = None,
    status: str | None = None,
) -> list[Record]:
    """A page of the customer's conversations, newest activity first, with unread state.

    With a `query`, only the conversations `numbers` names (what the search index found);
    without `numbers`, the query's words are looked up in the database instead. `status`
    (a key of STATUS_FILTERS) keeps the requests still open or those done."""
    offset = (page - 1) * per_page
    if kind not in KINDS and not query and status not in STATUS_FILTERS:
        return await INBOX_ALL.rows(db, user_id=user.id, limit=per_page, offset=offset)
    statement = (
        _inbox_select(_inbox_filter(user, kind, query, numbers, status))
        .limit(per_page)
        .offset(offset)
    )
    if query and numbers is None:  # words looked up in the texts: may scan, off the loop
        return await db.fetch_all(statement)
    return await fetch_rows(db, statement)


async def inbox_count(
    db: Database,
    user: CurrentUser,
    kind: str | None,
    query: str | None,
    numbers: Sequence[int] | None = None,
    status: str | None = None,
) -> int:
    if kind not in KINDS and not query and status not in STATUS_FILTERS:
        return await INBOX_ALL_COUNT.value(db, user_id=user.id)
    return await db.fetch_val(
        sa.select(sa.func.count())
        .select_from(conversations)
        .where(_inbox_filter(user, kind, query, numbers, status))
    )


# A request of their own (not an announcement or invoice): ix_conversations_customer_kind.
HAS_WRITTEN = Query(
    sa.select(conversations.c.id)
    .where(
        conversations.c.customer_id == sa.bindparam("user_id"),
        conversations.c.kind == "support",
    )
    .limit(1)
)


async def has_written_before(db: Database, user_id: int) -> bool:
    """Whether the customer has sent a request before: the new-message page then folds
    its house rules away."""
    return await HAS_WRITTEN.value(db, user_id=user_id) is not None


# --- one conversation --------------------------------------------------------------------


async def conversation_by_number(db: Database, number: int) -> Record | None:
    return await fetch_row(db, CONVERSATION.where(conversations.c.number == number))


CONVERSATION_BY_NUMBER = Query(CONVERSATION.where(conversations.c.number == sa.bindparam("number")))


async def conversation_or_404(db: Database, number: int, viewer: CurrentUser | None) -> Record:
    conversation = await CONVERSATION_BY_NUMBER.row(db, number=number)
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


def _messages(with_internal: bool, conversation_id=None) -> sa.Select:
    """The thread; `conversation_id` None: a placeholder that each call fills."""
    if conversation_id is None:
        conversation_id = sa.bindparam("conversation_id")
    shown = sa.true() if with_internal else messages.c.internal.is_(False)
    return (
        sa.select(
            messages,
            author.c.name.label("author_name"),
            author.c.role.label("author_role"),
            author.c.title.label("author_title"),
        )
        .select_from(messages.outerjoin(author, author.c.id == messages.c.author_id))
        .where(messages.c.conversation_id == conversation_id, shown)
        .order_by(messages.c.id)
    )


# Internal notes are for staff: the thread with them, and without (board.permissions).
THREAD = {with_internal: Query(_messages(with_internal)) for with_internal in (False, True)}
# The files of a conversation's messages, through the messages' index.
THREAD_FILES = Query(
    sa.select(attachments)
    .where(
        attachments.c.message_id.in_(
            sa.select(messages.c.id).where(
                messages.c.conversation_id == sa.bindparam("conversation_id")
            )
        )
    )
    .order_by(attachments.c.id)
)


async def messages_of(
    db: Database, conversation_id: int, viewer: CurrentUser | None, only: int | None = None
) -> list[dict]:
    """All messages the viewer may see, oldest first, each with its author and files; with
    `only`, that one message if the viewer may see it (a live update)."""
    with_internal = permissions.is_staff(viewer)
    if only is None:
        rows = await THREAD[with_internal].rows(db, conversation_id=conversation_id)
    else:
        one = _messages(with_internal, conversation_id).where(messages.c.id == only)
        rows = await fetch_rows(db, one)
    by_message: dict[int, list[Record]] = {}
    if rows:
        for file in await THREAD_FILES.rows(db, conversation_id=conversation_id):
            by_message.setdefault(file.message_id, []).append(file)
    return [{**as_dict(row), "attachments": by_message.get(row.id, [])} for row in rows]


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
