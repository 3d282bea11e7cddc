"""Webhooks: signed JSON POSTs to URLs an admin registered, when a conversation is
created, answered, solved or reassigned.

As with mail (board/mail.py), a change never talks to the receiver: it writes one
delivery row per active webhook in its own transaction, and a background task sends
them, trying again with a doubling pause until MAX_ATTEMPTS, then marks them failed. The
rows are also the delivery log the admin reads (/staff/webhooks).

The body carries ids, the ticket number, status, the event and times, never the text of
a message nor a name or address: the receiver (a CRM) asks the shop for more under its
own access rules, as the doorbell mail does. Each request is signed with the webhook's
own secret: `X-Supportboard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
with the same `X-Supportboard-Timestamp` (Unix seconds) in its own header, so that a
receiver can refuse an old request played again.

Against server-side request forgery, only http and https URLs without user info are
accepted, and every delivery resolves the host anew and connects only when every address
it resolves to is public, or in BOARD_WEBHOOK_ALLOW_NETWORKS; it connects to the address
it checked (no second lookup that DNS rebinding could answer otherwise) and follows no
redirect.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.fernet import Fernet
from databases import Database

from board.config import Settings
from board.db import conversations, utcnow, webhook_deliveries, webhooks, write_transaction
from board.errors import Invalid, NotFound
from board.i18n import gettext as _

log = logging.getLogger("board.webhooks")

EVENTS = (
    "conversation.created",
    "conversation.answered",
    "conversation.solved",
    "conversation.reassigned",
)
URL_MAX = 500
# Attempts before a delivery is marked failed: with the default first pause of 30 s the
# last one comes about an hour after the first (30 s, 1, 2, 4, 8, 16, 32 minutes).
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10
BATCH = 10
# A round holds its deliveries this long; a round killed midway leaves them to a later one.
LEASE = timedelta(seconds=BATCH * TIMEOUT_SECONDS + 60)
POLL_SECONDS = 5
LOG_LENGTH = 50


# --- the secret ----------------------------------------------------------------------------


def _sealer(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"supportboard webhook\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(settings: Settings, secret: str) -> str:
    """The secret as stored: encrypted and authenticated with BOARD_SECRET_KEY."""
    return _sealer(settings.secret_key).encrypt(secret.encode()).decode()


def unseal(settings: Settings, sealed: str) -> str:
    return _sealer(settings.secret_key).decrypt(sealed.encode()).decode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What X-Supportboard-Signature holds; receivers compute the same and compare."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- where a webhook may point ------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """The URL's form: http or https, a host, no user info, not too long."""
    if not url:
        return _("Please enter the URL.")
    # ASCII only (an international domain in its xn-- form): the request line is ASCII.
    if len(url) > URL_MAX or not url.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return _("Please enter a valid http or https URL.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return _("Please enter a valid http or https URL.")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("Please enter a valid http or https URL.")
    if parts.username is not None or parts.password is not None:
        return _("The URL may not contain a user name or password; use the signature instead.")
    return None


def address_allowed(settings: Settings, address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(network) for network in settings.webhook_allow_networks):
        return True
    return ip.is_global


class Unreachable(Exception):
    """The URL's host does not resolve, or to an address webhooks may not reach."""


async def checked_address(settings: Settings, url: str) -> str:
    """The address to connect to: every address the host resolves to must be allowed."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise Unreachable(f"host not found: {error}") from None
    addresses = [info[4][0] for info in found]
    refused = [address for address in addresses if not address_allowed(settings, address)]
    if not addresses or refused:
        raise Unreachable(f"address not allowed: {', '.join(refused) or 'none'}")
    return addresses[0]


# --- what admins do -------------------------------------------------------------------------


async def register(db: Database, settings: Settings, url: str, admin_id: int) -> tuple[int, str]:
    """A new webhook; returns its id and its secret (shown to the admin once)."""
    url = url.strip()
    if problem := url_problem(url):
        raise Invalid({"url": problem})
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await checked_address(settings, url)
    except (Unreachable, TimeoutError):
        raise Invalid(
            {"url": _("This address cannot be reached, or it is in a private network.")}
        ) from None
    secret = secrets.token_hex(32)
    sealed = seal(settings, secret)
    async with write_transaction(db):
        webhook_id = await db.fetch_val(
            webhooks.insert()
            .values(url=url, secret=sealed, created_by=admin_id, created_at=utcnow())
            .returning(webhooks.c.id)
        )
    return webhook_id, secret


async def _active_or_404(db: Database, webhook_id: int):
    row = await db.fetch_one(
        sa.select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.active.is_(True))
    )
    if row is None:
        raise NotFound()
    return row


async def secret_of(db: Database, settings: Settings, webhook_id: int) -> str:
    row = await _active_or_404(db, webhook_id)
    return unseal(settings, row.secret)


async def remove(db: Database, webhook_id: int) -> None:
    """Stops the webhook; it stays, with its log. What is still queued for it fails."""
    async with write_transaction(db):
        await _active_or_404(db, webhook_id)
        now = utcnow()
        await db.execute(
            webhooks.update()
            .where(webhooks.c.id == webhook_id)
            .values(active=False, removed_at=now)
        )
        await db.execute(
            webhook_deliveries.update()
            .where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhook_deliveries.c.delivered_at.is_(None),
                webhook_deliveries.c.failed_at.is_(None),
            )
            .values(failed_at=now, last_error="webhook removed", claim=None)
        )


async def active_webhooks(db: Database) -> list:
    return await db.fetch_all(
        sa.select(webhooks.c.id, webhooks.c.url, webhooks.c.created_at)
        .where(webhooks.c.active.is_(True))
        .order_by(webhooks.c.id)
    )


async def delivery_log(db: Database, limit: int = LOG_LENGTH) -> list:
    """The latest deliveries of every webhook, newest first, with the URL they went to."""
    return await db.fetch_all(
        sa.select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.event,
            webhook_deliveries.c.created_at,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.last_status,
            webhook_deliveries.c.last_error,
            webhook_deliveries.c.next_attempt_at,
            webhook_deliveries.c.delivered_at,
            webhook_deliveries.c.failed_at,
            webhooks.c.url,
            conversations.c.number,
        )
        .select_from(
            webhook_deliveries.join(
                webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id
            ).outerjoin(conversations, conversations.c.id == webhook_deliveries.c.conversation_id)
        )
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit)
    )


# --- queueing, inside the change's transaction -----------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None


async def conversation_event(db: Database, conversation_id: int, event: str) -> None:
    """Queues `event` for every active webhook; call inside the change's write transaction.
    One look at the webhooks when there are none."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    targets = await db.fetch_all(sa.select(webhooks.c.id).where(webhooks.c.active.is_(True)))
    if not targets:
        return
    row = await db.fetch_one(sa.select(conversations).where(conversations.c.id == conversation_id))
    now = utcnow()
    payload = json.dumps(
        {
            "event": event,
            "occurred_at": _iso(now),
            "conversation": {
                "id": row.id,
                "number": row.number,
                "kind": row.kind,
                "status": row.status,
                "customer_id": row.customer_id,
                "guest": row.customer_id is None,
                "assignee_id": row.assignee_id,
                "created_at": _iso(row.created_at),
                "last_activity_at": _iso(row.last_message_at),
            },
        },
        separators=(",", ":"),
    )
    await db.execute_many(
        webhook_deliveries.insert(),
        [
            {
                "webhook_id": target.id,
                "event": event,
                "conversation_id": conversation_id,
                "payload": payload,
                "created_at": now,
                "next_attempt_at": now,
            }
            for target in targets
        ],
    )


# --- sending ----------------------------------------------------------------------------------


async def post_json(address: str, url: str, headers: dict[str, str], body: bytes) -> int:
    """POSTs `body` to `url` over a connection to `address` (already checked); returns the
    status code. A small HTTP/1.1 client, so that nothing resolves the name a second time
    and no redirect is followed."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    context = ssl.create_default_context() if https else None
    reader, writer = await asyncio.open_connection(
        address, port, ssl=context, server_hostname=parts.hostname if https else None
    )
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {parts.netloc}",
            "User-Agent: Supportboard-Webhook",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body)
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1").split()
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
            raise ConnectionError("no HTTP answer")
        return int(status_line[1])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _claim_due(db: Database, now: datetime) -> tuple[str, list]:
    claim = secrets.token_hex(16)
    due = (
        sa.select(webhook_deliveries.c.id)
        .where(
            webhook_deliveries.c.delivered_at.is_(None),
            webhook_deliveries.c.failed_at.is_(None),
            webhook_deliveries.c.next_attempt_at <= now,
        )
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)  # PostgreSQL: another worker takes other rows
    )
    async with write_transaction(db):
        await db.execute(
            webhook_deliveries.update()
            .where(
                webhook_deliveries.c.id.in_(due.scalar_subquery()),
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .values(claim=claim, next_attempt_at=now + LEASE)
        )
    rows = await db.fetch_all(
        sa.select(webhook_deliveries, webhooks.c.url, webhooks.c.secret, webhooks.c.active)
        .select_from(
            webhook_deliveries.join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
        )
        .where(webhook_deliveries.c.claim == claim)
        .order_by(webhook_deliveries.c.id)
    )
    return claim, rows


def retry_pause(settings: Settings, attempts: int) -> timedelta:
    """After the `attempts`-th failure: the first pause, doubled each time."""
    return timedelta(seconds=settings.webhook_retry_seconds * 2 ** min(attempts - 1, 16))


async def _settle(
    db: Database,
    settings: Settings,
    row,
    status: int | None,
    error: str | None,
    now: datetime,
    final: bool = False,
) -> None:
    attempts = row.attempts + 1
    values: dict = {"attempts": attempts, "claim": None, "last_status": status}
    if error is None:
        values.update(delivered_at=now, last_error=None)
    else:
        values["last_error"] = error[:500]
        if attempts >= MAX_ATTEMPTS or final:
            values["failed_at"] = now
            log.error("webhook delivery %s to %s failed for good: %s", row.id, row.url, error)
        else:
            values["next_attempt_at"] = now + retry_pause(settings, attempts)
            log.warning("webhook delivery %s to %s failed: %s", row.id, row.url, error)
    await db.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.id == row.id, webhook_deliveries.c.claim == row.claim)
        .values(**values)
    )


async def _deliver(settings: Settings, row) -> tuple[int | None, str | None]:
    """(status, error): error None when the receiver answered 2xx."""
    if not row.active:
        return None, "webhook removed"
    secret = unseal(settings, row.secret)
    body = row.payload.encode()
    timestamp = str(int(time.time()))
    headers = {
        "X-Supportboard-Event": row.event,
        "X-Supportboard-Delivery": str(row.id),
        "X-Supportboard-Timestamp": timestamp,
        "X-Supportboard-Signature": signature(secret, timestamp, body),
    }
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            address = await checked_address(settings, row.url)
            status = await post_json(address, row.url, headers, body)
    except Unreachable as error:
        return None, str(error)
    except Exception as error:  # refused, timed out, TLS, a garbled answer: try again later
        return None, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if 200 <= status < 300:
        return status, None
    return status, f"HTTP {status}"


async def run_once(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Sends every due delivery once; returns how many the receivers accepted."""
    now = now or utcnow()
    claim, rows = await _claim_due(db, now)
    delivered = 0
    try:
        for row in rows:
            status, error = await _deliver(settings, row)
            # Removed meanwhile: no further attempts.
            await _settle(db, settings, row, status, error, now, final=not row.active)
            delivered += error is None
    finally:
        # A round stopped at shutdown hands back what it did not settle, due at once.
        await db.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.claim == claim)
            .values(claim=None, next_attempt_at=now)
        )
    return delivered


async def run_forever(db: Database, settings: Settings, wake: asyncio.Event) -> None:
    """Drains the deliveries: at once when a request wakes it, else every few seconds."""
    while True:
        try:
            while await run_once(db, settings) == BATCH:
                pass
        except Exception:
            log.exception("webhook round failed")
        wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_SECONDS):
                await wake.wait()
