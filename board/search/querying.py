"""Asking the index: ranked, filtered by who asks, grouped by topic or conversation.

Who may find what is part of the query (a filter on `visibility` and `owner`), not a
check on the results afterwards, so hit counts and pages never include what the asker
may not see. Whatever people type is searched: text that the query language cannot
parse, or that uses its syntax (field prefixes, wildcards), becomes plain words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from whoosh import highlight, qparser, query
from whoosh.scoring import BM25F

from board.config import Settings
from board.search.indexing import open_index
from board.security import CurrentUser

MAX_QUERY = 500  # characters that are searched; the rest of a pasted text is ignored
SCOPES = ("forum", "inbox", "all")
SEARCH_FIELDS = ("title", "body", "codes")
SUGGESTIONS = 5
# BM25F with the title counting more than the body (field_boost in the schema) and
# a little less length normalisation: long posts are often the good answers.
WEIGHTING = BM25F(B=0.6, K1=1.2)


@dataclass
class Hit:
    kind: str  # forum, inbox
    ref: int  # topic id or ticket number
    item: int  # post or message id
    title: str
    snippet: str  # HTML: escaped text with <mark>
    title_html: str


@dataclass
class SearchPage:
    query: str
    scope: str
    total: int = 0
    page: int = 1
    pages: int = 0
    hits: list[Hit] = field(default_factory=list)
    did_you_mean: str | None = None


def allowed(viewer: CurrentUser | None, scope: str) -> query.Query | None:
    """What the viewer may find in the scope; None means everything (staff, all)."""
    forum = query.Term("kind", "forum")
    inbox = query.Term("kind", "inbox")
    if viewer is not None and viewer.is_staff:
        return {"forum": forum, "inbox": inbox}.get(scope)
    public = query.And([forum, query.Term("visibility", "public")])
    if viewer is None:
        return public
    own = query.And(
        [inbox, query.Term("visibility", "private"), query.Term("owner", str(viewer.id))]
    )
    return {"forum": public, "inbox": own}.get(scope, query.Or([public, own]))


def _parser(schema) -> qparser.QueryParser:
    parser = qparser.MultifieldParser(
        list(SEARCH_FIELDS), schema, group=qparser.OrGroup.factory(0.9)
    )
    # People type questions, not queries: no field:value, wildcards, ranges or boosts.
    for plugin in (
        qparser.FieldsPlugin,
        qparser.WildcardPlugin,
        qparser.RangePlugin,
        qparser.BoostPlugin,
        qparser.FuzzyTermPlugin,
    ):
        parser.remove_plugin_class(plugin)
    return parser


def plain_words(text: str) -> str:
    return " ".join(re.findall(r"[\w-]+", text))


def parse(schema, text: str) -> query.Query:
    text = text[:MAX_QUERY]
    parser = _parser(schema)
    try:
        parsed = parser.parse(text)
    except Exception:  # unbalanced quotes or brackets: search the words themselves
        parsed = parser.parse(plain_words(text))
    return parsed


def _hit(result) -> Hit:
    return Hit(
        kind=result["kind"],
        ref=result["ref"],
        item=result["item"],
        title=result["title"],
        snippet=result.highlights("body", top=2) or _escaped_start(result["body"]),
        title_html=result.highlights("title", top=1) or _escaped_start(result["title"]),
    )


def _escaped_start(text: str, length: int = 200) -> str:
    return highlight.htmlescape(text[:length] + ("…" if len(text) > length else ""))


def _formatted(results) -> None:
    results.formatter = highlight.HtmlFormatter(tagname="mark", between=" … ")
    results.fragmenter = highlight.ContextFragmenter(maxchars=220, surround=60)


def search(
    settings: Settings,
    text: str,
    viewer: CurrentUser | None,
    scope: str = "forum",
    page: int = 1,
    per_page: int = 10,
) -> SearchPage:
    scope = scope if scope in SCOPES else "forum"
    result_page = SearchPage(query=text, scope=scope, page=page)
    if not text.strip():
        return result_page
    ix = open_index(settings)
    parsed = parse(ix.schema, text)
    with ix.searcher(weighting=WEIGHTING) as searcher:
        results = searcher.search_page(
            parsed,
            page,
            pagelen=per_page,
            filter=allowed(viewer, scope),
            collapse="group",
            collapse_limit=1,
            terms=True,
        )
        _formatted(results.results)
        result_page.total = len(results)
        result_page.pages = results.pagecount
        result_page.hits = [_hit(result) for result in results]
        if not result_page.total:
            result_page.did_you_mean = did_you_mean(searcher, text)
    return result_page


def did_you_mean(searcher, text: str) -> str | None:
    """Each misspelled word replaced by the closest word of the public forum, if any."""
    corrector = searcher.corrector("words")
    changed, words = False, []
    for word in re.findall(r"\w+", text[:MAX_QUERY]):
        lowered = word.lower()
        if len(lowered) < 3 or lowered.isdigit() or searcher.doc_frequency("words", lowered):
            words.append(word)
            continue
        suggestion = corrector.suggest(lowered, limit=1, maxdist=2)
        if suggestion:
            words.append(suggestion[0])
            changed = True
        else:
            words.append(word)
    return " ".join(words) if changed else None


def suggest(settings: Settings, draft: str, limit: int = SUGGESTIONS) -> list[Hit]:
    """Public forum topics for a draft message: its most telling words, not all of them."""
    draft = draft[:5000]
    if len(draft.strip()) < 3:
        return []
    ix = open_index(settings)
    with ix.searcher(weighting=WEIGHTING) as searcher:
        terms = [term for term, _weight in searcher.key_terms_from_text("body", draft, 8)]
        if not terms:
            return []
        wanted = query.Or(
            [query.Term("title", term, boost=2.0) for term in terms]
            + [query.Term("body", term) for term in terms]
        )
        results = searcher.search(
            wanted,
            limit=limit,
            filter=allowed(None, "forum"),
            collapse="group",
            collapse_limit=1,
            terms=True,
        )
        _formatted(results)
        return [_hit(result) for result in results]


def ticket_number(text: str) -> int | None:
    """`#1042` or `1042` alone: a jump to that conversation rather than a search."""
    match = re.fullmatch(r"\s*#?\s*(\d{3,9})\s*", text)
    return int(match.group(1)) if match else None
