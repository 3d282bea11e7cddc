"""Mail as a doorbell: outbox rows written with the data, drained by a background task.

A request never talks to SMTP. It inserts an outbox row (a template's name and its values)
in the same transaction as the change the mail announces, so a crash cannot lose the mail
nor send one for a change that was rolled back. The sender claims due rows, renders them
in the recipient's language and hands them to SMTP through aiosmtplib, or writes .eml
files to <data>/outbox/ when BOARD_SMTP_HOST is unset. Failures wait with a growing pause
(BOARD_MAIL_RETRY_SECONDS, doubling up to 30 times that); a mail refused for good, or
still undelivered after three days, is marked failed and shown by `python -m board outbox`.

Each mail goes out once: a round claims its mails for a lease that it renews while it
runs, so several worker processes never send the same mail, and only a round that died
(kill -9) leaves its mails to a later round, one lease later. A round stopped at shutdown
finishes the mail on the wire, records it and hands the rest back at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, TypeVar

import aiosmtplib
import jinja2
import sqlalchemy as sa
from cryptography.fernet import Fernet
from databases import Database

from board import i18n
from board.config import Settings
from board.db import outbox, utcnow, write_transaction
from board.mail_links import token_for
from board.security import signed
from board.waking import drain_forever

log = logging.getLogger("board.mail")

BATCH = 50
# Renewing a claim is a write: not more often than every few seconds, however short the
# retry pause is set.
MIN_LEASE = timedelta(seconds=5)
# The pause doubles up to this many first pauses (15 minutes at the default 30 s), so mail
# flows again soon after SMTP is back.
MAX_BACKOFF_FACTOR = 30
GIVE_UP_AFTER = timedelta(days=3)
POLL_SECONDS = 5
# Values that open an account: sealed in the row (`sealed`), dropped from it once the mail
# is out or has failed for good.
SECRET_TEMPLATES = frozenset({"login_code", "password_reset"})
SEALED = "sealed"
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


def _sealer(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"supportboard outbox\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def sealed(secret_key: str, secrets_: dict[str, Any]) -> dict[str, str]:
    """Params for `queue` whose values open an account (a login code, a reset token):
    encrypted and authenticated with the secret key, so that a copy of the database (a
    backup, a support dump) does not hand them out. The sender opens them (`compose`)."""
    return {SEALED: _sealer(secret_key).encrypt(json.dumps(secrets_).encode()).decode()}


def _unsealed(secret_key: str, params: dict[str, Any]) -> dict[str, Any]:
    if SEALED not in params:
        return params
    opened = json.loads(_sealer(secret_key).decrypt(params[SEALED].encode()))
    return {**{k: v for k, v in params.items() if k != SEALED}, **opened}


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

    def conversation_link(self, number: int, link_id: int | None = None) -> str:
        """The customer's conversation: through its signed mail link while those are on
        (BOARD_MAIL_LINK_DAYS), else the inbox page, which asks for a login."""
        if link_id is not None and self.settings.mail_link_days > 0:
            return self.link("mail_link", token=token_for(self.settings.secret_key, link_id))
        return self.link("conversation", number=number)

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
    params = _unsealed(settings.secret_key, json.loads(row.params))
    context = {
        **params,
        "link": postman.link,
        "guest_link": postman.guest_link,
        "conversation_link": postman.conversation_link,
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


def first_retry(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.mail_retry_seconds)


def lease_of(settings: Settings) -> timedelta:
    """How long claimed mail stays with its round without a sign of life from it."""
    return max(first_retry(settings), MIN_LEASE)


async def _claim_due(db: Database, now: datetime, lease: timedelta) -> tuple[str, list]:
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
        # PostgreSQL: a round running at the same moment takes the next rows instead of
        # waiting for these. SQLite has no row locks (the clause is left out): BEGIN
        # IMMEDIATE lets one claim at a time.
        .with_for_update(skip_locked=True)
    )
    async with write_transaction(db):
        await db.execute(
            outbox.update()
            .where(outbox.c.id.in_(due.scalar_subquery()), outbox.c.next_attempt_at <= now)
            .values(claim=claim, next_attempt_at=now + lease)
        )
    rows = await db.fetch_all(
        sa.select(outbox).where(outbox.c.claim == claim).order_by(outbox.c.id)
    )
    return claim, rows


async def _renew_claim(db: Database, claim: str, lease: timedelta) -> None:
    """Runs beside a round: while the round lives, its mails stay its own."""
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        try:
            await db.execute(
                outbox.update()
                .where(outbox.c.claim == claim)
                .values(next_attempt_at=utcnow() + lease)
            )
        except Exception:  # the next renewal, or the check before each mail, makes up for it
            log.warning("mail round %s could not renew its claim", claim, exc_info=True)


async def _still_ours(db: Database, row, claim: str, lease: timedelta) -> bool:
    """Renews the claim on one mail right before it goes out. False when the round was
    stalled past its lease and another round took the mail: that round sends it."""
    kept = await db.fetch_val(
        outbox.update()
        .where(outbox.c.id == row.id, outbox.c.claim == claim, outbox.c.sent_at.is_(None))
        .values(next_attempt_at=utcnow() + lease)
        .returning(outbox.c.id)
    )
    return kept is not None


async def _release(db: Database, claim: str, now: datetime) -> None:
    """Mail the round claimed but did not settle (it was stopped) is due again at once."""
    await db.execute(
        outbox.update()
        .where(outbox.c.claim == claim, outbox.c.sent_at.is_(None))
        .values(claim=None, next_attempt_at=now)
    )


async def _mark_sent(db: Database, row, now: datetime) -> None:
    values: dict[str, Any] = {"sent_at": now, "claim": None, "attempts": row.attempts + 1}
    if row.template in SECRET_TEMPLATES:
        values["params"] = "{}"
    await db.execute(outbox.update().where(outbox.c.id == row.id).values(**values))


async def _mark_failed(
    db: Database, settings: Settings, row, error: Exception, now: datetime
) -> None:
    attempts = row.attempts + 1
    given_up = isinstance(error, _Refused) or now - row.created_at >= GIVE_UP_AFTER
    pause = first_retry(settings) * min(2 ** min(row.attempts, 16), MAX_BACKOFF_FACTOR)
    if given_up:
        log.error("mail %s to %s failed for good: %s", row.id, row.to_address, error)
    else:
        log.warning("mail %s to %s failed (%s), retry in %s", row.id, row.to_address, error, pause)
    values: dict[str, Any] = {
        "attempts": attempts,
        "claim": None,
        "last_error": str(error)[:500],
        "next_attempt_at": now + pause,
        "failed_at": now if given_up else None,
    }
    if given_up and row.template in SECRET_TEMPLATES:
        values["params"] = "{}"  # a code or link that never arrived opens nothing more
    await db.execute(outbox.update().where(outbox.c.id == row.id).values(**values))


def _write_eml(settings: Settings, row, message: EmailMessage) -> None:
    folder = settings.data_dir / "outbox"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{row.id:08d}.eml"
    partial = target.with_suffix(".part")
    partial.write_bytes(bytes(message))
    os.replace(partial, target)  # whole or not at all: a reader never sees half a mail


T = TypeVar("T")


async def _finish_even_if_cancelled(work: Awaitable[T]) -> T:
    """Runs `work` to its end even when the caller is cancelled meanwhile (shutdown), then
    lets the cancellation through: a mail handed to SMTP is always recorded as sent."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


async def _send_one(db: Database, settings: Settings, smtp, row, message: EmailMessage) -> None:
    if smtp is None:
        _write_eml(settings, row, message)
    else:
        await smtp.send_message(message)
    # Marked right after each mail, so a crash mid-round resends at most one.
    await _mark_sent(db, row, utcnow())


async def run_once(db: Database, postman: Postman, now: datetime | None = None) -> int:
    """Sends every due mail once; returns how many went out."""
    now = now or utcnow()
    lease = lease_of(postman.settings)
    claim, rows = await _claim_due(db, now, lease)
    if not rows:
        return 0
    renewing = asyncio.ensure_future(_renew_claim(db, claim, lease))
    try:
        return await _send_claimed(db, postman, rows, claim, lease, now)
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        await _release(db, claim, now)


async def _send_claimed(
    db: Database, postman: Postman, rows: list, claim: str, lease: timedelta, now: datetime
) -> int:
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
                await _mark_failed(db, settings, row, _judge(error), now)
            return 0
    sent = 0
    try:
        for index, row in enumerate(rows):
            try:
                message = compose(postman, row)
            except Exception as error:  # a broken template: retrying would not help
                log.exception("mail %s could not be composed", row.id)
                await _mark_failed(db, settings, row, _Refused(f"compose: {error}"), now)
                continue
            if not await _still_ours(db, row, claim, lease):
                continue
            try:
                await _finish_even_if_cancelled(_send_one(db, settings, smtp, row, message))
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError) as error:
                for waiting in rows[index:]:  # the connection is gone: the rest wait
                    await _mark_failed(db, settings, waiting, _judge(error), now)
                break
            except (aiosmtplib.SMTPException, OSError) as error:
                await _mark_failed(db, settings, row, _judge(error), now)
                continue
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
    await drain_forever(lambda: run_once(db, postman), BATCH, wake, POLL_SECONDS, log)


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
