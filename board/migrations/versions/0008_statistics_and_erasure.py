"""statistics calendar and indexes, erased accounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 18:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_users_created", "users", ["role", "created_at"]),
    ("ix_topics_created", "topics", ["created_at"]),
    ("ix_posts_created", "posts", ["created_at"]),
    (
        "ix_conversations_created",
        "conversations",
        ["kind", "created_at", "status", "first_response_at"],
    ),
    (
        "ix_conversation_events_action",
        "conversation_events",
        ["action", "created_at", "new_value", "old_value", "conversation_id", "actor_id"],
    ),
    ("ix_messages_created", "messages", ["created_at", "conversation_id", "author_id", "internal"]),
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(), nullable=True))
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_table(
        "stats_hours",
        sa.Column("hour", sa.String(length=13), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("local_hour", sa.Integer(), nullable=False),
        sa.Column("open_from", sa.Integer(), nullable=False),
        sa.Column("open_until", sa.Integer(), nullable=False),
        sa.Column("business_before", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_stats_hours")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("stats_hours")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("erased_at")
