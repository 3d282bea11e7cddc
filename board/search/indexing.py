"""Keeping the index in step with the database.

The database is the truth. Every write that changes what search should find calls one of
the `queue_*` functions inside its transaction; a background task in each server
process reads the queue, builds the documents from the database as it is now, writes
them with Whoosh's single writer and only then deletes the queue rows. A crash anywhere
in between leaves the rows, and documents are replaced by key, so indexing twice is
harmless. Several workers share one index: whoever holds Whoosh's write lock drains the
queue, the others skip the round.

`rebuild` builds a whole new index next to the old one and swaps the folders: at start
when the index is missing or unreadable, and with `python -m board reindex`. It holds
<data>/index.lock exclusively; drains share that lock and skip while a rebuild runs.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
DOC_TYPES = ("post", "topic", "message", "conversation")  # search_queue.doc_type
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


async def queue_post(db: Database, post_id: int) -> None:
    await queue(db, "post", [post_id])


async def queue_topic(db: Database, topic_id: int) -> None:
    """Title, category, deletion: every post of the topic is written again."""
    await queue(db, "topic", [topic_id])


async def queue_message(db: Database, message_id: int) -> None:
    await queue(db, "message", [message_id])


async def queue_conversation(db: Database, conversation_id: int) -> None:
    """Subject or owner changed: every message of the conversation is written again."""
    await queue(db, "conversation", [conversation_id])


# --- documents from rows -----------------------------------------------------------------

POST_ROWS = (
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
    .order_by(posts.c.id)
)

MESSAGE_ROWS = (
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
    .order_by(messages.c.id)
)


def post_document(row, code_pattern: str) -> dict:
    hidden = row.deleted_at or row.topic_deleted_at or row.staff_only
    body = plain_text(row.body)  # snippets show what readers see, not markdown
    document = {
        "key": f"p{row.id}",
        "group": f"t{row.topic_id}",
        "kind": "forum",
        "visibility": "staff" if hidden else "public",
        "owner": "",
        "ref": row.topic_id,
        "item": row.id,
        "title": row.title,
        "body": body,
        "codes": codes_in(f"{row.title} {body}", code_pattern),
        "created": row.created_at,
    }
    if not hidden:
        # Only public words may come back as "did you mean", never a customer's.
        document["words"] = f"{row.title} {body}"
    return document


def message_document(row, code_pattern: str) -> dict:
    body = plain_text(row.body)
    if row.internal or row.customer_id is None:
        visibility, owner = "staff", ""  # notes, and guests (who reach theirs by link)
    else:
        visibility, owner = "private", str(row.customer_id)
    return {
        "key": f"m{row.id}",
        "group": f"c{row.conversation_id}",
        "kind": "inbox",
        "visibility": visibility,
        "owner": owner,
        "ref": row.number,
        "item": row.id,
        "title": row.subject,
        "body": body,
        "codes": codes_in(f"{row.number} {body}", code_pattern),
        "created": row.created_at,
    }


# --- draining the queue ------------------------------------------------------------------


def open_index(settings: Settings):
    return whoosh_index.open_dir(str(index_dir(settings)))


def _apply(
    settings: Settings, groups: list[str], documents: list[dict], gone_keys: list[str]
) -> bool:
    """Writes one batch; False when a rebuild runs or another process holds the writer."""
    with _index_lock(settings, exclusive=False, wait=False) as held:
        if not held:
            return False
        try:
            writer = open_index(settings).writer(timeout=0.0)
        except LockError:
            return False
        try:
            for group in groups:
                writer.delete_by_term("group", group)
            for key in gone_keys:
                writer.delete_by_term("key", key)
            for document in documents:
                writer.update_document(**document)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
    return True


async def drain_once(db: Database, settings: Settings) -> int:
    """Indexes up to BATCH queued changes; returns how many queue rows it settled."""
    rows = await db.fetch_all(sa.select(search_queue).order_by(search_queue.c.id).limit(BATCH))
    if not rows:
        return 0
    wanted: dict[str, set[int]] = {kind: set() for kind in DOC_TYPES}
    for row in rows:
        wanted[row.doc_type].add(row.doc_id)
    pattern = settings.search_code_pattern
    found_posts = await db.fetch_all(
        POST_ROWS.where(
            sa.or_(posts.c.topic_id.in_(wanted["topic"]), posts.c.id.in_(wanted["post"]))
        )
    )
    found_messages = await db.fetch_all(
        MESSAGE_ROWS.where(
            sa.or_(
                messages.c.conversation_id.in_(wanted["conversation"]),
                messages.c.id.in_(wanted["message"]),
            )
        )
    )
    documents = [post_document(row, pattern) for row in found_posts]
    documents += [message_document(row, pattern) for row in found_messages]
    gone_keys = [f"p{i}" for i in wanted["post"] - {row.id for row in found_posts}]
    gone_keys += [f"m{i}" for i in wanted["message"] - {row.id for row in found_messages}]
    groups = [f"t{i}" for i in wanted["topic"]] + [f"c{i}" for i in wanted["conversation"]]
    written = await run_in_threadpool(_apply, settings, groups, documents, gone_keys)
    if not written:
        return 0  # another worker drains right now
    await db.execute(search_queue.delete().where(search_queue.c.id.in_([r.id for r in rows])))
    return len(rows)


async def run_forever(db: Database, settings: Settings, wake: asyncio.Event) -> None:
    """Rebuilds a missing or broken index, then drains the queue as changes arrive."""
    try:
        await run_in_threadpool(ensure_index, settings)
    except Exception:
        log.exception("search index could not be prepared")
    while True:
        try:
            while await drain_once(db, settings) == BATCH:
                pass
        except Exception:
            log.exception("search indexing round failed")
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), timeout=POLL_SECONDS)
        except TimeoutError:
            pass


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
        with open_index(settings).searcher() as searcher:
            searcher.doc_count()
    except Exception:
        log.warning("search index in %s is unreadable", folder, exc_info=True)
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
    """A new index from every post and message, swapped in whole; returns the documents."""
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
        sources = ((POST_ROWS, post_document), (MESSAGE_ROWS, message_document))
        for statement, to_document in sources:
            result = connection.execution_options(yield_per=REBUILD_BATCH).execute(statement)
            for row in result:
                writer.add_document(**to_document(row, pattern))
                count += 1
                if progress is not None and count % 1000 == 0:
                    progress(1000)
        writer.commit()
        if progress is not None:
            progress(count % 1000)
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
