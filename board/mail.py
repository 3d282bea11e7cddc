"""Mail as a doorbell: outbox rows written with the data, drained by a background task.

A request never talks to SMTP. It inserts an outbox row in the same transaction as the
change the mail announces, so a crash cannot lose the mail nor send one for a change that
was rolled back. `run_once` sends what is due: over SMTP when BOARD_SMTP_HOST is set,
otherwise as .eml files in <data>/outbox/.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import sqlalchemy as sa
from databases import Database
from starlette.concurrency import run_in_threadpool

from board.config import Settings
from board.db import outbox, utcnow

log = logging.getLogger("board.mail")

BATCH = 50
MAX_BACKOFF = timedelta(hours=1)


async def queue_mail(
    db: Database, to_address: str, to_name: str | None, subject: str, body_text: str
) -> None:
    """Call inside the write transaction of the change the mail announces."""
    now = utcnow()
    await db.execute(
        outbox.insert().values(
            to_address=to_address,
            to_name=to_name,
            subject=subject,
            body_text=body_text,
            created_at=now,
            next_attempt_at=now,
        )
    )


def build_message(settings: Settings, row) -> EmailMessage:
    message = EmailMessage()
    # Address objects quote display names and refuse CR/LF: a name cannot inject a header.
    clean_name = " ".join((row.to_name or "").split())
    message["To"] = Address(display_name=clean_name, addr_spec=row.to_address)
    message["From"] = Address(display_name="Support", addr_spec=settings.mail_from)
    message["Subject"] = " ".join(row.subject.split())
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.body_text)
    return message


def _deliver(settings: Settings, row, message: EmailMessage) -> None:
    if settings.smtp_host:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
        return
    folder = settings.data_dir / "outbox"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{row.id:08d}.eml").write_bytes(bytes(message))


async def run_once(db: Database, settings: Settings) -> int:
    """Sends every due mail once; failures wait with a growing pause. Returns mails sent."""
    due = await db.fetch_all(
        sa.select(outbox)
        .where(outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= utcnow())
        .order_by(outbox.c.id)
        .limit(BATCH)
    )
    sent = 0
    for row in due:
        try:
            await run_in_threadpool(_deliver, settings, row, build_message(settings, row))
        except Exception as error:  # SMTP down, refused, disk full: retry later
            pause = min(timedelta(minutes=2 ** min(row.attempts, 10)), MAX_BACKOFF)
            log.warning(
                "mail %s to %s failed (%s), retry in %s", row.id, row.to_address, error, pause
            )
            await db.execute(
                outbox.update()
                .where(outbox.c.id == row.id)
                .values(
                    attempts=outbox.c.attempts + 1,
                    next_attempt_at=utcnow() + pause,
                    last_error=str(error)[:500],
                )
            )
            continue
        # Sent mails keep their metadata only: a guest link in the text stays with the guest.
        await db.execute(
            outbox.update()
            .where(outbox.c.id == row.id)
            .values(sent_at=utcnow(), body_text="", attempts=outbox.c.attempts + 1)
        )
        sent += 1
    return sent


async def run_forever(db: Database, settings: Settings, wake: asyncio.Event) -> None:
    while True:
        try:
            await run_once(db, settings)
        except Exception:
            log.exception("outbox round failed")
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), timeout=5)
        except TimeoutError:
            pass
