"""request types and order numbers: the shop's types of request (four to start with),
each conversation's type and order number, staff's areas of responsibility, the queue
filtered by type, and the queue counts kept per type as well

Revision ID: 0014
Revises: 0017
Create Date: 2026-12-06 12:30:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The shop's own words: stored as they are and shown so in every UI language.
DEFAULT_TYPES = ("Bestellung", "Rücksendung", "Rechnung", "Technik")

# As in 0012, with the request type as a third key (0: none). A count that falls to 0 goes.
SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER queue_counts_insert AFTER INSERT ON conversations
    WHEN NEW.kind = 'support' BEGIN
        INSERT INTO queue_counts (status, assignee_id, type_id, n)
        VALUES (NEW.status, coalesce(NEW.assignee_id, 0), coalesce(NEW.type_id, 0), 1)
        ON CONFLICT (status, assignee_id, type_id) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER queue_counts_delete AFTER DELETE ON conversations
    WHEN OLD.kind = 'support' BEGIN
        UPDATE queue_counts SET n = n - 1
        WHERE status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0)
            AND type_id = coalesce(OLD.type_id, 0);
        DELETE FROM queue_counts WHERE n = 0;
    END
    """,
    """
    CREATE TRIGGER queue_counts_update
    AFTER UPDATE OF status, assignee_id, kind, type_id ON conversations
    WHEN OLD.status IS NOT NEW.status OR OLD.assignee_id IS NOT NEW.assignee_id
        OR OLD.kind IS NOT NEW.kind OR OLD.type_id IS NOT NEW.type_id
    BEGIN
        UPDATE queue_counts SET n = n - 1
        WHERE OLD.kind = 'support'
            AND status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0)
            AND type_id = coalesce(OLD.type_id, 0);
        DELETE FROM queue_counts WHERE n = 0;
        INSERT INTO queue_counts (status, assignee_id, type_id, n)
        SELECT NEW.status, coalesce(NEW.assignee_id, 0), coalesce(NEW.type_id, 0), 1
        WHERE NEW.kind = 'support'
        ON CONFLICT (status, assignee_id, type_id) DO UPDATE SET n = n + 1;
    END
    """,
)

POSTGRESQL_TRIGGERS = (
    """
    CREATE OR REPLACE FUNCTION queue_counts_keep() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.kind = 'support' THEN
            UPDATE queue_counts SET n = n - 1
            WHERE status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0)
                AND type_id = coalesce(OLD.type_id, 0);
            DELETE FROM queue_counts WHERE n = 0;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.kind = 'support' THEN
            INSERT INTO queue_counts (status, assignee_id, type_id, n)
            VALUES (NEW.status, coalesce(NEW.assignee_id, 0), coalesce(NEW.type_id, 0), 1)
            ON CONFLICT (status, assignee_id, type_id) DO UPDATE SET n = queue_counts.n + 1;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER queue_counts_insert_delete AFTER INSERT OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION queue_counts_keep()
    """,
    """
    CREATE TRIGGER queue_counts_update
    AFTER UPDATE OF status, assignee_id, kind, type_id ON conversations
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.type_id IS DISTINCT FROM NEW.type_id)
    EXECUTE FUNCTION queue_counts_keep()
    """,
)


def _drop_queue_count_triggers(postgresql: bool) -> None:
    if postgresql:
        op.execute("DROP TRIGGER queue_counts_update ON conversations")
        op.execute("DROP TRIGGER queue_counts_insert_delete ON conversations")
        op.execute("DROP FUNCTION queue_counts_keep()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER queue_counts_{name}")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    types = op.create_table(
        "request_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_types")),
        sa.UniqueConstraint("name", name=op.f("uq_request_types_name")),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(
        types,
        [
            {"name": name, "position": position, "is_active": True, "created_at": now}
            for position, name in enumerate(DEFAULT_TYPES)
        ],
    )
    op.create_table(
        "staff_request_types",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["type_id"],
            ["request_types.id"],
            name=op.f("fk_staff_request_types_type_id_request_types"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staff_request_types_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "type_id", name=op.f("pk_staff_request_types")),
    )
    op.create_index("ix_staff_request_types_type", "staff_request_types", ["type_id", "user_id"])
    # Added in place: a batch rebuild of conversations on SQLite would lose its triggers
    # and the indexes that cannot be reflected (`vip DESC`), and copy every row.
    if postgresql:
        op.add_column("conversations", sa.Column("type_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_conversations_type_id_request_types"),
            "conversations",
            "request_types",
            ["type_id"],
            ["id"],
        )
    else:
        op.execute(
            "ALTER TABLE conversations ADD COLUMN type_id INTEGER"
            " CONSTRAINT fk_conversations_type_id_request_types REFERENCES request_types (id)"
        )
    op.add_column("conversations", sa.Column("order_number", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_conversations_type_waiting",
        "conversations",
        ["type_id", "kind", "status", sa.text("vip DESC"), "waiting_since", "id"],
    )
    op.create_index(
        "ix_conversations_type_activity",
        "conversations",
        ["type_id", "kind", "status", "last_message_at"],
    )
    op.create_index(
        "ix_conversations_type_newest",
        "conversations",
        ["type_id", "kind", "status", "waiting_since", "id", "assignee_id"],
    )
    # The counts get the type as a third key: the table is built anew from the rows
    # (a rebuilt SQLite table would lose its triggers' partner anyway).
    _drop_queue_count_triggers(postgresql)
    op.drop_table("queue_counts")
    op.create_table(
        "queue_counts",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("assignee_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("status", "assignee_id", "type_id", name=op.f("pk_queue_counts")),
    )
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute(
        """
        INSERT INTO queue_counts (status, assignee_id, type_id, n)
        SELECT status, coalesce(assignee_id, 0), coalesce(type_id, 0), count(*)
        FROM conversations WHERE kind = 'support'
        GROUP BY status, coalesce(assignee_id, 0), coalesce(type_id, 0)
        """
    )


def downgrade() -> None:
    from importlib import import_module

    postgresql = op.get_bind().dialect.name == "postgresql"
    _drop_queue_count_triggers(postgresql)
    op.drop_table("queue_counts")
    previous = import_module("board.migrations.versions.0012_queue_counts")
    previous.upgrade()  # the table and triggers of 0012, filled from the rows
    op.drop_index("ix_conversations_type_newest", table_name="conversations")
    op.drop_index("ix_conversations_type_activity", table_name="conversations")
    op.drop_index("ix_conversations_type_waiting", table_name="conversations")
    op.drop_column("conversations", "order_number")
    if postgresql:
        op.drop_constraint(
            op.f("fk_conversations_type_id_request_types"), "conversations", type_="foreignkey"
        )
    op.drop_column("conversations", "type_id")  # SQLite 3.35+: its REFERENCES goes with it
    op.drop_index("ix_staff_request_types_type", table_name="staff_request_types")
    op.drop_table("staff_request_types")
    op.drop_table("request_types")
