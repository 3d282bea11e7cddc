"""Mail as a doorbell: outbox rows written with the data, drained by a background task.

A request never talks to SMTP. It inserts an outbox row (a template's name and its values)
in the same transaction as the change the mail announces, so a crash cannot lose the mail
nor send one for a change that was rolled back. The sender claims due rows, renders them
in the recipient's language and hands them to SMTP through aiosmtplib, or writes .eml
files to <data>/outbox/ when BOARD_SMTP_HOST is unset. Failures wait with a growing pause;
a mail refused for good, or still undelivered after three days, is marked failed and shown
by `python -m board outbox`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib
import jinja2
import sqlalchemy as sa
from databases import Database

from board import i18n
from board.config import Settings
from board.db import outbox, utcnow, write_transaction
from board.security import signed

log = logging.getLogger("board.mail")

BATCH = 50
# A round that died between claiming and sending leaves its mails to a later round.
LEASE = timedelta(minutes=10)
FIRST_RETRY = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=15)  # so mail flows again soon after SMTP is back
GIVE_UP_AFTER = timedelta(days=3)
POLL_SECONDS = 5
# Values that open an account: dropped from the row once the mail is out.
SECRET_TEMPLATES = frozenset({"login_code", "password_reset"})
# Mail that the customer's "notify = off" stops, so it offers the one-click way there.
UNSUBSCRIBABLE = frozenset({"reply", "digest", "announcement"})


async def queue(
    db: Database,
    template: str,
    to_address: str,
    params: dict[str, Any],
    *,
    to_name: str | None = None,
    locale: str | None = None,
    user_id: int | None = None,
) -> None:
    """Call inside the write transaction of the change the mail announces."""
    now = utcnow()
    await db.execute(
        outbox.insert().values(
            template=template,
            user_id=user_id,
            to_address=to_address,
            to_name=to_name,
            locale=locale,
            params=json.dumps(params),
            created_at=now,
            next_attempt_at=now,
        )
    )


async def queue_for(db: Database, template: str, user, params: dict[str, Any]) -> None:
    """A mail to an account, in the account's language."""
    await queue(
        db,
        template,
        user.email,
        params,
        to_name=user.name,
        locale=user.locale,
        user_id=user.id,
    )


# --- composing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Postman:
    """What the sender needs to turn a row into a mail: settings, templates, paths."""

    settings: Settings
    templates: jinja2.Environment
    paths: Any  # web.route_paths(app): route name → path

    def link(self, name: str, /, **params: Any) -> str:
        return self.settings.base_url + self.paths(name, **params)

    def guest_link(self, conversation_id: int) -> str:
        return self.link("guest_conversation", token=guest_token(self.settings, conversation_id))

    def unsubscribe_link(self, user_id: int) -> str:
        token = signed(self.settings.secret_key, "unsubscribe", user_id)
        return self.link("unsubscribe", user_id=user_id, token=token)


def guest_token(settings: Settings, conversation_id: int) -> str:
    return signed(settings.secret_key, "guest-link", conversation_id)


def _one_line(text: str | None) -> str:
    """CR, LF and runs of blanks become one space: a value can never start a new header."""
    return " ".join((text or "").split())


def sender_address(settings: Settings) -> Address:
    """BOARD_MAIL_FROM is "support@shop.example" or "Shop Support <support@shop.example>"."""
    name, address = parseaddr(settings.mail_from)
    return Address(display_name=_one_line(name) or "Support", addr_spec=address)


def message_id(settings: Settings, row) -> str:
    """Stable across retries, so a receiving server can drop a duplicate delivery."""
    domain = sender_address(settings).domain or "localhost"
    return f"<{row.created_at:%Y%m%d%H%M%S%f}.{row.id}@{domain}>"


def compose(postman: Postman, row) -> EmailMessage:
    settings = postman.settings
    params = json.loads(row.params)
    context = {
        **params,
        "link": postman.link,
        "guest_link": postman.guest_link,
        "to_name": row.to_name,
        "settings": settings,
    }
    with i18n.speaking(row.locale or settings.locale):
        # The .txt template sets `subject`; both parts come from the same values.
        text_part = postman.templates.get_template(f"mail/{row.template}.txt")
        module = text_part.make_module(context)
        html = postman.templates.get_template(f"mail/{row.template}.html").render(context)
    message = EmailMessage()
    # Address objects quote display names and refuse CR/LF in addresses; names are folded
    # onto one line first, so no value can inject a header.
    message["From"] = sender_address(settings)
    message["To"] = Address(display_name=_one_line(row.to_name), addr_spec=row.to_address)
    message["Subject"] = _one_line(module.subject)
    message["Date"] = format_datetime(row.created_at.replace(tzinfo=UTC))
    message["Message-ID"] = message_id(settings, row)
    # Nobody reads replies: ask auto-responders (holiday notices) not to send any.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    if row.template in UNSUBSCRIBABLE and row.user_id is not None:
        message["List-Unsubscribe"] = f"<{postman.unsubscribe_link(row.user_id)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(str(module).strip() + "\n")
    message.add_alternative(html, subtype="html")
    return message


# --- sending -----------------------------------------------------------------------------


class _Deferred(Exception):
    """Try this mail again later."""


class _Refused(Exception):
    """The server refused this mail for good (5xx): retrying will not help."""


def _judge(error: Exception) -> Exception:
    code = getattr(error, "code", None)
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        code = min(codes) if codes else None
    if isinstance(code, int) and 500 <= code < 600:
        return _Refused(str(error))
    return _Deferred(str(error) or type(error).__name__)


async def _claim_due(db: Database, now: datetime) -> list:
    """Takes up to BATCH due mails for this round; another worker's round skips them."""
    claim = secrets.token_hex(16)
    due = (
        sa.select(outbox.c.id)
        .where(
            outbox.c.sent_at.is_(None),
            outbox.c.failed_at.is_(None),
            outbox.c.next_attempt_at <= now,
        )
        .order_by(outbox.c.next_attempt_at)
        .limit(BATCH)
    )
    async with write_transaction(db):
        await db.execute(
            outbox.update()
            .where(outbox.c.id.in_(due.scalar_subquery()), outbox.c.next_attempt_at <= now)
            .values(claim=claim, next_attempt_at=now + LEASE)
        )
    return await db.fetch_all(
        sa.select(outbox).where(outbox.c.claim == claim).order_by(outbox.c.id)
    )


async def _mark_sent(db: Database, row, now: datetime) -> None:
    values: dict[str, Any] = {"sent_at": now, "claim": None, "attempts": row.attempts + 1}
    if row.template in SECRET_TEMPLATES:
        values["params"] = "{}"
    await db.execute(outbox.update().where(outbox.c.id == row.id).values(**values))


async def _mark_failed(db: Database, row, error: Exception, now: datetime) -> None:
    attempts = row.attempts + 1
    given_up = isinstance(error, _Refused) or now - row.created_at >= GIVE_UP_AFTER
    pause = min(FIRST_RETRY * 2 ** min(row.attempts, 16), MAX_BACKOFF)
    if given_up:
        log.error("mail %s to %s failed for good: %s", row.id, row.to_address, error)
    else:
        log.warning("mail %s to %s failed (%s), retry in %s", row.id, row.to_address, error, pause)
    await db.execute(
        outbox.update()
        .where(outbox.c.id == row.id)
        .values(
            attempts=attempts,
            claim=None,
            last_error=str(error)[:500],
            next_attempt_at=now + pause,
            failed_at=now if given_up else None,
        )
    )


def _write_eml(settings: Settings, row, message: EmailMessage) -> None:
    folder = settings.data_dir / "outbox"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{row.id:08d}.eml"
    partial = target.with_suffix(".part")
    partial.write_bytes(bytes(message))
    os.replace(partial, target)  # whole or not at all: a reader never sees half a mail


async def run_once(db: Database, postman: Postman, now: datetime | None = None) -> int:
    """Sends every due mail once; returns how many went out."""
    now = now or utcnow()
    rows = await _claim_due(db, now)
    if not rows:
        return 0
    settings = postman.settings
    smtp = None
    if settings.smtp_host:
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,  # False: never upgrade on its own
            timeout=30,
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            for row in rows:  # the server is away: every mail of this round waits
                await _mark_failed(db, row, _judge(error), now)
            return 0
    sent = 0
    try:
        for index, row in enumerate(rows):
            try:
                message = compose(postman, row)
            except Exception as error:  # a broken template: retrying would not help
                log.exception("mail %s could not be composed", row.id)
                await _mark_failed(db, row, _Refused(f"compose: {error}"), now)
                continue
            try:
                if smtp is None:
                    _write_eml(settings, row, message)
                else:
                    await smtp.send_message(message)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError) as error:
                for waiting in rows[index:]:  # the connection is gone: the rest wait
                    await _mark_failed(db, waiting, _judge(error), now)
                break
            except (aiosmtplib.SMTPException, OSError) as error:
                await _mark_failed(db, row, _judge(error), now)
                continue
            # Marked right after each mail, so a crash mid-round resends at most one.
            await _mark_sent(db, row, utcnow())
            sent += 1
    finally:
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
    return sent


async def run_forever(db: Database, postman: Postman, wake: asyncio.Event) -> None:
    """Drains the outbox: at once when a request wakes it, else every few seconds."""
    while True:
        try:
            while await run_once(db, postman) == BATCH:
                pass
        except Exception:
            log.exception("outbox round failed")
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), timeout=POLL_SECONDS)
        except TimeoutError:
            pass


# --- the `outbox` command ----------------------------------------------------------------


async def unsent(db: Database) -> list:
    """Pending and failed mail, oldest first."""
    return await db.fetch_all(
        sa.select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id)
    )


async def retry_failed(db: Database) -> int:
    """Gives failed mail another round (after the address or server was fixed)."""
    async with write_transaction(db):
        count = await db.fetch_val(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.sent_at.is_(None), outbox.c.failed_at.is_not(None))
        )
        await db.execute(
            outbox.update()
            .where(outbox.c.sent_at.is_(None), outbox.c.failed_at.is_not(None))
            .values(failed_at=None, next_attempt_at=utcnow(), created_at=utcnow())
        )
    return count
