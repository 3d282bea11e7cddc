"""Sends the queued webhook deliveries (board/webhooks.py writes them): claims due rows,
POSTs each signed body to the address it checked, and records the answer; failures wait a
doubling pause, and after MAX_ATTEMPTS the delivery is marked failed.

Each delivery goes to one round: a round claims its rows for a lease (PostgreSQL skips
rows another round locked; SQLite admits one claiming writer), and a round killed midway
leaves its rows to a later one when the lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpx
import sqlalchemy as sa
from databases import Database

from board.config import Settings
from board.db import utcnow, webhook_deliveries, webhooks, write_transaction
from board.waking import drain_forever
from board.webhooks import (
    MAX_ATTEMPTS,
    TIMEOUT_SECONDS,
    Unreachable,
    checked_address,
    signature,
    unseal,
)

log = logging.getLogger("board.webhooks")

BATCH = 10
# A round holds its deliveries this long; a round killed midway leaves them to a later one.
LEASE = timedelta(seconds=BATCH * TIMEOUT_SECONDS + 60)
POLL_SECONDS = 5


def trusted_authorities() -> ssl.SSLContext:
    """The certificates a receiver may show: the public authorities' (certifi, as httpx
    uses by default) and the operator's own, from the system store or SSL_CERT_FILE /
    SSL_CERT_DIR (a CRM inside the company, with the company's CA). The client still
    ignores the rest of the environment (trust_env=False): a proxy from HTTPS_PROXY would
    connect to the name, not to the address the SSRF check let through."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    return context


async def post_json(address: str, url: str, headers: dict[str, str], body: bytes) -> int:
    """POSTs `body` to `url` over a connection to `address` (checked already); returns the
    status code. The request names the address, so nothing resolves the host a second time
    (a name that answers differently now cannot point it inward); the Host header and TLS
    (SNI and the certificate check) keep the name. No redirect is followed, and the
    receiver's answer is not read beyond its status."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    sent_headers = {
        "Host": parts.netloc,
        "User-Agent": "Supportboard-Webhook",
        "Content-Type": "application/json",
        **headers,
    }
    tls = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    async with (
        httpx.AsyncClient(
            follow_redirects=False, trust_env=False, verify=trusted_authorities()
        ) as client,
        client.stream("POST", pinned, content=body, headers=sent_headers, extensions=tls) as answer,
    ):
        return answer.status_code


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
    await drain_forever(lambda: run_once(db, settings), BATCH, wake, POLL_SECONDS, log)
