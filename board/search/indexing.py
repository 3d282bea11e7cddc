"""Keeping the index in step with the database.

The database is the truth. Every write that changes what search should find calls one of
the `queue_*` functions inside its transaction; a background task in each server
process reads the queue, builds the documents from the database as it is now, writes
them with Whoosh's single writer and only then deletes the queue rows. A crash anywhere
in between leaves the rows, and documents are replaced by key, so indexing twice is
harmless. Several workers share one index: whoever holds Whoosh's write lock drains the
queue, the others skip the round.

`rebuild` builds a whole new index next to the old one and swaps the folders: at start
and whenever the index goes missing or unreadable while the server runs (searches say
"being prepared" meanwhile), and with `python -m board reindex`. It holds
<data>/index.lock exclusively; drains share that lock and skip while a rebuild runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import groupby
from operator import attrgetter
from pathlib import Path

import sqlalchemy as sa
from databases import Database
from starlette.concurrency import run_in_threadpool
from whoosh import index as whoosh_index
from whoosh.index import LockError

from board.config import Settings
from board.db import (
    categories,
    conversations,
    messages,
    posts,
    search_queue,
    topics,
    utcnow,
)
from board.markup import plain_text
from board.search.schema import codes_in, make_schema

log = logging.getLogger("board.search")

BATCH = 500
# search_queue.doc_type; "purge" (doc_id 0) asks the drain to merge the index's segments.
DOC_TYPES = ("post", "topic", "message", "conversation", "purge")
POLL_SECONDS = 2
REBUILD_BATCH = 2000


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
        categories.c.staff_only,
    )
    .select_from(
        posts.join(topics, topics.c.id == posts.c.topic_id).join(
            categories, categories.c.id == topics.c.category_id
        )
    )
    .order_by(posts.c.topic_id, posts.c.id)
)

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
    )
    .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id))
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
        shown=[(row.id, plain_text(row.body)) for row in rows if not row.deleted_at],
        staff_only=[(row.id, plain_text(row.body)) for row in rows if row.deleted_at],
        code_prefix=first.title,
        pattern=pattern,
        created=first.created_at,
    )
    if not hidden:
        # Only public words may come back as "did you mean", never a customer's.
        document["words"] = f"{first.title} {document['body']}"
    return document


def conversation_document(rows: list, pattern: str) -> dict:
    """A conversation's messages in order; internal notes are text only staff find."""
    first = rows[0]
    if first.customer_id is None:
        visibility, owner = "staff", ""  # guests reach theirs by link, not by search
    else:
        visibility, owner = "private", str(first.customer_id)
    return _document(
        key=f"c{first.conversation_id}",
        kind="inbox",
        visibility=visibility,
        owner=owner,
        ref=first.number,
        title=first.subject,
        shown=[(row.id, plain_text(row.body)) for row in rows if not row.internal],
        staff_only=[(row.id, plain_text(row.body)) for row in rows if row.internal],
        code_prefix=str(first.number),
        pattern=pattern,
        created=first.created_at,
    )


def documents_of(
    rows: Iterable, key: str, to_document: Callable[[list, str], dict], pattern: str
) -> Iterator[dict]:
    """One document per run of rows with the same topic or conversation id."""
    for _id, group in groupby(rows, key=attrgetter(key)):
        yield to_document(list(group), pattern)


# --- draining the queue ------------------------------------------------------------------


def open_index(settings: Settings):
    return whoosh_index.open_dir(str(index_dir(settings)))


def _apply(
    settings: Settings, documents: list[dict], gone_keys: list[str], purge: bool = False
) -> bool:
    """Writes one batch; False when a rebuild runs or another process holds the writer.
    With `purge`, the commit merges every segment, dropping deleted documents' text."""
    with _index_lock(settings, exclusive=False, wait=False) as held:
        if not held:
            return False
        try:
            writer = open_index(settings).writer(timeout=0.0)
        except LockError:
            return False
        try:
            for key in gone_keys:
                writer.delete_by_term("key", key)
            for document in documents:
                writer.update_document(**document)
        except BaseException:
            writer.cancel()
            raise
        writer.commit(optimize=purge)
    return True


async def _ids_of(db: Database, column: sa.Column, id_column: sa.Column, ids: set[int]) -> set[int]:
    """The topics of queued posts, the conversations of queued messages."""
    if not ids:
        return set()
    return {row[0] for row in await db.fetch_all(sa.select(column).where(id_column.in_(ids)))}


async def drain_once(db: Database, settings: Settings) -> int:
    """Indexes up to BATCH queued changes; returns how many queue rows it settled."""
    rows = await db.fetch_all(sa.select(search_queue).order_by(search_queue.c.id).limit(BATCH))
    if not rows:
        return 0
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
    purge = bool(wanted["purge"])
    written = await run_in_threadpool(_apply, settings, documents, sorted(every_key - found), purge)
    if not written:
        return 0  # another worker drains right now
    await db.execute(search_queue.delete().where(search_queue.c.id.in_([r.id for r in rows])))
    return len(rows)


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
                await run_in_threadpool(ensure_index, settings)
            check_whole_index = False
            while await drain_once(db, settings) == BATCH:
                pass
        except Exception as error:
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
    except Exception:
        log.warning("search index in %s is unreadable", folder, exc_info=True)
        return False
    if sorted(existing.schema.names()) != sorted(make_schema().names()):
        log.info("search index in %s has an older layout", folder)
        return False
    return True


def ensure_index(settings: Settings) -> bool:
    """Rebuilds the index when it is missing or unreadable; True when it did."""
    if index_is_usable(settings):
        return False
    with _index_lock(settings, exclusive=True):
        if index_is_usable(settings):
            return False  # another worker built it while this one waited
        log.info("building the search index from the database")
        _rebuild_with(settings, None)
    return True


def rebuild(settings: Settings, progress: Callable[[int], None] | None = None) -> int:
    """A new index from every topic and conversation, swapped in whole; returns the documents."""
    with _index_lock(settings, exclusive=True):
        return _rebuild_with(settings, progress)


def _rebuild_with(settings: Settings, progress) -> int:
    from board.db import sync_engine

    engine = sync_engine(settings)
    try:
        return _rebuild_from(engine, settings, progress)
    finally:
        engine.dispose()


def _rebuild_from(engine: sa.Engine, settings: Settings, progress) -> int:
    target = index_dir(settings)
    fresh = target.with_name("index.new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    built = whoosh_index.create_in(str(fresh), make_schema())
    pattern = settings.search_code_pattern
    with engine.connect() as connection:
        # Changes queued up to here are in what we read next; later ones stay queued.
        last_queued = connection.execute(sa.select(sa.func.max(search_queue.c.id))).scalar()
        writer = built.writer(limitmb=256)
        count = 0
        sources = (
            (TOPIC_ROWS, "topic_id", topic_document),
            (CONVERSATION_ROWS, "conversation_id", conversation_document),
        )
        for statement, key, to_document in sources:
            rows = connection.execution_options(yield_per=REBUILD_BATCH).execute(statement)
            for document in documents_of(rows, key, to_document, pattern):
                writer.add_document(**document)
                count += 1
                if progress is not None:
                    progress(1)
        writer.commit()
    old = target.with_name("index.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    if last_queued is not None:
        with engine.begin() as connection:
            connection.execute(search_queue.delete().where(search_queue.c.id <= last_queued))
    return count


async def queue_is_empty(db: Database) -> bool:
    return await db.fetch_val(sa.select(sa.func.count()).select_from(search_queue)) == 0


async def drain_all(db: Database, settings: Settings) -> None:
    """Indexes everything queued (tests, the reindex command)."""
    while await drain_once(db, settings):
        pass
