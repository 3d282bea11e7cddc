"""Demo content for trying Supportboard and for benchmarks: `python -m board demo`.

German customers and staff, a forum of topics and posts (board.demo.forum), conversations
in the customers' inboxes (board.demo.conversations) at any size, and the team's canned
replies (board.demo.canned). They draw on the same people (people.py), text pools
(pools.py, the sentences in texts/*.toml) and text machinery (writing.py), and none of them
imports from here; the running site imports none of them (a contract in pyproject.toml).
"""

from __future__ import annotations

import time

from board.config import Settings
from board.db import metadata, sync_engine
from board.demo.canned import add_canned_replies
from board.demo.conversations import add_conversations
from board.demo.forum import add_forum
from board.demo.people import DEMO_PASSWORD, DEMO_STAFF
from board.migrate_to import advance_sequences

__all__ = ["DEMO_PASSWORD", "DEMO_STAFF", "fill_demo"]


def fill_demo(
    settings: Settings,
    customers: int,
    topics: int,
    posts: int,
    seed: int = 1,
    conversations: int = 0,
) -> None:
    """Adds customers, forum topics and posts, and conversations of German sample content.

    `posts` counts first posts too; `conversations` land in the customers' inboxes.

    Runs again without conflicts: customer numbers, emails, ids and ticket numbers continue
    after the existing ones. Prints a summary and the demo password.
    """
    if min(customers, topics, posts, conversations) < 0:
        raise ValueError("customers, topics, posts and conversations must not be negative")
    if posts < topics:
        raise ValueError("posts counts each topic's first post, so it must be at least topics")
    started = time.perf_counter()
    engine = sync_engine(settings)
    try:
        with engine.begin() as connection:
            summary = add_forum(connection, seed, customers, topics, posts)
            canned = add_canned_replies(connection)
            tickets = add_conversations(
                connection, seed, conversations, settings.office, summary["example_id"]
            )
            if connection.dialect.name == "postgresql":
                # The rows came with their ids: what the site writes next comes after them.
                for table in metadata.sorted_tables:
                    advance_sequences(connection, table)
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    print(
        f"Demo content added in {elapsed:.1f} s: {summary['customers']} customers"
        f"{summary['numbers']}, {summary['staff']} new staff, {topics} topics, {posts} posts"
        + (f", {conversations} conversations (#{tickets[0]}–#{tickets[1]})" if tickets else "")
        + (f", {canned} canned replies." if canned else ".")
    )
    if summary["example"]:
        print(f"Example customer login: {summary['example']}")
    print(f"Demo staff: {', '.join(email for _name, email in DEMO_STAFF)}")
    print(f"Password of every demo customer and demo staff account: {DEMO_PASSWORD}")
