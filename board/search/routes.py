"""Search pages: results for everyone, and forum topics for a draft message as it is typed."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from board import permissions, security
from board.forum import queries as forum_queries
from board.i18n import format_day, format_number, ngettext
from board.i18n import gettext as _
from board.inbox import queries as inbox_queries
from board.search import querying
from board.search.querying import Hit
from board.security import CurrentUser
from board.staff import customers
from board.web import (
    client_ip,
    current_user,
    db,
    page_number,
    path_for,
    redirect,
    render,
    settings_of,
)

log = logging.getLogger("board.search")

PER_PAGE = 10
SUGGEST_MIN = 15  # characters of a draft before it is worth asking (static/js/suggest.js)
SUGGEST_MAX = 5_000
MINUTE = timedelta(minutes=1)


def query_text(request: Request, max_length: int = querying.MAX_QUERY) -> str:
    """The `q` parameter as searchable text: NUL and other control characters removed."""
    text = request.query_params.get("q", "")[:max_length]
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def scope_for(viewer: CurrentUser | None, requested: str | None) -> str:
    """Guests search the forum only; everybody else chooses (the index filters by viewer)."""
    if viewer is None or requested not in querying.SCOPES:
        return "forum"
    return requested


def hit_url(request: Request, viewer: CurrentUser | None, hit: Hit) -> str:
    """Where a hit opens: the post in its topic, or the message in its conversation."""
    if hit.kind == "forum":
        if hit.item is None:  # found by its title alone, with no post to point at
            return str(path_for(request, "topic", topic_id=hit.ref))
        return str(path_for(request, "post", post_id=hit.item))
    name = "staff_conversation" if viewer is not None and viewer.is_staff else "conversation"
    anchor = f"#m{hit.item}" if hit.item is not None else ""
    return f"{path_for(request, name, number=hit.ref)}{anchor}"


async def guest_over_limit(
    request: Request, viewer: CurrentUser | None, bucket: str, limit: int
) -> bool:
    """Counts a guest's search against the client address; True when over the limit.

    Searches cost index time; logged-in people are known and not counted.
    """
    if viewer is not None:
        return False
    ip = client_ip(request)
    if await security.limit_reached(db(request), bucket, ip, limit, MINUTE):
        return True
    if limit > 0:
        await security.record_event(db(request), bucket, ip)
    return False


# Searches at once per worker: one per core. A search holds its memory while it runs; the
# next ones wait up to SLOT_WAIT seconds for a slot, then get a 503 with Retry-After
# rather than all running at once (eight concurrent searches once took 2 GB).
SEARCH_SLOTS = max(1, os.cpu_count() or 1)
SLOT_WAIT = 2.0
RETRY_AFTER = "2"


class SearchBusy(Exception):
    pass


@asynccontextmanager
async def search_slot(request: Request):
    """One of the worker's search slots for the block, or SearchBusy. The thread a search
    runs in is not abandoned when its request is cancelled, so a slot is never given back
    while its search still runs."""
    slots = request.app.state._state.get("search_slots")
    if slots is None:
        slots = request.app.state.search_slots = asyncio.Semaphore(SEARCH_SLOTS)
    try:
        await asyncio.wait_for(slots.acquire(), SLOT_WAIT)
    except TimeoutError:
        raise SearchBusy() from None
    try:
        yield
    finally:
        slots.release()


def search_busy() -> str:
    return _("Many people are searching right now. Please try again in a moment.")


def too_many_searches() -> str:
    return _("Too many searches from your network. Please wait a minute and search again.")


@dataclass
class NumberMatches:
    """A bare number that is a customer number, and maybe a ticket number too: staff
    choose (ticket and customer numbers overlap once both have grown)."""

    number: int
    customer: Any
    conversation: Any | None


async def _number_lookup(
    request: Request, viewer: CurrentUser | None, text: str
) -> Response | NumberMatches | None:
    """`#1042` or `1042` alone opens that conversation, for those who may see it. For
    staff, a bare number that is also a customer number offers both instead."""
    number = querying.ticket_number(text)
    if number is None or viewer is None:
        return None
    conversation = await inbox_queries.conversation_by_number(db(request), number)
    if conversation is not None and not permissions.can_see_conversation(viewer, conversation):
        conversation = None  # searched like any other text: nobody learns that it exists
    if viewer.is_staff and "#" not in text:
        customer = await customers.customer_by_number(db(request), number)
        if customer is not None:
            return NumberMatches(number, customer, conversation)
    if conversation is None:
        return None
    name = "staff_conversation" if viewer.is_staff else "conversation"
    return redirect(path_for(request, name, number=number))


async def facts_of(request: Request, hits: list[Hit]) -> dict[int, Any]:
    """Category, date, replies and solved status of the forum hits, one query for all."""
    return await forum_queries.topic_facts(
        db(request), [hit.ref for hit in hits if hit.kind == "forum"], current_user(request)
    )


def replies_of(topic: Any) -> int:
    return max(topic.post_count - 1, 0)


def write_to_us_url(request: Request, viewer: CurrentUser | None) -> str | None:
    """ "Not found? Write to us": customers write from their inbox, guests through the
    contact form; staff are the ones written to."""
    if viewer is None:
        return str(path_for(request, "contact"))
    return None if viewer.is_staff else str(path_for(request, "new_message"))


async def search(request: Request) -> Response:
    viewer = current_user(request)
    text = query_text(request)
    scope = scope_for(viewer, request.query_params.get("scope"))
    found_number = await _number_lookup(request, viewer, text)
    if isinstance(found_number, Response):
        return found_number
    results, unavailable, limited, busy = None, False, False, False
    if text:
        limit = settings_of(request).guest_searches_per_minute
        limited = await guest_over_limit(request, viewer, "search", limit)
    if text and not limited:
        try:
            async with search_slot(request):
                results = await run_in_threadpool(
                    querying.search,
                    settings_of(request),
                    text,
                    viewer,
                    scope,
                    page_number(request),
                    PER_PAGE,
                )
        except querying.UNAVAILABLE as problem:
            log.warning("search index unavailable: %s", problem)
            unavailable = True
        except SearchBusy:
            busy = True
    response = render(
        request,
        "search/results.html",
        status_code=429 if limited else 503 if unavailable or busy else 200,
        limited_message=too_many_searches() if limited else search_busy() if busy else None,
        query=text,
        scope=scope,
        scopes=querying.SCOPES if viewer is not None else ("forum",),
        results=results,
        links=[hit_url(request, viewer, hit) for hit in results.hits] if results else [],
        facts=await facts_of(request, results.hits) if results else {},
        write_to_us=write_to_us_url(request, viewer),
        per_page=PER_PAGE,
        unavailable=unavailable,
        number_matches=found_number,
    )
    if busy:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


async def suggest(request: Request) -> Response:
    """Public forum topics for a draft message, whoever asks: JSON for suggest.js."""
    draft = query_text(request, SUGGEST_MAX)
    hits: list[Hit] = []
    if len(draft) >= SUGGEST_MIN:
        limit = settings_of(request).guest_suggestions_per_minute
        if await guest_over_limit(request, current_user(request), "suggest", limit):
            message = too_many_searches()
            return JSONResponse({"topics": [], "error": message}, status_code=429)
        try:
            async with search_slot(request):
                hits = await run_in_threadpool(querying.suggest, settings_of(request), draft)
        except querying.UNAVAILABLE as problem:
            log.warning("search index unavailable: %s", problem)
        except SearchBusy:
            return JSONResponse(
                {"topics": [], "error": search_busy()},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"},
            )
    facts = await facts_of(request, hits)
    topics = [
        {
            "id": hit.ref,
            "title": hit.title,
            "url": str(path_for(request, "topic", topic_id=hit.ref)),
            "snippet": hit.snippet,
            **_suggestion_facts(facts[hit.ref]),
        }
        for hit in hits
        if hit.ref in facts  # deleted since it was indexed
    ]
    return JSONResponse({"topics": topics}, headers={"Cache-Control": "no-store"})


def _suggestion_facts(topic: Any) -> dict:
    """What tells suggestions apart, as text in the reader's language (suggest.js shows
    it as it is)."""
    replies = replies_of(topic)
    return {
        "category": topic.category_name,
        "date": format_day(topic.created_at),
        "replies": replies,
        "replies_label": ngettext(
            "%(num)s reply", "%(num)s replies", replies, num=format_number(replies)
        ),
        "solved": topic.solution_post_id is not None,
        "solved_label": _("Solved") if topic.solution_post_id is not None else "",
    }


routes = [
    Route("/search", search, name="search"),
    Route("/search/suggest", suggest, name="search_suggest"),
]
