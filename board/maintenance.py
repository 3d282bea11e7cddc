"""Housekeeping in the background: forget old rate-limit events, expired sessions and
one-time tokens, mail links past their lifetime, live events older than a day, and the
records of mail sent long ago; remove stored files that no attachment names."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import sqlalchemy as sa
from anyio.to_thread import run_sync as run_in_threadpool
from databases import Database

from board import events, mail_links, uploads
from board.config import Settings
from board.db import attachments, login_tokens, outbox, sessions, utcnow
from board.security import prune_events

log = logging.getLogger("board.maintenance")

RATE_EVENTS_KEPT = timedelta(days=2)  # longer than any rate-limit window (a day)
SENT_MAIL_KEPT = timedelta(days=30)  # long enough to answer "did you send it?"
# A stored file with no attachment row: a writer keeps the file just before it commits
# the row, and a rolled-back or killed one leaves the file alone. Far longer than any
# transaction; short enough that refused and failed writes do not pile up.
UNREFERENCED_FILES_KEPT = timedelta(days=1)
SWEEP_BATCH = 500  # hashes looked up in one query
INTERVAL_SECONDS = 3600


async def run_once(db: Database, settings: Settings) -> None:
    await prune_events(db, RATE_EVENTS_KEPT)
    now = utcnow()
    await db.execute(sessions.delete().where(sessions.c.expires_at < now))
    await db.execute(login_tokens.delete().where(login_tokens.c.expires_at < now))
    await db.execute(outbox.delete().where(outbox.c.sent_at < now - SENT_MAIL_KEPT))
    await events.forget_old(db, now)
    await mail_links.forget_old(db, settings.mail_link_days, now)
    await sweep_files(db, settings)


async def sweep_files(db: Database, settings: Settings, now: float | None = None) -> int:
    """Removes stored files older than UNREFERENCED_FILES_KEPT that no attachment names,
    and leftovers of requests that died; returns how many. One top folder at a time (1/256
    of the files), one query for each."""
    oldest = (now or time.time()) - UNREFERENCED_FILES_KEPT.total_seconds()
    folder = settings.upload_dir
    removed = await run_in_threadpool(uploads.old_leftovers, folder, oldest)
    for prefix in (f"{number:02x}" for number in range(256)):
        old = await run_in_threadpool(uploads.old_stored_files, folder, prefix, oldest)
        for start in range(0, len(old), SWEEP_BATCH):
            batch = old[start : start + SWEEP_BATCH]
            named = {
                row.sha256
                for row in await db.fetch_all(
                    sa.select(attachments.c.sha256)
                    .where(attachments.c.sha256.in_([path.name for path in batch]))
                    .distinct()
                )
            }
            unnamed = [path for path in batch if path.name not in named]
            removed += await run_in_threadpool(uploads.remove_if_old, unnamed, oldest)
    if removed:
        log.info("removed %d stored files that no attachment names", removed)
    return removed


async def run_forever(db: Database, settings: Settings, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        try:
            await run_once(db, settings)
        except Exception:  # keep the loop alive; the next round tries again
            log.exception("maintenance round failed")
        await asyncio.sleep(interval)
