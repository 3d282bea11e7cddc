"""Whole histories written at once: conversations with their messages, events and read marks.

For a writer that has planned complete conversations before storing any (the demo fill).
Its rows come complete, the summary columns taken from `summary.summary_columns` like
every other writer's; this module inserts them, in chunks, in an order the foreign keys
accept. It sends no mail, queues no search or live events: nobody is waiting for these
conversations, and `board reindex` indexes them afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from board.db import (
    blocked_senders,
    conversation_events,
    conversations,
    messages,
    notifications,
    read_markers,
)

# Rows per INSERT (one executemany each); the wide conversation rows go in smaller chunks.
CONVERSATION_CHUNK = 2000
ROW_CHUNK = 5000


def insert_histories(
    connection: sa.Connection,
    conversation_rows: Sequence[dict],
    message_rows: Sequence[dict],
    event_rows: Sequence[dict],
    marker_rows: Sequence[dict],
    blocked_rows: Sequence[dict],
    notification_rows: Sequence[dict] = (),
) -> None:
    """Inserts the rows, ids included, inside the caller's transaction.

    Conversations go first, since everything else points to them; then their messages,
    status events (conversation_events), what each reader has read (read_markers), the
    guest addresses blocked for spam (blocked_senders) and what customers were told
    (notifications, read where the read marks say so).
    """
    _insert(connection, conversations, conversation_rows, CONVERSATION_CHUNK)
    _insert(connection, messages, message_rows, ROW_CHUNK)
    _insert(connection, conversation_events, event_rows, ROW_CHUNK)
    _insert(connection, read_markers, marker_rows, ROW_CHUNK)
    _insert(connection, blocked_senders, blocked_rows, ROW_CHUNK)
    _insert(connection, notifications, notification_rows, ROW_CHUNK)


def _insert(connection: sa.Connection, table: sa.Table, rows: Sequence[dict], size: int) -> None:
    for offset in range(0, len(rows), size):
        connection.execute(table.insert(), rows[offset : offset + size])
