"""Every SQL statement the forum runs: categories, topics, posts and their counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from databases import Database

from board import permissions
from board.db import (
    Query,
    categories,
    fetch_row,
    fetch_rows,
    posts,
    topics,
    users,
    utcnow,
    write_transaction,
)
from board.errors import NotFound
from board.markup import render_markdown
from board.pagecache import bump_forum_version
from board.search import indexing as search
from board.security import CurrentUser

Record = Any

last_post = posts.alias("last_post")
last_topic = topics.alias("last_topic")
last_poster = users.alias("last_poster")
author = users.alias("author")


# --- reading -----------------------------------------------------------------------------


async def category_index(db: Database, viewer: CurrentUser | None) -> list[Record]:
    """All categories the viewer may see, each with its last post, topic and poster."""
    query = (
        sa.select(
            categories,
            last_post.c.created_at.label("last_post_at"),
            last_topic.c.id.label("last_topic_id"),
            last_topic.c.title.label("last_topic_title"),
            last_poster.c.id.label("last_poster_id"),
            last_poster.c.name.label("last_poster_name"),
        )
        .select_from(
            categories.outerjoin(last_post, last_post.c.id == categories.c.last_post_id)
            .outerjoin(last_topic, last_topic.c.id == last_post.c.topic_id)
            .outerjoin(last_poster, last_poster.c.id == last_post.c.author_id)
        )
        .where(permissions.visible_categories(viewer))
        .order_by(categories.c.position, categories.c.id)
    )
    return await fetch_rows(db, query)


async def categories_for_move(db: Database) -> list[Record]:
    return await db.fetch_all(
        sa.select(categories.c.id, categories.c.slug, categories.c.name).order_by(
            categories.c.position, categories.c.id
        )
    )


async def category_or_404(db: Database, slug: str, viewer: CurrentUser | None) -> Record:
    category = await fetch_row(db, sa.select(categories).where(categories.c.slug == slug))
    if category is None:
        raise NotFound()
    permissions.ensure_can_read_category(viewer, category)
    return category


async def topics_in_category(
    db: Database, category_id: int, viewer: CurrentUser | None, page: int, per_page: int
) -> list[Record]:
    """One page of a category: pinned first, then by last activity, with both authors."""
    query = (
        sa.select(
            topics,
            author.c.name.label("author_name"),
            last_poster.c.name.label("last_poster_name"),
        )
        .select_from(
            topics.join(author, author.c.id == topics.c.author_id).outerjoin(
                last_poster, last_poster.c.id == topics.c.last_poster_id
            )
        )
        .where(topics.c.category_id == category_id, permissions.visible_topics(viewer))
        .order_by(topics.c.pinned.desc(), topics.c.last_post_at.desc(), topics.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return await fetch_rows(db, query)


async def count_topics(db: Database, category: Record, viewer: CurrentUser | None) -> int:
    if not permissions.can_see_deleted(viewer):
        return category.topic_count  # the counter kept on the row
    return await db.fetch_val(sa.select(sa.func.count()).where(topics.c.category_id == category.id))


TOPIC_WITH_CATEGORY = sa.select(
    topics,
    categories.c.slug.label("category_slug"),
    categories.c.name.label("category_name"),
    categories.c.staff_only,
    categories.c.staff_topics_only,
).select_from(topics.join(categories, categories.c.id == topics.c.category_id))


TOPIC_BY_ID = Query(TOPIC_WITH_CATEGORY.where(topics.c.id == sa.bindparam("topic_id")))


async def topic_or_404(db: Database, topic_id: int, viewer: CurrentUser | None) -> Record:
    topic = await TOPIC_BY_ID.row(db, topic_id=topic_id)
    if topic is None:
        raise NotFound()
    permissions.ensure_can_read_topic(viewer, topic)
    return topic


def _posts_page(with_deleted: bool) -> Query:
    """One page of posts joined with everything the author block shows: one query. The
    markdown source stays behind: the page shows the HTML rendered on write, and a
    reader's shared fragment keys on these rows."""
    shown = sa.true() if with_deleted else posts.c.deleted_at.is_(None)
    return Query(
        sa.select(
            *(column for column in posts.c if column.name != "body"),
            author.c.name.label("author_name"),
            author.c.title.label("author_title"),
            author.c.role.label("author_role"),
            author.c.post_count.label("author_post_count"),
            author.c.created_at.label("author_since"),
        )
        .select_from(posts.join(author, author.c.id == posts.c.author_id))
        .where(posts.c.topic_id == sa.bindparam("topic_id"), shown)
        .order_by(posts.c.id)
        .limit(sa.bindparam("limit"))
        .offset(sa.bindparam("offset"))
    )


POSTS_PAGE = {with_deleted: _posts_page(with_deleted) for with_deleted in (False, True)}


async def posts_of_topic(
    db: Database, topic_id: int, viewer: CurrentUser | None, page: int, per_page: int
) -> list[Record]:
    return await POSTS_PAGE[permissions.can_see_deleted(viewer)].rows(
        db, topic_id=topic_id, limit=per_page, offset=(page - 1) * per_page
    )


async def count_posts(db: Database, topic: Record, viewer: CurrentUser | None) -> int:
    if not permissions.can_see_deleted(viewer):
        return topic.post_count
    return await db.fetch_val(sa.select(sa.func.count()).where(posts.c.topic_id == topic.id))


async def post_or_404(db: Database, post_id: int, viewer: CurrentUser | None) -> Record:
    post = await db.fetch_one(sa.select(posts).where(posts.c.id == post_id))
    if post is None or (post.deleted_at is not None and not permissions.can_see_deleted(viewer)):
        raise NotFound()
    return post


async def post_position(db: Database, post: Record, viewer: CurrentUser | None) -> int:
    """How many posts the viewer sees up to and including this one: gives its page."""
    return await db.fetch_val(
        sa.select(sa.func.count()).where(
            posts.c.topic_id == post.topic_id,
            posts.c.id <= post.id,
            permissions.visible_posts(viewer),
        )
    )


async def user_or_404(db: Database, user_id: int) -> Record:
    user = await db.fetch_one(
        sa.select(
            users.c.id,
            users.c.name,
            users.c.title,
            users.c.role,
            users.c.post_count,
            users.c.created_at,
        ).where(users.c.id == user_id, users.c.is_active.is_(True))
    )
    if user is None:
        raise NotFound()
    return user


def _posts_by(user_id: int, viewer: CurrentUser | None) -> sa.Select:
    """The posts of `user_id` that `viewer` may read, with their topics."""
    return (
        sa.select(
            posts.c.id,
            posts.c.created_at,
            topics.c.id.label("topic_id"),
            topics.c.title.label("topic_title"),
        )
        .select_from(
            posts.join(topics, topics.c.id == posts.c.topic_id).join(
                categories, categories.c.id == topics.c.category_id
            )
        )
        .where(
            posts.c.author_id == user_id,
            permissions.visible_posts(viewer),
            permissions.visible_topics(viewer),
            permissions.visible_categories(viewer),
        )
    )


async def has_posted_publicly(db: Database, user_id: int) -> bool:
    """Whether a guest can read a post of theirs: only then does a public profile exist,
    so that counting through /u/N names nobody who never wrote in the forum."""
    return await db.fetch_val(_posts_by(user_id, None).limit(1)) is not None


async def recent_posts_by(
    db: Database, user_id: int, viewer: CurrentUser | None, limit: int = 20
) -> list[Record]:
    return await db.fetch_all(_posts_by(user_id, viewer).order_by(posts.c.id.desc()).limit(limit))


# --- writing -----------------------------------------------------------------------------


class FloodWait(Exception):
    """The customer posted less than BOARD_FLOOD_SECONDS ago."""

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def _ensure_no_flood(db: Database, author: CurrentUser, flood_seconds: int) -> None:
    """Checked inside the write transaction, so two quick submissions cannot both pass."""
    if author.is_staff or flood_seconds <= 0:
        return
    last = await db.fetch_val(sa.select(users.c.last_posted_at).where(users.c.id == author.id))
    if last is None:
        return
    remaining = timedelta(seconds=flood_seconds) - (utcnow() - last)
    if remaining > timedelta(0):
        raise FloodWait(int(remaining.total_seconds()) + 1)


async def _insert_post(
    db: Database, topic_id: int, author: CurrentUser, body: str, flood_seconds: int, now: datetime
) -> int:
    await _ensure_no_flood(db, author, flood_seconds)
    author_id = author.id
    post_id = await db.fetch_val(
        posts.insert()
        .values(
            topic_id=topic_id,
            author_id=author_id,
            body=body,
            body_html=render_markdown(body),
            created_at=now,
        )
        .returning(posts.c.id)
    )
    await db.execute(
        users.update()
        .where(users.c.id == author_id)
        .values(post_count=users.c.post_count + 1, last_posted_at=now)
    )
    return post_id


async def add_topic(
    db: Database, category_id: int, author: CurrentUser, title: str, body: str, flood_seconds: int
) -> int:
    async with write_transaction(db):
        return await insert_topic(db, category_id, author, title, body, flood_seconds)


async def insert_topic(
    db: Database, category_id: int, author: CurrentUser, title: str, body: str, flood_seconds: int
) -> int:
    """add_topic inside a write transaction the caller holds (publishing a conversation
    links it in the same one)."""
    author_id = author.id
    now = utcnow()
    topic_id = await db.fetch_val(
        topics.insert()
        .values(
            category_id=category_id,
            title=title,
            author_id=author_id,
            created_at=now,
            last_post_at=now,
            last_poster_id=author_id,
        )
        .returning(topics.c.id)
    )
    post_id = await _insert_post(db, topic_id, author, body, flood_seconds, now)
    await db.execute(
        topics.update()
        .where(topics.c.id == topic_id)
        .values(first_post_id=post_id, last_post_id=post_id, post_count=1)
    )
    await search.queue_post(db, post_id)
    await db.execute(
        categories.update()
        .where(categories.c.id == category_id)
        .values(
            topic_count=categories.c.topic_count + 1,
            post_count=categories.c.post_count + 1,
            last_post_id=post_id,
        )
    )
    await bump_forum_version(db)
    return topic_id


async def add_reply(
    db: Database, topic: Record, author: CurrentUser, body: str, flood_seconds: int
) -> int:
    author_id = author.id
    async with write_transaction(db):
        now = utcnow()
        post_id = await _insert_post(db, topic.id, author, body, flood_seconds, now)
        await db.execute(
            topics.update()
            .where(topics.c.id == topic.id)
            .values(
                post_count=topics.c.post_count + 1,
                last_post_id=post_id,
                last_post_at=now,
                last_poster_id=author_id,
            )
        )
        await db.execute(
            categories.update()
            .where(categories.c.id == topic.category_id)
            .values(post_count=categories.c.post_count + 1, last_post_id=post_id)
        )
        await search.queue_post(db, post_id)
        await bump_forum_version(db)
    return post_id


async def edit_post(
    db: Database, post_id: int, editor_id: int, body: str, title: str | None = None
) -> None:
    async with write_transaction(db):
        await db.execute(
            posts.update()
            .where(posts.c.id == post_id)
            .values(
                body=body, body_html=render_markdown(body), edited_at=utcnow(), edited_by=editor_id
            )
        )
        await search.queue_post(db, post_id)
        if title:
            topic_id = await db.fetch_val(
                topics.update()
                .where(topics.c.first_post_id == post_id)
                .values(title=title)
                .returning(topics.c.id)
            )
            if topic_id is not None:
                await search.queue_topic(db, topic_id)  # the title is in every post's document
        await bump_forum_version(db)


async def _refresh_last_posts(db: Database, topic_id: int, category_ids: set[int]) -> None:
    """Recomputes the derived "last post" pointers after a post left a topic or category."""
    latest = await db.fetch_one(
        sa.select(posts.c.id, posts.c.created_at, posts.c.author_id)
        .where(posts.c.topic_id == topic_id, posts.c.deleted_at.is_(None))
        .order_by(posts.c.id.desc())
        .limit(1)
    )
    if latest is not None:
        await db.execute(
            topics.update()
            .where(topics.c.id == topic_id)
            .values(
                last_post_id=latest.id,
                last_post_at=latest.created_at,
                last_poster_id=latest.author_id,
            )
        )
    for category_id in category_ids:
        newest_topic_post = (
            sa.select(sa.func.max(topics.c.last_post_id))
            .where(topics.c.category_id == category_id, topics.c.deleted_at.is_(None))
            .scalar_subquery()
        )
        await db.execute(
            categories.update()
            .where(categories.c.id == category_id)
            .values(last_post_id=newest_topic_post)
        )


async def soft_delete_post(db: Database, post: Record, topic: Record, staff_id: int) -> None:
    """Marks the post deleted; deleting a topic's first post removes the whole topic."""
    async with write_transaction(db):
        now = utcnow()
        changed = await db.fetch_val(
            posts.update()
            .where(posts.c.id == post.id, posts.c.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by=staff_id)
            .returning(posts.c.id)
        )
        if changed is None:
            return  # already deleted: counters were adjusted then
        await db.execute(
            users.update()
            .where(users.c.id == post.author_id)
            .values(post_count=users.c.post_count - 1)
        )
        if post.id == topic.first_post_id:
            await db.execute(
                topics.update()
                .where(topics.c.id == topic.id)
                .values(deleted_at=now, post_count=topics.c.post_count - 1)
            )
            await db.execute(
                categories.update()
                .where(categories.c.id == topic.category_id)
                .values(
                    topic_count=categories.c.topic_count - 1,
                    post_count=categories.c.post_count - topic.post_count,
                )
            )
        else:
            await db.execute(
                topics.update()
                .where(topics.c.id == topic.id)
                .values(post_count=topics.c.post_count - 1)
            )
            await db.execute(
                categories.update()
                .where(categories.c.id == topic.category_id)
                .values(post_count=categories.c.post_count - 1)
            )
        # A deleted answer is no longer the topic's solution (the index's `solved` too).
        await db.execute(
            topics.update()
            .where(topics.c.id == topic.id, topics.c.solution_post_id == post.id)
            .values(solution_post_id=None)
        )
        await _refresh_last_posts(db, topic.id, {topic.category_id})
        await search.queue_topic(db, topic.id)  # a deleted first post hides every post
        await bump_forum_version(db)


async def set_topic_flags(db: Database, topic_id: int, **flags: bool) -> None:
    async with write_transaction(db):
        await db.execute(topics.update().where(topics.c.id == topic_id).values(**flags))
        await bump_forum_version(db)


async def move_topic(db: Database, topic: Record, target_category_id: int) -> None:
    if target_category_id == topic.category_id:
        return
    async with write_transaction(db):
        await db.execute(
            topics.update().where(topics.c.id == topic.id).values(category_id=target_category_id)
        )
        if topic.deleted_at is None:
            for category_id, sign in ((topic.category_id, -1), (target_category_id, 1)):
                await db.execute(
                    categories.update()
                    .where(categories.c.id == category_id)
                    .values(
                        topic_count=categories.c.topic_count + sign,
                        post_count=categories.c.post_count + sign * topic.post_count,
                    )
                )
        await _refresh_last_posts(db, topic.id, {topic.category_id, target_category_id})
        await search.queue_topic(db, topic.id)  # a staff-only category hides it from search
        await bump_forum_version(db)


async def topic_facts(
    db: Database, topic_ids: list[int], viewer: CurrentUser | None
) -> dict[int, Record]:
    """What a search hit or suggestion shows beside its title, for all of them in one
    query by primary key: category, date, replies, solved. From the database, not the
    index, so a solution just marked shows at once; only topics the viewer may read
    (the index may not know yet that one was deleted or moved to a staff category)."""
    if not topic_ids:
        return {}
    rows = await fetch_rows(
        db,
        sa.select(
            topics.c.id,
            topics.c.created_at,
            topics.c.post_count,
            topics.c.solution_post_id,
            categories.c.name.label("category_name"),
            categories.c.slug.label("category_slug"),
        )
        .select_from(topics.join(categories, categories.c.id == topics.c.category_id))
        .where(
            topics.c.id.in_(topic_ids),
            permissions.visible_topics(viewer),
            permissions.visible_categories(viewer),
        ),
    )
    return {row.id: row for row in rows}


async def category_by_id(db: Database, category_id: int) -> Record | None:
    return await db.fetch_one(sa.select(categories).where(categories.c.id == category_id))
