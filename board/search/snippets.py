"""Snippets of a hit: where the words searched for stand, marked, from a sentence's start.

Whoosh's highlighter analyzes the text with stop words kept (`removestops=False`), so a
stop word whose stem equals a searched term ("waren" and "Ware" both stem to "war") was
marked too; here only tokens that are no stop words are marked. Whoosh's fragments begin
a fixed number of characters before the first word found, mid-sentence; here they begin
where that sentence (or line: a table row, a list item, see markup.searchable_text)
begins, when it begins within SENTENCE_REACH characters, else at a word with an ellipsis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from whoosh import highlight, query

MAX_CHARS = 220  # a fragment's length, at most
SURROUND = 60  # characters after the last word found
SENTENCE_REACH = 160  # how far back a fragment may start to begin with its sentence
BETWEEN = " … "
# A sentence or line begins after . ! ? … and a space, or after a line break. Not after a
# colon: a table row reads "Size: M · Price: 12 €" (markup.searchable_text).
_SENTENCE_END = re.compile(r"(?:[.!?…][\"'»“”)]*\s+|\n\s*)")
_WORD_START = re.compile(r"\s+")


def sentence_start(text: str, position: int, reach: int = SENTENCE_REACH) -> tuple[int, bool]:
    """Where the sentence holding `position` begins, and True; or, when that is further
    back than `reach`, the start of a word within reach, and False."""
    floor = max(0, position - reach)
    start = None
    for match in _SENTENCE_END.finditer(text, floor, position):
        start = match.end()
    if start is not None:
        return start, True
    if floor == 0:
        return 0, True  # the part's own beginning
    space = _WORD_START.search(text, floor, position)
    return (space.end() if space else position), False


class SentenceFragmenter(highlight.ContextFragmenter):
    """Whoosh's context fragments, moved back to the start of their sentence."""

    def __init__(self) -> None:
        super().__init__(maxchars=MAX_CHARS, surround=SURROUND)

    def fragment_tokens(self, text: str, tokens: Iterable) -> Iterator[highlight.Fragment]:
        for fragment in super().fragment_tokens(text, tokens):
            if not fragment.matches:
                continue
            first = fragment.matches[0]
            start, whole = sentence_start(text, first.startchar)
            end = max(min(fragment.endchar, start + MAX_CHARS), first.endchar)
            if end < len(text):  # end at a word, not inside one
                space = text.rfind(" ", first.endchar, end + 1)
                end = space if space > first.endchar else end
            matches = [token for token in fragment.matches if token.endchar <= end]
            moved = highlight.Fragment(text, matches, start, end)
            moved.cut_before = not whole
            moved.cut_after = end < len(text) and not _ends_sentence(text[:end])
            yield moved


def _ends_sentence(text: str) -> bool:
    return text.rstrip().endswith((".", "!", "?", "…"))


class SnippetFormatter(highlight.HtmlFormatter):
    """<mark> around the words found; an ellipsis where a fragment cuts a sentence."""

    def __init__(self) -> None:
        super().__init__(tagname="mark", between=BETWEEN)

    def format_fragment(self, fragment: highlight.Fragment, replace: bool = False) -> str:
        html = super().format_fragment(fragment, replace).strip()
        if getattr(fragment, "cut_before", False):
            html = "… " + html
        if getattr(fragment, "cut_after", False):
            html += " …"
        return html


def terms_for(wanted: query.Query, fieldname: str) -> frozenset[str]:
    terms = set()
    for name, text in wanted.iter_all_terms():
        if name == fieldname:
            terms.add(text.decode("utf-8") if isinstance(text, bytes) else text)
    return frozenset(terms)


def _marked(tokens: Iterable, terms: frozenset[str]) -> Iterator:
    for token in tokens:
        token.matched = not getattr(token, "stopped", False) and token.text in terms
        yield token


def highlights(
    analyzer, text: str, terms: frozenset[str], top: int = 2, whole: bool = False
) -> str:
    """HTML (escaped text, <mark> around the words found) of the `top` best fragments, in
    the order of the text; the whole text with `whole` (a title). Empty when no word of
    `terms` is in the text."""
    if not text or not terms:
        return ""
    tokens = _marked(
        analyzer(text, positions=True, chars=True, mode="index", removestops=False), terms
    )
    if whole:
        # The analyzer hands out one Token object, changed for each word: no list of them.
        fragments = [
            fragment
            for fragment in highlight.WholeFragmenter().fragment_tokens(text, tokens)
            if fragment.matches
        ]
    else:
        fragments = SentenceFragmenter().fragment_tokens(text, tokens)
    best = highlight.top_fragments(
        fragments, top, highlight.BasicFragmentScorer(), highlight.FIRST, minscore=1
    )
    shown: list[highlight.Fragment] = []
    for fragment in best:  # moved back to their sentences, two may now overlap
        if not shown or fragment.startchar >= shown[-1].endchar:
            shown.append(fragment)
    return SnippetFormatter().format(shown)
