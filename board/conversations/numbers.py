"""Ticket numbers and guest-link hashes: how a conversation is named from outside."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from databases import Database

from board.db import conversations, one_at_a_time

FIRST_TICKET_NUMBER = 1001


def token_hash(token: str) -> str:
    """Only the hash of a guest link's secret is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


async def next_ticket_number(db: Database) -> int:
    """Inside write_transaction; the number is this transaction's until it commits."""
    await one_at_a_time(db, "ticket numbers")
    highest = await db.fetch_val(sa.select(sa.func.max(conversations.c.number)))
    return max(FIRST_TICKET_NUMBER, (highest or 0) + 1)
