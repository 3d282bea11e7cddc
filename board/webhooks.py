"""Webhooks: signed JSON POSTs to URLs an admin registered, when a conversation is
created, answered, solved or reassigned.

As with mail (board/mail.py), a change never talks to the receiver: it writes one
delivery row per active webhook in its own transaction (`conversation_event`), and a
background task sends them (board/webhook_sender.py), trying again with a doubling pause
until MAX_ATTEMPTS, then marks them failed. The rows are also the delivery log the admin
reads (/staff/webhooks). This module owns the rules: events, payload, secret, signature,
which addresses a webhook may reach, and what admins do.

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
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.fernet import Fernet
from databases import Database

from board.config import Settings
from board.db import conversations, utcnow, webhook_deliveries, webhooks, write_transaction
from board.errors import Invalid, NotFound
from board.i18n import gettext as _

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
TIMEOUT_SECONDS = 10  # a lookup, or a receiver's answer
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
