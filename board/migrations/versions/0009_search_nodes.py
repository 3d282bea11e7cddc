"""search nodes: the queue becomes a log every search index reads at its own pace

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 01:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_nodes",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_search_nodes")),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Queue ids are now positions: SQLite would hand out an id again once every row
        # was deleted, unless the table says AUTOINCREMENT (PostgreSQL's sequence never does).
        with op.batch_alter_table(
            "search_queue", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "search_queue", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
    op.drop_table("search_nodes")
