"""Keeping the index in step with the database.

The database is the truth. Every write that changes what search should find calls one of
the `queue_*` functions inside its transaction. The queue is a log that every search
index ("node": one machine's <data>/index, BOARD_SEARCH_NODE) reads at its own pace:
`search_nodes` remembers each node's position, the last queue id its index holds. A
background task in each server process takes the index's single writer, reads the rows
past its node's position, builds their documents from the database as it is now, commits
them and only then advances the position. A crash in between leaves the position, and
documents are replaced by key, so indexing twice is harmless. The workers of one machine
share its index: whoever holds Whoosh's write lock drains, the others skip the round.

Rows every node has passed are deleted. A node not seen for NODE_FORGOTTEN_AFTER is
forgotten (its row deleted) and no longer holds them back; a node without a row (new,
forgotten, upgraded) rebuilds its index before it drains.

`rebuild` builds a whole new index next to the old one and swaps the folders: at start
and whenever the index goes missing or unreadable while the server runs (searches say
"being prepared" meanwhile), and with `python -m board reindex`. It holds
<data>/index.lock exclusively; drains share that lock and skip while a rebuild runs. It
takes its position before reading the database, so changes written meanwhile are drained
after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter
from pathlib import Path

import sqlalchemy as sa
from anyio.to_thread import run_sync as run_in_threadpool
from databases import Database
from whoosh import index as whoosh_index
from whoosh.index import LockError
from whoosh.writing import IndexWriter

from board.config import Settings
from board.db import (
    categories,
    conversations,
    messages,
    posts,
    search_nodes,
    search_queue,
    topics,
    users,
    utcnow,
    write_transaction,
)
from board.markup import searchable_text
from board.search.schema import codes_in, make_schema

log = logging.getLogger("board.search")

BATCH = 500
# search_queue.doc_type; "purge" (doc_id 0) asks the drain to merge the index's segments.
DOC_TYPES = ("post", "topic", "message", "conversation", "purge")
POLL_SECONDS = 2
# A node (machine) silent this long stops holding queue rows back and rebuilds when it
# returns: a week covers a weekend, a holiday or a repair without letting the log grow
# without bound behind a machine that was taken away.
NODE_FORGOTTEN_AFTER = timedelta(days=7)
# An idle node says it is alive this often, so a quiet week does not make it forgotten.
HEARTBEAT = timedelta(hours=1)
REBUILD_BATCH = 2000
# How long a gap in the queue's ids may stay open before nodes read past it: far longer
# than a write transaction of this application lasts (committed_in_order). Compared with
# the rows' created_at, so the machines' clocks must agree (NTP) to well within it.
GAP_PATIENCE = timedelta(seconds=10)


def index_dir(settings: Settings) -> Path:
    return settings.data_dir / "index"


# --- the queue: called inside the write transaction of the change ------------------------


async def queue(db: Database, doc_type: str, doc_ids: Iterable[int]) -> None:
    now = utcnow()
    rows = [{"doc_type": doc_type, "doc_id": doc_id, "created_at": now} for doc_id in doc_ids]
    if rows:
        await db.execute_many(search_queue.insert(), rows)


async def queue_selected(db: Database, doc_type: str, doc_ids: sa.Select) -> None:
    """Queues every id the statement selects, in one INSERT (an announcement's messages)."""
    rows = sa.select(sa.literal(doc_type), doc_ids.subquery(), sa.literal(utcnow(), sa.DateTime))
    await db.execute(search_queue.insert().from_select(["doc_type", "doc_id", "created_at"], rows))


# A queued post or message has its whole topic or conversation written again.


async def queue_post(db: Database, post_id: int) -> None:
    await queue(db, "post", [post_id])


async def queue_topic(db: Database, topic_id: int) -> None:
    await queue(db, "topic", [topic_id])


async def queue_message(db: Database, message_id: int) -> None:
    await queue(db, "message", [message_id])


async def queue_conversation(db: Database, conversation_id: int) -> None:
    await queue(db, "conversation", [conversation_id])


async def queue_purge(db: Database) -> None:
    """Queued after the changes that erase a person: Whoosh only marks a replaced document
    deleted and keeps its text in the segment files until segments merge; the drain that
    reaches this row merges them all (optimize), so the old text leaves the disk too."""
    await queue(db, "purge", [0])


# --- documents from rows -----------------------------------------------------------------

# A document is a whole topic or conversation: ranking, counts and pages then need no
# collapsing of posts into topics, which cost seconds at 100,000 posts. Each part (post,
# message) keeps its place in the stored text, so a hit still links to the best part.
SEPARATOR = "\n\n"

TOPIC_ROWS = (
    sa.select(
        posts.c.id,
        posts.c.topic_id,
        posts.c.body,
        posts.c.created_at,
        posts.c.deleted_at,
        topics.c.title,
        topics.c.deleted_at.label("topic_deleted_at"),
        topics.c.solution_post_id,
        categories.c.staff_only,
    )
    .select_from(
        posts.join(topics, topics.c.id == posts.c.topic_id).join(
            categories, categories.c.id == topics.c.category_id
        )
    )
    .order_by(posts.c.topic_id, posts.c.id)
)

_customer = users.alias("customer")
CONVERSATION_ROWS = (
    sa.select(
        messages.c.id,
        messages.c.conversation_id,
        messages.c.body,
        messages.c.internal,
        messages.c.created_at,
        conversations.c.number,
        conversations.c.subject,
        conversations.c.customer_id,
        conversations.c.guest_name,
        conversations.c.guest_email,
        _customer.c.name.label("customer_name"),
        _customer.c.email.label("customer_email"),
        _customer.c.customer_number,
        _customer.c.erased_at.label("customer_erased_at"),
    )
    .select_from(
        messages.join(conversations, conversations.c.id == messages.c.conversation_id).outerjoin(
            _customer, _customer.c.id == conversations.c.customer_id
        )
    )
    .order_by(messages.c.conversation_id, messages.c.id)
)


def joined(parts: list[tuple[int, str]]) -> tuple[str, str]:
    """The parts' texts as one, and where each begins ("post id:offset …")."""
    starts, offset = [], 0
    for item, text in parts:
        starts.append(f"{item}:{offset}")
        offset += len(text) + len(SEPARATOR)
    return SEPARATOR.join(text for _item, text in parts), " ".join(starts)


def _document(
    key: str,
    kind: str,
    visibility: str,
    owner: str,
    ref: int,
    title: str,
    shown: list,
    staff_only: list,
    code_prefix: str,
    pattern: str,
    created,
) -> dict:
    body, parts = joined(shown)
    staff_body, staff_parts = joined(staff_only)
    return {
        "key": key,
        "kind": kind,
        "visibility": visibility,
        "owner": owner,
        "ref": ref,
        "title": title,
        "body": body,
        "parts": parts,
        "codes": codes_in(f"{code_prefix} {body}", pattern),
        "staff_body": staff_body,
        "staff_parts": staff_parts,
        "staff_codes": codes_in(staff_body, pattern),
        "created": created,
    }


def topic_document(rows: list, pattern: str) -> dict:
    """A topic's posts in order; deleted posts are text only staff find."""
    first = rows[0]
    hidden = bool(first.topic_deleted_at or first.staff_only)
    document = _document(
        key=f"t{first.topic_id}",
        kind="forum",
        visibility="staff" if hidden else "public",
        owner="",
        ref=first.topic_id,
        title=first.title,
        # Snippets show what readers see, not markdown.
        shown=[(row.id, searchable_text(row.body)) for row in rows if not row.deleted_at],
        staff_only=[(row.id, searchable_text(row.body)) for row in rows if row.deleted_at],
        code_prefix=first.title,
        pattern=pattern,
        created=first.created_at,
    )
    # Solved topics rank first among comparable hits (ranking.SOLVED_BOOST); a deleted
    # solution post is unmarked in the same transaction (forum.queries.soft_delete_post).
    document["solved"] = "1" if first.solution_post_id else "0"
    if not hidden:
        # Only public words may come back as "did you mean", never a customer's.
        document["words"] = f"{first.title} {document['body']}"
    return document


def who_wrote(first) -> tuple[str, list[str]]:
    """Who the conversation is with, as staff search for them: the name and customer number
    as words, the email address and the number as exact codes (the address's parts as
    words would make "max@example.org" find every customer at example.org). Nothing once
    the person was erased."""
    if first.customer_id is None:
        return first.guest_name or "", [first.guest_email or ""]
    if first.customer_erased_at is not None:
        return "", []
    words = " ".join(str(part) for part in (first.customer_name, first.customer_number) if part)
    return words, [first.customer_email or "", str(first.customer_number or "")]


def conversation_document(rows: list, pattern: str) -> dict:
    """A conversation's messages in order; internal notes are text only staff find, and so
    is who the conversation is with (staff_body and staff_codes: never a customer's
    search, so nobody finds another customer's conversations by their address)."""
    first = rows[0]
    if first.customer_id is None:
        visibility, owner = "staff", ""  # guests reach theirs by link, not by search
    else:
        visibility, owner = "private", str(first.customer_id)
    person, exact = who_wrote(first)
    internal = [(row.id, searchable_text(row.body)) for row in rows if row.internal]
    document = _document(
        key=f"c{first.conversation_id}",
        kind="inbox",
        visibility=visibility,
        owner=owner,
        ref=first.number,
        title=first.subject,
        shown=[(row.id, searchable_text(row.body)) for row in rows if not row.internal],
        # The person first, as a part of the first message: a hit on them links there.
        staff_only=([(first.id, person)] if person else []) + internal,
        code_prefix=str(first.number),
        pattern=pattern,
        created=first.created_at,
    )
    codes = {code.lower() for code in exact if code}
    if codes:
        document["staff_codes"] = " ".join(sorted(set(document["staff_codes"].split()) | codes))
    return document


def documents_of(
    rows: Iterable, key: str, to_document: Callable[[list, str], dict], pattern: str
) -> Iterator[dict]:
    """One document per run of rows with the same topic or conversation id."""
    for _id, group in groupby(rows, key=attrgetter(key)):
        yield to_document(list(group), pattern)


# --- draining the queue ------------------------------------------------------------------


def open_index(settings: Settings):
    """The index as of its newest commit. A commit in another thread or process may
    delete the table of contents that Whoosh has just found to be the newest, before
    Whoosh reads it (FileNotFoundError); a second look finds the commit's new one."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return whoosh_index.open_dir(str(index_dir(settings)))
        except FileNotFoundError:
            if attempt == OPEN_ATTEMPTS - 1:
                raise


OPEN_ATTEMPTS = 3  # an index that is really gone fails on each


# Segments are written as separate files, not as one compound file: whoosh3 reads each
# part of a compound file into memory when a reader opens it (BytesIO over the mapped
# file), 160 MB per open searcher at 55,000 documents. Separate files are read where
# needed, through the operating system's cache.


def _take_writer(settings: Settings) -> tuple[ExitStack, IndexWriter] | None:
    """The index's single writer and a shared hold on index.lock; None when a rebuild runs
    or another process writes."""
    hold = ExitStack()
    try:
        if not hold.enter_context(_index_lock(settings, exclusive=False, wait=False)):
            hold.close()
            return None
        try:
            writer = open_index(settings).writer(timeout=0.0, compound=False)
        except LockError:
            hold.close()
            return None
    except BaseException:
        hold.close()
        raise
    return hold, writer


async def _to_the_end(function: Callable, *args, stop: threading.Event | None = None):
    """`run_in_threadpool`, but a cancellation waits for the thread to finish first,
    after setting `stop` for a function that looks at it (a rebuild).

    asyncio's task.cancel() reaches the awaiting task at once, while the thread goes on
    (anyio's shield holds against its own cancel scopes only); the writer it takes or
    commits would be cancelled under its feet, or left holding its lock, and a rebuild
    would read on from a database the process is closing."""
    work = asyncio.ensure_future(run_in_threadpool(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if stop is not None:
            stop.set()
        taken = await asyncio.gather(work, return_exceptions=True)
        if function is _take_writer and isinstance(taken[0], tuple):
            _let_go(*taken[0])
        raise


def _let_go(hold: ExitStack, writer: IndexWriter) -> None:
    try:
        if not writer.is_closed:
            writer.cancel()
    finally:
        hold.close()


@asynccontextmanager
async def _index_writer(settings: Settings) -> AsyncIterator[IndexWriter | None]:
    """Holds the writer while the drain reads the queue and the database, so the node's
    position and the documents come from one holder at a time: a second worker cannot
    write older documents over newer ones."""
    taken = await _to_the_end(_take_writer, settings)
    if taken is None:
        yield None
        return
    hold, writer = taken
    try:
        yield writer
    finally:
        # Here, not in the thread pool: a round cancelled at shutdown must not leave the
        # writer (its lock and open temporary files) behind. Cancelling a writer that
        # wrote nothing, or releasing a committed one, is quick.
        _let_go(hold, writer)


def _write(writer: IndexWriter, documents: list[dict], gone_keys: list[str], purge: bool) -> None:
    """Commits one batch. With `purge`, the commit merges every segment, dropping deleted
    documents' text."""
    for key in gone_keys:
        writer.delete_by_term("key", key)
    for document in documents:
        writer.update_document(**document)
    writer.commit(optimize=purge)


async def _ids_of(db: Database, column: sa.Column, id_column: sa.Column, ids: set[int]) -> set[int]:
    """The topics of queued posts, the conversations of queued messages."""
    if not ids:
        return set()
    return {row[0] for row in await db.fetch_all(sa.select(column).where(id_column.in_(ids)))}


async def _changes_for(
    db: Database, settings: Settings, rows: list
) -> tuple[list[dict], list[str], bool]:
    """The documents queued rows ask for, the keys of those gone, and whether to purge."""
    wanted: dict[str, set[int]] = {kind: set() for kind in DOC_TYPES}
    for row in rows:
        wanted[row.doc_type].add(row.doc_id)
    topic_ids = wanted["topic"] | await _ids_of(db, posts.c.topic_id, posts.c.id, wanted["post"])
    conversation_ids = wanted["conversation"] | await _ids_of(
        db, messages.c.conversation_id, messages.c.id, wanted["message"]
    )
    pattern = settings.search_code_pattern
    documents = list(
        documents_of(
            await db.fetch_all(TOPIC_ROWS.where(posts.c.topic_id.in_(topic_ids))),
            "topic_id",
            topic_document,
            pattern,
        )
    )
    documents += documents_of(
        await db.fetch_all(
            CONVERSATION_ROWS.where(messages.c.conversation_id.in_(conversation_ids))
        ),
        "conversation_id",
        conversation_document,
        pattern,
    )
    found = {document["key"] for document in documents}
    every_key = {f"t{i}" for i in topic_ids} | {f"c{i}" for i in conversation_ids}
    return documents, sorted(every_key - found), bool(wanted["purge"])


# --- the nodes' positions ----------------------------------------------------------------


def _node_row(node: str) -> sa.Select:
    return sa.select(search_nodes.c.position, search_nodes.c.last_seen).where(
        search_nodes.c.name == node
    )


def _advance(node: str, position: int, now: datetime) -> sa.Update:
    # Never backwards: a position only grows, whoever wrote it last.
    return (
        search_nodes.update()
        .where(search_nodes.c.name == node, search_nodes.c.position < position)
        .values(position=position, last_seen=now)
    )


def _still_here(node: str, now: datetime) -> sa.Update:
    """An idle node's sign of life: a quiet week on the site must not make it forgotten."""
    return search_nodes.update().where(search_nodes.c.name == node).values(last_seen=now)


def _prune_statements(now: datetime) -> tuple[sa.Delete, sa.Delete]:
    """Forgets nodes silent for NODE_FORGOTTEN_AFTER, then deletes the rows every remaining
    node has passed, but for the last of them: a rebuild takes its position from the ids
    it sees, and the sequence may have gone on past an empty table (_settled_position). A
    rebuilding node (NULL) holds every row; no node at all, none."""
    forget = search_nodes.delete().where(search_nodes.c.last_seen < now - NODE_FORGOTTEN_AFTER)
    passed_by_all = sa.select(
        sa.func.min(sa.func.coalesce(search_nodes.c.position, 0))
    ).scalar_subquery()
    return forget, search_queue.delete().where(search_queue.c.id < passed_by_all)


async def prune(db: Database, now: datetime | None = None) -> None:
    async with write_transaction(db):
        for statement in _prune_statements(now or utcnow()):
            await db.execute(statement)


def _rows_after(position: int, limit: int = BATCH) -> sa.Select:
    return (
        sa.select(search_queue)
        .where(search_queue.c.id > position)
        .order_by(search_queue.c.id)
        .limit(limit)
    )


def committed_in_order(rows: list, position: int, now: datetime) -> list:
    """The rows a node may pass now: those up to the first gap in the ids younger than
    GAP_PATIENCE.

    A position assumes that no row with a smaller id appears later. SQLite has one writer
    at a time, so ids become visible in order. On PostgreSQL a transaction that took id 7
    may commit after the one that took id 8, and a node that passed 8 would never read 7;
    a rolled-back transaction leaves a gap that never fills. So a node stops before a gap
    and waits for it until the row after it is GAP_PATIENCE old (the "stale sequence"
    rule of event stores on PostgreSQL, e.g. Marten's async daemon).
    """
    ready = []
    expected = position + 1
    for row in rows:
        if row.id != expected and row.created_at > now - GAP_PATIENCE:
            break
        ready.append(row)
        expected = row.id + 1
    return ready


async def _drain_batch(db: Database, settings: Settings) -> int | None:
    """Indexes up to BATCH rows past the node's position; None when the node has none."""
    node = settings.search_node
    row = await db.fetch_one(_node_row(node))
    if row is None or row.position is None:
        return None
    now = utcnow()
    # Idle rounds (most of them) stay two SELECTs: the writer is taken for work only.
    if not await db.fetch_all(_rows_after(row.position, limit=1)):
        if row.last_seen < now - HEARTBEAT:
            await db.execute(_still_here(node, now))
        return 0
    async with _index_writer(settings) as writer:
        if writer is None:
            return 0  # another worker drains right now, or a rebuild runs
        # Read again as the holder: the last one may have moved the position on since.
        row = await db.fetch_one(_node_row(node))
        if row is None or row.position is None:
            return None
        rows = committed_in_order(await db.fetch_all(_rows_after(row.position)), row.position, now)
        if not rows:
            return 0  # the next id is still being written
        documents, gone_keys, purge = await _changes_for(db, settings, rows)
        await _to_the_end(_write, writer, documents, gone_keys, purge)
        # After the commit: a crash before this line only indexes the rows again.
        await db.execute(_advance(node, rows[-1].id, now))
    await prune(db, now)
    return len(rows)


async def drain_once(db: Database, settings: Settings) -> int:
    """Indexes up to BATCH queued changes; returns how many queue rows it settled."""
    settled = await _drain_batch(db, settings) if index_is_present(settings) else None
    if settled is None:  # no index yet, a new node, or one forgotten while it was away
        await _ensure_index_in_thread(settings)
        settled = await _drain_batch(db, settings)
    return settled or 0


async def _ensure_index_in_thread(settings: Settings) -> None:
    """ensure_index off the event loop; cancelled (shutdown), it stops the rebuild and
    waits for the thread, which then no longer reads a database being closed."""
    stop = threading.Event()
    await _to_the_end(ensure_index, settings, stop, stop=stop)


def index_is_present(settings: Settings) -> bool:
    """Whether the folder holds an index's table of contents: cheap enough for every round,
    where `index_is_usable` opens the index."""
    return any(index_dir(settings).glob("_MAIN_*.toc"))


async def run_forever(db: Database, settings: Settings, wake: asyncio.Event) -> None:
    """Rebuilds a missing or broken index, then drains the queue as changes arrive."""
    check_whole_index = True  # at start, and after a round that failed
    while True:
        rebuilding = check_whole_index or not index_is_present(settings)
        try:
            if rebuilding:
                await _ensure_index_in_thread(settings)
            check_whole_index = False
            while await drain_once(db, settings) == BATCH:
                pass
        except Exception as error:
            if asyncio.current_task().cancelling():
                raise asyncio.CancelledError from error  # shutting down, whatever failed
            check_whole_index = True
            if not rebuilding and not index_is_present(settings):
                # Deleted while the round read or wrote it (whatever Whoosh then raised):
                # not a fault of the round, and rebuilt right away (a failed rebuild waits).
                log.warning("search index went missing during a round (%r); rebuilding", error)
                continue
            log.exception("search indexing round failed")
        wake.clear()
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
        # the event is set (a POST just before shutdown), and the loop would run on.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_SECONDS):
                await wake.wait()


# --- building from scratch -----------------------------------------------------------------


@contextmanager
def _index_lock(settings: Settings, exclusive: bool, wait: bool = True) -> Iterator[bool]:
    """A rebuild holds it exclusively; drains share it. A drain that finds a rebuild
    running skips its round, so it cannot write into the index that is about to be
    replaced and then drop the queue rows the new index has not seen."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "index.lock", "a") as handle:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def index_is_usable(settings: Settings) -> bool:
    folder = index_dir(settings)
    try:
        # exists_in itself reads the table of contents, and a damaged one raises.
        if not whoosh_index.exists_in(str(folder)):
            log.info("no search index in %s yet", folder)
            return False
        existing = open_index(settings)
        with existing.searcher() as searcher:
            searcher.doc_count()
            segments = searcher.reader().segments() or ()
            compound = any(segment.is_compound() for segment in segments)
    except Exception:
        log.warning("search index in %s is unreadable", folder, exc_info=True)
        return False
    if compound:
        log.info("search index in %s has compound segments, built before 2026-12-06", folder)
        return False
    if sorted(existing.schema.names()) != sorted(make_schema().names()):
        log.info("search index in %s has an older layout", folder)
        return False
    return True


def _is_registered(engine: sa.Engine, settings: Settings) -> bool:
    """Whether the database knows how far this node's index reaches."""
    with engine.connect() as connection:
        row = connection.execute(_node_row(settings.search_node)).first()
    return row is not None and row.position is not None


class RebuildStopped(Exception):
    """The process shuts down: the half-built index is thrown away."""


def ensure_index(settings: Settings, stop: threading.Event | None = None) -> bool:
    """Rebuilds the index when it is missing or unreadable, or when the database does not
    know its position (a new node, one forgotten while away); True when it did. Setting
    `stop` ends a rebuild within a document (RebuildStopped); the next start builds anew.
    """

    def unless_stopped(_count: int) -> None:
        if stop is not None and stop.is_set():
            raise RebuildStopped

    engine = _engine(settings)
    try:
        if index_is_usable(settings) and _is_registered(engine, settings):
            return False
        with _index_lock(settings, exclusive=True):
            if index_is_usable(settings) and _is_registered(engine, settings):
                return False  # another worker built it while this one waited
            log.info("building the search index from the database")
            _rebuild_from(engine, settings, unless_stopped, SERVER_REBUILD_MB)
        return True
    finally:
        engine.dispose()


def rebuild(settings: Settings, progress: Callable[[int], None] | None = None) -> int:
    """A new index from every topic and conversation, swapped in whole; returns the documents."""
    engine = _engine(settings)
    try:
        with _index_lock(settings, exclusive=True):
            return _rebuild_from(engine, settings, progress, COMMAND_REBUILD_MB)
    finally:
        engine.dispose()


def _engine(settings: Settings) -> sa.Engine:
    from board.db import sync_engine

    return sync_engine(settings)


def _hold_every_row(connection: sa.Connection, node: str) -> None:
    """Marks the node as rebuilding (NULL position): from this commit on no other node
    prunes a row, so whatever is written after the position read next stays queued."""
    connection.execute(search_nodes.delete().where(search_nodes.c.name == node))
    connection.execute(search_nodes.insert().values(name=node, position=None, last_seen=utcnow()))


def _settled_position(now: datetime) -> sa.Select:
    """The highest queue id below which no row can still appear: the last row older than
    GAP_PATIENCE (prune keeps the last one passed, so there usually is one); without
    one, the position before the first row, or 0."""
    settled = sa.select(sa.func.max(search_queue.c.id)).where(
        search_queue.c.created_at <= now - GAP_PATIENCE
    )
    before_first = sa.select(sa.func.min(search_queue.c.id) - 1)
    return sa.select(sa.func.coalesce(settled.scalar_subquery(), before_first.scalar_subquery(), 0))


# What Whoosh's writer holds in memory before it writes a sorted run to disk (`limitmb`).
# Python's objects for that much postings take more, and a worker keeps most of the pages
# afterwards: rebuilding 55,000 documents at its start, a server with 256 peaked at
# 427 MiB and stayed there, with 48 at 208 MiB (then 201), in the same 175 s; 16 gave
# 198 MiB in 236 s (bench/RESULTS.md). The command line (`reindex`, `demo`) ends when it
# is done and may use more.
SERVER_REBUILD_MB = 48
COMMAND_REBUILD_MB = 256


def _rebuild_from(engine: sa.Engine, settings: Settings, progress, limit_mb: int) -> int:
    node = settings.search_node
    target = index_dir(settings)
    fresh = target.with_name("index.new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    built = whoosh_index.create_in(str(fresh), make_schema())
    pattern = settings.search_code_pattern
    with engine.begin() as connection:
        _hold_every_row(connection, node)
    with engine.connect() as connection:
        # Changes queued up to here are in what we read next; later ones are drained after.
        # Among the rows of the last GAP_PATIENCE a transaction still open may yet commit
        # an id (committed_in_order): the position stays before them, and they are read
        # again after the rebuild (documents are replaced by key, so that is harmless).
        position = connection.execute(_settled_position(utcnow())).scalar()
        writer = built.writer(limitmb=limit_mb, compound=False)
        count = 0
        sources = (
            (TOPIC_ROWS, "topic_id", topic_document),
            (CONVERSATION_ROWS, "conversation_id", conversation_document),
        )
        try:
            for statement, key, to_document in sources:
                reading = connection.execution_options(yield_per=REBUILD_BATCH)
                with reading.execute(statement) as rows:  # a server-side cursor on PostgreSQL
                    for document in documents_of(rows, key, to_document, pattern):
                        writer.add_document(**document)
                        count += 1
                        if progress is not None:
                            progress(1)
        except BaseException:
            writer.cancel()  # its open segment files; index.new is cleared by the next rebuild
            raise
        writer.commit()
    old = target.with_name("index.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            search_nodes.update()
            .where(search_nodes.c.name == node)
            .values(position=position, last_seen=now)
        )
        for statement in _prune_statements(now):
            connection.execute(statement)
    return count


async def nothing_left_to_index(db: Database, settings: Settings) -> bool:
    """Whether this node's index holds every queued change (tests, the reindex command)."""
    row = await db.fetch_one(_node_row(settings.search_node))
    if row is None or row.position is None:
        return False
    pending = sa.select(sa.func.count()).where(search_queue.c.id > row.position)
    return await db.fetch_val(pending) == 0


async def drain_all(db: Database, settings: Settings, patience: float = 10.0) -> None:
    """Indexes everything queued for this node (tests), waiting up to `patience` seconds
    for a worker that holds the writer meanwhile to finish its round."""
    deadline = asyncio.get_running_loop().time() + patience
    while not await nothing_left_to_index(db, settings):
        if await drain_once(db, settings):
            continue
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.05)
