"""The demo team's canned replies (texts/canned.toml), written once: later runs keep them."""

from __future__ import annotations

import sqlalchemy as sa

from board.db import canned_replies, users, utcnow
from board.demo.people import DEMO_STAFF
from board.demo.pools import read_pools


def add_canned_replies(connection: sa.Connection) -> int:
    """Inserts the replies whose shortcut is still free, by the first demo staff member;
    returns how many."""
    author_id = connection.execute(
        sa.select(users.c.id).where(users.c.email == DEMO_STAFF[0][1])
    ).scalar()
    taken = set(connection.execute(sa.select(canned_replies.c.shortcut)).scalars())
    now = utcnow().replace(microsecond=0)
    rows = [
        {
            "shortcut": reply["shortcut"],
            "title": reply["title"],
            "body": reply["body"],
            "created_by": author_id,
            "updated_at": now,
        }
        for reply in read_pools("canned")["replies"]
        if reply["shortcut"] not in taken
    ]
    if rows:
        connection.execute(canned_replies.insert(), rows)
    return len(rows)
