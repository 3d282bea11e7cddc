"""A topic's solution: the post that answers the question, and "was this helpful?" votes.

Staff or the topic's author mark one reply as the solution (staff also in a locked
topic), or unmark it. Marking changes what guests see (the topic, "Solved" on the
category's list) and what search finds (solved topics rank first among comparable hits),
so the cache version and the search queue row are written in the same transaction.
Votes are counted for staff only; each person has one per solution, and may change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database
from sqlalchemy.dialects import postgresql, sqlite

from board import permissions
from board.db import (
    Query,
    fetch_row,
    posts,
    solution_votes,
    topics,
    users,
    utcnow,
    write_transaction,
)
from board.errors import Invalid, NotAllowed, NotFound
from board.forum.queries import TOPIC_BY_ID
from board.i18n import gettext as _
from board.pagecache import bump_forum_version
from board.search import indexing as search
from board.security import CurrentUser

Record = Any

solution_author = users.alias("solution_author")

# The solution shown under the question: the post and its author, one query.
SOLUTION_POST = Query(
    sa.select(
        posts.c.id,
        posts.c.body_html,
        posts.c.created_at,
        posts.c.author_id,
        solution_author.c.name.label("author_name"),
        solution_author.c.role.label("author_role"),
    )
    .select_from(posts.join(solution_author, solution_author.c.id == posts.c.author_id))
    .where(posts.c.id == sa.bindparam("post_id"), posts.c.deleted_at.is_(None))
)

# Both counts and the viewer's own vote in one pass over the post's votes (primary key).
VOTES_OF_POST = Query(
    sa.select(
        sa.func.count().filter(solution_votes.c.helpful.is_(True)).label("helpful"),
        sa.func.count().filter(solution_votes.c.helpful.is_(False)).label("unhelpful"),
        sa.func.max(
            sa.case(
                (
                    solution_votes.c.user_id == sa.bindparam("viewer_id"),
                    sa.cast(solution_votes.c.helpful, sa.Integer) + 1,
                ),
                else_=0,
            )
        ).label("own"),
    ).where(solution_votes.c.post_id == sa.bindparam("post_id"))
)


@dataclass(frozen=True)
class Votes:
    helpful: int = 0
    unhelpful: int = 0
    own: bool | None = None  # the viewer's vote: True (yes), False (no), None (none yet)


async def solution_of(db: Database, topic: Record) -> Record | None:
    """The topic's solution post with its author, or None (unsolved, or since deleted)."""
    if topic.solution_post_id is None:
        return None
    return await SOLUTION_POST.row(db, post_id=topic.solution_post_id)


async def votes_on(db: Database, post_id: int, viewer: CurrentUser | None) -> Votes:
    row = await VOTES_OF_POST.row(db, post_id=post_id, viewer_id=viewer.id if viewer else 0)
    own = {0: None, 1: False, 2: True}[row.own or 0] if row is not None else None
    return Votes(row.helpful or 0, row.unhelpful or 0, own) if row is not None else Votes()


async def _topic_in_transaction(db: Database, topic_id: int, user: CurrentUser) -> Record:
    """The topic as it is inside the write lock: a lock or a move meanwhile counts."""
    topic = await TOPIC_BY_ID.row(db, topic_id=topic_id)
    if topic is None:
        raise NotFound()
    permissions.ensure_can_read_topic(user, topic)
    return topic


async def set_solution(db: Database, post_id: int, user: CurrentUser, solved: bool) -> int:
    """Marks the post as its topic's solution (or unmarks it); returns the topic's id.

    Authorize, validate, store, effects: who may (staff, or the topic's author while it is
    open), that the post is a visible reply of the topic (not the question itself), then
    the column, the guests' cache version and the search queue row, in one transaction."""
    async with write_transaction(db):
        post = await fetch_row(
            db,
            sa.select(posts.c.id, posts.c.topic_id, posts.c.deleted_at).where(
                posts.c.id == post_id
            ),
        )
        if post is None or (post.deleted_at is not None and not permissions.can_see_deleted(user)):
            raise NotFound()
        topic = await _topic_in_transaction(db, post.topic_id, user)
        if not permissions.can_mark_solution(user, topic):
            raise NotAllowed(_("Only the topic's author or our team can choose its solution."))
        if solved:
            if post.id == topic.first_post_id:
                raise Invalid({"solution": _("The question itself cannot be its solution.")})
            if post.deleted_at is not None:
                raise Invalid({"solution": _("A deleted post cannot be the solution.")})
            new_value: int | None = post.id
        elif topic.solution_post_id != post.id:
            return topic.id  # this post is not the solution: nothing to unmark
        else:
            new_value = None
        if topic.solution_post_id != new_value:
            await db.execute(
                topics.update().where(topics.c.id == topic.id).values(solution_post_id=new_value)
            )
            await search.queue_topic(db, topic.id)  # the index's `solved` field
            await bump_forum_version(db)  # guests' cached topic and category pages
        return topic.id


async def vote(db: Database, post_id: int, user: CurrentUser, helpful: bool) -> int:
    """Records the person's vote on a solution, replacing an earlier one; returns the
    topic's id. Only the topic's current solution takes votes, and not from its author."""
    async with write_transaction(db):
        post = await fetch_row(
            db,
            sa.select(posts.c.id, posts.c.topic_id, posts.c.author_id).where(
                posts.c.id == post_id, posts.c.deleted_at.is_(None)
            ),
        )
        if post is None:
            raise NotFound()
        topic = await _topic_in_transaction(db, post.topic_id, user)
        if topic.solution_post_id != post.id:
            raise Invalid({"vote": _("This post is no longer the solution of its topic.")})
        if not permissions.can_vote_on_solution(user, post):
            raise NotAllowed(_("You cannot rate your own answer."))
        # One row per person and post: an upsert, so that two tabs voting at once on
        # PostgreSQL (no write lock there) change the vote rather than fail.
        dialect = postgresql if db.url.dialect == "postgresql" else sqlite
        statement = dialect.insert(solution_votes).values(
            post_id=post.id, user_id=user.id, helpful=helpful, voted_at=utcnow()
        )
        await db.execute(
            statement.on_conflict_do_update(
                index_elements=[solution_votes.c.post_id, solution_votes.c.user_id],
                set_={
                    "helpful": statement.excluded.helpful,
                    "voted_at": statement.excluded.voted_at,
                },
            )
        )
        return topic.id
