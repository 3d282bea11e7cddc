"""Absence cover: each staff member's deputy and availability note, the job that hands
their open work over when an absence starts, and the notice of what moved.

The job runs at each absence's start time (its loop sleeps until the next one), not when
somebody happens to look. It marks the absence `handed_over_at` in the transaction that
moves the conversations: a restart, or a second worker or machine, finds it done.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from databases import Database

from board.conversations import workflow
from board.db import (
    Query,
    absences,
    conversations,
    fetch_value,
    handovers,
    users,
    utcnow,
    write_transaction,
)
from board.errors import Invalid
from board.i18n import gettext as _
from board.security import STAFF_ROLES
from board.waking import sleep_until_woken

log = logging.getLogger("board.handover")

Record = Any
NOTE_MAX = 120
INTERVAL_SECONDS = 60  # the longest the loop sleeps: absences entered meanwhile
SHORTEST_PAUSE = 0.05
WORK_STATUSES = ("open", "pending")


# --- deputy and availability note ------------------------------------------------------


async def set_cover(db: Database, user_id: int, deputy_id: int | None, note: str) -> None:
    """Names `deputy_id` (None: the rotation) and the availability note of `user_id`;
    raises Invalid for a deputy who is not another active staff member, or a long note."""
    errors: dict[str, str] = {}
    if len(note) > NOTE_MAX:
        errors["availability_note"] = _(
            "The note may have at most %(count)s characters.", count=NOTE_MAX
        )
    if deputy_id == user_id:
        errors["deputy"] = _("You cannot be your own deputy.")
    elif deputy_id is not None and not await workflow.is_active_staff(db, deputy_id):
        errors["deputy"] = _("Please choose an active staff member.")
    if errors:
        raise Invalid(errors)
    async with write_transaction(db):
        await db.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(deputy_id=deputy_id, availability_note=note)
        )


# --- the handover ------------------------------------------------------------------------

DUE = Query(
    sa.select(absences.c.id)
    .where(
        absences.c.handed_over_at.is_(None),
        absences.c.starts_at <= sa.bindparam("now"),
        absences.c.ends_at > sa.bindparam("now"),
    )
    .order_by(absences.c.starts_at, absences.c.id)
)
NEXT_START = Query(
    sa.select(sa.func.min(absences.c.starts_at)).where(
        absences.c.handed_over_at.is_(None), absences.c.starts_at > sa.bindparam("now")
    )
)


async def hand_over_due(db: Database, now: datetime | None = None) -> int:
    """Hands over the work of every absence that has started and not been handed over;
    returns how many conversations moved."""
    now = now or utcnow()
    moved = 0
    for due in await DUE.rows(db, now=now):
        async with write_transaction(db):
            # Again, locked (the row on PostgreSQL; SQLite's BEGIN IMMEDIATE locks the
            # database): a second worker waits here, then finds the mark and leaves.
            absence = await db.fetch_one(
                sa.select(absences)
                .where(absences.c.id == due.id, absences.c.handed_over_at.is_(None))
                .with_for_update()
            )
            if absence is None:
                continue
            await db.execute(
                absences.update().where(absences.c.id == absence.id).values(handed_over_at=now)
            )
            moved += await _hand_over(db, absence, now)
    return moved


async def _hand_over(db: Database, absence: Record, now: datetime) -> int:
    deputy_id = await _present_deputy(db, absence.user_id, now)
    work = await db.fetch_all(
        sa.select(conversations.c.id)
        .where(
            conversations.c.assignee_id == absence.user_id,
            conversations.c.kind == "support",
            conversations.c.status.in_(WORK_STATUSES),
        )
        .order_by(conversations.c.id)
    )
    for conversation in work:
        # Without a deputy each conversation takes its turn in the rotation, so the work
        # spreads over everybody present rather than landing on one person.
        to_user_id = deputy_id or await workflow.next_in_rotation(db, now)
        await workflow.assign(db, conversation.id, None, to_user_id, action="handover")
        await db.execute(
            handovers.insert().values(
                absence_id=absence.id,
                user_id=absence.user_id,
                conversation_id=conversation.id,
                to_user_id=to_user_id,
                created_at=now,
            )
        )
    if work:
        log.info("absence %s: %s conversations handed over", absence.id, len(work))
    return len(work)


async def _present_deputy(db: Database, user_id: int, now: datetime) -> int | None:
    """The deputy, if they are an active staff member and not away themselves."""
    away = sa.select(absences.c.user_id).where(
        absences.c.starts_at <= now, absences.c.ends_at > now
    )
    deputy = users.alias("deputy")
    return await fetch_value(
        db,
        sa.select(deputy.c.id)
        .select_from(users.join(deputy, deputy.c.id == users.c.deputy_id))
        .where(
            users.c.id == user_id,
            deputy.c.role.in_(STAFF_ROLES),
            deputy.c.is_active.is_(True),
            deputy.c.id.not_in(away),
        ),
    )


async def seconds_until_next(db: Database, now: datetime) -> float:
    """How long the loop may sleep: until the next absence starts, at most a minute."""
    starts_at = await NEXT_START.value(db, now=now)
    if starts_at is None:
        return INTERVAL_SECONDS
    return min(INTERVAL_SECONDS, max(SHORTEST_PAUSE, (starts_at - now).total_seconds()))


async def run_forever(db: Database, mail_wake: asyncio.Event, wake: asyncio.Event) -> None:
    """Hands over at each absence's start; `wake` is set when an absence is entered here,
    so one that starts today is handed over at once (other workers notice within
    INTERVAL_SECONDS, and the mark keeps them from doing it twice)."""
    while True:
        pause: float = INTERVAL_SECONDS
        wake.clear()  # before the look: an absence entered during it wakes the next one
        try:
            if await hand_over_due(db):
                mail_wake.set()  # the mail sender: assignment news may ring
            pause = await seconds_until_next(db, utcnow())
        except Exception:
            log.exception("absence handover failed")
        await sleep_until_woken(wake, pause)


# --- the notice for the one who comes back ----------------------------------------------

_to_user = users.alias("to_user")
HANDED_OVER = Query(
    sa.select(
        handovers.c.id,
        handovers.c.created_at,
        conversations.c.number,
        conversations.c.subject,
        conversations.c.subject_cut,
        conversations.c.status,
        _to_user.c.name.label("to_name"),
    )
    .select_from(
        handovers.join(conversations, conversations.c.id == handovers.c.conversation_id).outerjoin(
            _to_user, _to_user.c.id == handovers.c.to_user_id
        )
    )
    .where(handovers.c.user_id == sa.bindparam("user_id"), handovers.c.dismissed_at.is_(None))
    .order_by(handovers.c.id)
)


async def handed_over(db: Database, user_id: int) -> list[Record]:
    """What was moved away from `user_id` while they were away, not yet dismissed."""
    return await HANDED_OVER.rows(db, user_id=user_id)


async def dismiss(db: Database, user_id: int, up_to_id: int) -> None:
    """Dismisses the notice as far as it was shown: a handover after that stays."""
    async with write_transaction(db):
        await db.execute(
            handovers.update()
            .where(
                handovers.c.user_id == user_id,
                handovers.c.dismissed_at.is_(None),
                handovers.c.id <= up_to_id,
            )
            .values(dismissed_at=utcnow())
        )
