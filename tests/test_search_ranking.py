"""The ranking over Whoosh's postings and the searchers kept open between queries.

`board.search.ranking` reads whoosh3's posting blocks and length columns itself; these
tests hold its scores to Whoosh's own BM25F on an index of several segments with a
deleted document, and the kept searchers to what the index holds after commits, merges
and a rebuild.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator

import pytest
from whoosh import index as whoosh_index
from whoosh import query

from board.config import Settings
from board.search import querying, ranking
from board.search.indexing import index_dir
from board.search.schema import make_schema

WORDS = ("Kaffeemaschine", "entkalken", "Pumpe", "Wassertank", "Bohnen", "Mühle")


@pytest.fixture
def settings(tmp_path) -> Iterator[Settings]:
    settings = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path / "data")})
    index_dir(settings).mkdir(parents=True)
    whoosh_index.create_in(str(index_dir(settings)), make_schema())
    yield settings
    querying.forget_searchers(settings)


def add_topics(settings: Settings, refs: range, merge: bool = False, folder=None) -> None:
    """Topics whose bodies use the words in different numbers and lengths."""
    writer = whoosh_index.open_dir(str(folder or index_dir(settings))).writer()
    for ref in refs:
        words = [WORDS[(ref * 7 + i) % len(WORDS)] for i in range(ref % 5 + 1)]
        body = " ".join(words * (ref % 3 + 1)) + " Füllwort" * (ref % 11)
        writer.update_document(
            key=f"t{ref}",
            kind="forum",
            visibility="public",
            ref=ref,
            title=f"Frage {ref} {WORDS[ref % len(WORDS)]}",
            body=body,
        )
    writer.commit(merge=merge)


def whoosh_scores(settings: Settings, wanted: query.Query) -> dict[int, float]:
    ix = whoosh_index.open_dir(str(index_dir(settings)))
    with ix.searcher(weighting=querying.WEIGHTING) as searcher:
        return {hit["ref"]: hit.score for hit in searcher.search(wanted, limit=None)}


def our_scores(settings: Settings, words: list[ranking.Word]) -> dict[int, float]:
    with querying.borrowed_searcher(settings) as opened:
        searcher = opened.searcher
        best, total = ranking.rank(searcher, words, ranking.visible(searcher, None), 1000)
        assert total == len(best)
        return {searcher.stored_fields(docnum)["ref"]: score for score, docnum in best}


def test_one_word_scores_as_whooshs_bm25f_over_segments_and_deletions(settings):
    add_topics(settings, range(1, 40))
    add_topics(settings, range(40, 70))  # a second segment: offsets
    add_topics(settings, range(20, 25))  # replaced: deleted in the first segment
    writer = whoosh_index.open_dir(str(index_dir(settings))).writer()
    writer.delete_by_term("key", "t30")
    writer.commit(merge=False)
    assert len(whoosh_index.open_dir(str(index_dir(settings)))._segments()) == 3

    for word in ("kaffeemaschin", "pump", "muhl"):
        for fieldname in ("body", "title"):
            expected = whoosh_scores(settings, query.Term(fieldname, word))
            found = our_scores(settings, [(ranking.Term(fieldname, word),)])
            assert expected and 30 not in found
            assert found.keys() == expected.keys()
            for ref, score in expected.items():
                assert found[ref] == pytest.approx(score, rel=1e-5), (word, fieldname, ref)


def test_more_of_the_words_beats_one_word_often(settings):
    writer = whoosh_index.open_dir(str(index_dir(settings))).writer()
    common = {"kind": "forum", "visibility": "public"}
    writer.add_document(key="t1", ref=1, title="Frage", body="Pumpe " * 6, **common)
    writer.add_document(key="t2", ref=2, title="Frage", body="Pumpe brummt, Wassertank", **common)
    for ref in range(3, 20):
        writer.add_document(key=f"t{ref}", ref=ref, title="Frage", body="Bohnen", **common)
    writer.commit()
    page = querying.search(settings, "Pumpe Wassertank", None)
    assert [hit.ref for hit in page.hits][:2] == [2, 1] and page.total == 2


def test_a_kept_searcher_sees_commits_merges_and_a_rebuild_and_finds_each_once(settings):
    add_topics(settings, range(1, 30))
    assert querying.search(settings, "Kaffeemaschine", None).total > 0

    def refs() -> list[int]:
        page = querying.search(settings, "Frage", None, per_page=500)
        return sorted(hit.ref for hit in page.hits)

    assert refs() == list(range(1, 30))
    add_topics(settings, range(30, 40))
    assert refs() == list(range(1, 40))
    add_topics(settings, range(35, 45), merge=True)  # Whoosh merges the small segments
    writer = whoosh_index.open_dir(str(index_dir(settings))).writer()
    writer.commit(optimize=True)  # and then everything into one
    assert refs() == list(range(1, 45))  # whoosh3's refresh() found the merged ones twice


def test_a_kept_searcher_sees_the_rebuilt_index_of_the_same_generation(settings):
    add_topics(settings, range(1, 10))
    assert querying.search(settings, "Frage", None).total == 9
    # A rebuild writes a new folder and swaps it in; its one commit has the generation
    # the old folder has after its one commit.
    fresh = index_dir(settings).with_name("index.new")
    fresh.mkdir()
    whoosh_index.create_in(str(fresh), make_schema())
    add_topics(settings, range(1, 3), folder=fresh)
    os.replace(index_dir(settings), index_dir(settings).with_name("index.old"))
    os.replace(fresh, index_dir(settings))
    assert querying.search(settings, "Frage", None).total == 2


def test_a_search_takes_little_memory_however_many_documents_match(settings):
    add_topics(settings, range(1, 3000))
    querying.search(settings, "Kaffeemaschine Pumpe", None)  # the searcher, its filter
    tracemalloc.start()
    try:
        page = querying.search(settings, "Kaffeemaschine Pumpe Mühle Bohnen", None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert page.total > 2000
    # About 10 bytes per document in the index, the candidates and one page of hits.
    assert peak < 1.5 * 2**20


def test_a_viewer_who_may_find_nothing_finds_nothing(settings):
    add_topics(settings, range(1, 10))
    nobody = query.Term("owner", "424242")
    with querying.borrowed_searcher(settings) as opened:
        searcher = opened.searcher
        mask = ranking.visible(searcher, nobody)
        best, total = ranking.rank(searcher, [(ranking.Term("body", "pump"),)], mask, 10)
    assert not any(mask) and (best, total) == ([], 0)


def test_hundreds_of_words_are_searched_by_their_first_ones(settings):
    add_topics(settings, range(1, 20))
    # Each word counts once per document in a byte: 300 words that all match would not fit.
    words = [(ranking.Term("body", "kaffeemaschin"),)] * 300
    with querying.borrowed_searcher(settings) as opened:
        searcher = opened.searcher
        best, total = ranking.rank(searcher, words, ranking.visible(searcher, None), 5)
    assert total > 0 and len(best) == 5
