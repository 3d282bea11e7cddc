"""Who may see and do what: every access rule of the product lives here.

`ensure_can_*` raise for one object (a private thing is a 404, never a 403 that confirms
it exists); `can_*` answer the same question for templates; `visible_*` return the
where-clause that list queries use.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from board.db import categories, conversations, messages, posts, topics
from board.errors import NotAllowed, NotFound
from board.security import CurrentUser

Row = Any  # a database record with the columns the rule reads


def is_staff(user: CurrentUser | None) -> bool:
    return user is not None and user.is_staff


# --- staff -------------------------------------------------------------------------------


def can_see_staff_emails(user: CurrentUser | None) -> bool:
    """Staff members' email addresses are account data: admins manage the accounts, the
    other agents work with names."""
    return user is not None and user.is_admin


# --- forum -------------------------------------------------------------------------------


def visible_categories(user: CurrentUser | None) -> sa.ColumnElement[bool]:
    return sa.true() if is_staff(user) else categories.c.staff_only.is_(False)


def visible_topics(user: CurrentUser | None) -> sa.ColumnElement[bool]:
    return sa.true() if is_staff(user) else topics.c.deleted_at.is_(None)


def visible_posts(user: CurrentUser | None) -> sa.ColumnElement[bool]:
    return sa.true() if is_staff(user) else posts.c.deleted_at.is_(None)


def can_read_category(user: CurrentUser | None, category: Row) -> bool:
    return is_staff(user) or not category.staff_only


def ensure_can_read_category(user: CurrentUser | None, category: Row) -> None:
    if not can_read_category(user, category):
        raise NotFound()


def can_read_topic(user: CurrentUser | None, topic: Row) -> bool:
    """`topic` carries its category's `staff_only` flag (queries join it)."""
    if is_staff(user):
        return True
    return not topic.staff_only and topic.deleted_at is None


def ensure_can_read_topic(user: CurrentUser | None, topic: Row) -> None:
    if not can_read_topic(user, topic):
        raise NotFound()


def can_start_topic(user: CurrentUser | None, category: Row) -> bool:
    if user is None or not can_read_category(user, category):
        return False
    return is_staff(user) or not category.staff_topics_only


def can_reply(user: CurrentUser | None, topic: Row) -> bool:
    if user is None or not can_read_topic(user, topic):
        return False
    return not topic.locked or is_staff(user)


def can_moderate(user: CurrentUser | None) -> bool:
    return is_staff(user)


def ensure_can_moderate(user: CurrentUser | None) -> None:
    if not can_moderate(user):
        raise NotAllowed()


def can_edit_post(user: CurrentUser | None, post: Row, topic: Row) -> bool:
    if user is None:
        return False
    if is_staff(user):
        return True
    # Authors edit their own posts while the topic is open and the post is not removed.
    return post.author_id == user.id and not topic.locked and post.deleted_at is None


def can_delete_post(user: CurrentUser | None) -> bool:
    return is_staff(user)


def can_see_deleted(user: CurrentUser | None) -> bool:
    return is_staff(user)


def can_mark_solution(user: CurrentUser | None, topic: Row) -> bool:
    """Staff choose a topic's solution, also in a locked topic (they close a thread with
    its answer); the topic's author while it is open. Never on someone else's topic."""
    if user is None or not can_read_topic(user, topic):
        return False
    return is_staff(user) or (topic.author_id == user.id and not topic.locked)


def can_vote_on_solution(user: CurrentUser | None, solution: Row) -> bool:
    """Every logged-in reader rates a solution, but for whoever wrote it."""
    return user is not None and solution.author_id != user.id


def can_see_solution_votes(user: CurrentUser | None) -> bool:
    """The counts are for the team, to see which answers help; readers see their own vote."""
    return is_staff(user)


# --- conversations -----------------------------------------------------------------------


def visible_conversations(user: CurrentUser | None) -> sa.ColumnElement[bool]:
    """Staff see every conversation; a customer only their own; nobody else any."""
    if is_staff(user):
        return sa.true()
    if user is None:
        return sa.false()
    return conversations.c.customer_id == user.id


def visible_messages(user: CurrentUser | None) -> sa.ColumnElement[bool]:
    """Internal notes are for staff: customer pages, guest links and mails never show them."""
    return sa.true() if is_staff(user) else messages.c.internal.is_(False)


def can_see_conversation(user: CurrentUser | None, conversation: Row) -> bool:
    if user is None:
        return False
    return is_staff(user) or conversation.customer_id == user.id


def ensure_can_see_conversation(user: CurrentUser | None, conversation: Row) -> None:
    if not can_see_conversation(user, conversation):
        raise NotFound()


def can_reply_to_conversation(user: CurrentUser | None, conversation: Row) -> bool:
    """Only requests take replies: announcements and invoice notices are sent from the shop
    (a question about an invoice is a new request, which reaches the queue); spam takes
    none either."""
    if not can_see_conversation(user, conversation):
        return False
    return conversation.kind == "support" and (is_staff(user) or conversation.status != "spam")


def can_mark_done(user: CurrentUser | None, conversation: Row) -> bool:
    """A customer closes their own request while it is still open or waits for them;
    writing again reopens it. Staff set statuses from the queue."""
    return (
        user is not None
        and not is_staff(user)
        and conversation.customer_id == user.id
        and conversation.kind == "support"
        and conversation.status in ("open", "pending")
    )


def guest_can_reply(conversation: Row) -> bool:
    return conversation.status != "spam"


def customer_may_join(conversation: Row, user: CurrentUser) -> bool:
    """A guest conversation may move into the inbox of the customer account with its
    address; never into a staff account, never once it belongs to an account."""
    return (
        conversation.customer_id is None
        and user.role == "customer"
        and (conversation.guest_email or "").lower() == user.email.lower()
    )
