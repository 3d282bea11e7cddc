"""Several machines on one database: each keeps its own search index ("node") and reads
the shared search queue at its own pace. Two nodes here are two data folders (two
indexes) with different node names on one SQLite file; the background tasks do not run,
so each step of a node is a call made by the test."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from whoosh import qparser

from board.config import Settings
from board.db import (
    categories,
    close_database,
    make_database,
    posts,
    search_nodes,
    search_queue,
    sync_engine,
    topics,
    users,
    utcnow,
)
from board.search import indexing
from board.search.indexing import NODE_FORGOTTEN_AFTER, open_index
from board.setup import initialize
from tests.conftest import make_settings

# Runs on PostgreSQL too: the search queue shared by several nodes through the database.
pytestmark = pytest.mark.postgresql


@pytest.fixture
def alpha(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "alpha", search_node="alpha")
    initialize(settings)
    return settings


@pytest.fixture
def beta(tmp_path: Path, alpha: Settings) -> Settings:
    """Another machine: its own data folder and index, the same database as alpha."""
    return replace(alpha, data_dir=tmp_path / "beta", search_node="beta")


def run(settings: Settings, step) -> object:
    """Runs `step(db)` as one of the node's server processes would."""

    async def with_database():
        database = make_database(settings)
        await database.connect()
        try:
            return await step(database)
        finally:
            await close_database(database)

    return asyncio.run(with_database())


def drain(settings: Settings) -> None:
    """The node's rounds until one finds nothing more, as its background task runs them."""

    async def rounds(db) -> None:
        while await indexing.drain_once(db, settings):
            pass

    run(settings, rounds)


def sql(settings: Settings, statement) -> list:
    engine = sync_engine(settings)
    try:
        with engine.begin() as connection:
            result = connection.execute(statement)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def write_topic(settings: Settings, title: str) -> int:
    """A topic with one post and its queue row, in one transaction as the forum writes it."""
    now = utcnow()
    engine = sync_engine(settings)
    try:
        with engine.begin() as connection:
            category_id = connection.execute(
                sa.select(categories.c.id).where(categories.c.staff_only.is_(False)).limit(1)
            ).scalar_one()
            author_id = connection.execute(
                sa.select(users.c.id).where(users.c.role != "customer").limit(1)
            ).scalar_one()
            topic_id = connection.execute(
                topics.insert().values(
                    category_id=category_id,
                    title=title,
                    author_id=author_id,
                    created_at=now,
                    last_post_at=now,
                    post_count=1,
                )
            ).inserted_primary_key[0]
            connection.execute(
                posts.insert().values(
                    topic_id=topic_id,
                    author_id=author_id,
                    body=f"{title} im Text.",
                    body_html=f"<p>{title} im Text.</p>",
                    created_at=now,
                )
            )
            connection.execute(
                search_queue.insert().values(doc_type="topic", doc_id=topic_id, created_at=now)
            )
    finally:
        engine.dispose()
    return topic_id


def found(settings: Settings, word: str) -> list[str]:
    """Keys of the documents in this node's index whose title holds the word."""
    index = open_index(settings)
    with index.searcher() as searcher:
        parsed = qparser.QueryParser("title", index.schema).parse(word)
        return sorted(hit["key"] for hit in searcher.search(parsed, limit=None))


def queued_ids(settings: Settings) -> list[int]:
    return [row.id for row in sql(settings, sa.select(search_queue.c.id))]


def position_of(settings: Settings) -> int | None:
    rows = sql(
        settings,
        sa.select(search_nodes.c.position).where(search_nodes.c.name == settings.search_node),
    )
    return rows[0].position if rows else None


def last_seen_of(settings: Settings):
    statement = sa.select(search_nodes.c.last_seen).where(
        search_nodes.c.name == settings.search_node
    )
    return sql(settings, statement)[0].last_seen


def silence(settings: Settings, days: float) -> None:
    """As if the node's machine had been switched off `days` ago."""
    sql(
        settings,
        search_nodes.update()
        .where(search_nodes.c.name == settings.search_node)
        .values(last_seen=utcnow() - timedelta(days=days)),
    )


def test_a_post_written_once_is_found_on_both_nodes(alpha, beta):
    drain(alpha)
    drain(beta)  # each builds its own index at its first round
    topic = write_topic(alpha, "Wackeldackel")
    drain(alpha)
    assert found(alpha, "Wackeldackel") == [f"t{topic}"]
    assert found(beta, "Wackeldackel") == []  # beta has not read the queue yet
    drain(beta)
    assert found(beta, "Wackeldackel") == [f"t{topic}"]
    assert found(alpha, "Wackeldackel") == [f"t{topic}"]


def test_the_queue_is_pruned_only_once_every_node_has_passed_it(alpha, beta):
    drain(alpha)
    drain(beta)
    write_topic(alpha, "Wackeldackel")
    written = queued_ids(alpha)
    assert written
    drain(alpha)
    assert queued_ids(alpha) == written  # beta still needs them
    assert position_of(alpha) == written[-1] and position_of(beta) < written[0]
    drain(beta)
    assert queued_ids(alpha) == written[-1:]  # the last one passed stays, as a marker
    assert position_of(beta) == written[-1]
    # Ids go on after an emptied queue (as an operator might empty it): a position never
    # points at a reused id.
    sql(alpha, search_queue.delete())
    later = write_topic(alpha, "Kuckucksuhr")
    assert queued_ids(alpha)[0] > written[-1]
    drain(beta)
    assert found(beta, "Kuckucksuhr") == [f"t{later}"]


def test_a_node_silent_for_less_than_the_bound_still_holds_the_queue(alpha, beta):
    drain(alpha)
    drain(beta)
    silence(beta, days=NODE_FORGOTTEN_AFTER.days - 1)
    topic = write_topic(alpha, "Wackeldackel")
    drain(alpha)
    assert queued_ids(alpha) != []
    drain(beta)  # back after six days: it reads on from where it stopped
    assert found(beta, "Wackeldackel") == [f"t{topic}"]
    assert len(queued_ids(alpha)) == 1


def test_an_idle_node_says_it_is_alive_hourly_so_a_quiet_week_does_not_forget_it(alpha, beta):
    drain(alpha)
    drain(beta)
    silence(beta, days=NODE_FORGOTTEN_AFTER.days - 1)
    drain(beta)  # nothing to index, but the machine is here
    assert last_seen_of(beta) > utcnow() - timedelta(minutes=1)
    silence(beta, days=1 / 24 / 6)  # ten minutes: a round writes nothing yet
    quiet = last_seen_of(beta)
    drain(beta)
    assert last_seen_of(beta) == quiet


def test_a_node_gone_past_the_bound_stops_holding_the_queue_and_rebuilds_on_return(alpha, beta):
    drain(alpha)
    drain(beta)
    silence(beta, days=NODE_FORGOTTEN_AFTER.days + 1)
    missed = write_topic(alpha, "Wackeldackel")
    drain(alpha)
    # Alpha no longer waits for beta: the rows beta never read are gone, and so is beta.
    assert queued_ids(alpha) == [position_of(alpha)]
    assert position_of(beta) is None
    assert found(beta, "Wackeldackel") == []
    drain(beta)  # back: it cannot read what was pruned, so it rebuilds
    assert found(beta, "Wackeldackel") == [f"t{missed}"]
    later = write_topic(alpha, "Kuckucksuhr")
    drain(beta)  # and then reads on as usual
    assert found(beta, "Kuckucksuhr") == [f"t{later}"]


def test_a_rebuild_misses_nothing_written_while_it_reads(alpha, beta):
    drain(alpha)
    write_topic(alpha, "Gartenzwerg")
    drain(alpha)
    written_during = []

    def meanwhile(_count: int) -> None:
        # Beta reads the topics; a post arrives, and alpha indexes it and prunes what it
        # may. Beta's read started before the post: only the queue can bring it to beta.
        if not written_during:
            written_during.append(write_topic(alpha, "Nachzuegler"))
            drain(alpha)

    indexing.rebuild(beta, progress=meanwhile)
    assert written_during
    assert found(beta, "Gartenzwerg")
    assert queued_ids(alpha) != []  # kept for beta, whose position lies before it
    drain(beta)
    assert found(beta, "Nachzuegler") == [f"t{written_during[0]}"]
    assert len(queued_ids(alpha)) == 1


def test_a_crash_between_index_commit_and_position_update_indexes_again_once(
    alpha, beta, monkeypatch
):
    drain(alpha)
    drain(beta)
    topic = write_topic(alpha, "Wackeldackel")
    before = position_of(alpha)

    def crash(*_args):
        raise RuntimeError("the machine lost power")

    with monkeypatch.context() as patched:
        patched.setattr(indexing, "_advance", crash)
        with pytest.raises(RuntimeError):
            drain(alpha)
    assert found(alpha, "Wackeldackel") == [f"t{topic}"]  # the commit happened
    assert position_of(alpha) == before  # the position did not move
    drain(alpha)  # the next start reads the same rows again
    assert position_of(alpha) > before
    assert found(alpha, "Wackeldackel") == [f"t{topic}"]  # replaced by key, not doubled
    with open_index(alpha).searcher() as searcher:
        assert searcher.doc_count() == len(set(searcher.lexicon("key")))


def test_an_index_commit_that_fails_leaves_the_position_so_the_change_waits(
    alpha, beta, monkeypatch
):
    drain(alpha)
    drain(beta)
    topic = write_topic(alpha, "Wackeldackel")
    before = position_of(alpha)

    def failing_write(*_args):
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(indexing, "_write", failing_write)
        with pytest.raises(OSError):
            drain(alpha)
    assert position_of(alpha) == before
    assert queued_ids(alpha) != []
    drain(alpha)
    assert found(alpha, "Wackeldackel") == [f"t{topic}"]


def queue_row(settings: Settings, row_id: int, topic_id: int, age: timedelta = timedelta()):
    """A queue row with a chosen id, as PostgreSQL's sequence hands ids to transactions
    that commit in another order."""
    values = {"id": row_id, "doc_type": "topic", "doc_id": topic_id}
    sql(settings, search_queue.insert().values(created_at=utcnow() - age, **values))


def test_a_node_waits_at_a_gap_in_the_ids_until_it_fills_or_grows_old(alpha):
    drain(alpha)
    early = write_topic(alpha, "Fruehaufsteher")
    late = write_topic(alpha, "Spaetzuender")
    sql(alpha, search_queue.delete())  # what the topics queued: written anew below, in turns
    drain(alpha)
    start = position_of(alpha)
    # Transaction 2 commits first; transaction 1, which took the smaller id, is still open.
    queue_row(alpha, start + 2, late)
    drain(alpha)
    assert position_of(alpha) == start  # not past the gap: id start + 1 may yet appear
    assert found(alpha, "Spaetzuender") == []
    queue_row(alpha, start + 1, early)  # transaction 1 commits
    drain(alpha)
    assert position_of(alpha) == start + 2
    assert found(alpha, "Fruehaufsteher") == [f"t{early}"]
    assert found(alpha, "Spaetzuender") == [f"t{late}"]
    # A gap whose transaction rolled back never fills: passed once the row after it is old.
    queue_row(alpha, start + 4, late, age=indexing.GAP_PATIENCE + timedelta(seconds=1))
    drain(alpha)
    assert position_of(alpha) == start + 4


def test_a_rebuild_stays_before_ids_that_may_still_be_written(alpha):
    drain(alpha)
    topic = write_topic(alpha, "Wackeldackel")
    sql(alpha, search_queue.delete())
    queue_row(alpha, 50, topic, age=indexing.GAP_PATIENCE * 2)  # settled long ago
    queue_row(alpha, 52, topic)  # 51 may belong to a transaction still open
    indexing.rebuild(alpha)
    assert position_of(alpha) == 50  # 52 is read again; 51, when it comes, is not lost
    queue_row(alpha, 51, write_topic(alpha, "Nachzuegler"))
    drain(alpha)
    assert found(alpha, "Nachzuegler")
    assert position_of(alpha) >= 52
