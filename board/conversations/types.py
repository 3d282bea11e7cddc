"""Request types ("Bestellung", "Rücksendung"…) and order numbers: what a new request is
about, the shop's list of types, and staff's areas of responsibility.

Types are the shop's own data: stored in its words and shown as stored in every UI
language. They are never deleted (conversations keep theirs); a deactivated type is not
offered for new requests, and the queue, statistics and old conversations still name it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from databases import Database

from board.db import Query, request_types, staff_request_types, users, utcnow, write_transaction
from board.errors import Invalid, NotFound
from board.i18n import gettext as _
from board.security import STAFF_ROLES

Record = Any
NAME_MAX = 60
ORDER_NUMBER_MAX = 40


# --- rules on plain values ---------------------------------------------------------------


def order_number_problem(text: str) -> str | None:
    """Why `text` is no order number a customer could have: too long, or holding a line
    break, a control or an invisible formatting character. Empty is fine (optional)."""
    if len(text) > ORDER_NUMBER_MAX:
        return _("An order number has at most %(count)s characters.", count=ORDER_NUMBER_MAX)
    # isprintable() is False for line breaks, tabs, controls and invisible format
    # characters (Cf, such as a zero-width space): none belongs in an order number.
    if not text.isprintable():
        return _("Please enter the order number as it appears on your order confirmation.")
    return None


def name_problem(name: str) -> str | None:
    if not name:
        return _("Please enter a name.")
    if len(name) > NAME_MAX:
        return _("A name has at most %(count)s characters.", count=NAME_MAX)
    if not name.isprintable():
        return _("Please use letters, digits and punctuation only.")
    return None


# --- reading -----------------------------------------------------------------------------

ALL_TYPES = Query(sa.select(request_types).order_by(request_types.c.position, request_types.c.id))
ACTIVE_TYPES = Query(
    sa.select(request_types.c.id, request_types.c.name)
    .where(request_types.c.is_active.is_(True))
    .order_by(request_types.c.position, request_types.c.id)
)
RESPONSIBILITIES = Query(
    sa.select(staff_request_types.c.user_id, staff_request_types.c.type_id).order_by(
        staff_request_types.c.user_id, staff_request_types.c.type_id
    )
)


async def all_types(db: Database) -> list[Record]:
    """Every type, the deactivated ones too (the admin page, filters, statistics)."""
    return await ALL_TYPES.rows(db)


async def active_types(db: Database) -> list[Record]:
    """The types a new request may choose, in the shop's order."""
    return await ACTIVE_TYPES.rows(db)


async def responsibilities(db: Database) -> dict[int, set[int]]:
    """Each staff member's types, by user id."""
    found: dict[int, set[int]] = {}
    for row in await RESPONSIBILITIES.rows(db):
        found.setdefault(row.user_id, set()).add(row.type_id)
    return found


def chosen_type(text: str, offered: Iterable[Record]) -> tuple[int | None, str | None]:
    """The type id a form chose among the `offered` (active) ones, or the error. Empty:
    no type, which is fine."""
    if not text:
        return None, None
    ids = {row.id for row in offered}
    if text.isdigit() and int(text) in ids:
        return int(text), None
    return None, _("Please choose one of the listed types.")


async def is_active_type(db: Database, type_id: int) -> bool:
    found = await db.fetch_val(
        sa.select(request_types.c.id).where(
            request_types.c.id == type_id, request_types.c.is_active.is_(True)
        )
    )
    return found is not None


async def type_or_404(db: Database, type_id: int) -> Record:
    row = await db.fetch_one(sa.select(request_types).where(request_types.c.id == type_id))
    if row is None:
        raise NotFound()
    return row


# --- writing (staff only; the pages check who asks) ---------------------------------------


async def _name_taken(db: Database, name: str, except_id: int | None) -> bool:
    statement = sa.select(request_types.c.id).where(
        sa.func.lower(request_types.c.name) == name.lower()
    )
    if except_id is not None:
        statement = statement.where(request_types.c.id != except_id)
    return await db.fetch_val(statement) is not None


async def create_type(db: Database, name: str) -> int:
    """A new active type at the end of the list; raises Invalid for a bad or taken name."""
    name = " ".join(name.split())
    if problem := name_problem(name):
        raise Invalid({"name": problem})
    async with write_transaction(db):
        if await _name_taken(db, name, None):
            raise Invalid({"name": _("A type of this name exists already.")})
        last = await db.fetch_val(sa.select(sa.func.max(request_types.c.position)))
        return await db.fetch_val(
            request_types.insert()
            .values(
                name=name,
                position=(last if last is not None else -1) + 1,
                is_active=True,
                created_at=utcnow(),
            )
            .returning(request_types.c.id)
        )


async def change_type(db: Database, type_id: int, name: str, active: bool) -> None:
    """Renames a type (its conversations show the new name) or (de)activates it."""
    name = " ".join(name.split())
    if problem := name_problem(name):
        raise Invalid({"name": problem})
    async with write_transaction(db):
        await type_or_404(db, type_id)
        if await _name_taken(db, name, type_id):
            raise Invalid({"name": _("A type of this name exists already.")})
        await db.execute(
            request_types.update()
            .where(request_types.c.id == type_id)
            .values(name=name, is_active=active)
        )


async def set_responsibilities(db: Database, user_id: int, type_ids: set[int]) -> None:
    """The staff member's areas of responsibility become exactly `type_ids` (known types
    only; a deactivated one may stay, it simply gets no new requests)."""
    async with write_transaction(db):
        is_staff = await db.fetch_val(
            sa.select(users.c.id).where(users.c.id == user_id, users.c.role.in_(STAFF_ROLES))
        )
        if is_staff is None:
            raise NotFound()
        known = {row.id for row in await db.fetch_all(sa.select(request_types.c.id))}
        if not type_ids <= known:
            raise Invalid({"types": _("Please choose among the listed types.")})
        await replace_responsibilities(db, user_id, type_ids)


async def replace_responsibilities(db: Database, user_id: int, type_ids: set[int]) -> None:
    """Inside a write transaction: the member's areas become exactly these known types."""
    await db.execute(staff_request_types.delete().where(staff_request_types.c.user_id == user_id))
    if type_ids:
        await db.execute_many(
            staff_request_types.insert(),
            [{"user_id": user_id, "type_id": type_id} for type_id in sorted(type_ids)],
        )
