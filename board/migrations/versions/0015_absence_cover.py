"""absence cover: a deputy and an availability note per staff member, the handover job's
mark on each absence and its record of moved conversations; the admin's notice board

Revision ID: 0015
Revises: 0020
Create Date: 2026-12-06 12:30:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("deputy_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("availability_note", sa.String(length=120), server_default="", nullable=False)
        )
        batch.create_foreign_key(
            "fk_users_deputy_id_users",
            "users",
            ["deputy_id"],
            ["id"],
            deferrable=True,
            initially="DEFERRED",
        )
    # Absences that already began were dealt with by hand before this job existed: only
    # the ones still to come are handed over.
    op.add_column("absences", sa.Column("handed_over_at", sa.DateTime(), nullable=True))
    op.get_bind().execute(
        sa.text("UPDATE absences SET handed_over_at = starts_at WHERE starts_at <= :now"),
        {"now": datetime.now(UTC).replace(tzinfo=None)},
    )
    op.create_index("ix_absences_handover", "absences", ["handed_over_at", "starts_at"])
    op.create_table(
        "handovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("absence_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("to_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["absence_id"],
            ["absences.id"],
            name=op.f("fk_handovers_absence_id_absences"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_handovers_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["to_user_id"], ["users.id"], name=op.f("fk_handovers_to_user_id_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_handovers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handovers")),
    )
    op.create_index("ix_handovers_user", "handovers", ["user_id", "dismissed_at", "id"])
    table = op.create_table(
        "notices",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("body_html", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_notices_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notices")),
    )
    op.bulk_insert(
        table,
        [
            {"name": "staff", "body": "", "body_html": ""},
            {"name": "banner", "body": "", "body_html": ""},
        ],
    )


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_index("ix_handovers_user", table_name="handovers")
    op.drop_table("handovers")
    op.drop_index("ix_absences_handover", table_name="absences")
    with op.batch_alter_table("absences") as batch:
        batch.drop_column("handed_over_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("fk_users_deputy_id_users", type_="foreignkey")
        batch.drop_column("availability_note")
        batch.drop_column("deputy_id")
