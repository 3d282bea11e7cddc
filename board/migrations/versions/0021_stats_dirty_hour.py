"""the stale hours of the statistics read by hour: after a bulk write (the demo, an import)
stats_dirty holds a row per change, hundreds of thousands, and each round of the stats task
read them all to find a few stale days

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-06 15:40:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0021"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_stats_dirty_hour", "stats_dirty", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_stats_dirty_hour", table_name="stats_dirty")
