"""The best N documents for a bag of words: BM25F over Whoosh's postings, term at a time.

Whoosh's own collectors score match by match through a tree of matcher objects, a dozen
Python calls per document and term: a common word ("Bestellung", 9,000 of 10,000
topics) took 130 ms to rank, and the coordination wrapper of an OR query recounted the
terms of every match as well (and miscounted them once the tree was swapped,
querying._best). Here each term's postings are read a block at a time and added into
flat arrays with one slot per document, so the cost is a few arithmetic operations per
posting, and the memory is the same whatever the number of matches: 10 bytes per
document in the index (550 kB at 55,000) plus the candidates that the viewer may see.

Scores are Whoosh's BM25F per term (its idf, its field lengths, the schema's field
boosts), summed over the terms, then scaled by the share of the person's words that the
document has: a topic with all three words beats one that repeats one of them often.
Solved topics get SOLVED_BOOST on top: first among comparable hits, never above one that
scores clearly better. Which documents are solved is one more byte per document, kept
with the viewer filters (querying.OpenSearcher.visible), so the bound stays a few bytes per
document.
"""

from __future__ import annotations

import heapq
import operator
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import reduce
from itertools import compress

from whoosh import query
from whoosh.codec.whoosh3 import LENGTHS_COLUMN
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import IndexReader
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

# BM25F's free parameters: a little less length normalisation than usual, long posts are
# often the good answers.
B = 0.6
K1 = 1.2
# How much a missing word costs: the score is scaled by (1 - COORD) + COORD * share.
COORD = 0.9
# A solved topic's score is multiplied by this: it passes unsolved hits within 15 %.
SOLVED_BOOST = 1.15
# Words counted per document in a byte: at most this many words of a query are searched.
MAX_WORDS = 64


@dataclass(frozen=True)
class Term:
    fieldname: str
    text: str
    boost: float = 1.0


Word = tuple[Term, ...]  # one word as typed: its terms in each field searched


def words_of(parsed: query.Query) -> list[Word]:
    """The person's words in a parsed query, each with its terms in every field.

    The parser makes an OR of one group per word (each an OR over the fields, or an AND
    of an order number's parts); a single word is such a group itself. Phrases count as
    their words, in any order.
    """
    if parsed is query.NullQuery:
        return []
    if isinstance(parsed, query.Or) and all(
        isinstance(part, query.CompoundQuery | query.Phrase) for part in parsed.subqueries
    ):
        groups = parsed.subqueries
    else:
        groups = [parsed]
    words = []
    for group in groups:
        terms = tuple(
            Term(part.fieldname, part.text, part.boost)
            for part in group.leaves()
            if isinstance(part, query.Term)
        ) or tuple(Term(fieldname, text) for fieldname, text in group.iter_all_terms())
        if terms:
            words.append(terms)
    return words


def rank(
    searcher: Searcher,
    words: Sequence[Word],
    visible: bytearray,
    limit: int,
    solved: bytearray | None = None,
) -> tuple[list[tuple[float, int]], int]:
    """The `limit` best (score, document number) pairs, best first, and how many documents
    match at all. `visible` has a 1 for each document the viewer may find (see visible()),
    `solved` a 1 for each solved topic (the same mask, for SOLVED_TOPICS).
    Words past MAX_WORDS are left out: a pasted text, whose first ones say enough."""
    words = words[:MAX_WORDS]
    size = searcher.doc_count_all()
    scores = array("d", bytes(8 * size))
    found = bytearray(size)  # how many of the words each document has
    last = array("h", b"\xff\xff" * size)  # the last word counted for each document
    for word_index, word in enumerate(words):
        for term in word:
            _add(searcher, term, word_index, visible, scores, found, last)
    matching = list(compress(range(size), found))
    total = len(words)

    boost = (1.0, SOLVED_BOOST)

    def final(docnum: int) -> float:
        score = scores[docnum] * ((1 - COORD) + COORD * found[docnum] / total)
        return score * boost[solved[docnum]] if solved is not None else score

    best = heapq.nlargest(limit, matching, key=final)
    return [(final(docnum), docnum) for docnum in best], len(matching)


SOLVED_TOPICS = query.Term("solved", "1")


def visible(searcher: Searcher, rule: query.Query | None) -> bytearray:
    """One byte per document of the searcher: 1 where the rule allows it and it is not
    deleted. The rule is Terms joined by And and Or (querying.allowed); None allows all."""
    size = searcher.doc_count_all()
    if rule is None:
        mask = bytearray(b"\x01") * size
    else:
        mask = bytearray(_mask(searcher, rule, size).to_bytes(size, "little"))
    for leaf, offset in searcher.reader().leaf_readers():
        if leaf.has_deletions():
            for docnum in leaf.deleted_docs_set:
                mask[offset + docnum] = 0
    return mask


def _mask(searcher: Searcher, rule: query.Query, size: int) -> int:
    """The rule's documents as one byte each (0 or 1) of a big integer, so that And and
    Or are single operations on all documents at once."""
    if isinstance(rule, query.Term):
        mask = bytearray(size)
        for leaf, offset in searcher.reader().leaf_readers():
            if (rule.fieldname, rule.text) in leaf:
                for ids, _weights in _blocks(leaf, rule.fieldname, rule.text):
                    for docnum in ids:
                        mask[offset + docnum] = 1
        return int.from_bytes(mask, "little")
    if isinstance(rule, query.And):
        return reduce(operator.and_, (_mask(searcher, part, size) for part in rule.subqueries))
    if isinstance(rule, query.Or):
        return reduce(operator.or_, (_mask(searcher, part, size) for part in rule.subqueries))
    raise TypeError(f"no mask for {rule!r}")


def _add(
    searcher: Searcher,
    term: Term,
    word_index: int,
    visible: bytearray,
    scores: array,
    found: bytearray,
    last: array,
) -> None:
    """Adds one term's BM25F score to every visible document that has it."""
    if not searcher.doc_frequency(term.fieldname, term.text):
        return
    idf = searcher.idf(term.fieldname, term.text) * term.boost
    average = searcher.avg_field_length(term.fieldname) or 1.0
    # Whoosh keeps a field's length per document as one byte; the length normalisation
    # of each of the 256 values is worked out once.
    norms = [K1 * ((1 - B) + B * byte_to_length(value) / average) for value in range(256)]
    for leaf, offset in searcher.reader().leaf_readers():
        if (term.fieldname, term.text) not in leaf:
            continue
        lengths = _length_bytes(leaf, term.fieldname)
        for ids, weights in _blocks(leaf, term.fieldname, term.text):
            for docnum, weight in zip(ids, weights):
                norm = norms[lengths[docnum]]
                docnum += offset
                if not visible[docnum]:
                    continue
                scores[docnum] += idf * weight * (K1 + 1) / (weight + norm)
                if last[docnum] != word_index:
                    last[docnum] = word_index
                    found[docnum] += 1


def _blocks(leaf: IndexReader, fieldname: str, text: str) -> Iterator[tuple[Sequence, Sequence]]:
    """A term's postings in one segment, block by block: (document numbers, weights).

    Reads the blocks of whoosh3's W3LeafMatcher directly (its `_read_ids`,
    `_read_weights` and `_next_block`, whoosh3 3.54): the public matcher interface costs
    three method calls per posting. Deleted documents are left in; `visible` drops them.
    """
    matcher = leaf.postings(fieldname, text)
    if isinstance(matcher, FilterMatcher):  # the segment has deletions
        matcher = matcher.child
    while matcher.is_active():
        matcher._read_ids()
        matcher._read_weights()
        yield matcher._ids, matcher._weights
        matcher._next_block()


def _length_bytes(leaf: IndexReader, fieldname: str) -> bytes:
    """The field's length byte of every document in one segment: whoosh3's length column
    (`_<field>_len`, one byte per document) read whole, instead of a method call per
    document (`doc_field_length`, 12 ms per field at 10,000 documents)."""
    size = leaf.doc_count_all()
    column = leaf._perdoc._cached_reader(f"_{fieldname}_len", LENGTHS_COLUMN)
    if column is None:
        return bytes(size)
    stored = column._dbfile.get(column._basepos, min(column._count, size))
    return stored + bytes(size - len(stored))
