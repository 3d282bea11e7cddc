"""How often search puts the topic that answers a customer's question in the top three.

The demo forum (board/demo/forum.py, fixed seed) is the corpus; tests/search_questions.py holds
German questions as customers type them and the titles of the topics that answer them.
The shares are printed (`pytest -s`) and must not fall below the floors, which were set
a little under the first measurement: a change to the analyzer, the schema or the
weighting that makes search worse fails here, one that makes it better raises the floor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from search_questions import QUESTIONS

from board.config import Settings
from board.db import sync_engine, topics
from board.demo import fill_demo
from board.search import indexing, querying
from board.setup import initialize

TOP = 3
# Measured on 2026-11-23 with the demo forum below: search 65 % (36 of 55 questions),
# suggest 55 % (30 of 55). With one document per topic: search 64 % (35), suggest 53 %;
# with the draft's key terms taken from titles and bodies, suggest 67 % (37).
# On 2026-12-06 the demo posts answer their titles and 38 harder questions came in
# (compounds, colloquial words, typos); with the ranking of board/search/ranking.py and a
# draft's six rarest terms: search 90 % (84 of 93), suggest 90 % (84). The floors are
# the goal of issue 22, about five points below.
SEARCH_FLOOR = 0.85
SUGGEST_FLOOR = 0.85

SOLVED_PREFIX = "[Gelöst] "


@pytest.fixture(scope="module")
def forum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[int, str]]]:
    """The demo forum, indexed: settings and every topic's title by id."""
    data_dir: Path = tmp_path_factory.mktemp("relevance") / "data"
    settings = Settings.from_env({"BOARD_DATA_DIR": str(data_dir)})
    initialize(settings)
    fill_demo(settings, customers=50, topics=500, posts=2500, seed=1, conversations=0)
    indexing.rebuild(settings)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        titles = dict(connection.execute(sa.select(topics.c.id, topics.c.title)).all())
    engine.dispose()
    yield settings, titles
    querying.forget_searchers(settings)


def title_pattern(title: str) -> re.Pattern[str]:
    """A title from the questions file; `{product}` and the like match any value, and so does
    the detail the demo puts after a title that is already taken ("… (Dimmer D2, DHL)")."""
    parts = re.split(r"\{\w+\}", title)
    return re.compile(".+".join(re.escape(part) for part in parts) + r"(?: \(.+\))?")


def answering_topics(titles: dict[int, str], answers: tuple[str, ...]) -> set[int]:
    patterns = [title_pattern(answer) for answer in answers]
    return {
        topic_id
        for topic_id, title in titles.items()
        if any(pattern.fullmatch(title.removeprefix(SOLVED_PREFIX)) for pattern in patterns)
    }


def top_three_share(titles: dict[int, str], found: Callable[[str], list[int]], name: str) -> float:
    """The share of questions answered in the top three; prints it and the misses."""
    misses = []
    for question, answers in QUESTIONS:
        refs = found(question)[:TOP]
        if not answering_topics(titles, answers) & set(refs):
            misses.append((question, [titles.get(ref, "?") for ref in refs]))
    share = 1 - len(misses) / len(QUESTIONS)
    print(f"\n{name}: answer in the top {TOP} for {share:.0%} of {len(QUESTIONS)} questions")
    for question, shown in misses:
        print(f"  miss: {question!r}\n        got {shown}")
    return share


def test_the_questions_are_enough_and_answered_in_the_demo_forum(forum) -> None:
    _settings, titles = forum
    assert len(QUESTIONS) >= 30
    assert len({question for question, _answers in QUESTIONS}) == len(QUESTIONS)
    unanswered = [q for q, answers in QUESTIONS if not answering_topics(titles, answers)]
    assert unanswered == []


def test_search_ranks_the_answer_in_the_top_three(forum) -> None:
    settings, titles = forum

    def found(question: str) -> list[int]:
        page = querying.search(settings, question, None, scope="forum", per_page=10)
        assert all(hit.kind == "forum" for hit in page.hits)
        return [hit.ref for hit in page.hits]

    assert top_three_share(titles, found, "search (guest, forum)") >= SEARCH_FLOOR


def test_suggest_ranks_the_answer_in_the_top_three(forum) -> None:
    settings, titles = forum

    def found(question: str) -> list[int]:
        return [hit.ref for hit in querying.suggest(settings, question)]

    assert top_three_share(titles, found, "suggest (new message)") >= SUGGEST_FLOOR
