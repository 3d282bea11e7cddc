"""Housekeeping in the background: forget old rate-limit events and expired sessions."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from databases import Database

from board.db import sessions, utcnow
from board.security import prune_events

log = logging.getLogger("board.maintenance")

RATE_EVENTS_KEPT = timedelta(days=1)  # longer than any rate-limit window
INTERVAL_SECONDS = 3600


async def run_once(db: Database) -> None:
    await prune_events(db, RATE_EVENTS_KEPT)
    await db.execute(sessions.delete().where(sessions.c.expires_at < utcnow()))


async def run_forever(db: Database, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        try:
            await run_once(db)
        except Exception:  # keep the loop alive; the next round tries again
            log.exception("maintenance round failed")
        await asyncio.sleep(interval)
