"""Every SQL statement of the customer list (/staff/customers): find a customer by name,
email or customer number, each with their requests, VIP flag and note."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from board.db import Query, conversations, fetch_rows, users

Record = Any
NOTE_PREVIEW = 160  # characters of the internal note the list shows
MAX_WORDS = 8

# Requests only: every customer also holds one conversation per announcement.
_requests = conversations.alias("requests")
_theirs = sa.and_(_requests.c.customer_id == users.c.id, _requests.c.kind == "support")
# Both read from ix_conversations_customer_kind alone, for the 30 rows of a page.
REQUEST_COUNT = sa.select(sa.func.count()).select_from(_requests).where(_theirs).scalar_subquery()
LAST_REQUEST_AT = (
    sa.select(sa.func.max(_requests.c.last_message_at))
    .select_from(_requests)
    .where(_theirs)
    .scalar_subquery()
)
LIST_COLUMNS = (
    users.c.id,
    users.c.customer_number,
    users.c.name,
    users.c.email,
    users.c.vip,
    sa.func.substr(users.c.note, 1, NOTE_PREVIEW).label("note"),
    (sa.func.length(users.c.note) > NOTE_PREVIEW).label("note_cut"),
    users.c.is_active,
    users.c.erased_at,
    REQUEST_COUNT.label("request_count"),
    LAST_REQUEST_AT.label("last_request_at"),
)
IS_CUSTOMER = users.c.role == "customer"
ORDER = (users.c.name, users.c.id)


@dataclass(frozen=True)
class Lookup:
    """What was typed into the list's search box, read once."""

    text: str
    number: int | None  # a bare number: the customer number
    words: tuple[str, ...]


def read_lookup(text: str) -> Lookup:
    text = text.replace("\x00", "").strip()[:200]
    bare = text.removeprefix("#").strip()
    number = int(bare) if bare.isdigit() and len(bare) <= 12 else None
    return Lookup(text=text, number=number, words=tuple(text.lower().split()[:MAX_WORDS]))


def _contains(column: sa.ColumnElement, word: str) -> sa.ColumnElement:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def lookup_condition(lookup: Lookup) -> sa.ColumnElement:
    """A bare number is a customer number (the unique index finds it); words must each be
    in the name or the email address ("erika", "muster erika", "@example.com")."""
    if lookup.number is not None:
        return users.c.customer_number == lookup.number
    return sa.and_(
        *(
            sa.or_(_contains(users.c.name, word), _contains(users.c.email, word))
            for word in lookup.words
        )
    )


# The list without a search, the page staff open first: the page's ids from
# ix_users_customer_name alone, then their rows with the counts.
_page = users.alias("page")
ALL_PAGE = Query(
    sa.select(*LIST_COLUMNS)
    .where(
        users.c.id.in_(
            sa.select(_page.c.id)
            .where(_page.c.role == "customer")
            .order_by(_page.c.name, _page.c.id)
            .limit(sa.bindparam("limit"))
            .offset(sa.bindparam("offset"))
        )
    )
    .order_by(*ORDER)
)
ALL_TOTAL = Query(sa.select(sa.func.count()).select_from(users).where(IS_CUSTOMER))


async def customers_page(db: Database, lookup: Lookup, page: int, per_page: int) -> list[Record]:
    """One page of customers with their request counts: one query."""
    offset = (page - 1) * per_page
    if not lookup.text:
        return await ALL_PAGE.rows(db, limit=per_page, offset=offset)
    statement = (
        sa.select(*LIST_COLUMNS)
        .where(IS_CUSTOMER, lookup_condition(lookup))
        .order_by(*ORDER)
        .limit(per_page)
        .offset(offset)
    )
    if lookup.number is not None:
        return await fetch_rows(db, statement)
    return await db.fetch_all(statement)  # words inside names: a scan, off the event loop


async def customers_total(db: Database, lookup: Lookup) -> int:
    if not lookup.text:
        return await ALL_TOTAL.value(db)
    return await db.fetch_val(
        sa.select(sa.func.count()).select_from(users).where(IS_CUSTOMER, lookup_condition(lookup))
    )


CUSTOMER_BY_NUMBER = Query(
    sa.select(users.c.id, users.c.name, users.c.customer_number).where(
        users.c.customer_number == sa.bindparam("number"), IS_CUSTOMER
    )
)


async def customer_by_number(db: Database, number: int) -> Record | None:
    """The customer with this customer number (the search page shows them beside a ticket
    with the same number)."""
    return await CUSTOMER_BY_NUMBER.row(db, number=number)
