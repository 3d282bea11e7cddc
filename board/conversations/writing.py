"""Every write to conversations, messages and attachments.

Each function runs its own write transaction, and in it, in this order: authorizes
against the conversation as it is now (not as the page saw it), checks the flood rule,
writes the rows, moves the checked files into storage (`uploads.keep`), brings the
summary columns up to date, and queues search, live events and mail. A refused write
raises a `board.errors` error before anything is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from databases import Database

from board import events, notify, permissions, security, webhooks
from board.db import (
    attachments,
    conversations,
    mail_imports,
    messages,
    one_at_a_time,
    users,
    utcnow,
    write_transaction,
)
from board.errors import Invalid, NotAllowed, NotFound, TooSoon
from board.i18n import gettext as _
from board.markup import render_markdown, subject_from
from board.notifications import queries as notifications
from board.search import indexing as search
from board.security import CurrentUser
from board.uploads import StoredFile, keep

from . import types, workflow
from .numbers import next_ticket_number, token_hash
from .records import Record, conversation_by_id, history, mark_read_up_to
from .summary import Said, opening_columns, summary_columns

SideEffects = Callable[[Record], Awaitable[None]]


@dataclass(frozen=True)
class About:
    """What a new request is about, as its writer said: a request type and an order
    number, both optional."""

    type_id: int | None = None
    order_number: str = ""

    def columns(self) -> dict:
        return {"type_id": self.type_id, "order_number": self.order_number or None}


# --- opening -----------------------------------------------------------------------------


async def open_request(
    db: Database,
    customer: CurrentUser,
    body: str,
    files: Sequence[StoredFile],
    flood_seconds: int = 0,
    notify_cc: str | None = None,
    about: About | None = None,
) -> Record:
    """A customer's new request from their inbox, with its type and order number if
    given; it goes to the next staff member in the rotation (for its type). `notify_cc`
    (BOARD_NOTIFY_CC) gets a copy of the staff's notice."""
    if customer.is_staff:
        raise NotAllowed(_("Staff answer customers; they do not write to themselves."))
    about = about or About()
    async with write_transaction(db):
        await _check_flood(db, _flood_key(customer, None), flood_seconds)
        await _check_about(db, about)
        conversation = await _insert_conversation(
            db, "support", body, "open", customer.id, **about.columns()
        )
        await _rotate(db, conversation.id, about.type_id)
        await _add_message(db, conversation, customer, body, files)
        await notify.new_request(db, conversation, notify_cc)
        await webhooks.conversation_event(db, conversation.id, "conversation.created")
    return await conversation_by_id(db, conversation.id)


async def open_as_guest(
    db: Database,
    name: str,
    email: str,
    body: str,
    files: Sequence[StoredFile],
    guest_token: Callable[[int], str],
    side_effects: SideEffects | None = None,
    notify_cc: str | None = None,
    about: About | None = None,
) -> Record:
    """A visitor's message through /contact. Their secret link is `guest_token(id)`, of
    which only the hash is stored; `side_effects(conversation)` runs in the transaction
    (the mail that carries the link)."""
    about = about or About()
    async with write_transaction(db):
        if await workflow.is_blocked(db, email):
            raise NotAllowed(_("We do not accept messages from this address."))
        await _check_about(db, about)
        conversation = await _insert_conversation(
            db,
            "support",
            body,
            "open",
            None,
            guest_name=name,
            guest_email=email.lower(),
            **about.columns(),
        )
        await db.execute(
            conversations.update()
            .where(conversations.c.id == conversation.id)
            .values(guest_token_hash=token_hash(guest_token(conversation.id)))
        )
        await _rotate(db, conversation.id, about.type_id)
        await _add_message(db, conversation, None, body, files)
        await notify.new_request(db, conversation, notify_cc)
        if side_effects is not None:
            await side_effects(conversation)
        await webhooks.conversation_event(db, conversation.id, "conversation.created")
    return await conversation_by_id(db, conversation.id)


async def send_invoice(
    db: Database, author: CurrentUser, customer_id: int, body: str, files: Sequence[StoredFile]
) -> Record:
    """An invoice notice from the shop into a customer's inbox; it takes no replies."""
    if not author.is_staff:
        raise NotAllowed()
    if not files or any(file.content_type != "application/pdf" for file in files):
        raise Invalid({"attachments": _("Invoices must be PDF files.")})
    async with write_transaction(db):
        if not await _is_active_customer(db, customer_id):
            raise Invalid({"customer": _("No customer has this customer number or email address.")})
        conversation = await _insert_conversation(db, "invoice", body, "solved", customer_id)
        await _add_message(db, conversation, author, body, files)
        await notify.invoice_notice(db, conversation)
    return await conversation_by_id(db, conversation.id)


async def open_by_staff(
    db: Database, author: CurrentUser, customer_id: int, body: str, files: Sequence[StoredFile]
) -> Record:
    """Staff write first (an order problem found in the warehouse): the request opens as
    Pending, waiting for the customer, assigned to its writer, and the doorbell rings."""
    if not author.is_staff:
        raise NotAllowed()
    async with write_transaction(db):
        if not await _is_active_customer(db, customer_id):
            raise Invalid({"customer": _("No customer has this customer number or email address.")})
        conversation = await _insert_conversation(db, "support", body, "pending", customer_id)
        await workflow.assign(db, conversation.id, author.id, author.id, opening=True)
        await _add_message(db, conversation, author, body, files)
        await notify.answer_waiting(db, conversation.id)
        await webhooks.conversation_event(db, conversation.id, "conversation.created")
    return await conversation_by_id(db, conversation.id)


async def announce(db: Database, author: CurrentUser, body: str) -> int:
    """An announcement into every active customer's inbox; returns how many received it.

    Set-based, however many customers there are: the conversations (numbered in one
    go), their one message each, then their summary columns from that message.
    """
    if not author.is_staff:
        raise NotAllowed()
    subject, cut = subject_from(body)
    async with write_transaction(db):
        now = utcnow()
        first_number = await next_ticket_number(db)
        recipients = sa.select(
            (first_number - 1 + sa.func.row_number().over(order_by=users.c.id)).label("number"),
            users.c.id.label("customer_id"),
            users.c.vip,
        ).where(users.c.role == "customer", users.c.is_active.is_(True))
        constants = {
            "kind": "announcement",
            "subject": subject,
            "subject_cut": cut,
            "status": "solved",
            **opening_columns(now),
        }
        select_all = recipients.add_columns(
            *(sa.literal(value).label(name) for name, value in constants.items())
        )
        await db.execute(
            conversations.insert().from_select(
                ["number", "customer_id", "vip", *constants], select_all
            )
        )
        sent = (
            conversations.c.number >= first_number,
            conversations.c.kind == "announcement",
        )
        new_conversations = sa.select(conversations.c.id).where(*sent)
        await db.execute(
            messages.insert().from_select(
                ["conversation_id", "author_id", "body", "body_html", "internal", "created_at"],
                sa.select(
                    conversations.c.id,
                    sa.literal(author.id),
                    sa.literal(body),
                    sa.literal(render_markdown(body)),
                    sa.literal(False),
                    sa.literal(now),
                ).where(conversations.c.id.in_(new_conversations)),
            )
        )
        # Every one has the same history: one message from the author. Its columns are
        # the same but for the message's own id, which each row takes from its message.
        columns = summary_columns([Said(0, author.id, True, False, now)], "solved", None)
        columns["assignee_id"] = None  # an announcement is nobody's to look after
        columns["last_public_message_id"] = (
            sa.select(sa.func.max(messages.c.id))
            .where(messages.c.conversation_id == conversations.c.id)
            .scalar_subquery()
        )
        await db.execute(conversations.update().where(*sent).values(**columns))
        await notify.announcement(db, first_number)
        await search.queue_selected(
            db,
            "message",
            sa.select(messages.c.id).where(messages.c.conversation_id.in_(new_conversations)),
        )
        return await db.fetch_val(sa.select(sa.func.count()).where(*sent))


async def _insert_conversation(
    db: Database,
    kind: str,
    body: str,
    status: str,
    customer_id: int | None,
    at: datetime | None = None,
    **guest,
) -> Record:
    subject, cut = subject_from(body)
    vip = False
    if customer_id is not None:
        vip = await db.fetch_val(sa.select(users.c.vip).where(users.c.id == customer_id))
    conversation_id = await db.fetch_val(
        conversations.insert()
        .values(
            number=await next_ticket_number(db),
            kind=kind,
            subject=subject,
            subject_cut=cut,
            status=status,
            customer_id=customer_id,
            vip=bool(vip),
            **opening_columns(at or utcnow()),
            **guest,
        )
        .returning(conversations.c.id)
    )
    return await conversation_by_id(db, conversation_id)


async def _check_about(db: Database, about: About) -> None:
    """A type still offered (it may have been deactivated while the form was open) and an
    order number that could be one; the form checked both, the service decides."""
    errors = {}
    if about.type_id is not None and not await types.is_active_type(db, about.type_id):
        errors["type"] = _("Please choose one of the listed types.")
    if about.order_number and (problem := types.order_number_problem(about.order_number)):
        errors["order_number"] = problem
    if errors:
        raise Invalid(errors)


async def _rotate(db: Database, conversation_id: int, type_id: int | None = None) -> None:
    assignee_id = await workflow.next_in_rotation(db, utcnow(), type_id)
    if assignee_id is not None:
        await workflow.assign(db, conversation_id, None, assignee_id, opening=True)


async def _is_active_customer(db: Database, user_id: int) -> bool:
    found = await db.fetch_val(
        sa.select(users.c.id).where(
            users.c.id == user_id, users.c.role == "customer", users.c.is_active.is_(True)
        )
    )
    return found is not None


# --- replies, notes, status --------------------------------------------------------------


async def reply(
    db: Database,
    conversation_id: int,
    author: CurrentUser | None,
    body: str,
    files: Sequence[StoredFile],
    *,
    internal: bool = False,
    status: str | None = None,
    flood_seconds: int = 0,
) -> int:
    """A message in an existing conversation; returns its id. `author` None: the guest
    whose link it is. Staff choose the `status` their answer leaves, and may write an
    `internal` note instead, which no customer ever sees."""
    async with write_transaction(db):
        conversation = await conversation_by_id(db, conversation_id)
        if conversation is None:
            raise NotFound()
        _ensure_may_write(conversation, author, internal, status)
        if author is None or not author.is_staff:
            await _check_flood(db, _flood_key(author, conversation.id), flood_seconds)
        message_id = await _add_message(
            db, conversation, author, body, files, internal=internal, status=status
        )
        if author is not None and author.is_staff and not internal:
            await notify.answer_waiting(db, conversation.id)
            await webhooks.conversation_event(db, conversation.id, "conversation.answered")
    return message_id


def _ensure_may_write(
    conversation: Record, author: CurrentUser | None, internal: bool, status: str | None
) -> None:
    if author is None:
        # A guest link writes only while the conversation is a guest's.
        if conversation.customer_id is not None or not permissions.guest_can_reply(conversation):
            raise NotAllowed(_("This conversation does not accept replies."))
    elif not permissions.can_reply_to_conversation(author, conversation):
        if not permissions.can_see_conversation(author, conversation):
            raise NotFound()
        raise NotAllowed(_("This conversation does not accept replies."))
    if (internal or status is not None) and not (author is not None and author.is_staff):
        raise NotAllowed()
    if status is not None and status not in workflow.STATUSES:
        raise Invalid({"status": _("Please choose a status.")})


async def change(
    db: Database,
    conversation_id: int,
    actor: CurrentUser,
    status: str | None,
    assignee_id: int | None,
    note: str = "",
) -> None:
    """Status and assignee without an answer: take it, hand it on with a note, close it."""
    if not actor.is_staff:
        raise NotAllowed()
    if status is not None and status not in workflow.STATUSES:
        raise Invalid({"update": _("Please choose a status.")})
    async with write_transaction(db):
        conversation = await conversation_by_id(db, conversation_id)
        if conversation is None:
            raise NotFound()
        if assignee_id is not None and not await workflow.is_active_staff(db, assignee_id):
            raise Invalid({"update": _("Please choose an active staff member.")})
        if status is not None:
            await workflow.set_status(db, conversation.id, actor.id, status, note=note)
        if assignee_id != conversation.assignee_id or (note and status is None):
            await workflow.assign(db, conversation.id, actor.id, assignee_id, note)


async def mark_done(db: Database, conversation_id: int, customer: CurrentUser) -> bool:
    """The customer closes their own request: solved, recorded in its history under
    their name. Their next message reopens it, as any customer message does. False when
    it was solved already (a second click)."""
    async with write_transaction(db):
        conversation = await conversation_by_id(db, conversation_id)
        if conversation is None or not permissions.can_see_conversation(customer, conversation):
            raise NotFound()
        if conversation.status == "solved" and conversation.customer_id == customer.id:
            return False
        if not permissions.can_mark_done(customer, conversation):
            raise NotAllowed(_("Only your own open requests can be marked as done."))
        return await workflow.set_status(db, conversation.id, customer.id, "solved")


async def join_to_account(db: Database, conversation_id: int, user: CurrentUser) -> None:
    """The customer with the conversation's address takes it into their inbox (the page
    asked them first); from then on its guest link asks for a login."""
    async with write_transaction(db):
        conversation = await conversation_by_id(db, conversation_id)
        if conversation is None:
            raise NotFound()
        if not permissions.customer_may_join(conversation, user):
            raise NotAllowed(_("Only the customer account with this address can take it."))
        await db.execute(
            conversations.update()
            .where(conversations.c.id == conversation.id)
            .values(customer_id=user.id)
        )
        # They join it from its page, having read it: it arrives read, as guests were never
        # notified of it (the bell and the unread badge agree).
        if conversation.last_public_message_id is not None:
            await mark_read_up_to(db, user.id, conversation.id, conversation.last_public_message_id)
        await search.queue_conversation(db, conversation.id)  # now the customer finds it


async def copy_vip(db: Database, customer_id: int, vip: bool) -> None:
    """The customer's VIP mark, copied onto their conversations so that the queue sorts
    VIPs first from its index; inside the transaction that changes the account's."""
    await db.execute(
        conversations.update()
        .where(conversations.c.customer_id == customer_id, conversations.c.vip != vip)
        .values(vip=vip)
    )


async def link_topic(db: Database, conversation: Record, topic_id: int, actor_id: int) -> None:
    """The forum topic published from the conversation, and who did it in its history;
    inside the transaction that writes the topic, so a topic never stands without it."""
    await db.execute(
        conversations.update()
        .where(conversations.c.id == conversation.id)
        .values(forum_topic_id=topic_id)
    )
    previous = conversation.forum_topic_id
    await workflow.record_event(
        db,
        conversation.id,
        actor_id,
        "published",
        str(previous) if previous is not None else None,
        str(topic_id),
    )


# --- imported mail -----------------------------------------------------------------------


async def open_imported(db: Database, customer_id: int, body: str, at: datetime) -> int:
    """A conversation for an imported mail, dated like the mail; inside the import's
    transaction. Its status follows from the mail that `add_imported` adds next."""
    conversation = await _insert_conversation(db, "support", body, "open", customer_id, at)
    return conversation.id


async def add_imported(
    db: Database,
    conversation_id: int,
    author_id: int,
    from_shop: bool,
    body: str,
    files: Sequence[StoredFile],
    at: datetime,
    source: dict,
    is_new: bool,
) -> int:
    """An imported mail as a message, inside the import's transaction; returns its id.

    Old mail is no news: nothing rings, nothing is rotated, the customer has read it.
    The status follows the newest mail ("solved" when the shop wrote last, else "open"),
    but only when that is this mail: one older than what the conversation holds does not
    undo what happened since. A change goes into the status history dated like the mail.
    """
    message_id = await _insert_message(db, conversation_id, author_id, body, files, False, at)
    await db.execute(
        mail_imports.insert().values(
            conversation_id=conversation_id, message_id=message_id, imported_at=utcnow(), **source
        )
    )
    said = await history(db, conversation_id)
    newest = max((s for s in said if not s.internal), key=lambda s: (s.at, s.id))
    if newest.id == message_id:
        status = "solved" if from_shop else "open"
        if is_new:
            await db.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id)
                .values(status=status)
            )
        else:
            await workflow.set_status(
                db, conversation_id, author_id if from_shop else None, status, now=at
            )
    await _write_summary(db, conversation_id, said)
    customer_id = await db.fetch_val(
        sa.select(conversations.c.customer_id).where(conversations.c.id == conversation_id)
    )
    if customer_id is not None:
        everything = max(s.id for s in said if not s.internal)
        await mark_read_up_to(db, customer_id, conversation_id, everything)
    return message_id


# --- the steps every message takes -------------------------------------------------------


async def _add_message(
    db: Database,
    conversation: Record,
    author: CurrentUser | None,
    body: str,
    files: Sequence[StoredFile],
    internal: bool = False,
    status: str | None = None,
) -> int:
    """Inserts the message and its files, moves the status, keeps the summary columns."""
    now = utcnow()
    author_id = author.id if author else None
    message_id = await _insert_message(db, conversation.id, author_id, body, files, internal, now)
    if author is None or not author.is_staff:
        # The ball is in the shop's court again, even when the conversation had been solved.
        await workflow.set_status(db, conversation.id, None, "open", now)
    elif status is not None:
        await workflow.set_status(db, conversation.id, author_id, status, now)
    if not internal:
        # An internal note changes nothing the customer sees: not the activity time that
        # orders and dates their inbox and their data export.
        await _write_summary(db, conversation.id, await history(db, conversation.id))
    if author is not None and not internal:
        await mark_read_up_to(db, author.id, conversation.id, message_id)
        # Written from a page that was open before the answer came: the answer is read,
        # and so is what told of it (the bell agrees with the unread badge).
        if await notifications.mark_conversation_read(db, author.id, conversation.id):
            await events.record(db, "counts", to_user=author.id)  # the author's other tabs
    await _announce_live(db, conversation, message_id, internal)
    return message_id


async def _insert_message(
    db: Database,
    conversation_id: int,
    author_id: int | None,
    body: str,
    files: Sequence[StoredFile],
    internal: bool,
    at: datetime,
) -> int:
    message_id = await db.fetch_val(
        messages.insert()
        .values(
            conversation_id=conversation_id,
            author_id=author_id,
            body=body,
            body_html=render_markdown(body),
            internal=internal,
            created_at=at,
        )
        .returning(messages.c.id)
    )
    if files:
        await db.execute_many(
            attachments.insert(),
            [
                {
                    "message_id": message_id,
                    "conversation_id": conversation_id,
                    "filename": file.filename,
                    "content_type": file.content_type,
                    "size": file.size,
                    "sha256": file.sha256,
                    "created_at": at,
                }
                for file in files
            ],
        )
    keep(files)  # into the store with their rows; a rollback leaves them to the sweep
    await search.queue_message(db, message_id)
    return message_id


async def _write_summary(db: Database, conversation_id: int, said: list[Said]) -> None:
    """The one writer of the summary columns (board.conversations.summary)."""
    current = await db.fetch_one(
        sa.select(conversations.c.status, conversations.c.assignee_id).where(
            conversations.c.id == conversation_id
        )
    )
    columns = summary_columns(said, current.status, current.assignee_id)
    await db.execute(
        conversations.update().where(conversations.c.id == conversation_id).values(**columns)
    )


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


# --- the flood rule ----------------------------------------------------------------------


def _flood_key(author: CurrentUser | None, conversation_id: int | None) -> str:
    return f"user:{author.id}" if author is not None else f"guest:{conversation_id}"


async def seconds_to_wait(
    db: Database, author: CurrentUser | None, conversation_id: int | None, seconds: int
) -> int:
    """How long the writer must wait before the flood rule lets their next message
    through; 0: now. A cheap early answer, before a request's files are read and checked;
    the rule itself is decided in the write transaction."""
    if seconds <= 0 or (author is not None and author.is_staff):
        return 0
    return await _wait(db, _flood_key(author, conversation_id), seconds)


async def _wait(db: Database, key: str, seconds: int) -> int:
    window = timedelta(seconds=seconds)
    # One message per window: the oldest in the window is the only one.
    last = await security.oldest_recent_event(db, "message", key, window)
    if last is None:
        return 0
    return max(1, int((window - (utcnow() - last)).total_seconds()) + 1)


async def _check_flood(db: Database, key: str, seconds: int) -> None:
    """One message per `seconds` (BOARD_FLOOD_SECONDS) and writer, checked and counted in
    the write transaction: two quick submissions cannot both pass."""
    if seconds <= 0:
        return
    await one_at_a_time(db, "flood", key)
    if wait := await _wait(db, key, seconds):
        raise TooSoon(wait)
    await security.record_event(db, "message", key)
