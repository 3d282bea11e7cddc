"""mail links: signed links in doorbell mail that open one conversation without a password

Revision ID: 0019
Revises: 0014
Create Date: 2026-12-06 12:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0019"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime),
    )
    op.create_index("ix_mail_links_user", "mail_links", ["user_id", "revoked_at"])
    op.create_index("ix_mail_links_conversation", "mail_links", ["conversation_id", "revoked_at"])
    op.create_index("ix_mail_links_created", "mail_links", ["created_at"])


def downgrade() -> None:
    op.drop_table("mail_links")
