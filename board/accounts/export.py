"""A person's data as a ZIP: profile, conversations with messages and files, forum posts.

What goes in is what the person can see about themselves on the site: the profile (never
the password hash), their conversations with every message the customer side sees
(internal staff notes never), the original bytes of those messages' attachments, their
forum posts, deleted ones included and marked, and their votes on solutions ("Was this
helpful?"). The export staff take on
/staff/customers/{id} adds what staff keep about the person (the internal note and the
VIP flag): the person has a right to it on request (GDPR Art. 15), and staff look it over
before handing it on. Their own download on /account leaves it out, as every customer
page does.

Every list is one query; the archive is written in a worker thread into a spooled
temporary file, so a large export neither blocks the event loop nor sits in memory.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from databases import Database

from board.db import (
    attachments,
    conversations,
    messages,
    posts,
    request_types,
    solution_votes,
    topics,
    users,
)
from board.security import STAFF_ROLES
from board.uploads import safe_filename, stored_path

Record = Any
SPOOL_BYTES = 8 * 1024 * 1024  # beyond this the archive goes to a temporary file on disk
CHUNK_BYTES = 256 * 1024
ATTACHMENTS_FOLDER = "attachments"

author = users.alias("author")


@dataclass
class Export:
    """Everything the archive holds, read from the database, before any file is opened."""

    profile: dict
    conversations: list[dict]
    forum_posts: list[dict]
    solution_votes: list[dict]
    # (attachment row, the dict in `conversations` that describes it): the path inside
    # the archive is filled in once the thread knows the stored file is there.
    files: list[tuple[Record, dict]] = field(default_factory=list)


def utc_iso(moment: datetime | None) -> str | None:
    """Stored times are naive UTC: ISO 8601 with a "Z"."""
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def archive_name(person: Record) -> str:
    number = person.customer_number if person.customer_number is not None else f"u{person.id}"
    return f"supportboard-data-{number}.zip"


# --- reading -----------------------------------------------------------------------------


def _own_conversations(user_id: int) -> sa.Select:
    return sa.select(conversations.c.id).where(conversations.c.customer_id == user_id)


def _profile(person: Record, for_staff: bool) -> dict:
    profile = {
        "customer_number": person.customer_number,
        "name": person.name,
        "email": person.email,
        "title": person.title,
        "role": person.role,
        "locale": person.locale,
        "notify": person.notify,
        "registered_at": utc_iso(person.created_at),
        "forum_post_count": person.post_count,
        "last_posted_at": utc_iso(person.last_posted_at),
        "active": person.is_active,
        "erased_at": utc_iso(person.erased_at),
    }
    if person.role in STAFF_ROLES:
        profile.update(
            notify_new=person.notify_new,
            daily_summary=person.daily_summary,
            personal_summary=person.personal_summary,
        )
    if for_staff:
        profile.update(staff_note=person.note, vip=person.vip)
    return profile


async def _conversations(db: Database, person: Record) -> tuple[list[dict], list[tuple]]:
    """Their conversations with the messages the customer side sees, and those messages'
    files: three queries, however many conversations there are."""
    rows = await db.fetch_all(
        sa.select(conversations, request_types.c.name.label("type_name"))
        .select_from(
            conversations.outerjoin(request_types, request_types.c.id == conversations.c.type_id)
        )
        .where(conversations.c.customer_id == person.id)
        .order_by(conversations.c.number)
    )
    visible = sa.and_(
        messages.c.conversation_id.in_(_own_conversations(person.id)),
        messages.c.internal.is_(False),
    )
    message_rows = await db.fetch_all(
        sa.select(
            messages.c.id,
            messages.c.conversation_id,
            messages.c.author_id,
            messages.c.body,
            messages.c.created_at,
            author.c.name.label("author_name"),
            author.c.role.label("author_role"),
        )
        .select_from(messages.outerjoin(author, author.c.id == messages.c.author_id))
        .where(visible)
        .order_by(messages.c.conversation_id, messages.c.id)
    )
    file_rows = await db.fetch_all(
        sa.select(attachments)
        .where(attachments.c.message_id.in_(sa.select(messages.c.id).where(visible)))
        .order_by(attachments.c.message_id, attachments.c.id)
    )
    files_of: dict[int, list[dict]] = {}
    files: list[tuple] = []
    for row in file_rows:
        described = {
            "filename": row.filename,
            "content_type": row.content_type,
            "size": row.size,
            "sha256": row.sha256,
            "path": None,  # set when the file is written into the archive
        }
        files_of.setdefault(row.message_id, []).append(described)
        files.append((row, described))
    by_conversation: dict[int, list[dict]] = {}
    for row in message_rows:
        by_conversation.setdefault(row.conversation_id, []).append(row)
    listed = []
    for conversation in rows:
        thread = by_conversation.get(conversation.id, [])
        listed.append(
            {
                "number": conversation.number,
                "kind": conversation.kind,
                "subject": conversation.subject,
                "type": conversation.type_name,  # what the customer said it is about
                "order_number": conversation.order_number,
                "status": conversation.status,
                "created_at": utc_iso(conversation.created_at),
                "last_message_at": utc_iso(conversation.last_message_at),
                "messages": [
                    _message(row, conversation, person, files_of.get(row.id, [])) for row in thread
                ],
            }
        )
    return listed, files


def _message(row: Record, conversation: Record, person: Record, files: list[dict]) -> dict:
    from_staff = row.author_role in STAFF_ROLES
    # No author: written as a guest before the conversation joined the account.
    name = row.author_name or conversation.guest_name or person.name
    return {
        "id": row.id,
        "author_name": name,
        "author_role": "staff" if from_staff else "customer",
        "body": row.body,
        "created_at": utc_iso(row.created_at),
        "attachments": files,
    }


async def _forum_posts(db: Database, person: Record) -> list[dict]:
    rows = await db.fetch_all(
        sa.select(
            posts.c.id,
            posts.c.topic_id,
            posts.c.body,
            posts.c.created_at,
            posts.c.edited_at,
            posts.c.deleted_at,
            topics.c.title.label("topic_title"),
        )
        .select_from(posts.join(topics, topics.c.id == posts.c.topic_id))
        .where(posts.c.author_id == person.id)
        .order_by(posts.c.id)
    )
    return [
        {
            "id": row.id,
            "topic_id": row.topic_id,
            "topic_title": row.topic_title,
            "body": row.body,
            "created_at": utc_iso(row.created_at),
            "edited_at": utc_iso(row.edited_at),
            "deleted": row.deleted_at is not None,
            "deleted_at": utc_iso(row.deleted_at),
        }
        for row in rows
    ]


async def _solution_votes(db: Database, person: Record) -> list[dict]:
    rows = await db.fetch_all(
        sa.select(
            solution_votes.c.post_id,
            solution_votes.c.helpful,
            solution_votes.c.voted_at,
            posts.c.topic_id,
            topics.c.title.label("topic_title"),
        )
        .select_from(
            solution_votes.join(posts, posts.c.id == solution_votes.c.post_id).join(
                topics, topics.c.id == posts.c.topic_id
            )
        )
        .where(solution_votes.c.user_id == person.id)
        .order_by(solution_votes.c.voted_at, solution_votes.c.post_id)
    )
    return [
        {
            "post_id": row.post_id,
            "topic_id": row.topic_id,
            "topic_title": row.topic_title,
            "helpful": row.helpful,
            "voted_at": utc_iso(row.voted_at),
        }
        for row in rows
    ]


async def collect(db: Database, person: Record, for_staff: bool) -> Export:
    conversations_listed, files = await _conversations(db, person)
    return Export(
        profile=_profile(person, for_staff),
        conversations=conversations_listed,
        forum_posts=await _forum_posts(db, person),
        solution_votes=await _solution_votes(db, person),
        files=files,
    )


# --- writing the archive (in a worker thread) ----------------------------------------------


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode() + b"\n"


def archive_path(message_id: int, filename: str, taken: set[str]) -> str:
    """`attachments/<message id>-<name>`, unique even for two equal names in one message."""
    name = safe_filename(filename)
    path = f"{ATTACHMENTS_FOLDER}/{message_id}-{name}"
    number = 2
    while path in taken:
        stem, dot, extension = name.rpartition(".")
        numbered = f"{stem} ({number}).{extension}" if dot else f"{name} ({number})"
        path = f"{ATTACHMENTS_FOLDER}/{message_id}-{numbered}"
        number += 1
    taken.add(path)
    return path


def write_archive(export: Export, upload_dir: Path) -> IO[bytes]:
    """The ZIP in a spooled temporary file, positioned at its start. Synchronous."""
    present: list[tuple[Path, str]] = []
    taken: set[str] = set()
    for row, described in export.files:
        source = stored_path(upload_dir, row.sha256)
        if source.exists():  # a file lost from the store is listed without a path
            described["path"] = archive_path(row.message_id, row.filename, taken)
            present.append((source, described["path"]))
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        with zipfile.ZipFile(spooled, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("profile.json", _json(export.profile))
            archive.writestr("conversations.json", _json(export.conversations))
            archive.writestr("forum_posts.json", _json(export.forum_posts))
            archive.writestr("solution_votes.json", _json(export.solution_votes))
            for source, path in present:
                # Stored as they are: PDFs, pictures and office files are compressed already.
                archive.write(source, path, compress_type=zipfile.ZIP_STORED)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled


def read_chunks(archive: IO[bytes]) -> Iterator[bytes]:
    """The archive in pieces for a streaming response; closes (and so deletes) it at the end."""
    try:
        while chunk := archive.read(CHUNK_BYTES):
            yield chunk
    finally:
        archive.close()
