"""Erasing a customer's personal data while the shop's records stay readable.

One write transaction anonymises the account (name, email, title, note, password,
settings), replaces their name, email and customer number by "[…]" in the texts of their
conversations (guest conversations they took into their account included, not those that
merely use their address) and of the forum topics they wrote in, deletes their uploads, sessions,
codes, mail links, notifications, live events, rate-limit entries and pending mail, logs "erased" in
each conversation's history and queues the search index to forget them. A crash
anywhere leaves nothing half-erased. The uploaded files leave the disk after the commit.

Kept, on purpose:
- the users row, so conversations, invoices and posts keep an author (shown as "—");
- the customer number: it is printed on the invoices the shop must keep for ten years
  (§ 147 AO, § 257 HGB) and must never be handed to somebody else; on its own it names
  nobody once name and email are gone, and the account cannot log in with it;
- files staff sent (invoices and other documents): the shop's records, kept by law;
- the messages themselves, staff answers and internal notes included, redacted;
- their votes on forum solutions: they name nobody once the account is anonymised, and
  the counts staff see stay right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from anyio.to_thread import run_sync as run_in_threadpool
from databases import Database

from board.accounts.redaction import redactor
from board.conversations import erasure as their_conversations
from board.db import (
    attachments,
    conversation_events,
    conversations,
    live_events,
    login_tokens,
    mail_links,
    messages,
    notifications,
    outbox,
    posts,
    rate_events,
    read_markers,
    sessions,
    topics,
    users,
    utcnow,
    write_transaction,
)
from board.pagecache import bump_forum_version
from board.search import indexing as search
from board.uploads import stored_path

Record = Any
ERASED_NAME = "—"  # the account's name from then on, in every list that shows an author


def erased_email(user_id: int) -> str:
    """Unique, and never deliverable: .invalid is reserved for that (RFC 2606)."""
    return f"erased-{user_id}@invalid"


# --- what changes: computed once, shown on the confirmation page, then written ------------


@dataclass(frozen=True)
class TextChange:
    table: sa.Table
    column: str
    row_id: int
    before: str
    after: str
    html_column: str | None = None  # the rendered text that goes with it

    def shown(self, context: int = 60) -> tuple[str, str]:
        """Before and after around what changes, for the confirmation page."""
        start = 0
        while start < min(len(self.before), len(self.after)) and (
            self.before[start] == self.after[start]
        ):
            start += 1
        end_before, end_after = len(self.before), len(self.after)
        while (
            end_before > start
            and end_after > start
            and self.before[end_before - 1] == self.after[end_after - 1]
        ):
            end_before, end_after = end_before - 1, end_after - 1
        first = max(0, start - context)
        prefix = "…" if first else ""

        def around(text: str, end: int) -> str:
            last = min(len(text), end + context)
            return prefix + text[first:last] + ("…" if last < len(text) else "")

        return around(self.before, end_before), around(self.after, end_after)


def _changes(
    table: sa.Table, column: str, rows: Iterable[Record], redact, html_column=None
) -> list[TextChange]:
    """The rows whose `column` the redaction changes; `redact` takes the row."""
    found = []
    for row in rows:
        before = getattr(row, column) or ""
        after = redact(row)(before)
        if after != before:
            found.append(TextChange(table, column, row.id, before, after, html_column))
    return found


# --- what the confirmation page shows -------------------------------------------------------


@dataclass(frozen=True)
class ErasureFacts:
    person: Record
    conversation_count: int
    upload_count: int
    post_count: int


async def customer_for_erasure(db: Database, customer_id: int) -> ErasureFacts | None:
    """The customer with what erasing them touches, counted in one statement."""
    person = await db.fetch_one(
        sa.select(users).where(users.c.id == customer_id, users.c.role == "customer")
    )
    if person is None:
        return None
    theirs = sa.select(conversations.c.id).where(their_conversations.theirs(person.id))

    def count(statement: sa.Select, label: str) -> sa.Label:
        counted = sa.select(sa.func.count()).select_from(statement.subquery())
        return counted.scalar_subquery().label(label)

    counts = await db.fetch_one(
        sa.select(
            count(theirs, "conversations"),
            count(their_conversations.their_uploads(person.id, theirs), "uploads"),
            count(sa.select(posts.c.id).where(posts.c.author_id == person.id), "posts"),
        )
    )
    return ErasureFacts(person, counts.conversations, counts.uploads, counts.posts)


# --- the erasure ---------------------------------------------------------------------------


async def erase_customer(
    db: Database, customer_id: int, staff_id: int, unusable_password_hash: str
) -> list[str] | None:
    """Erases the customer in one transaction; returns the hashes of the files removed from
    their messages, for `remove_unreferenced_files` once the transaction has committed.
    None when they were erased already (two staff members confirming at once)."""
    async with write_transaction(db):
        # Read under the write lock: the name and address as they are, not as the
        # confirmation page showed them a moment ago.
        person = await db.fetch_one(sa.select(users).where(users.c.id == customer_id))
        if person.erased_at is not None:
            return None
        plan = await planned_changes(db, person)
        conversation_ids = plan.conversation_ids
        own = redactor(person.name, person.email, person.customer_number, own_text=True)
        removed = await their_conversations.erase(
            db, person.id, person.email, conversation_ids, plan.texts, own, staff_id
        )
        await their_conversations.write_texts(
            db, [change for change in plan.texts if change.table in (posts, topics)]
        )
        topic_ids = plan.topic_ids
        await _delete_traces(db, person, conversation_ids)
        await _anonymise_account(db, person, unusable_password_hash)
        await search.queue(db, "conversation", conversation_ids)
        await search.queue(db, "topic", topic_ids)
        await search.queue_purge(db)  # after the documents it replaces
        await bump_forum_version(db)  # cached guest pages show the old name
    return removed


@dataclass(frozen=True)
class ErasurePlan:
    conversation_ids: list[int]
    topic_ids: list[int]
    texts: list[TextChange]


async def planned_changes(db: Database, person: Record) -> ErasurePlan:
    """Every text the erasure changes, before and after, without writing anything: the
    confirmation page shows them, and the erasure writes exactly these."""
    # Everything in their conversations is about them: their messages, the answers that
    # greet them, the notes. In the forum, other people's posts count only where the name
    # stands as a name (a salutation, the full name): those are other people's words.
    own = redactor(person.name, person.email, person.customer_number, own_text=True)
    about = redactor(person.name, person.email, person.customer_number, own_text=False)

    def by_author(row) -> Callable[[str], str]:
        return own if row.author_id == person.id else about

    theirs = await db.fetch_all(
        sa.select(conversations.c.id, conversations.c.forum_topic_id).where(
            their_conversations.theirs(person.id)
        )
    )
    conversation_ids = [row.id for row in theirs]
    texts: list[TextChange] = []
    if conversation_ids:
        thread = await db.fetch_all(
            sa.select(messages.c.id, messages.c.body).where(
                messages.c.conversation_id.in_(conversation_ids)
            )
        )
        texts += _changes(messages, "body", thread, lambda _row: own, "body_html")
        notes = await db.fetch_all(
            sa.select(conversation_events.c.id, conversation_events.c.note).where(
                conversation_events.c.conversation_id.in_(conversation_ids),
                conversation_events.c.note != "",
            )
        )
        texts += _changes(conversation_events, "note", notes, lambda _row: own)
        kept_files = await db.fetch_all(
            sa.select(attachments.c.id, attachments.c.filename).where(
                attachments.c.conversation_id.in_(conversation_ids)
            )
        )
        texts += _changes(attachments, "filename", kept_files, lambda _row: own)
    # The forum: their posts, and the topics they wrote in or that staff published from
    # their conversations (replies and answers address them).
    published = {row.forum_topic_id for row in theirs if row.forum_topic_id is not None}
    posted_in = await db.fetch_all(
        sa.select(posts.c.topic_id).where(posts.c.author_id == person.id).distinct()
    )
    topic_ids = sorted({row.topic_id for row in posted_in} | published)
    if topic_ids:
        in_topics = await db.fetch_all(
            sa.select(posts.c.id, posts.c.author_id, posts.c.body).where(
                posts.c.topic_id.in_(topic_ids)
            )
        )
        texts += _changes(posts, "body", in_topics, by_author, "body_html")
        titles = await db.fetch_all(
            sa.select(topics.c.id, topics.c.author_id, topics.c.title).where(
                topics.c.id.in_(topic_ids)
            )
        )
        texts += _changes(topics, "title", titles, by_author)
    return ErasurePlan(conversation_ids, topic_ids, texts)


async def _delete_traces(db: Database, person: Record, conversation_ids: list[int]) -> None:
    """Sessions (with address and browser), codes, mail links, notifications, read
    markers, live events, rate-limit entries and mail; sent mail keeps its row without an
    address."""
    for table in (sessions, login_tokens, notifications, read_markers):
        await db.execute(table.delete().where(table.c.user_id == person.id))
    # The links in mails already sent open nothing more (board/mail_links.py).
    await db.execute(
        mail_links.delete().where(
            sa.or_(
                mail_links.c.user_id == person.id,
                mail_links.c.conversation_id.in_(conversation_ids),
            )
        )
    )
    await db.execute(
        live_events.delete().where(
            sa.or_(
                live_events.c.user_id == person.id,
                live_events.c.conversation_id.in_(conversation_ids),
            )
        )
    )
    number = person.customer_number
    keys = {person.email, f"login:{person.email}", f"user:{person.id}"}
    if number is not None:
        keys |= {f"login:{number}", f"login:#{number}"}
    await db.execute(rate_events.delete().where(rate_events.c.key.in_(sorted(keys))))
    theirs = sa.or_(
        outbox.c.user_id == person.id, sa.func.lower(outbox.c.to_address) == person.email
    )
    pending = sa.and_(outbox.c.sent_at.is_(None), outbox.c.failed_at.is_(None))
    await db.execute(outbox.delete().where(theirs, pending))
    await db.execute(
        outbox.update()
        .where(theirs)
        # An SMTP refusal quotes the address it refused.
        .values(to_address="", to_name=None, params="{}", last_error=None)
    )


async def _anonymise_account(db: Database, person: Record, unusable_password_hash: str) -> None:
    await db.execute(
        users.update()
        .where(users.c.id == person.id)
        .values(
            name=ERASED_NAME,
            email=erased_email(person.id),
            title=None,
            note="",
            signature="",
            vip=False,
            locale=None,
            # A hash of a secret nobody keeps: no password matches it, and passlib stays
            # quiet where a marker value would make it raise.
            password_hash=unusable_password_hash,
            must_change_password=False,
            is_active=False,
            notify="off",
            notify_new=False,
            daily_summary=False,
            personal_summary=False,
            erased_at=utcnow(),
        )
    )


# --- after the commit ----------------------------------------------------------------------


async def remove_unreferenced_files(db: Database, upload_dir: Path, sha256s: list[str]) -> int:
    """Deletes the stored files of `sha256s` that no attachment names any more (the store
    keeps one file per content, which another message may share); returns how many."""
    if not sha256s:
        return 0
    still_used = {
        row.sha256
        for row in await db.fetch_all(
            sa.select(attachments.c.sha256).where(attachments.c.sha256.in_(sha256s)).distinct()
        )
    }
    unused = [sha256 for sha256 in sha256s if sha256 not in still_used]
    return await run_in_threadpool(_unlink_all, [stored_path(upload_dir, h) for h in unused])


def _unlink_all(paths: list[Path]) -> int:
    removed = 0
    for path in paths:
        if path.exists():
            path.unlink()
            removed += 1
    return removed
