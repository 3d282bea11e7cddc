"""live_events.audience holds "customers": 9 characters, which SQLite stored in a
VARCHAR(8) and PostgreSQL refuses

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 08:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SQLite rebuilds the table for the change: it must keep AUTOINCREMENT, or event ids
# would be handed out again once the old events are deleted.
KEEP = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("live_events", table_kwargs=KEEP) as table:
        table.alter_column(
            "audience", existing_type=sa.String(8), type_=sa.String(16), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("live_events", table_kwargs=KEEP) as table:
        table.alter_column(
            "audience", existing_type=sa.String(16), type_=sa.String(8), existing_nullable=False
        )
