"""`python -m board migrate-to postgresql://…` on a demo installation, against a real
PostgreSQL server (a throwaway cluster, tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from board import migrate_to
from board.config import Settings
from board.db import categories, metadata, psycopg_url, users
from tests.conftest import make_settings
from tests.postgres import fresh_database
from tests.test_app import run_command

# A SQLite source and a PostgreSQL target of its own: once, in the SQLite pass.
pytestmark = pytest.mark.own_database

# Small, but every kind of row the demo writes: customers, staff, topics, posts,
# conversations with answers, notes, status history and read markers.
DEMO = ["--customers", "30", "--topics", "8", "--posts", "60", "--conversations", "40"]


@pytest.fixture
def target_url(postgres_server: str) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    result = run_command(["-m", "board", "demo", *DEMO], data_dir)
    assert result.returncode == 0, result.stderr
    return data_dir


@pytest.fixture
def target(target_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(psycopg_url(target_url))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_of() -> Iterator:
    engines = []

    def open_engine(data_dir: Path) -> sa.Engine:
        engines.append(sa.create_engine(f"sqlite:///{data_dir / 'board.db'}"))
        return engines[-1]

    yield open_engine
    for engine in engines:
        engine.dispose()


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in metadata.sorted_tables
        }


def test_a_demo_installation_moves_with_every_row_and_the_next_ids_after_them(
    demo_dir, target_url, target, sqlite_of
):
    with sqlite_of(demo_dir).begin() as connection:
        # A staff member whose deputy's row comes after theirs: the copy inserts in order.
        staff = (
            connection.execute(
                sa.select(users.c.id).where(users.c.role != "customer").order_by(users.c.id)
            )
            .scalars()
            .all()
        )
        connection.execute(users.update().where(users.c.id == staff[0]).values(deputy_id=staff[-1]))
    result = run_command(["-m", "board", "migrate-to", target_url], demo_dir)

    assert result.returncode == 0, result.stderr
    assert f"Verified: {len(metadata.sorted_tables)} tables" in result.stdout
    assert f"BOARD_DATABASE_URL={target_url}" in result.stdout  # the exact next step
    source = sqlite_of(demo_dir)
    expected = counts(source)
    assert expected["messages"] > 40 and expected["users"] > 30  # the demo wrote something
    assert counts(target) == expected
    with source.connect() as before, target.connect() as after:
        query = sa.select(users).order_by(users.c.id)
        assert after.execute(query).all() == before.execute(query).all()
        # PostgreSQL hands out the next id after the copied ones, not 1 again.
        highest = before.execute(sa.select(sa.func.max(categories.c.id))).scalar()
        new_id = after.execute(
            categories.insert()
            .values(slug="neu", name="Neu", description="", position=9)
            .returning(categories.c.id)
        ).scalar()
        assert new_id == highest + 1


def test_a_database_that_holds_data_is_refused_until_replace_is_given(demo_dir, target_url, target):
    assert run_command(["-m", "board", "migrate-to", target_url], demo_dir).returncode == 0
    with target.begin() as connection:
        connection.execute(users.update().values(name="Geändert in PostgreSQL"))

    refused = run_command(["-m", "board", "migrate-to", target_url], demo_dir)
    assert refused.returncode == 1
    assert "already holds data" in refused.stderr and "--replace" in refused.stderr
    with target.connect() as connection:  # nothing was touched
        names = connection.execute(sa.select(users.c.name).distinct()).scalars().all()
    assert names == ["Geändert in PostgreSQL"]

    replaced = run_command(["-m", "board", "migrate-to", "--replace", target_url], demo_dir)
    assert replaced.returncode == 0, replaced.stderr
    with target.connect() as connection:
        names = connection.execute(sa.select(users.c.name)).scalars().all()
    assert "Geändert in PostgreSQL" not in names


def test_a_row_postgresql_refuses_stops_the_copy_and_keeps_nothing(
    tmp_path, target_url, target, sqlite_of
):
    settings = make_settings(tmp_path / "data")
    assert run_command(["-m", "board", "init"], settings.data_dir).returncode == 0
    with sqlite_of(settings.data_dir).begin() as connection:
        # SQLite does not enforce VARCHAR(120); PostgreSQL does.
        connection.execute(categories.update().values(name="x" * 500))

    result = run_command(["-m", "board", "migrate-to", target_url], settings.data_dir)

    assert result.returncode == 1
    assert "copying categories failed" in result.stderr and "Traceback" not in result.stderr
    assert set(counts(target).values()) == {0}


def test_a_difference_after_the_copy_is_found_by_the_checksums(
    demo_dir, target_url, target, sqlite_of
):
    settings = Settings.from_env({"BOARD_DATA_DIR": str(demo_dir)})
    migrate_to.migrate_to(settings, target_url)
    with target.begin() as connection:  # one character in one post
        connection.execute(sa.text("UPDATE posts SET body = body || '!' WHERE id = 1"))

    with pytest.raises(migrate_to.MigrationError, match="table posts differs"):
        migrate_to.verify(sqlite_of(demo_dir), target)


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://root@localhost/board", "must be a postgresql:// URL")],
)
def test_only_postgresql_is_a_target(tmp_path, url, message):
    settings = make_settings(tmp_path / "data")
    assert run_command(["-m", "board", "init"], settings.data_dir).returncode == 0
    result = run_command(["-m", "board", "migrate-to", url], settings.data_dir)
    assert result.returncode == 1 and message in result.stderr
