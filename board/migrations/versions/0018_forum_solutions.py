"""forum solutions: a topic's marked solution and "was this helpful?" votes on it;
topics indexed again, now with whether they are solved

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-06 12:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("topics", sa.Column("solution_post_id", sa.Integer))
    op.create_table(
        "solution_votes",
        sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("helpful", sa.Boolean, nullable=False),
        sa.Column("voted_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("post_id", "user_id", name="pk_solution_votes"),
    )
    op.create_index("ix_solution_votes_user", "solution_votes", ["user_id"])
    # No topic is solved yet, so the stored documents are right but for the new `solved`
    # field: the index's layout changes, and every node rebuilds it at start
    # (indexing.index_is_usable compares the schema's fields).


def downgrade() -> None:
    op.drop_index("ix_solution_votes_user", table_name="solution_votes")
    op.drop_table("solution_votes")
    with op.batch_alter_table("topics") as batch:
        batch.drop_column("solution_post_id")
