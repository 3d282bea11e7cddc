"""customer list: customers by name, and each customer's requests counted from an index;
conversations indexed again, now with their customer's name, email and number for staff

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 09:00:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_users_customer_name", "users", ["role", "name"])
    op.create_index(
        "ix_conversations_customer_kind",
        "conversations",
        ["customer_id", "kind", "last_message_at"],
    )
    # Every search node indexes the conversations again in the background (the queue is
    # the log every node reads): staff then find them by who wrote them.
    op.get_bind().execute(
        sa.text(
            "INSERT INTO search_queue (doc_type, doc_id, created_at) "
            "SELECT 'conversation', id, :now FROM conversations ORDER BY id"
        ),
        {"now": datetime.now(UTC).replace(tzinfo=None)},
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_customer_kind", table_name="conversations")
    op.drop_index("ix_users_customer_name", table_name="users")
