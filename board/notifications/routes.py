"""The notification centre (/notifications): everything a person was told, searchable,
and marking it read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import events
from board.inbox import queries as inbox_queries
from board.notifications import queries
from board.web import (
    db,
    field,
    page_count,
    page_number,
    path_for,
    read_form,
    redirect,
    render,
    require_user,
    safe_next,
)

PER_PAGE = 20
QUERY_MAX = 200


async def notification_list(request: Request) -> Response:
    user = require_user(request)
    query = request.query_params.get("q", "").replace("\x00", "").strip()[:QUERY_MAX]
    total = await queries.notifications_count(db(request), user.id, query)
    pages = page_count(total, PER_PAGE)
    page = min(page_number(request), pages)
    rows = await queries.notifications_page(db(request), user.id, query, page, PER_PAGE)
    return render(
        request,
        "notifications/list.html",
        notifications=rows,
        query=query,
        page=page,
        pages=pages,
        total=total,
    )


async def read_all(request: Request) -> Response:
    user = require_user(request)
    form = await read_form(request)
    if user.is_staff:
        await queries.mark_all_read(db(request), user.id)
    else:
        # A customer's notifications tell of answers in their conversations: all read is
        # all read there too, or the inbox badge would still count what the bell cleared.
        await inbox_queries.mark_all_read(db(request), user.id)
    await events.record(db(request), "counts", to_user=user.id)  # the user's other tabs
    fallback = str(path_for(request, "notifications"))
    return redirect(safe_next(field(form, "next", 2_000), fallback))


routes = [
    Route("/notifications", notification_list, name="notifications"),
    Route("/notifications/read-all", read_all, methods=["POST"], name="notifications_read_all"),
]
