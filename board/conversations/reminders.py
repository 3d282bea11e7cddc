"""Pending requests the customer has not answered: one reminder, then solved.

With BOARD_PENDING_REMINDER_DAYS = M (business days, 0: off), a request that has waited
pending for the customer M business days since its last message gets one reminder mail
(a doorbell with the link) and a line in its history; M business days after the
reminder, still pending, it is solved, with a note in its history saying why. Any status
change (the customer's answer reopens it) clears `reminded_at`, so the count starts
again the next time it is pending.

The job runs every minute (board/schedule.py). Each step claims its conversations with a
conditional UPDATE … RETURNING in one write transaction: a restart repeats nothing, and
of two workers only one reminds or solves a conversation (PostgreSQL re-checks the
condition on the locked row; SQLite admits one writer).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from databases import Database

from board import i18n, mail, mail_links, notify
from board.config import Settings
from board.db import conversations, utcnow, write_transaction

from . import workflow

BATCH = 200  # conversations per step and run: a first run after years stays short


def _cutoff(settings: Settings, now: datetime) -> datetime:
    office = settings.office
    return office.moment_before(now, settings.pending_reminder_days * office.hours_per_day())


async def run_due(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Reminds and solves what is due; returns how many mails it queued."""
    if settings.pending_reminder_days <= 0:
        return 0
    now = now or utcnow()
    cutoff = _cutoff(settings, now)
    if not await _anything_due(db, cutoff):
        return 0  # the usual minute: one read, no write lock
    async with write_transaction(db):
        mails = await _remind(db, cutoff, now)
        await _solve(db, settings, cutoff, now)
    return mails


def _pending(*conditions) -> tuple:
    return (conversations.c.kind == "support", conversations.c.status == "pending", *conditions)


def _due_for_reminder(cutoff: datetime) -> tuple:
    return _pending(
        conversations.c.reminded_at.is_(None), conversations.c.last_message_at <= cutoff
    )


def _due_for_solving(cutoff: datetime) -> tuple:
    return _pending(conversations.c.reminded_at <= cutoff)


async def _anything_due(db: Database, cutoff: datetime) -> bool:
    return bool(
        await db.fetch_val(
            sa.select(
                sa.or_(
                    sa.exists().where(*_due_for_reminder(cutoff)),
                    sa.exists().where(*_due_for_solving(cutoff)),
                )
            )
        )
    )


async def _remind(db: Database, cutoff: datetime, now: datetime) -> int:
    due = _due_for_reminder(cutoff)
    batch = sa.select(conversations.c.id).where(*due).order_by(conversations.c.id).limit(BATCH)
    claimed = await db.fetch_all(
        conversations.update()
        .where(conversations.c.id.in_(batch.scalar_subquery()), *due)
        .values(reminded_at=now)
        .returning(conversations.c.id)
    )
    if not claimed:
        return 0
    recipients = await db.fetch_all(
        notify.doorbell_recipients()
        .where(conversations.c.id.in_([row.id for row in claimed]))
        .order_by(conversations.c.id)
    )
    mails = 0
    for row in recipients:
        params = {"number": row.number}
        if row.customer_id is None and row.guest_email:
            params.update(guest=True, conversation_id=row.id)
            await mail.queue(
                db, "pending_reminder", row.guest_email, params, to_name=row.guest_name
            )
            mails += 1
        elif row.customer_id is not None and row.is_active and row.notify != "off":
            # "digest" customers get it too: it is one mail, and it decides the request.
            # Like an answer's doorbell it opens this one request without a password
            # (board/mail_links.py): the reminder asks for an answer there.
            params["link_id"] = await mail_links.issue(db, row.id, row.customer_id)
            await mail.queue(
                db,
                "pending_reminder",
                row.email,
                params,
                to_name=row.name,
                locale=row.locale,
                user_id=row.customer_id,
            )
            mails += 1
        await workflow.record_event(db, row.id, None, "reminder", None, None, "", now)
    return mails


def solved_note(settings: Settings) -> str:
    """The history's note on the automatic solve, in the shop's language, as a staff
    member would have written it."""
    days = format(settings.pending_reminder_days, "g")
    with i18n.speaking(settings.locale):
        return i18n.gettext(
            "Solved automatically: no answer within %(days)s business days after the reminder.",
            days=days,
        )


async def _solve(db: Database, settings: Settings, cutoff: datetime, now: datetime) -> None:
    due = _due_for_solving(cutoff)
    batch = sa.select(conversations.c.id).where(*due).order_by(conversations.c.id).limit(BATCH)
    # A no-op write that locks each row and re-checks it: a second worker skips them.
    claimed = await db.fetch_all(
        conversations.update()
        .where(conversations.c.id.in_(batch.scalar_subquery()), *due)
        .values(reminded_at=conversations.c.reminded_at)
        .returning(conversations.c.id)
    )
    note = solved_note(settings)
    for row in claimed:
        await workflow.set_status(db, row.id, None, "solved", now, note=note)
