"""The database: SQLAlchemy Core tables, held-open connections, write transactions, migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict, namedtuple
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import aiosqlite
import sqlalchemy as sa
from databases import Database
from databases.backends.sqlite import SQLitePool

from board.config import Settings

log = logging.getLogger(__name__)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_number", sa.Integer, unique=True),  # NULL for staff
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # stored lower-cased
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("title", sa.String(60)),  # shown under the name: "Inhaber", "Support"
    sa.Column("role", sa.String(16), nullable=False, server_default="customer"),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("locale", sa.String(8)),  # NULL: follow the browser
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("post_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_posted_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # Customers: what staff know about them, never shown to the customer.
    sa.Column("vip", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    # Staff: the signature under their answers and whether they take new conversations.
    sa.Column("signature", sa.Text, nullable=False, server_default=""),
    sa.Column("accepting", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("last_assigned_at", sa.DateTime),  # round-robin: the longest idle goes next
    # Staff: who takes over their open work when an absence starts (NULL: the rotation),
    # and when they are usually there, in their words ("Mo–Mi vormittags"), for colleagues.
    # Deferred: a copy of the table (migrate-to) may insert a person before their deputy.
    sa.Column(
        "deputy_id", sa.Integer, sa.ForeignKey("users.id", deferrable=True, initially="DEFERRED")
    ),
    sa.Column("availability_note", sa.String(120), nullable=False, server_default=""),
    # Mail: each reply rings at once, a daily digest, or never (announcements respect it;
    # invoices and codes always go out). Staff may also opt into new-conversation mail and
    # the daily summary.
    sa.Column("notify", sa.String(8), nullable=False, server_default="each"),
    sa.Column("notify_new", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("daily_summary", sa.Boolean, nullable=False, server_default=sa.false()),
    # Staff: their own daily summary (the team's figures, their own, the requests waiting
    # too long), on unless they turn it off.
    sa.Column("personal_summary", sa.Boolean, nullable=False, server_default=sa.true()),
    # Set when the person's data was erased: the row stays so that the shop's records (their
    # conversations, invoices, forum posts) keep an author, under a neutral name.
    sa.Column("erased_at", sa.DateTime),
    sa.Index("ix_users_created", "role", "created_at"),
    # The customer list (/staff/customers), by name.
    sa.Index("ix_users_customer_name", "role", "name"),
)

login_tokens = sa.Table(
    "login_tokens",
    metadata,
    # One-time login codes and password reset links, stored as hashes only.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("purpose", sa.String(8), nullable=False),  # code, reset
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),  # wrong codes
    sa.Column("used_at", sa.DateTime),
    sa.Index("ix_login_tokens_user", "user_id", "purpose", "created_at"),
    sa.Index("ix_login_tokens_secret", "secret_hash"),
)

absences = sa.Table(
    "absences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("starts_at", sa.DateTime, nullable=False),
    sa.Column("ends_at", sa.DateTime, nullable=False),
    sa.Column("note", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # Set by the handover job (board/staff/handover.py) in the transaction that moves the
    # person's work: a restart or a second worker finds it done. NULL: not yet started.
    sa.Column("handed_over_at", sa.DateTime),
    sa.Index("ix_absences_user", "user_id", "ends_at"),
    sa.Index("ix_absences_ends", "ends_at"),
    sa.Index("ix_absences_handover", "handed_over_at", "starts_at"),
)

handovers = sa.Table(
    "handovers",
    metadata,
    # One conversation moved away from an absent staff member, for the notice they see
    # when they are back; `to_user_id` NULL: nobody was there to take it.
    sa.Column("id", sa.Integer, primary_key=True),
    # Kept when the absence is removed afterwards (back early): the notice still stands.
    sa.Column("absence_id", sa.Integer, sa.ForeignKey("absences.id", ondelete="SET NULL")),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("to_user_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("dismissed_at", sa.DateTime),
    sa.Index("ix_handovers_user", "user_id", "dismissed_at", "id"),
)

notices = sa.Table(
    "notices",
    metadata,
    # The admin's notice board: "staff" (markdown, on the staff home and the queue) and
    # "banner" (one plain line on the forum and the contact page). Rows made by 0015.
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("body_html", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("updated_at", sa.DateTime),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie value: a copy of the database does not hand out live sessions.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Column("user_agent", sa.String(255)),
)

rate_events = sa.Table(
    "rate_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bucket", sa.String(32), nullable=False),
    sa.Column("key", sa.String(320), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_rate_events_lookup", "bucket", "key", "created_at"),
)

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(80), nullable=False, unique=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("staff_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("staff_topics_only", sa.Boolean, nullable=False, server_default=sa.false()),
    # Counters and the last post are kept on the row, updated with every post.
    sa.Column("topic_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("post_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_post_id", sa.Integer),
)

topics = sa.Table(
    "topics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", sa.DateTime),
    sa.Column("post_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_post_id", sa.Integer),
    sa.Column("last_post_id", sa.Integer),
    sa.Column("last_post_at", sa.DateTime, nullable=False),
    sa.Column("last_poster_id", sa.Integer, sa.ForeignKey("users.id")),
    # The post that answers the question, chosen by staff or the topic's author (NULL:
    # unsolved). No foreign key: SQLite cannot add one to an existing table, and the
    # service (board/forum/solutions.py) checks that it is a visible post of this topic.
    sa.Column("solution_post_id", sa.Integer),
    # The category page: pinned first, then by last activity.
    sa.Index("ix_topics_category_order", "category_id", "pinned", "last_post_at"),
    sa.Index("ix_topics_author", "author_id", "id"),
    sa.Index("ix_topics_created", "created_at"),
)

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("topic_id", sa.Integer, sa.ForeignKey("topics.id"), nullable=False),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),  # rendered once, on write
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("edited_at", sa.DateTime),
    sa.Column("edited_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("deleted_at", sa.DateTime),  # soft delete: staff still see it
    sa.Column("deleted_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Index("ix_posts_topic", "topic_id", "id"),
    sa.Index("ix_posts_author", "author_id", "id"),
    sa.Index("ix_posts_created", "created_at"),
)

# "Was this helpful?" on a topic's solution: one vote per person and post, changeable.
# The primary key serves the counts of a post (post_id first) and the person's own vote.
solution_votes = sa.Table(
    "solution_votes",
    metadata,
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("helpful", sa.Boolean, nullable=False),
    sa.Column("voted_at", sa.DateTime, nullable=False),
    sa.Index("ix_solution_votes_user", "user_id"),  # erasing or exporting a person
)


request_types = sa.Table(
    "request_types",
    metadata,
    # What a request is about ("Bestellung", "Rücksendung"…): the shop's own data, named in
    # the shop's language and shown as stored in every UI language. Never deleted, since
    # conversations keep theirs; a deactivated type is no longer offered.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(60), nullable=False, unique=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

staff_request_types = sa.Table(
    "staff_request_types",
    metadata,
    # A staff member's areas of responsibility: round-robin gives them requests of these
    # types first (board/conversations/workflow.py).
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("type_id", sa.Integer, sa.ForeignKey("request_types.id"), primary_key=True),
    sa.Index("ix_staff_request_types_type", "type_id", "user_id"),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer, nullable=False, unique=True),  # the ticket number, #1042
    sa.Column("kind", sa.String(16), nullable=False, server_default="support"),
    sa.Column("subject", sa.String(400), nullable=False),  # first 100 characters of the text
    sa.Column("subject_cut", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("users.id")),  # NULL: a guest
    sa.Column("guest_name", sa.String(120)),
    sa.Column("guest_email", sa.String(320)),
    # SHA-256 of the guest's secret link token; the token itself is only in the guest's mail.
    sa.Column("guest_token_hash", sa.String(64), unique=True),
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_message_at", sa.DateTime, nullable=False),
    sa.Column("last_customer_message_at", sa.DateTime),
    sa.Column("first_response_at", sa.DateTime),
    # Derived, kept with every message: what lists show without counting.
    sa.Column("message_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_public_message_id", sa.Integer),  # newest message the customer can see
    sa.Column("last_public_author_id", sa.Integer),
    # The customer's own read marker, mirrored here (records.mark_read_up_to keeps it): the
    # unread badge on every page then counts from one index, without a join per conversation.
    sa.Column("customer_read_message_id", sa.Integer),
    # Since when the customer waits for an answer: their first message after the last
    # public staff answer. NULL while nobody waits.
    sa.Column("waiting_since", sa.DateTime),
    sa.Column("vip", sa.Boolean, nullable=False, server_default=sa.false()),  # the customer's
    sa.Column("forum_topic_id", sa.Integer, sa.ForeignKey("topics.id")),  # published as
    # The doorbell: NULL, "rung" (a mail went out; no second one until the customer has
    # opened the conversation) or "digest" (waits for the customer's daily digest).
    sa.Column("bell", sa.String(8)),
    # When the customer was reminded of a pending request (BOARD_PENDING_REMINDER_DAYS);
    # NULL again whenever the status moves, so the next pending period reminds anew.
    sa.Column("reminded_at", sa.DateTime),
    # What the customer said the request is about, and the order it concerns (both optional).
    sa.Column("type_id", sa.Integer, sa.ForeignKey("request_types.id")),
    sa.Column("order_number", sa.String(40)),
    sa.Index("ix_conversations_customer", "customer_id", "last_message_at"),
    # The unread badge: the customer's conversations read from this index alone.
    sa.Index(
        "ix_conversations_customer_unread",
        "customer_id",
        "last_public_message_id",
        "customer_read_message_id",
    ),
    # The customer list counts each customer's requests, not their announcements.
    sa.Index("ix_conversations_customer_kind", "customer_id", "kind", "last_message_at"),
    sa.Index("ix_conversations_guest_email", "guest_email"),
    # The queue: open requests VIP first, then longest waiting; other states by activity.
    sa.Index(
        "ix_conversations_waiting", "kind", "status", sa.text("vip DESC"), "waiting_since", "id"
    ),
    # The queue's default order: the newest waiting first, mine and nobody's (covered).
    sa.Index("ix_conversations_newest", "kind", "status", "waiting_since", "id", "assignee_id"),
    sa.Index("ix_conversations_activity", "kind", "status", "last_message_at"),
    sa.Index("ix_conversations_assignee", "assignee_id", "kind", "status", "waiting_since"),
    # The queue filtered by request type, in the queue's three orders.
    sa.Index(
        "ix_conversations_type_waiting",
        "type_id",
        "kind",
        "status",
        sa.text("vip DESC"),
        "waiting_since",
        "id",
    ),
    sa.Index("ix_conversations_type_activity", "type_id", "kind", "status", "last_message_at"),
    sa.Index(
        "ix_conversations_type_newest",
        "type_id",
        "kind",
        "status",
        "waiting_since",
        "id",
        "assignee_id",
    ),
    # Statistics read the period's conversations from the index alone.
    sa.Index("ix_conversations_created", "kind", "created_at", "status", "first_response_at"),
    # The reminder job finds reminded pending requests without reading the others.
    sa.Index(
        "ix_conversations_reminded",
        "status",
        "reminded_at",
        sqlite_where=sa.text("reminded_at IS NOT NULL"),
        postgresql_where=sa.text("reminded_at IS NOT NULL"),
    ),
    # The statistics' list of a period's requests, in keyset pages by (created_at, id).
    sa.Index("ix_conversations_period", "kind", "created_at", "id"),
    # The daily digest finds its conversations without reading all the others.
    sa.Index(
        "ix_conversations_digest",
        "customer_id",
        sqlite_where=sa.text("bell = 'digest'"),
        postgresql_where=sa.text("bell = 'digest'"),
    ),
)

conversation_events = sa.Table(
    "conversation_events",
    metadata,
    # The status history: who changed what, when. `actor_id` NULL: the guest or the system.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("action", sa.String(16), nullable=False),  # status, assignee, published
    sa.Column("old_value", sa.String(120)),
    sa.Column("new_value", sa.String(120)),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_conversation_events_conversation", "conversation_id", "id"),
    # Statistics: the period's status changes, read from the index alone.
    sa.Index(
        "ix_conversation_events_action",
        "action",
        "created_at",
        "new_value",
        "old_value",
        "conversation_id",
        "actor_id",
    ),
)

canned_replies = sa.Table(
    "canned_replies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shortcut", sa.String(40), nullable=False, unique=True),  # typed as #shortcut
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

blocked_senders = sa.Table(
    "blocked_senders",
    metadata,
    # Guest addresses whose conversation staff marked as spam: /contact refuses them.
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
    sa.Column("blocked_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id")),  # NULL: the guest
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("internal", sa.Boolean, nullable=False, server_default=sa.false()),  # staff notes
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_messages_conversation", "conversation_id", "id"),
    # Statistics: the period's messages without reading their bodies.
    sa.Index("ix_messages_created", "created_at", "conversation_id", "author_id", "internal"),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
    # Repeated from the message so the download's access check is one lookup.
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),  # display name only
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # where the bytes are stored
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_attachments_message", "message_id"),
    sa.Index("ix_attachments_sha256", "sha256"),  # is a stored file still named?
)

read_markers = sa.Table(
    "read_markers",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), primary_key=True),
    sa.Column("last_read_message_id", sa.Integer, nullable=False),
    sa.Column("read_at", sa.DateTime, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # A mail to send: which template, for whom, with which values. Rendered when sent, so a
    # set-based statement can queue an announcement for every customer at once.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("template", sa.String(40), nullable=False),  # templates/mail/<template>.txt
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),  # NULL: a guest
    sa.Column("to_address", sa.String(320), nullable=False),
    sa.Column("to_name", sa.String(120)),
    sa.Column("locale", sa.String(8)),  # NULL: BOARD_LOCALE
    # JSON; emptied once sent, as it may hold a login code or a reset token.
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", sa.DateTime, nullable=False),  # also the mail's Date
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("claim", sa.String(32)),  # the sender round that holds it right now
    sa.Column("sent_at", sa.DateTime),
    sa.Column("failed_at", sa.DateTime),  # given up: refused for good, or too old
    sa.Index(
        "ix_outbox_due",
        "next_attempt_at",
        sqlite_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
    ),
    sa.Index("ix_outbox_claim", "claim"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    # URLs an admin registered to hear of conversation changes (board/webhooks.py).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(500), nullable=False),
    # The signing secret, encrypted with BOARD_SECRET_KEY (a database copy does not sign).
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("removed_at", sa.DateTime),  # kept, with its delivery log, once removed
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    # One POST to one webhook, written in the transaction of the change it tells of and
    # sent by the background task, with retries; also the delivery log admins read.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),  # conversation.created, …
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
    sa.Column("payload", sa.Text, nullable=False),  # the exact JSON body that is signed
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_status", sa.Integer),  # the receiver's HTTP status, NULL: no answer
    sa.Column("last_error", sa.Text),
    sa.Column("claim", sa.String(32)),  # the sender round that holds it right now
    sa.Column("delivered_at", sa.DateTime),
    sa.Column("failed_at", sa.DateTime),  # given up after the last attempt
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        sqlite_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
    ),
    sa.Index("ix_webhook_deliveries_claim", "claim"),
    sa.Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

scheduled_jobs = sa.Table(
    "scheduled_jobs",
    metadata,
    # Daily jobs (staff summary, customer digest): when each last ran, so a restart or a
    # second worker does not run one twice.
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("last_run_at", sa.DateTime, nullable=False),
)

queue_counts = sa.Table(
    "queue_counts",
    metadata,
    # Requests per status, assignee (0: nobody) and request type (0: none), kept by
    # triggers on conversations (migrations 0012, 0014) in the transaction of every write,
    # however it is made: the queue's tabs read a few rows instead of counting 50,000
    # conversations on every view, with or without the type filter.
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("assignee_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.Integer, nullable=False),
)


mail_imports = sa.Table(
    "mail_imports",
    metadata,
    # Every imported mail once: importing the same file again skips what is here.
    sa.Column("source_hash", sa.String(64), primary_key=True),  # of the Message-ID or bytes
    sa.Column("message_id_header", sa.String(998)),  # threads replies by In-Reply-To
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("imported_at", sa.DateTime, nullable=False),
    sa.Index("ix_mail_imports_header", "message_id_header"),
)


search_queue = sa.Table(
    "search_queue",
    metadata,
    # What the search index must look at again, written in the same transaction as the
    # change: a log that every node (search_nodes) reads at its own pace; a row is deleted
    # once every node has indexed it.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_type", sa.String(16), nullable=False),  # post, topic, message, conversation
    sa.Column("doc_id", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # Ids are the nodes' positions: never reused, even once every row was deleted.
    sqlite_autoincrement=True,
)

search_nodes = sa.Table(
    "search_nodes",
    metadata,
    # One row per search index (a machine's <data>/index): how far it has read the queue.
    sa.Column("name", sa.String(255), primary_key=True),  # BOARD_SEARCH_NODE
    # The last search_queue id the index holds; NULL while the node rebuilds (it then
    # holds every row back from pruning).
    sa.Column("position", sa.Integer),
    sa.Column("last_seen", sa.DateTime, nullable=False),
)


live_events = sa.Table(
    "live_events",
    metadata,
    # What open pages learn without reloading (/events), written in the transaction of the
    # change. Every server process reads new rows and hands them to its open streams; a
    # browser that reconnects replays from its Last-Event-ID. Kept for a day.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("audience", sa.String(16), nullable=False),  # user, customers, staff, guest
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),  # audience user
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
    sa.Column("kind", sa.String(16), nullable=False),  # message, notification, queue, typing…
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_live_events_created", "created_at"),
    # Ids are positions in the stream (Last-Event-ID): never reused, even once every older
    # row was deleted.
    sqlite_autoincrement=True,
)

mail_links = sa.Table(
    "mail_links",
    metadata,
    # The signed links in doorbell mail (board/mail_links.py): each opens one conversation
    # for its customer without a password, until it is revoked or older than
    # BOARD_MAIL_LINK_DAYS. The token is signed from the id; nothing secret is stored.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    # Revoking: all of a customer's (password change, /account), all of a conversation's.
    sa.Index("ix_mail_links_user", "user_id", "revoked_at"),
    sa.Index("ix_mail_links_conversation", "conversation_id", "revoked_at"),
    sa.Index("ix_mail_links_created", "created_at"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    # The notification centre: one row per person and thing to know about a conversation
    # (answer, announcement, invoice; for staff: new conversation, assigned to you).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("read_at", sa.DateTime),
    sa.Index("ix_notifications_user", "user_id", "id"),
    sa.Index(
        "ix_notifications_unread",
        "user_id",
        sqlite_where=sa.text("read_at IS NULL"),
        postgresql_where=sa.text("read_at IS NULL"),
    ),
)

stats_hours = sa.Table(
    "stats_hours",
    metadata,
    # The shop's calendar, one row per UTC hour, so that statistics group by the shop's local
    # day, weekday and hour and count business hours in SQL (board/staff/stats.py). Derived
    # from BOARD_TIMEZONE and the business hours, and rebuilt when they change.
    sa.Column("hour", sa.String(13), primary_key=True),  # "2026-11-23 14", UTC
    sa.Column("day", sa.Date, nullable=False),  # local
    sa.Column("weekday", sa.Integer, nullable=False),  # local, Monday = 0
    sa.Column("local_hour", sa.Integer, nullable=False),
    # The seconds of this hour the shop is open: [open_from, open_until), equal when closed.
    sa.Column("open_from", sa.Integer, nullable=False),
    sa.Column("open_until", sa.Integer, nullable=False),
    sa.Column("business_before", sa.Integer, nullable=False),  # open seconds before this hour
    sa.Column("schedule", sa.String(120), nullable=False),  # what the rows were built for
    sqlite_with_rowid=False,  # looked up by `hour` only: the row is the key's leaf
)

stats_days = sa.Table(
    "stats_days",
    metadata,
    # Daily aggregates of the statistics (board/staff/stats_days.py), one row per local day,
    # figure, staff member (0: none), link and bucket: a period sums its days' rows instead
    # of reading every message. `link` makes distinct counts exact over any period: the
    # ordinal of the conversation's previous (or, for solves, next) day with the same fact;
    # `bucket` is the local hour, or the histogram bucket of a duration.
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("metric", sa.String(24), nullable=False),
    sa.Column("staff_id", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("link", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("bucket", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("day", "metric", "staff_id", "link", "bucket"),
    sqlite_with_rowid=False,  # a period reads a range of the key: the rows are its leaves
)

stats_months = sa.Table(
    "stats_months",
    metadata,
    # stats_days summed per calendar month (`month`: its first day), the received requests
    # per hour left out: a long period reads its whole months here, ~5 times fewer rows.
    sa.Column("month", sa.Date, nullable=False),
    sa.Column("metric", sa.String(24), nullable=False),
    sa.Column("staff_id", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("link", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("bucket", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("month", "metric", "staff_id", "link", "bucket"),
    sqlite_with_rowid=False,
)

stats_dirty = sa.Table(
    "stats_dirty",
    metadata,
    # UTC hours whose days' aggregates are stale, written by triggers (migration 0016) in the
    # transaction of every change the statistics count, whichever code makes it; the stats
    # task recomputes those days and deletes the rows it read.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hour", sa.String(13), nullable=False),  # "2026-11-23 14", as stats_hours
    # The stale hours, distinct, without reading a row per change (a bulk write leaves
    # hundreds of thousands); and their rows deleted by hour.
    sa.Index("ix_stats_dirty_hour", "hour"),
)

cache_versions = sa.Table(
    "cache_versions",
    metadata,
    # Bumped in the same transaction as every change to public forum pages; cached guest
    # pages of an older version are stale. A row, so several workers agree on it.
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

# --- connections -------------------------------------------------------------------------

SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    # How long a writer waits for another one before "database is locked". SQLite lets
    # waiters poll in turns that are not fair, and a transaction lasts as many event-loop
    # turns as it has statements: with two workers under load a writer waited past 5 s
    # (tests/test_faults.py). Under overload a request should be slow, not fail.
    "PRAGMA busy_timeout = 30000",
    # WAL (set in migrate) with NORMAL: a killed process loses no committed transaction;
    # only a power cut may lose the last ones, never the file's integrity.
    "PRAGMA synchronous = NORMAL",
)


class HeldSQLitePool(SQLitePool):
    """Keeps aiosqlite connections open between queries.

    `databases` opens a new connection (and thread) for every query outside an explicit
    connection, which costs about 1 ms per query and loses per-connection PRAGMAs
    (DESIGN.md). This pool opens up to `size` connections, sets the PRAGMAs once per
    connection and hands them out again.
    """

    def __init__(self, url, size: int, **options) -> None:
        super().__init__(url, **options)
        self._size = size
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._opened: list[aiosqlite.Connection] = []
        self._opening: set[asyncio.Task] = set()
        self._reader: sqlite3.Connection | None = None
        self.on_statement: Callable[[str], None] | None = None

    async def acquire(self) -> aiosqlite.Connection:
        if self._idle.empty() and len(self._opened) + len(self._opening) < self._size:
            # Opened in a task of its own: when the caller is cancelled midway (a background
            # worker at shutdown), the connection still lands in the pool and gets closed.
            task = asyncio.ensure_future(self._open())
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                task.add_done_callback(self._return_if_opened)
                raise
        return await self._idle.get()

    async def _open(self) -> aiosqlite.Connection:
        connection = await super().acquire()
        self._opened.append(connection)
        for pragma in SQLITE_PRAGMAS:
            await connection.execute(pragma)
        await connection.set_trace_callback(self._trace)
        return connection

    def _return_if_opened(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            self._idle.put_nowait(task.result())

    async def release(self, connection: aiosqlite.Connection) -> None:
        if connection.in_transaction:  # a failed request must not leave a write lock behind
            await connection.rollback()
        self._idle.put_nowait(connection)

    def _trace(self, statement: str) -> None:
        if self.on_statement is not None:
            self.on_statement(statement)

    def read(self, sql: str, args: list) -> list:
        """A short indexed read on the event loop's own thread (Query, outside a write
        transaction). Handing a query to aiosqlite's thread and back costs more than
        the query: about 0.3 ms against 0.05 ms (DESIGN.md, the ceiling's /db-sync).
        WAL lets this reader see every committed write without waiting for writers."""
        if self._reader is None:
            reader = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
            reader.execute("PRAGMA busy_timeout = 30000")
            reader.execute("PRAGMA query_only = ON")  # it only ever reads
            reader.set_trace_callback(self._trace)
            self._reader = reader
        return self._reader.execute(sql, args).fetchall()

    async def close(self) -> None:
        if self._opening:
            await asyncio.gather(*self._opening, return_exceptions=True)
        for connection in self._opened:
            await connection.close()
        self._opened.clear()
        self._idle = asyncio.Queue()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


async def _undo_open_transaction(connection) -> None:
    """What asyncpg does to a connection coming back to the pool, in place of its default.

    The default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release, and `databases` releases after every statement outside a
    transaction: a second round trip for each query. This application sets no session
    state, takes no session advisory locks and listens only on broadcaster's own
    connection; a transaction left open is all there is to undo.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


def make_database(settings: Settings) -> Database:
    if settings.is_sqlite:
        database = Database(settings.database_url)
        backend = database._backend
        backend._pool = HeldSQLitePool(backend._database_url, settings.db_pool_size)
        return database
    return Database(settings.database_url, reset=_undo_open_transaction)


# How long shutdown waits for PostgreSQL connections still checked out.
CLOSE_GRACE_SECONDS = 5


async def close_database(database: Database) -> None:
    pool = getattr(database._backend, "_pool", None)
    if isinstance(pool, HeldSQLitePool):
        await pool.close()
        await database.disconnect()
        return
    # asyncpg's Pool.close waits until every connection is back, and one that a task
    # cancelled at shutdown never gave back would hold it forever (`databases` releases
    # a transaction's connection only after a successful ROLLBACK). asyncpg's advice:
    # bound close() with wait_for, on which it terminates the connections left.
    try:
        await asyncio.wait_for(database.disconnect(), CLOSE_GRACE_SECONDS)
    except TimeoutError:
        log.warning("closed the database pool with connections still checked out")


def statement_listener(database: Database, callback: Callable[[str], None] | None) -> None:
    """Calls `callback` with every SQL statement the pool's connections run from now on;
    None stops (tests count queries with it)."""
    pool = database._backend._pool
    if isinstance(pool, HeldSQLitePool):
        pool.on_statement = callback
        return
    # asyncpg opens the pool's connections when it starts (min_size and max_size are
    # both 10 unless the URL says otherwise), so each gets the logger here.
    connections = [holder._con for holder in pool._holders if holder._con is not None]
    previous = getattr(database, "_statement_logger", None)
    for connection in connections:
        if previous is not None:
            connection.remove_query_logger(previous)
    database._statement_logger = None
    if callback is not None:
        database._statement_logger = lambda logged: callback(logged.query)
        for connection in connections:
            connection.add_query_logger(database._statement_logger)


@asynccontextmanager
async def write_transaction(database: Database) -> AsyncIterator[None]:
    """A write transaction that takes SQLite's write lock up front.

    A plain BEGIN starts as a reader and fails with "database is locked" when it later
    needs to write while another connection writes; BEGIN IMMEDIATE waits (busy_timeout)
    for the lock instead.
    """
    if database.url.dialect != "sqlite":
        async with _postgresql_transaction(database):
            yield
        return
    async with database.connection() as connection:
        await connection.execute("BEGIN IMMEDIATE")
        writing = _in_write_transaction.set(True)  # its reads must see its own writes
        try:
            yield
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
        finally:
            _in_write_transaction.reset(writing)
        await connection.execute("COMMIT")


# Inside a write transaction, Query reads through the transaction's connection.
_in_write_transaction: ContextVar[bool] = ContextVar("in_write_transaction", default=False)


# Transaction-level advisory locks on PostgreSQL, one key per purpose. SQLite's BEGIN
# IMMEDIATE admits one write transaction at a time; where the code relies on that (the
# highest number plus one; "build it unless somebody has"), PostgreSQL transactions take
# the purpose's lock first and hold it until they end. Ticket and customer numbers stay
# in order without gaps, which a sequence would not promise after a rollback.
ADVISORY_LOCKS = {
    "ticket numbers": 1,
    "customer numbers": 2,
    "stats calendar": 3,
    "flood": 4,
    "stats days": 5,
}


async def one_at_a_time(db: Database, purpose: str, key: str | None = None) -> None:
    """Inside write_transaction, before the reads that decide what it writes. With a
    `key`, only transactions of the same purpose and key wait for each other."""
    if db.url.dialect != "postgresql":
        return
    if key is None:
        lock = sa.func.pg_advisory_xact_lock(ADVISORY_LOCKS[purpose])
    else:
        lock = sa.func.pg_advisory_xact_lock(ADVISORY_LOCKS[purpose], sa.func.hashtext(key))
    await db.fetch_val(sa.select(lock))


def one_at_a_time_sync(connection: sa.Connection, purpose: str) -> None:
    """one_at_a_time for commands on a synchronous connection (import-mail)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCKS[purpose])))


@asynccontextmanager
async def _postgresql_transaction(database: Database) -> AsyncIterator[None]:
    """`database.transaction()`, but what interrupted the block is what comes out.

    Cancelled in the middle of a query (a background task at shutdown), asyncpg may
    refuse the ROLLBACK while it cancels that query ("another operation is in
    progress"), and `databases` would raise that refusal in place of the CancelledError:
    the task's `except Exception` would take it for a failed round and run on, and
    shutdown would wait for it. The connection goes back to the pool either way; asyncpg
    resets it there (ROLLBACK) or closes it.
    """
    async with database.connection() as connection:
        holds = connection._connection_counter
        transaction = connection.transaction()
        try:
            await transaction.start()
            try:
                yield
            except BaseException:
                with suppress(Exception):
                    await transaction.rollback()
                raise
            await transaction.commit()
        finally:
            # start() takes a second hold on the connection and commit() or rollback()
            # gives it back; interrupted in between (cancelled during BEGIN or COMMIT, a
            # refused ROLLBACK), it stays, the connection never goes back to the pool,
            # and shutdown waited for it.
            if connection._connection_counter > holds:
                await connection.__aexit__(None, None, None)


# --- reads on every page view -------------------------------------------------------------


class _Prepared(NamedTuple):
    compiled: sa.engine.Compiled
    row_type: type
    converting: tuple  # (column index, result processor) of the columns that have one
    expanding: bool  # an IN list whose length varies: left to `databases`


# Compiled statements by their shape: the code has a fixed number of shapes (an IN list
# is one, whatever its length); bounded all the same, the least recently used go first.
_prepared: OrderedDict[tuple, _Prepared] = OrderedDict()
PREPARED_MAX = 512


def _prepare(statement: sa.Select, dialect, cache_key) -> _Prepared:
    # Compiled with its cache key, so later statements of the same shape hand in their
    # own values (construct_params(extracted_parameters=...)), as SQLAlchemy's engine does.
    compiled = (
        dialect.statement_compiler(dialect, statement, cache_key=cache_key)
        if cache_key is not None
        # A Query's IN lists are constants (the staff roles): written into its SQL once.
        else statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    )
    columns = compiled._result_columns
    processors = tuple(column[3]._cached_result_processor(dialect, None) for column in columns)
    return _Prepared(
        compiled=compiled,
        row_type=namedtuple("Row", [column[0] for column in columns], rename=True),
        converting=tuple(
            (index, convert) for index, convert in enumerate(processors) if convert is not None
        ),
        expanding="POSTCOMPILE" in compiled.string,
    )


async def fetch_rows(database: Database, statement: sa.Select) -> list:
    """`database.fetch_all` for the queries every page view runs: short, indexed reads
    (on SQLite, outside a write transaction, on the event loop's thread: HeldSQLitePool.read).
    A query that may scan (a search the index could not answer) uses `database.fetch_all`.

    `databases` compiles each statement anew and wraps rows in Records whose attribute
    access runs type processors every time: 1.4 ms for a page of 20 posts, where the
    query itself takes 0.4 ms. Here the compiled SQL is cached by SQLAlchemy's statement
    cache key and rows are named tuples, converted once, with the same attribute names.
    """
    if database.url.dialect != "sqlite":
        return await database.fetch_all(statement)
    dialect = database._backend._dialect
    cache_key = statement._generate_cache_key()
    prepared = _prepared.get(cache_key.key)
    if prepared is None:
        prepared = _prepared[cache_key.key] = _prepare(statement, dialect, cache_key)
        if len(_prepared) > PREPARED_MAX:
            _prepared.popitem(last=False)
    else:
        _prepared.move_to_end(cache_key.key)
    if prepared.expanding:
        return await database.fetch_all(statement)
    values = prepared.compiled.construct_params(extracted_parameters=cache_key.bindparams)
    return await _execute(database, prepared, values)


class Query:
    """A SELECT built once, at import, with `sa.bindparam` placeholders for what varies.

    Building a statement and computing its cache key cost more than running it on a held
    SQLite connection (0.1–0.3 ms each, several per page). A Query is compiled once per
    database dialect and then only fed its values: `await USER_BY_ID.rows(db, id=5)`.
    """

    def __init__(self, statement: sa.Select) -> None:
        self.statement = statement
        self._prepared: _Prepared | None = None
        self._literals: dict[str, Any] = {}  # values written into the statement (0, 'open')

    async def rows(self, database: Database, **params: Any) -> list:
        if database.url.dialect != "sqlite":
            return await database.fetch_all(self.statement.params(**params))
        prepared = self._prepared
        if prepared is None:
            dialect = database._backend._dialect
            prepared = self._prepared = _prepare(self.statement, dialect, None)
            # The values written into the statement (0, 'open', the IN lists), without
            # the placeholders that each call fills.
            self._literals = prepared.compiled.construct_params(_check=False)
        return await _execute(database, prepared, {**self._literals, **params})

    async def row(self, database: Database, **params: Any):
        found = await self.rows(database, **params)
        return found[0] if found else None

    async def value(self, database: Database, **params: Any):
        found = await self.row(database, **params)
        return found[0] if found is not None else None


async def _execute(database: Database, prepared: _Prepared, values: dict[str, Any]) -> list:
    """Runs compiled SQLite SQL with `values`: on the loop's thread through the held reader
    (outside a write transaction), else in one trip to aiosqlite's thread, not three
    (execute, fetchall, close). Rows come back as named tuples, converted once."""
    compiled = prepared.compiled
    processors = compiled._bind_processors
    args = [
        processors[name](values[name]) if name in processors else values[name]
        for name in compiled.positiontup or ()
    ]
    pool = database._backend._pool
    if isinstance(pool, HeldSQLitePool) and not _in_write_transaction.get():
        raw_rows = pool.read(compiled.string, args)
    else:
        async with database.connection() as connection:
            raw_rows = await connection.raw_connection.execute_fetchall(compiled.string, args)
    make = prepared.row_type._make
    converting = prepared.converting
    if not converting:
        return [make(row) for row in raw_rows]
    rows = []
    # Only the columns that need it (the times: four of a post's fifteen) are touched; a
    # generator over every column cost 2 µs a row, a twentieth of a topic page.
    for raw in raw_rows:
        values = list(raw)
        for index, convert in converting:
            values[index] = convert(values[index])
        rows.append(make(values))
    return rows


def as_dict(row) -> dict:
    """A row of fetch_rows or Query (a named tuple on SQLite, a Record elsewhere) as a dict."""
    return row._asdict() if hasattr(row, "_asdict") else dict(row._mapping)


async def fetch_row(database: Database, statement: sa.Select):
    rows = await fetch_rows(database, statement)
    return rows[0] if rows else None


async def fetch_value(database: Database, statement: sa.Select):
    row = await fetch_row(database, statement)
    return row[0] if row is not None else None


# --- schema ------------------------------------------------------------------------------

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sync_url(settings: Settings) -> str:
    """The URL for synchronous SQLAlchemy (migrations, commands): PostgreSQL through
    psycopg 3, named so that no SQLAlchemy version falls back to psycopg2."""
    return psycopg_url(settings.database_url)


def psycopg_url(url: str) -> str:
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def alembic_config(settings: Settings):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sync_url(settings).replace("%", "%%"))
    return config


def migrate(settings: Settings) -> None:
    """Brings the schema to the newest migration; safe to run on every start."""
    from alembic import command

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_sqlite:
        engine = sa.create_engine(sync_url(settings))
        with engine.connect() as connection:
            # WAL is a property of the file: readers never wait for the writer.
            connection.exec_driver_sql("PRAGMA journal_mode = WAL")
        engine.dispose()
    command.upgrade(alembic_config(settings), "head")


def sync_engine(settings: Settings) -> sa.Engine:
    """A synchronous engine for the command line (init, demo): same tables, same PRAGMAs."""
    engine = sa.create_engine(sync_url(settings))
    if settings.is_sqlite:

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            for pragma in SQLITE_PRAGMAS:
                dbapi_connection.execute(pragma)

    return engine
