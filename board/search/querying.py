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
import threading
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import ceil

from anyio.to_thread import run_sync as run_in_threadpool
from whoosh import collectors, highlight, qparser, query
from whoosh import index as whoosh_index
from whoosh.scoring import BM25F
from whoosh.searching import Results, Searcher

from board.config import Settings
from board.search import ranking, snippets
from board.search.indexing import SEPARATOR, index_dir, open_index
from board.search.schema import DEFAULT_CODE_PATTERN, codes_in, term_of
from board.security import CurrentUser

log = logging.getLogger("board.search")

MAX_QUERY = 500  # characters that are searched; the rest of a pasted text is ignored
MAX_REFS = 1000  # conversations a list (inbox, staff queue) narrows itself to at most
SCOPES = ("forum", "inbox", "all")
SEARCH_FIELDS = ("title", "body", "codes")
STAFF_FIELDS = (*SEARCH_FIELDS, "staff_body", "staff_codes")
SUGGESTIONS = 5
DRAFT_TERMS = 6  # of a draft, the rarest terms that suggest() searches for
WORD = re.compile(r"\w+")  # the tokenizer of schema.german_analyzer
# Whoosh's own scoring (lists' search box, "did you mean") as ranking.py's: BM25F with
# the title counting more than the body (field_boost in the schema).
WEIGHTING = BM25F(B=ranking.B, K1=ranking.K1)
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


# --- open searchers ----------------------------------------------------------------------

# Searchers kept open between queries, per index folder, until the index changes: their
# filters stay worked out. A searcher serves one thread at a time: each query
# borrows one and gives it back. Searches run at most one per core (routes.SEARCH_SLOTS),
# list searches in the thread pool besides: IDLE_SEARCHERS bounds what stays open.
IDLE_SEARCHERS = 4
# Who-may-find-what filters, per open searcher: one byte per document (55 kB at 55,000
# documents). The public rule is the same for every guest; a customer's own
# rule differs per customer, so the set is cleared when it is full.
KEPT_FILTERS = 64
_idle: dict[str, list[OpenSearcher]] = {}
_idle_lock = threading.Lock()


@dataclass
class OpenSearcher:
    """A Whoosh searcher kept open, what it was opened on, and its worked-out filters."""

    searcher: Searcher
    index: whoosh_index.FileIndex
    identity: tuple[int, int]  # the index folder's inode and the commit's generation
    filters: dict[str, bytearray] = field(default_factory=dict)

    def visible(self, rule: query.Query | None) -> bytearray:
        """The documents the rule allows, kept: working them out walks the postings of
        every public document."""
        key = repr(rule)
        mask = self.filters.get(key)
        if mask is None:
            if len(self.filters) >= KEPT_FILTERS:
                self.filters.clear()
            mask = self.filters[key] = ranking.visible(self.searcher, rule)
        return mask


@contextmanager
def borrowed_searcher(settings: Settings) -> Iterator[OpenSearcher]:
    """An open searcher of the index as of its newest commit, for this thread alone."""
    folder = str(index_dir(settings))
    with _idle_lock:
        kept = _idle.get(folder)
        opened = kept.pop() if kept else None
    opened = _fresh(settings, opened)
    try:
        yield opened
    except BaseException:
        opened.searcher.close()
        raise
    with _idle_lock:
        kept = _idle.setdefault(folder, [])
        if len(kept) < IDLE_SEARCHERS:
            kept.append(opened)
            return
    opened.searcher.close()


def _fresh(settings: Settings, kept: OpenSearcher | None) -> OpenSearcher:
    """The kept searcher while the index is the same folder at the same commit, else a new
    one. A rebuild swaps in a new folder whose generation may be the old one's.

    Not Whoosh's `refresh()`: in whoosh3 3.54 it keeps the segments that a merge replaced
    besides the merged one, so every merged document would be found twice."""
    folder = index_dir(settings)
    if kept is not None:
        try:
            if kept.identity == (folder.stat().st_ino, kept.index.latest_generation()):
                return kept
        except UNAVAILABLE:  # no index right now: the new open says so
            pass
        kept.searcher.close()
    index = open_index(settings)
    searcher = index.searcher(weighting=WEIGHTING)
    identity = (folder.stat().st_ino, searcher.reader().generation())
    return OpenSearcher(searcher, index, identity)


def forget_searchers(settings: Settings) -> None:
    """Closes the searchers kept for this index (at shutdown: their open files)."""
    with _idle_lock:
        kept = _idle.pop(str(index_dir(settings)), [])
    for opened in kept:
        opened.searcher.close()


# --- what a viewer may find --------------------------------------------------------------


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


def _hit(result, wanted: query.Query, staff: bool) -> Hit:
    """The hit's best post or message: snippet and anchor come from it."""
    schema = result.searcher.schema
    item, text = _best_part(result, wanted, "body", "parts")
    snippet = _highlights(schema, "body", text, wanted)
    if not snippet and staff and result.get("staff_body"):
        item, text = _best_part(result, wanted, "staff_body", "staff_parts")
        snippet = _highlights(schema, "staff_body", text, wanted)
    return Hit(
        kind=result["kind"],
        ref=result["ref"],
        item=item,
        title=result["title"],
        snippet=snippet or _escaped_start(text or result["body"]),
        title_html=_highlights(schema, "title", result["title"], wanted, whole=True)
        or _escaped_start(result["title"]),
    )


def _highlights(schema, fieldname: str, text: str, wanted: query.Query, whole: bool = False) -> str:
    terms = snippets.terms_for(wanted, fieldname)
    return snippets.highlights(schema[fieldname].analyzer, text, terms, whole=whole)


def _best_part(
    result, wanted: query.Query, fieldname: str, parts_field: str
) -> tuple[int | None, str]:
    """The part (post, message) of a stored text holding most of the words searched for,
    the earlier one on a tie; the first part when the words are in the title alone."""
    text, parts = result.get(fieldname) or "", result.get(parts_field) or ""
    if not parts:
        return None, text
    items, starts = [], []
    for part in parts.split():
        item, start = part.split(":")
        items.append(int(item))
        starts.append(int(start))
    words = {text for name, text in wanted.iter_all_terms() if name == fieldname}
    found: dict[int, set[str]] = {}
    if words:
        for match in WORD.finditer(text):
            term = term_of(match.group().lower())
            if term in words:
                found.setdefault(bisect_right(starts, match.start()) - 1, set()).add(term)
    best = min(found, key=lambda index: (-len(found[index]), index)) if found else 0
    end = starts[best + 1] - len(SEPARATOR) if best + 1 < len(starts) else len(text)
    return items[best], text[starts[best] : end]


def _escaped_start(text: str, length: int = 200) -> str:
    return highlight.htmlescape(text[:length] + ("…" if len(text) > length else ""))


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
    staff = viewer is not None and viewer.is_staff
    rule = allowed(viewer, scope)
    with borrowed_searcher(settings) as opened:
        searcher = opened.searcher
        parsed = parse(
            searcher.schema, text, settings.search_code_pattern, fieldnames=fields_for(viewer)
        )
        page = max(1, page)
        best, total = ranking.rank(
            searcher,
            ranking.words_of(parsed),
            opened.visible(rule),
            page * per_page,
            opened.visible(ranking.SOLVED_TOPICS),
        )
        result_page.total = total
        result_page.pages = ceil(total / per_page)
        # A page past the last shows the last one.
        result_page.page = min(page, result_page.pages) or 1
        first = (result_page.page - 1) * per_page
        results = Results(searcher, parsed, best[first : first + per_page])
        result_page.hits = [_hit(result, parsed, staff) for result in results]
        if not total:
            corrected = did_you_mean(searcher, text)
            # Offered only when it finds something this viewer may see.
            if corrected and _finds_any(searcher, parse(searcher.schema, corrected), rule):
                result_page.did_you_mean = corrected
    return result_page


def _best(searcher: Searcher, wanted: query.Query, limit: int, rule: query.Query | None) -> Results:
    """The `limit` best matches of a query that wants every word (the lists' search box),
    through Whoosh's collector: an AND skips along the rarest word's postings.

    Not `searcher.search`: its matcher replacement miscounts scores in whoosh3 3.54.
    Every 10 matches the collector swaps the matcher tree for a cheaper one, and the
    CoordMatcher of an OR query then recounts its terms from the smaller tree, so its
    penalty for a missing word shrinks or goes (ranked search uses `ranking` instead).
    """
    collector = collectors.TopCollector(limit, replace=0)
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
    with borrowed_searcher(settings) as opened:
        searcher = opened.searcher
        terms = telling_terms(searcher, draft)
        if not terms:
            return []
        words = [(ranking.Term("title", term, 2.0), ranking.Term("body", term)) for term in terms]
        wanted = query.Or([query.Term(t.fieldname, t.text) for word in words for t in word])
        best, _total = ranking.rank(
            searcher,
            words,
            opened.visible(allowed(None, "forum")),
            limit,
            opened.visible(ranking.SOLVED_TOPICS),
        )
        results = Results(searcher, wanted, best)
        return [_hit(result, wanted, staff=False) for result in results]


def telling_terms(searcher: Searcher, draft: str, most: int = DRAFT_TERMS) -> list[str]:
    """The draft's rarest terms in the forum (highest IDF over titles and bodies): a draft
    of 60 words searched by all of them ranks by its greetings and filler; by its few
    rare ones ("Zwischenstecker", "Originalverpackung") it finds the topic. Terms that
    no topic has are left out, they find nothing."""
    rarity: dict[str, float] = {}
    for match in WORD.finditer(draft):
        term = term_of(match.group().lower())
        if term is None or term in rarity:
            continue
        frequency = searcher.doc_frequency("body", term) + searcher.doc_frequency("title", term)
        if frequency:
            rarity[term] = 1 / frequency
    return sorted(rarity, key=rarity.__getitem__, reverse=True)[:most]


def ticket_number(text: str) -> int | None:
    """`#1042` or `1042` alone: a jump to that conversation rather than a search."""
    match = re.fullmatch(r"\s*#?\s*(\d{3,9})\s*", text)
    return int(match.group(1)) if match else None


def conversation_refs(
    settings: Settings, text: str, viewer: CurrentUser | None, limit: int = MAX_REFS
) -> list[int]:
    """Ticket numbers of the conversations the viewer may find with every telling word of
    the text, best first: the inbox and the staff queue narrow their lists to them."""
    fieldnames = fields_for(viewer)
    with borrowed_searcher(settings) as opened:
        searcher = opened.searcher
        wanted = parse(searcher.schema, text, settings.search_code_pattern, True, fieldnames)
        if wanted is query.NullQuery:
            return []
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
