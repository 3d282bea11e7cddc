"""The index's shape: one document per forum topic and per conversation.

German first: words are lower-cased, German stop words dropped, umlauts folded (so that
"Rückgabe", "Rueckgabe" and "Ruckgabe" meet) and stemmed ("Rücksendungen" finds
"Rücksendung"). Order, invoice and ticket numbers and short codes ("DHL", "M4") also go
into `codes` untouched, where only the exact token matches.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from whoosh import fields
from whoosh.analysis import (
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.lang import stopwords_for_language

from board.config import DEFAULT_CODE_PATTERN

# Umlauts and their two-letter spellings fold to the plain vowel; ß to ss.
_FOLDS = (("ß", "ss"), ("ä", "a"), ("ö", "o"), ("ü", "u"), ("ae", "a"), ("oe", "o"), ("ue", "u"))


def fold(text: str) -> str:
    for old, new in _FOLDS:
        text = text.replace(old, new)
    return text


class FoldUmlauts(Filter):
    def __call__(self, tokens):
        for token in tokens:
            token.text = fold(token.text)
            yield token


def german_analyzer():
    """Tokens of letters and digits; stop words are checked before folding ("für")."""
    return (
        RegexTokenizer(r"\w+")
        | LowercaseFilter()
        | StopFilter(stoplist=stopwords_for_language("de"), minsize=1)
        | FoldUmlauts()
        | StemFilter(lang="de")
    )


_ANALYZER = german_analyzer()


@lru_cache(maxsize=20_000)
def term_of(word: str) -> str | None:
    """What one word is in the index (None for a stop word). Cached: finding the words of a
    query in a stored text of 20,000 characters otherwise runs each of its words through
    the analyzer's five stages. 20,000 words hold about 3 MB."""
    return next((token.text for token in _ANALYZER(word)), None)


@cache
def _code_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def codes_in(text: str, pattern: str = DEFAULT_CODE_PATTERN) -> str:
    """The exact tokens of a text, space-separated and lower-cased, for the `codes` field."""
    found = {match.group(0).lower() for match in _code_regex(pattern).finditer(text)}
    return " ".join(sorted(found))


def make_schema() -> fields.Schema:
    analyzer = german_analyzer()
    return fields.Schema(
        key=fields.ID(unique=True, stored=True),  # t42 (topic), c17 (conversation)
        kind=fields.ID(stored=True),  # forum, inbox
        # public: everybody; private: the owner and staff; staff: staff only.
        visibility=fields.ID(stored=True),
        owner=fields.ID(stored=True),  # the customer's id for private documents
        ref=fields.NUMERIC(stored=True),  # topic id or ticket number, for the link
        title=fields.TEXT(analyzer=analyzer, stored=True, field_boost=2.0),
        body=fields.TEXT(analyzer=analyzer, stored=True),
        parts=fields.STORED,  # "post or message id:offset in body …", for the anchor
        codes=fields.KEYWORD(lowercase=True, scorable=True, field_boost=2.0),
        # What only staff may find in the same document: internal notes, deleted posts.
        # Only staff's queries name these fields.
        staff_body=fields.TEXT(analyzer=analyzer, stored=True),
        staff_parts=fields.STORED,
        staff_codes=fields.KEYWORD(lowercase=True, scorable=True, field_boost=2.0),
        # Unstemmed words for "did you mean": stems are no words to suggest.
        words=fields.TEXT(analyzer=RegexTokenizer(r"\w{3,}") | LowercaseFilter(), spelling=True),
        created=fields.DATETIME(stored=True),
        # "1" for a forum topic with a marked solution (ranking's boost; hits show it).
        solved=fields.ID(stored=True),
    )
