"""Every SQL statement of the staff queue: the queue, one conversation, answers, assignment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from databases import Database

from board.conversations import writing
from board.conversations.workflow import STATUSES
from board.db import (
    Query,
    absences,
    canned_replies,
    conversation_events,
    conversations,
    fetch_row,
    fetch_rows,
    fetch_value,
    queue_counts,
    request_types,
    users,
    utcnow,
    write_transaction,
)
from board.errors import NotFound
from board.inbox.queries import text_condition
from board.security import STAFF_ROLES

Record = Any


# --- team availability -------------------------------------------------------------------


ABSENT_NOW = Query(
    sa.select(absences)
    .where(absences.c.starts_at <= sa.bindparam("now"), absences.c.ends_at > sa.bindparam("now"))
    .order_by(absences.c.ends_at)
)
ACTIVE_STAFF = Query(
    sa.select(
        users.c.id,
        users.c.name,
        users.c.title,
        users.c.role,
        users.c.accepting,
        users.c.availability_note,
    )
    .where(users.c.role.in_(STAFF_ROLES), users.c.is_active.is_(True))
    .order_by(users.c.name)
)


async def current_absences(db: Database, now: datetime | None = None) -> dict[int, Record]:
    """Staff away right now, by user id, each with the absence that ends last."""
    rows = await ABSENT_NOW.rows(db, now=now or utcnow())
    return {row.user_id: row for row in rows}


async def active_staff(db: Database) -> list[Record]:
    return await ACTIVE_STAFF.rows(db)


# --- the queue ---------------------------------------------------------------------------

# Requests only: announcements and invoice notices go out from the shop and take no
# replies. One kind, not a list: `kind IN (...)` made SQLite sort instead of reading the
# queue's indexes in order (9 ms against 0.2 ms for the first page at 50,000).
QUEUE_KIND = "support"
customer = users.alias("customer")
assignee = users.alias("assignee")


# The type filter: a type's id, NO_TYPE for requests without one, None for all.
NO_TYPE = 0


def _queue_filter(
    status: str,
    assigned: str,
    me: int,
    query: str | None,
    numbers: Sequence[int] | None,
    table: sa.Table | sa.Alias = conversations,
    type_id=None,
):
    conditions = [table.c.kind == QUEUE_KIND, table.c.status == status]
    if assigned == "me":
        conditions.append(table.c.assignee_id == me)
    elif assigned == "none":
        conditions.append(table.c.assignee_id.is_(None))
    elif assigned == "me_none":
        conditions.append(sa.or_(table.c.assignee_id == me, table.c.assignee_id.is_(None)))
    if isinstance(type_id, int) and type_id == NO_TYPE:
        conditions.append(table.c.type_id.is_(None))
    elif type_id is not None:  # an id, or a placeholder for one (ix_conversations_type_*)
        conditions.append(table.c.type_id == type_id)
    if query:
        conditions.append(text_condition(query, numbers))
    return sa.and_(*conditions)


# How open requests can be ordered; the other states are ordered by their last activity.
# Newest first is the default: a request that just arrived is always on the first page.
OPEN_ORDERS = ("newest", "waiting")


def queue_order(status: str, order: str | None) -> str:
    """The order a view of `status` is shown in: one of OPEN_ORDERS, or "activity"."""
    if status != "open":
        return "activity"
    return order if order in OPEN_ORDERS else OPEN_ORDERS[0]


def _queue_order(order: str, table: sa.Table | sa.Alias = conversations):
    if order == "waiting":
        # VIP customers first, then whoever has waited longest.
        return (table.c.vip.desc(), table.c.waiting_since, table.c.id)
    if order == "newest":
        # Whoever started waiting last, first (ix_conversations_newest, read backwards).
        return (table.c.waiting_since.desc(), table.c.id.desc())
    return (table.c.last_message_at.desc(), table.c.id.desc())


QUEUE_COLUMNS = (
    conversations.c.id,
    conversations.c.number,
    conversations.c.kind,
    conversations.c.subject,
    conversations.c.subject_cut,
    conversations.c.status,
    conversations.c.vip,
    conversations.c.customer_id,
    conversations.c.guest_name,
    conversations.c.guest_email,
    conversations.c.assignee_id,
    conversations.c.created_at,
    conversations.c.last_message_at,
    conversations.c.waiting_since,
    conversations.c.message_count,
    conversations.c.type_id,
    conversations.c.order_number,
    customer.c.name.label("customer_name"),
    customer.c.customer_number,
    assignee.c.name.label("assignee_name"),
    request_types.c.name.label("type_name"),
)


def _with_people(statement: sa.Select) -> sa.Select:
    return statement.select_from(
        conversations.outerjoin(customer, customer.c.id == conversations.c.customer_id)
        .outerjoin(assignee, assignee.c.id == conversations.c.assignee_id)
        .outerjoin(request_types, request_types.c.id == conversations.c.type_id)
    )


def _prepared_page(order: str, assigned: str, typed: bool = False) -> Query:
    """A page of the queue: its ids first, from the index alone (ix_conversations_activity
    and _waiting cover filter and order), then their rows with the people's names. With
    the joins in the OFFSET, page 1,100 of 34,000 solved conversations took 31 ms: every
    skipped row was read and joined; now 2 ms."""
    page = conversations.alias("page")
    type_id = sa.bindparam("type_id") if typed else None
    wanted = _queue_filter(
        sa.bindparam("status"), assigned, sa.bindparam("me"), None, None, page, type_id
    )
    ids = (
        sa.select(page.c.id)
        .where(wanted)
        .order_by(*_queue_order(order, page))
        .limit(sa.bindparam("limit"))
        .offset(sa.bindparam("offset"))
    )
    return Query(
        _with_people(sa.select(*QUEUE_COLUMNS))
        .where(conversations.c.id.in_(ids))
        .order_by(*_queue_order(order))
    )


# The queue without a search, per order, assignment filter and whether one type is asked
# for: the page staff look at all day.
QUEUE_PAGES = {
    (order, assigned, typed): _prepared_page(order, assigned, typed)
    for order in (*OPEN_ORDERS, "activity")
    for assigned in ("all", "me", "none", "me_none")
    for typed in (False, True)
}


async def queue_page(
    db: Database,
    status: str,
    assigned: str,
    me: int,
    query: str | None,
    page: int,
    per_page: int,
    numbers: Sequence[int] | None = None,
    order: str = "activity",
    type_id: int | None = None,
) -> list[Record]:
    """One page of the queue with customer and assignee names, in `order` (queue_order's):
    one query. With a `query`, only the conversations `numbers` names (the search index's
    answer), if given; with a `type_id`, only requests of that type (NO_TYPE: those
    without one)."""
    offset = (page - 1) * per_page
    typed = type_id is not None and type_id != NO_TYPE
    if not query and type_id != NO_TYPE and (order, assigned, typed) in QUEUE_PAGES:
        prepared = QUEUE_PAGES[order, assigned, typed]
        values = {"type_id": type_id} if typed else {}
        return await prepared.rows(
            db, status=status, me=me, limit=per_page, offset=offset, **values
        )
    statement = (
        _with_people(sa.select(*QUEUE_COLUMNS))
        .where(_queue_filter(status, assigned, me, query, numbers, type_id=type_id))
        .order_by(*_queue_order(order))
        .limit(per_page)
        .offset(offset)
    )
    if query and numbers is None:  # words looked up in the texts: may scan, off the loop
        return await db.fetch_all(statement)
    return await fetch_rows(db, statement)


NEXT_WAITING = Query(
    sa.select(conversations.c.number)
    .where(
        conversations.c.kind == QUEUE_KIND,
        conversations.c.status == "open",
        sa.or_(
            conversations.c.assignee_id == sa.bindparam("me"),
            conversations.c.assignee_id.is_(None),
        ),
        conversations.c.id != sa.bindparam("except_id"),
    )
    .order_by(*_queue_order("waiting"))
    .limit(1)
)


async def next_waiting(db: Database, me: int, except_id: int) -> int | None:
    """The ticket number that is next for this staff member after `except_id`: the first open
    request of theirs or nobody's, in the queue's order (VIP first, longest waiting)."""
    return await NEXT_WAITING.value(db, me=me, except_id=except_id)


async def queue_total(
    db: Database,
    status: str,
    assigned: str,
    me: int,
    query: str,
    numbers: Sequence[int] | None = None,
    type_id: int | None = None,
) -> int:
    return await db.fetch_val(
        sa.select(sa.func.count())
        .select_from(conversations)
        .where(_queue_filter(status, assigned, me, query, numbers, type_id=type_id))
    )


QUEUE_COUNTS = Query(
    sa.select(
        queue_counts.c.status, queue_counts.c.assignee_id, queue_counts.c.type_id, queue_counts.c.n
    )
)


async def queue_counts(
    db: Database, me: int, type_id: int | None = None
) -> dict[str, dict[str, int]]:
    """Conversations per status, for all, mine and unassigned, of one type (NO_TYPE: of
    none) or of all: a few rows of the counter table that triggers keep (migrations 0012
    and 0014), the same time at any size."""
    counts = {status: {"all": 0, "me": 0, "none": 0, "me_none": 0} for status in STATUSES}
    for row in await QUEUE_COUNTS.rows(db):
        of_status = counts.get(row.status)
        if of_status is None or (type_id is not None and row.type_id != type_id):
            continue
        of_status["all"] += row.n
        if row.assignee_id == me:
            of_status["me"] += row.n
        elif row.assignee_id == 0:
            of_status["none"] += row.n
    for of_status in counts.values():
        of_status["me_none"] = of_status["me"] + of_status["none"]
    return counts


async def count_waiting_since_before(db: Database, moment: datetime) -> int:
    """Open requests that have waited past the alert threshold."""
    return await db.fetch_val(
        sa.select(sa.func.count())
        .select_from(conversations)
        .where(
            conversations.c.kind == QUEUE_KIND,
            conversations.c.status == "open",
            conversations.c.waiting_since < moment,
        )
    )


async def latest_conversations(db: Database, limit: int = 10) -> list[Record]:
    is_request = conversations.c.kind == QUEUE_KIND
    if db.url.dialect == "sqlite":
        # Nearly every conversation is a request: said so, SQLite walks the newest ids
        # and stops after `limit` instead of sorting all requests (7 ms at 50,000).
        # PostgreSQL's planner keeps statistics and needs no such hint.
        is_request = sa.func.likelihood(is_request, sa.literal_column("0.95"))
    return await fetch_rows(
        db,
        _with_people(sa.select(*QUEUE_COLUMNS))
        .where(is_request, conversations.c.status != "spam")
        .order_by(conversations.c.id.desc())
        .limit(limit),
    )


# --- one conversation --------------------------------------------------------------------


_ACTOR = users.alias("actor")
HISTORY = Query(
    sa.select(conversation_events, _ACTOR.c.name.label("actor_name"))
    .select_from(
        conversation_events.outerjoin(_ACTOR, _ACTOR.c.id == conversation_events.c.actor_id)
    )
    .where(conversation_events.c.conversation_id == sa.bindparam("conversation_id"))
    .order_by(conversation_events.c.id)
)


async def history_of(db: Database, conversation_id: int) -> list[Record]:
    return await HISTORY.rows(db, conversation_id=conversation_id)


CUSTOMER_PANEL = Query(
    sa.select(
        users.c.id,
        users.c.name,
        users.c.email,
        users.c.customer_number,
        users.c.created_at,
        users.c.post_count,
        users.c.note,
        users.c.vip,
        users.c.is_active,
        users.c.erased_at,
    ).where(users.c.id == sa.bindparam("customer_id"), users.c.role == "customer")
)


async def customer_or_none(db: Database, customer_id: int | None) -> Record | None:
    if customer_id is None:
        return None
    return await CUSTOMER_PANEL.row(db, customer_id=customer_id)


def _conversations_of(owner: sa.ColumnElement) -> Query:
    """A person's conversations but one, newest first (the customer panel's list)."""
    return Query(
        sa.select(
            conversations.c.id,
            conversations.c.number,
            conversations.c.kind,
            conversations.c.subject,
            conversations.c.subject_cut,
            conversations.c.status,
            conversations.c.last_message_at,
        )
        .where(owner, conversations.c.id != sa.bindparam("except_id"))
        .order_by(conversations.c.last_message_at.desc())
        .limit(sa.bindparam("limit"))
    )


OF_CUSTOMER = _conversations_of(conversations.c.customer_id == sa.bindparam("owner"))
OF_GUEST = _conversations_of(conversations.c.guest_email == sa.bindparam("owner"))


async def conversations_of_person(
    db: Database,
    customer_id: int | None,
    guest_email: str | None,
    except_id: int | None = None,
    limit: int = 10,
) -> list[Record]:
    """The person's conversations, newest first: by account, or by a guest's address."""
    if customer_id is not None:
        wanted, owner = OF_CUSTOMER, customer_id
    elif guest_email:
        wanted, owner = OF_GUEST, guest_email
    else:
        return []
    return await wanted.rows(db, owner=owner, except_id=except_id or 0, limit=limit)


async def save_customer_note(db: Database, customer_id: int, note: str, vip: bool) -> None:
    async with write_transaction(db):
        await db.execute(users.update().where(users.c.id == customer_id).values(note=note, vip=vip))
        await writing.copy_vip(db, customer_id, vip)


async def customer_by_login(db: Database, login: str) -> Record | None:
    """A customer by customer number or email, as staff type it on the invoice form."""
    login = login.strip().lower()
    if login.isdigit():
        condition = users.c.customer_number == int(login)
    else:
        condition = users.c.email == login
    return await fetch_row(
        db,
        sa.select(users.c.id, users.c.name, users.c.customer_number).where(
            condition, users.c.role == "customer", users.c.erased_at.is_(None)
        ),
    )


# --- canned replies ----------------------------------------------------------------------


CANNED_REPLIES = Query(sa.select(canned_replies).order_by(canned_replies.c.shortcut))


async def canned_replies_list(db: Database) -> list[Record]:
    return await CANNED_REPLIES.rows(db)


async def canned_reply_or_404(db: Database, reply_id: int) -> Record:
    row = await fetch_row(db, sa.select(canned_replies).where(canned_replies.c.id == reply_id))
    if row is None:
        raise NotFound()
    return row


async def shortcut_taken(db: Database, shortcut: str, except_id: int | None) -> bool:
    statement = sa.select(canned_replies.c.id).where(canned_replies.c.shortcut == shortcut)
    if except_id is not None:
        statement = statement.where(canned_replies.c.id != except_id)
    return await fetch_value(db, statement) is not None


async def save_canned_reply(
    db: Database, reply_id: int | None, shortcut: str, title: str, body: str, author_id: int
) -> None:
    values = dict(shortcut=shortcut, title=title, body=body, updated_at=utcnow())
    if reply_id is None:
        await db.execute(canned_replies.insert().values(created_by=author_id, **values))
    else:
        await db.execute(
            canned_replies.update().where(canned_replies.c.id == reply_id).values(**values)
        )


async def delete_canned_reply(db: Database, reply_id: int) -> None:
    await db.execute(canned_replies.delete().where(canned_replies.c.id == reply_id))
