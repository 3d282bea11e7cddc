"""queue counts: requests per status and assignee, kept by triggers in every write's
transaction, so that the queue's tabs read a few rows at any size

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 08:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Only requests are counted (kind 'support'); nobody's is assignee 0. A count that falls
# to 0 goes: the table holds the same rows however the conversations got where they are
# (migrate-to compares it with the copy's, which triggers fill from the final rows).
SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER queue_counts_insert AFTER INSERT ON conversations
    WHEN NEW.kind = 'support' BEGIN
        INSERT INTO queue_counts (status, assignee_id, n)
        VALUES (NEW.status, coalesce(NEW.assignee_id, 0), 1)
        ON CONFLICT (status, assignee_id) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER queue_counts_delete AFTER DELETE ON conversations
    WHEN OLD.kind = 'support' BEGIN
        UPDATE queue_counts SET n = n - 1
        WHERE status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0);
        DELETE FROM queue_counts WHERE n = 0;
    END
    """,
    """
    CREATE TRIGGER queue_counts_update AFTER UPDATE OF status, assignee_id, kind ON conversations
    WHEN OLD.status IS NOT NEW.status OR OLD.assignee_id IS NOT NEW.assignee_id
        OR OLD.kind IS NOT NEW.kind
    BEGIN
        UPDATE queue_counts SET n = n - 1
        WHERE OLD.kind = 'support'
            AND status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0);
        DELETE FROM queue_counts WHERE n = 0;
        INSERT INTO queue_counts (status, assignee_id, n)
        SELECT NEW.status, coalesce(NEW.assignee_id, 0), 1 WHERE NEW.kind = 'support'
        ON CONFLICT (status, assignee_id) DO UPDATE SET n = n + 1;
    END
    """,
)

POSTGRESQL_TRIGGERS = (
    """
    CREATE FUNCTION queue_counts_keep() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.kind = 'support' THEN
            UPDATE queue_counts SET n = n - 1
            WHERE status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0);
            DELETE FROM queue_counts WHERE n = 0;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.kind = 'support' THEN
            INSERT INTO queue_counts (status, assignee_id, n)
            VALUES (NEW.status, coalesce(NEW.assignee_id, 0), 1)
            ON CONFLICT (status, assignee_id) DO UPDATE SET n = queue_counts.n + 1;
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
    CREATE TRIGGER queue_counts_update AFTER UPDATE OF status, assignee_id, kind ON conversations
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id OR OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION queue_counts_keep()
    """,
)


def upgrade() -> None:
    op.create_table(
        "queue_counts",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("assignee_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("status", "assignee_id", name=op.f("pk_queue_counts")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute(
        """
        INSERT INTO queue_counts (status, assignee_id, n)
        SELECT status, coalesce(assignee_id, 0), count(*) FROM conversations
        WHERE kind = 'support' GROUP BY status, coalesce(assignee_id, 0)
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER queue_counts_update ON conversations")
        op.execute("DROP TRIGGER queue_counts_insert_delete ON conversations")
        op.execute("DROP FUNCTION queue_counts_keep()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER queue_counts_{name}")
    op.drop_table("queue_counts")
