"""Asking the index: ranked topics and conversations, filtered by who asks.

Who may find what is part of the search (a filter on `visibility` and `owner`, and the
staff-only fields named in staff's queries alone), not a check on the results
afterwards, so hit counts and pages never include what the asker may not see. Whatever
people type is searched: text that the query language cannot parse, or that uses its
syntax (field prefixes, wildcards), becomes plain words.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from dataclasses import dataclass, field

from anyio.to_thread import run_sync as run_in_threadpool
from whoosh import collectors, highlight, qparser, query
from whoosh import index as whoosh_index
from whoosh.scoring import BM25F
from whoosh.searching import Results, ResultsPage, Searcher

from board.config import Settings
from board.search.indexing import SEPARATOR, open_index
from board.search.schema import DEFAULT_CODE_PATTERN, codes_in
from board.security import CurrentUser

log = logging.getLogger("board.search")

MAX_QUERY = 500  # characters that are searched; the rest of a pasted text is ignored
MAX_REFS = 1000  # conversations a list (inbox, staff queue) narrows itself to at most
SCOPES = ("forum", "inbox", "all")
SEARCH_FIELDS = ("title", "body", "codes")
STAFF_FIELDS = (*SEARCH_FIELDS, "staff_body", "staff_codes")
SUGGESTIONS = 5
# BM25F with the title counting more than the body (field_boost in the schema) and
# a little less length normalisation: long posts are often the good answers.
WEIGHTING = BM25F(B=0.6, K1=1.2)
# What an index that is missing (first start, being rebuilt) or unreadable raises.
UNAVAILABLE = (whoosh_index.IndexError, OSError)


@dataclass
class Hit:
    kind: str  # forum, inbox
    ref: int  # topic id or ticket number
    item: int | None  # the best post or message, for the anchor
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


def fields_for(viewer: CurrentUser | None) -> tuple[str, ...]:
    return STAFF_FIELDS if viewer is not None and viewer.is_staff else SEARCH_FIELDS


def _parser(schema, fieldnames: tuple[str, ...]) -> qparser.QueryParser:
    parser = qparser.MultifieldParser(list(fieldnames), schema, group=qparser.OrGroup.factory(0.9))
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


def _exact_codes(
    text: str, pattern: str, fieldnames: tuple[str, ...]
) -> tuple[str, list[query.Query]]:
    """Splits off order and invoice numbers that join digits with - or / ("4711-2026").

    The analyzer would cut them into parts that other numbers share ("4711-2027"), so
    they match the untouched `codes` field only, token for token as the indexer wrote it.
    """
    rest, exact = [], []
    for word in text.split():
        bare = word.strip("\"'()[]{}<>.,;:!?")
        codes = codes_in(bare, pattern).split() if re.search(r"\w[-/]\w", bare) else []
        if codes and re.search(r"\d", bare):
            in_field = [
                query.And([query.Term(name, code) for code in codes])
                for name in fieldnames
                if name.endswith("codes")  # codes, and staff_codes for staff
            ]
            exact.append(query.Or(in_field).normalize())
        else:
            rest.append(word)
    return " ".join(rest), exact


def _telling(schema, word: str) -> bool:
    """A word that leaves a term after analysis: not a stop word, not punctuation."""
    return any(True for _token in schema["body"].analyzer(word))


def parse(
    schema,
    text: str,
    code_pattern: str = DEFAULT_CODE_PATTERN,
    every_word: bool = False,
    fieldnames: tuple[str, ...] = SEARCH_FIELDS,
) -> query.Query:
    """The query for what someone typed. Ranked search wants any of the words (the more
    the better); lists narrowed by a search (`every_word`) want all of the telling ones."""
    text = text[:MAX_QUERY].replace("\x00", " ")
    free, exact = _exact_codes(text, code_pattern, fieldnames)
    parser = _parser(schema, fieldnames)
    if every_word:
        parts = [parser.parse(word) for word in plain_words(free).split() if _telling(schema, word)]
        parts = [part for part in parts + exact if part is not query.NullQuery]
        return query.And(parts).normalize() if parts else query.NullQuery
    try:
        parsed = parser.parse(free)
    except Exception:  # unbalanced quotes or brackets: search the words themselves
        parsed = parser.parse(plain_words(free))
    return query.Or([parsed, *exact]).normalize() if exact else parsed


def _hit(result, staff: bool) -> Hit:
    """The hit's best post or message: snippet and anchor come from it."""
    item, text = _best_part(result, "body", "parts")
    snippet = result.highlights("body", text=text, top=2) if text else ""
    if not snippet and staff and result.get("staff_body"):
        item, text = _best_part(result, "staff_body", "staff_parts")
        snippet = result.highlights("staff_body", text=text, top=2)
    return Hit(
        kind=result["kind"],
        ref=result["ref"],
        item=item,
        title=result["title"],
        snippet=snippet or _escaped_start(text or result["body"]),
        title_html=result.highlights("title", top=1) or _escaped_start(result["title"]),
    )


def _best_part(result, fieldname: str, parts_field: str) -> tuple[int | None, str]:
    """The part (post, message) of a stored text holding most of the words found, the
    earlier one on a tie; the first part when the words are in the title alone."""
    text, parts = result.get(fieldname) or "", result.get(parts_field) or ""
    if not parts:
        return None, text
    items, starts = [], []
    for part in parts.split():
        item, start = part.split(":")
        items.append(int(item))
        starts.append(int(start))
    words = {term.decode() for name, term in result.matched_terms() if name == fieldname}
    found: dict[int, set[str]] = {}
    if words:
        analyzer = result.searcher.schema[fieldname].analyzer
        for token in analyzer(text, chars=True, mode="index"):
            if token.text in words:
                found.setdefault(bisect_right(starts, token.startchar) - 1, set()).add(token.text)
    best = min(found, key=lambda index: (-len(found[index]), index)) if found else 0
    end = starts[best + 1] - len(SEPARATOR) if best + 1 < len(starts) else len(text)
    return items[best], text[starts[best] : end]


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
    staff = viewer is not None and viewer.is_staff
    parsed = parse(ix.schema, text, settings.search_code_pattern, fieldnames=fields_for(viewer))
    rule = allowed(viewer, scope)
    with ix.searcher(weighting=WEIGHTING) as searcher:
        # A page past the last shows the last one.
        page = max(1, page)
        results = ResultsPage(
            _best(searcher, parsed, page * per_page, rule, terms=True), page, per_page
        )
        _formatted(results.results)
        result_page.total = results.total
        result_page.pages = results.pagecount
        result_page.page = results.pagenum
        result_page.hits = [_hit(result, staff) for result in results]
        if not result_page.total:
            corrected = did_you_mean(searcher, text)
            # Offered only when it finds something this viewer may see.
            if corrected and _finds_any(searcher, parse(ix.schema, corrected), rule):
                result_page.did_you_mean = corrected
    return result_page


def _best(
    searcher: Searcher, wanted: query.Query, limit: int, rule: query.Query | None, terms=False
) -> Results:
    """`searcher.search` without Whoosh's matcher replacement, which miscounts scores in
    whoosh3 3.54: every 10 matches the collector swaps the matcher tree for a cheaper one
    (a union whose one side has run out becomes the other side), and the CoordMatcher of
    an OR query (OrGroup.factory) then recounts its terms from the smaller tree, so its
    penalty for a missing word shrinks or goes. Documents after the swap scored up to
    twice their due: a topic ranked second on page one by a doubled score and came
    again on page two. Unswapped, every match is scored through the whole tree (search
    p50 61 -> 88 ms on the 10,000-topic demo, bench/RESULTS.md)."""
    collector = collectors.TopCollector(limit, replace=0)
    if terms:
        collector = collectors.TermsCollector(collector)
    if rule is not None:
        collector = collectors.FilterCollector(collector, rule)
    searcher.search_with_collector(wanted, collector)
    return collector.results()


def _finds_any(searcher, wanted: query.Query, rule: query.Query | None) -> bool:
    return not searcher.search(wanted, limit=1, filter=rule).is_empty()


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
        terms = []
        # Telling words of the draft as titles and as bodies use them: titles name the
        # problem ("Paket nicht angekommen"), bodies the circumstances.
        for fieldname in ("title", "body"):
            for term, _weight in searcher.key_terms_from_text(fieldname, draft, 8):
                if term not in terms:
                    terms.append(term)
        if not terms:
            return []
        wanted = query.Or(
            [query.Term("title", term, boost=2.0) for term in terms]
            + [query.Term("body", term) for term in terms]
        )
        results = _best(searcher, wanted, limit, allowed(None, "forum"), terms=True)
        _formatted(results)
        return [_hit(result, staff=False) for result in results]


def ticket_number(text: str) -> int | None:
    """`#1042` or `1042` alone: a jump to that conversation rather than a search."""
    match = re.fullmatch(r"\s*#?\s*(\d{3,9})\s*", text)
    return int(match.group(1)) if match else None


def conversation_refs(
    settings: Settings, text: str, viewer: CurrentUser | None, limit: int = MAX_REFS
) -> list[int]:
    """Ticket numbers of the conversations the viewer may find with every telling word of
    the text, best first: the inbox and the staff queue narrow their lists to them."""
    ix = open_index(settings)
    fieldnames = fields_for(viewer)
    wanted = parse(ix.schema, text, settings.search_code_pattern, True, fieldnames)
    if wanted is query.NullQuery:
        return []
    with ix.searcher(weighting=WEIGHTING) as searcher:
        results = _best(searcher, wanted, limit, allowed(viewer, "inbox"))
        return [result["ref"] for result in results]


async def conversation_numbers(
    settings: Settings, text: str, viewer: CurrentUser | None
) -> list[int] | None:
    """What a list's search box asks for: a ticket number itself, else the index's
    matches; None when the index cannot answer right now (callers fall back to SQL)."""
    number = ticket_number(text)
    if number is not None:
        return [number]
    try:
        return await run_in_threadpool(conversation_refs, settings, text, viewer)
    except UNAVAILABLE as problem:
        log.warning("search index unavailable, the database answers: %s", problem)
        return None
