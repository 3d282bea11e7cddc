"""statistics as daily aggregates: stats_days, and stats_dirty filled by triggers with the
hours whose days a change made stale, in the transaction of the change; the period's
requests listed by (kind, created_at, id); staff's personal daily summary, on by default

Revision ID: 0016
Revises: 0019
Create Date: 2026-12-06 12:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Which hours a change makes stale (board/staff/stats_days.py says why):
# - a message: its hour and those of the conversation's later messages (a staff answer's
#   day links to the previous answer's day; an imported old message changes later links);
# - a status change: the hours of every status change of the conversation (a solve's day
#   links to the next solve's day);
# - a conversation's first response, kind, start or spam flag: every hour of it;
# - topics, posts and users: the hour they were created.
SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER stats_dirty_message_insert AFTER INSERT ON messages BEGIN
        INSERT INTO stats_dirty (hour)
        SELECT DISTINCT substr(created_at, 1, 13) FROM messages
        WHERE conversation_id = NEW.conversation_id AND created_at >= NEW.created_at;
    END
    """,
    """
    CREATE TRIGGER stats_dirty_message_update
    AFTER UPDATE OF conversation_id, author_id, internal, created_at ON messages BEGIN
        INSERT INTO stats_dirty (hour) VALUES (substr(OLD.created_at, 1, 13));
        INSERT INTO stats_dirty (hour)
        SELECT DISTINCT substr(created_at, 1, 13) FROM messages
        WHERE conversation_id IN (OLD.conversation_id, NEW.conversation_id)
            AND created_at >= min(OLD.created_at, NEW.created_at);
    END
    """,
    """
    CREATE TRIGGER stats_dirty_message_delete AFTER DELETE ON messages BEGIN
        INSERT INTO stats_dirty (hour) VALUES (substr(OLD.created_at, 1, 13));
        INSERT INTO stats_dirty (hour)
        SELECT DISTINCT substr(created_at, 1, 13) FROM messages
        WHERE conversation_id = OLD.conversation_id AND created_at > OLD.created_at;
    END
    """,
    """
    CREATE TRIGGER stats_dirty_event_insert AFTER INSERT ON conversation_events
    WHEN NEW.action = 'status' BEGIN
        INSERT INTO stats_dirty (hour)
        SELECT DISTINCT substr(created_at, 1, 13) FROM conversation_events
        WHERE conversation_id = NEW.conversation_id AND action = 'status';
    END
    """,
    """
    CREATE TRIGGER stats_dirty_event_delete AFTER DELETE ON conversation_events
    WHEN OLD.action = 'status' BEGIN
        INSERT INTO stats_dirty (hour) VALUES (substr(OLD.created_at, 1, 13));
        INSERT INTO stats_dirty (hour)
        SELECT DISTINCT substr(created_at, 1, 13) FROM conversation_events
        WHERE conversation_id = OLD.conversation_id AND action = 'status';
    END
    """,
    """
    CREATE TRIGGER stats_dirty_conversation_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO stats_dirty (hour) VALUES (substr(NEW.created_at, 1, 13));
    END
    """,
    """
    CREATE TRIGGER stats_dirty_conversation_update
    AFTER UPDATE OF status, kind, created_at, first_response_at ON conversations
    WHEN OLD.first_response_at IS NOT NEW.first_response_at OR OLD.kind IS NOT NEW.kind
        OR OLD.created_at IS NOT NEW.created_at
        OR (OLD.status = 'spam') IS NOT (NEW.status = 'spam')
    BEGIN
        INSERT INTO stats_dirty (hour) VALUES (substr(OLD.created_at, 1, 13));
        INSERT INTO stats_dirty (hour)
        SELECT substr(NEW.created_at, 1, 13)
        UNION SELECT substr(created_at, 1, 13) FROM messages WHERE conversation_id = NEW.id
        UNION SELECT substr(created_at, 1, 13) FROM conversation_events
            WHERE conversation_id = NEW.id AND action = 'status';
    END
    """,
) + tuple(
    statement
    for table, changed in (
        ("topics", "deleted_at, created_at"),
        ("posts", "deleted_at, created_at"),
        ("users", "role, created_at"),
    )
    for statement in (
        f"""
        CREATE TRIGGER stats_dirty_{table}_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO stats_dirty (hour) VALUES (substr(NEW.created_at, 1, 13));
        END
        """,
        f"""
        CREATE TRIGGER stats_dirty_{table}_update AFTER UPDATE OF {changed} ON {table} BEGIN
            INSERT INTO stats_dirty (hour) VALUES (substr(OLD.created_at, 1, 13));
            INSERT INTO stats_dirty (hour) VALUES (substr(NEW.created_at, 1, 13));
        END
        """,
    )
)

HOUR = "to_char({}, 'YYYY-MM-DD HH24')"

POSTGRESQL_TRIGGERS = (
    f"""
    CREATE FUNCTION stats_dirty_messages() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO stats_dirty (hour) VALUES ({HOUR.format("OLD.created_at")});
            INSERT INTO stats_dirty (hour)
            SELECT DISTINCT {HOUR.format("created_at")} FROM messages
            WHERE conversation_id = OLD.conversation_id AND created_at > OLD.created_at;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            INSERT INTO stats_dirty (hour)
            SELECT DISTINCT {HOUR.format("created_at")} FROM messages
            WHERE conversation_id = NEW.conversation_id AND created_at >= NEW.created_at;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER stats_dirty_messages
    AFTER INSERT OR DELETE OR UPDATE OF conversation_id, author_id, internal, created_at
    ON messages FOR EACH ROW EXECUTE FUNCTION stats_dirty_messages()
    """,
    f"""
    CREATE FUNCTION stats_dirty_events() RETURNS trigger AS $$
    DECLARE
        changed conversation_events%ROWTYPE;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            changed := OLD;
            INSERT INTO stats_dirty (hour) VALUES ({HOUR.format("OLD.created_at")});
        ELSE
            changed := NEW;
        END IF;
        IF changed.action = 'status' THEN
            INSERT INTO stats_dirty (hour)
            SELECT DISTINCT {HOUR.format("created_at")} FROM conversation_events
            WHERE conversation_id = changed.conversation_id AND action = 'status';
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER stats_dirty_events AFTER INSERT OR DELETE ON conversation_events
    FOR EACH ROW EXECUTE FUNCTION stats_dirty_events()
    """,
    f"""
    CREATE FUNCTION stats_dirty_conversations() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO stats_dirty (hour) VALUES ({HOUR.format("OLD.created_at")});
            INSERT INTO stats_dirty (hour)
            SELECT {HOUR.format("created_at")} FROM messages WHERE conversation_id = NEW.id
            UNION SELECT {HOUR.format("created_at")} FROM conversation_events
                WHERE conversation_id = NEW.id AND action = 'status';
        END IF;
        INSERT INTO stats_dirty (hour) VALUES ({HOUR.format("NEW.created_at")});
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER stats_dirty_conversations_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION stats_dirty_conversations()
    """,
    """
    CREATE TRIGGER stats_dirty_conversations_update
    AFTER UPDATE OF status, kind, created_at, first_response_at ON conversations FOR EACH ROW
    WHEN (OLD.first_response_at IS DISTINCT FROM NEW.first_response_at
        OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR (OLD.status = 'spam') IS DISTINCT FROM (NEW.status = 'spam'))
    EXECUTE FUNCTION stats_dirty_conversations()
    """,
    f"""
    CREATE FUNCTION stats_dirty_created() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO stats_dirty (hour) VALUES ({HOUR.format("OLD.created_at")});
        END IF;
        INSERT INTO stats_dirty (hour) VALUES ({HOUR.format("NEW.created_at")});
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
) + tuple(
    f"""
    CREATE TRIGGER stats_dirty_{table} AFTER INSERT OR UPDATE OF {changed} ON {table}
    FOR EACH ROW EXECUTE FUNCTION stats_dirty_created()
    """
    for table, changed in (
        ("topics", "deleted_at, created_at"),
        ("posts", "deleted_at, created_at"),
        ("users", "role, created_at"),
    )
)

SQLITE_NAMES = (
    "message_insert", "message_update", "message_delete", "event_insert", "event_delete",
    "conversation_insert", "conversation_update", "topics_insert", "topics_update",
    "posts_insert", "posts_update", "users_insert", "users_update",
)  # fmt: skip


def every_hour(hour_of) -> str:
    """Every hour the statistics look at, to mark stale: the aggregates are built from them."""
    return " UNION ".join(
        f"SELECT {hour_of('created_at')} FROM {table}"
        for table in (
            "conversations",
            "messages",
            "conversation_events",
            "topics",
            "posts",
            "users",
        )
    )


def upgrade() -> None:
    op.create_table(
        "stats_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=24), nullable=False),
        sa.Column("staff_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("link", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "metric", "staff_id", "link", "bucket", name=op.f("pk_stats_days")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "stats_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=24), nullable=False),
        sa.Column("staff_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("link", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "metric", "staff_id", "link", "bucket", name=op.f("pk_stats_months")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "stats_dirty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.String(length=13), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_dirty")),
    )
    op.add_column(
        "users",
        sa.Column("personal_summary", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.create_index("ix_conversations_period", "conversations", ["kind", "created_at", "id"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    # Everything so far is stale: the stats task builds the days in the background, and
    # until then the page computes the days it needs itself.
    hour_of = HOUR.format if postgresql else "substr({}, 1, 13)".format
    op.execute(f"INSERT INTO stats_dirty (hour) {every_hour(hour_of)}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("messages", "events", "topics", "posts", "users"):
            name = {"events": "conversation_events"}.get(table, table)
            op.execute(f"DROP TRIGGER stats_dirty_{table} ON {name}")
        op.execute("DROP TRIGGER stats_dirty_conversations_insert ON conversations")
        op.execute("DROP TRIGGER stats_dirty_conversations_update ON conversations")
        for function in ("messages", "events", "conversations", "created"):
            op.execute(f"DROP FUNCTION stats_dirty_{function}()")
    else:
        for name in SQLITE_NAMES:
            op.execute(f"DROP TRIGGER stats_dirty_{name}")
    op.drop_index("ix_conversations_period", table_name="conversations")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("personal_summary")
    op.drop_table("stats_dirty")
    op.drop_table("stats_months")
    op.drop_table("stats_days")
