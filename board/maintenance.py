"""Housekeeping in the background: forget old rate-limit events, expired sessions and
one-time tokens, live events older than a day, and the records of mail sent long ago."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from databases import Database

from board import events
from board.db import login_tokens, outbox, sessions, utcnow
from board.security import prune_events

log = logging.getLogger("board.maintenance")

RATE_EVENTS_KEPT = timedelta(days=1)  # longer than any rate-limit window
SENT_MAIL_KEPT = timedelta(days=30)  # long enough to answer "did you send it?"
INTERVAL_SECONDS = 3600


async def run_once(db: Database) -> None:
    await prune_events(db, RATE_EVENTS_KEPT)
    now = utcnow()
    await db.execute(sessions.delete().where(sessions.c.expires_at < now))
    await db.execute(login_tokens.delete().where(login_tokens.c.expires_at < now))
    await db.execute(outbox.delete().where(outbox.c.sent_at < now - SENT_MAIL_KEPT))
    await events.forget_old(db, now)


async def run_forever(db: Database, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        try:
            await run_once(db)
        except Exception:  # keep the loop alive; the next round tries again
            log.exception("maintenance round failed")
        await asyncio.sleep(interval)
