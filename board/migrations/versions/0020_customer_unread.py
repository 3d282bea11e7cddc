"""the customer's read marker mirrored on each conversation: the unread badge, shown on
every page a customer opens, counts from one index instead of joining every conversation
to its read marker; the queue's default order (newest waiting first) read from an index

Revision ID: 0020
Revises: 0013
Create Date: 2026-12-06 12:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0020"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("customer_read_message_id", sa.Integer()))
    op.get_bind().execute(
        sa.text(
            "UPDATE conversations SET customer_read_message_id = ("
            " SELECT last_read_message_id FROM read_markers"
            " WHERE read_markers.user_id = conversations.customer_id"
            " AND read_markers.conversation_id = conversations.id)"
            " WHERE customer_id IS NOT NULL"
        )
    )
    op.create_index(
        "ix_conversations_customer_unread",
        "conversations",
        ["customer_id", "last_public_message_id", "customer_read_message_id"],
    )

    op.create_index(
        "ix_conversations_newest",
        "conversations",
        ["kind", "status", "waiting_since", "id", "assignee_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_newest", table_name="conversations")
    op.drop_index("ix_conversations_customer_unread", table_name="conversations")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("customer_read_message_id")
