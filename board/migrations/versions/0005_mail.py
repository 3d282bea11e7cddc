"""mail: templated outbox, doorbell state, notification settings, one-time tokens, imports

The outbox is created anew: rows now name a template and its values instead of a rendered
text. Version 0004 never left development, so no deployed outbox holds unsent mail.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 11:39:16.816712

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "sent_at IS NULL AND failed_at IS NULL"


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("to_name", sa.String(length=120), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_outbox_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_claim", ["claim"], unique=False)
        batch_op.create_index(
            "ix_outbox_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )


def _create_old_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("to_name", sa.String(length=120), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_pending", ["sent_at", "next_attempt_at"], unique=False)


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduled_jobs")),
    )
    op.create_table(
        "login_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_login_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_tokens")),
    )
    with op.batch_alter_table("login_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_login_tokens_secret", ["secret_hash"], unique=False)
        batch_op.create_index(
            "ix_login_tokens_user", ["user_id", "purpose", "created_at"], unique=False
        )

    op.create_table(
        "mail_imports",
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("message_id_header", sa.String(length=998), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_mail_imports_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_mail_imports_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("source_hash", name=op.f("pk_mail_imports")),
    )
    with op.batch_alter_table("mail_imports", schema=None) as batch_op:
        batch_op.create_index("ix_mail_imports_header", ["message_id_header"], unique=False)

    # A plain ADD COLUMN: the table is not rebuilt, so the expression index stays.
    op.add_column("conversations", sa.Column("bell", sa.String(length=8), nullable=True))
    op.create_index(
        "ix_conversations_digest",
        "conversations",
        ["customer_id"],
        unique=False,
        sqlite_where=sa.text("bell = 'digest'"),
        postgresql_where=sa.text("bell = 'digest'"),
    )
    op.add_column(
        "users", sa.Column("notify", sa.String(length=8), server_default="each", nullable=False)
    )
    op.add_column(
        "users", sa.Column("notify_new", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "users",
        sa.Column("daily_summary", sa.Boolean(), server_default=sa.false(), nullable=False),
    )

    op.drop_table("outbox")
    _create_outbox()


def downgrade() -> None:
    op.drop_table("outbox")
    _create_old_outbox()
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("daily_summary")
        batch_op.drop_column("notify_new")
        batch_op.drop_column("notify")
    op.drop_index("ix_conversations_digest", table_name="conversations")
    op.drop_column("conversations", "bell")
    op.drop_table("mail_imports")
    op.drop_table("login_tokens")
    op.drop_table("scheduled_jobs")
