"""The live side of pages: the event stream at /events and staff's "is answering" hint.

A stream belongs to a logged-in user, or to a guest holding the link of one conversation.
Every event is checked again when it is sent (may this viewer see that conversation and
that message?) and rendered for the viewer in their language, so a page appends the same
markup it would show after a reload. Pages work without any of this; static/js/live.js
only spares the reload.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from databases import Database
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from board import events, i18n, mail_links, permissions
from board.db import (
    Query,
    conversations,
    fetch_row,
    messages,
    read_markers,
    users,
    write_transaction,
)
from board.errors import NotFound
from board.inbox import queries as inbox_queries
from board.notifications import queries as notification_queries
from board.security import SESSION_COOKIE, CurrentUser, user_for_session
from board.web import current_user, db, field, read_form, require_staff, settings_of

log = logging.getLogger("board.events")

HEARTBEAT_SECONDS = 15  # below the idle timeouts of common proxies (nginx: 60 s)
RETRY_MS = 3000  # how soon a browser reconnects after the stream ended
# A stream delivers nothing more than this long after its session ended or its viewer lost
# the role it was opened with (a logout, a revoked session, a deactivated staff member, a
# guest conversation joined to an account); each check is one indexed query.
ACCESS_CHECK_SECONDS = 1.0
IDLE_CHECK_SECONDS = 60  # how soon an idle stream of an ended session closes
TYPING_EVERY = 4.0  # seconds between two "is answering" events of one person
# An "is answering" event older than this is old news: a browser that reconnects and
# replays what it missed does not show it.
TYPING_FRESH_SECONDS = 10.0


async def _link_holder(request: Request) -> mail_links.Holder | None:
    """The customer and conversation a mail link (`?link=`) opens now, if it does."""
    settings = settings_of(request)
    found = await mail_links.holder(
        db(request),
        settings.secret_key,
        request.query_params.get("link", ""),
        settings.mail_link_days,
    )
    return found if isinstance(found, mail_links.Holder) else None


async def _listener(request: Request, viewer: CurrentUser | None) -> events.Listener | None:
    if viewer is not None:
        return events.Listener(user_id=viewer.id, is_staff=viewer.is_staff)
    if "link" in request.query_params:
        # A mail link's page: that customer's events about that one conversation, and
        # nothing else of the account (no counts, no notifications, no other requests).
        holder = await _link_holder(request)
        if holder is None:
            return None
        return events.Listener(user_id=holder.customer.id, only_conversation=holder.conversation_id)
    token = request.query_params.get("guest", "")
    try:
        conversation = await inbox_queries.conversation_for_token(db(request), token)
    except NotFound:
        return None
    if conversation.customer_id is not None:
        return None  # joined to an account: the link shows nothing more
    return events.Listener(guest_conversation=conversation.id)


def _after(request: Request) -> int | None:
    """Where the browser left off: Last-Event-ID on a reconnect, `after` from the page."""
    for value in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if value and value.isdigit() and len(value) < 19 and int(value) > 0:
            return int(value)
    return None  # from now on (0: a page rendered before its process had read any)


async def stream(request: Request) -> Response:
    viewer = current_user(request)
    listener = await _listener(request, viewer)
    if listener is None:
        return PlainTextResponse("Login required.", status_code=401)
    return EventSourceResponse(
        _events(request, viewer, listener, _after(request)),
        ping=HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-store"},
    )


async def _events(
    request: Request,
    viewer: CurrentUser | None,
    listener: events.Listener,
    after: int | None,
) -> AsyncIterator[ServerSentEvent]:
    hub: events.Hub = request.app.state.hub
    database = db(request)
    locale = request.state.locale
    # In the hub before the replay is read: nothing raised in between is lost, and what
    # arrives twice is skipped by its id.
    async with hub.stream(listener) as mine:
        sent = hub.seen if after is None else after
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        if after is not None:
            oldest = await events.oldest_id(database)
            if oldest is not None and after < oldest - 1:
                # Gone from the database: the page is older than what can be replayed.
                yield ServerSentEvent(event="reload", data="{}")
            while missed := await events.events_after(database, sent, listener):
                for event in missed:
                    for message in await _safely_rendered(request, viewer, listener, event, locale):
                        yield message
                    sent = event.id
        checked = time.monotonic()
        while True:
            idle = False
            try:
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes
                # with an event, and the stream would hold the shutdown open.
                async with asyncio.timeout(IDLE_CHECK_SECONDS):
                    event = await mine.queue.get()
            except TimeoutError:
                idle = True
            if idle or time.monotonic() - checked >= ACCESS_CHECK_SECONDS:
                if not await _access_lives(request, viewer, listener):
                    return  # the reconnect gets a 401 and stops
                checked = time.monotonic()
            if idle:
                continue
            if event is None:
                return  # too slow to keep up: the browser reconnects and replays
            if event.id <= sent:
                continue
            for message in await _safely_rendered(request, viewer, listener, event, locale):
                yield message
            sent = event.id


async def _safely_rendered(
    request: Request,
    viewer: CurrentUser | None,
    listener: events.Listener,
    event: events.Event,
    locale: str,
) -> list[ServerSentEvent]:
    """One event that cannot be rendered is logged and skipped; the stream goes on (ending
    it would make the browser reconnect and replay the same event again)."""
    try:
        return await _rendered(request, db(request), viewer, listener, event, locale)
    except Exception:
        log.exception("live event %s (%s) could not be rendered", event.id, event.kind)
        return []


async def _access_lives(
    request: Request, viewer: CurrentUser | None, listener: events.Listener
) -> bool:
    """The stream's viewer may still read what it was opened for: the same user with the
    same standing (staff or not) behind a live session, a guest conversation that is
    still a guest's, or a mail link that still works."""
    if viewer is None and listener.only_conversation is not None:
        return await _link_holder(request) is not None
    if viewer is None:
        owner = await fetch_row(
            db(request),
            sa.select(conversations.c.customer_id).where(
                conversations.c.id == listener.guest_conversation
            ),
        )
        return owner is not None and owner.customer_id is None
    token = request.cookies.get(SESSION_COOKIE)
    now = await user_for_session(db(request), token) if token else None
    return now is not None and now.id == viewer.id and now.is_staff == viewer.is_staff


def _sse(event: events.Event, kind: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=kind, data=json.dumps(data), id=str(event.id))


async def _rendered(
    request: Request,
    database: Database,
    viewer: CurrentUser | None,
    listener: events.Listener,
    event: events.Event,
    locale: str,
) -> list[ServerSentEvent]:
    """What the event means for this viewer, or nothing if it is none of their business.

    The same event reaches many streams at once: what does not depend on the viewer (the
    conversation, the rendered message for customers or for staff) is read and rendered
    once (`Hub.shared`); the access check runs for every stream.
    """
    hub: events.Hub = request.app.state.hub
    if event.kind == "notification":
        if viewer is None:
            return []
        data = await hub.shared(
            ("notification", event.id, viewer.id, locale),
            lambda: _notification_data(request, viewer, locale),
        )
        return [_sse(event, "notification", data)]
    if event.kind == "counts":
        return [_sse(event, "counts", await header_counts(database, viewer))] if viewer else []
    conversation = None
    if event.conversation_id is not None:
        conversation = await hub.shared(
            ("conversation", event.id),
            lambda: fetch_row(
                database,
                inbox_queries.CONVERSATION.where(conversations.c.id == event.conversation_id),
            ),
        )
        if conversation is None or not _may_see(viewer, listener, conversation):
            return []
    number = conversation.number if conversation is not None else None
    if event.kind == "message":
        me = viewer.id if viewer is not None else listener.user_id
        return await _message_events(request, hub, viewer, me, event, conversation, locale)
    if (
        event.kind in ("typing", "answering")
        and time.time() - event.data.get("at", time.time()) > TYPING_FRESH_SECONDS
    ):
        return []  # replayed after a reconnect: nobody is typing any more
    if event.kind == "typing":
        if viewer is None or event.data.get("user_id") == viewer.id:
            return []
        return [_sse(event, "typing", {"conversation": number, "name": event.data.get("name")})]
    if event.kind == "answering":
        # Staff write an answer (never a note): "Support is writing…" for the customer or
        # guest, without a name.
        return [_sse(event, "answering", {"conversation": number})]
    if event.kind in ("queue", "seen"):
        return [_sse(event, event.kind, {"conversation": number, **event.data})]
    return []


def _may_see(viewer: CurrentUser | None, listener: events.Listener, conversation) -> bool:
    if listener.guest_conversation is not None:
        return conversation.id == listener.guest_conversation
    if viewer is None and listener.only_conversation is not None:
        return (
            conversation.id == listener.only_conversation
            and conversation.customer_id == listener.user_id
        )
    return permissions.can_see_conversation(viewer, conversation)


async def _message_events(
    request: Request,
    hub: events.Hub,
    viewer: CurrentUser | None,
    me: int | None,
    event: events.Event,
    conversation,
    locale: str,
) -> list[ServerSentEvent]:
    """`me`: the viewer's account, or the customer whose mail link a stream holds."""
    staff = viewer is not None and viewer.is_staff
    shown = await hub.shared(
        ("message", event.id, staff, locale),
        lambda: _message_shown(request, viewer, event, conversation, locale),
    )
    if shown is None:
        return []  # an internal note, for a customer or guest
    author_id, data = shown
    sent = [_sse(event, "message", {**data, "from_me": me is not None and author_id == me})]
    if viewer is not None and not staff:
        count = await hub.shared(
            ("unread", event.id, viewer.id),
            lambda: inbox_queries.unread_count(db(request), viewer.id),
        )
        sent.append(_sse(event, "unread", {"count": count}))
    return sent


async def _message_shown(
    request: Request, viewer: CurrentUser | None, event: events.Event, conversation, locale: str
) -> tuple[int | None, dict] | None:
    """The message as this kind of viewer (staff, or customer and guest) sees it."""
    found = await inbox_queries.messages_of(
        db(request), conversation.id, viewer, only=event.data.get("message_id")
    )
    if not found:
        return None
    message = found[0]
    templates = request.app.state.templates
    with i18n.speaking(locale):
        html = templates.get_template("live/message.html").render(
            request=request, message=message, conversation=conversation
        )
        # A message moves the status (a staff answer may leave it pending or solved, the
        # customer's reopens it): the customer's page shows the status it is in now.
        status_html = templates.get_template("live/status.html").render(
            request=request, conversation=conversation
        )
    return message["author_id"], {
        "conversation": conversation.number,
        "id": message["id"],
        "html": html,
        "status": conversation.status,
        "status_html": status_html.strip(),
        "author": message["author_name"] or conversation.guest_name or "",
    }


async def header_counts(database: Database, viewer: CurrentUser) -> dict:
    """The header's badges: unread notifications, and for customers unread conversations."""
    counts = {"notifications": await notification_queries.unread_count(database, viewer.id)}
    if not viewer.is_staff:
        counts["unread"] = await inbox_queries.unread_count(database, viewer.id)
    return counts


async def _notification_data(request: Request, viewer: CurrentUser, locale: str) -> dict:
    database = db(request)
    count = await notification_queries.unread_count(database, viewer.id)
    newest = await notification_queries.latest(database, viewer.id, limit=1)
    html = ""
    if newest:
        with i18n.speaking(locale):
            html = request.app.state.templates.get_template("live/notification.html").render(
                request=request, notification=newest[0], user=viewer
            )
    return {"unread": count, "html": html}


# --- staff: who is answering, and has the customer seen the answer ------------------------


async def typing(request: Request) -> Response:
    """A staff member types: colleagues on the same conversation see who; the customer (or
    guest) sees "Support is writing…" while it is an answer, never for an internal note.

    The browser sends this at most every few seconds, and each process passes on one per
    person and conversation in TYPING_EVERY: no database write per keystroke. It is written
    as live events all the same, as every other: the customer's stream may be open in
    another worker or machine, which learns of new events only through the table.
    """
    viewer = require_staff(request)
    form = await read_form(request)
    internal = field(form, "internal", 1) == "1"
    database = db(request)
    conversation = await inbox_queries.conversation_by_number(
        database, request.path_params["number"]
    )
    if conversation is None:
        raise HTTPException(404)
    last_sent: dict = request.app.state.typing_sent
    key = (viewer.id, conversation.id)
    now = time.monotonic()
    if now - last_sent.get(key, 0.0) >= TYPING_EVERY:
        # Only the recent ones matter: the table does not grow with every conversation.
        for stale in [k for k, at in last_sent.items() if now - at >= TYPING_EVERY]:
            del last_sent[stale]
        last_sent[key] = now
        at = time.time()
        async with write_transaction(database):
            await events.record(
                database,
                "typing",
                {"user_id": viewer.id, "name": viewer.name, "at": at},
                to_staff=True,
                conversation_id=conversation.id,
            )
            # Only a request's customer waits for an answer (not an announcement's).
            if not internal and conversation.kind == "support":
                await _record_answering(database, conversation, at)
        await request.app.state.hub.announce()
    return Response(status_code=204)


async def _record_answering(database: Database, conversation, at: float) -> None:
    if conversation.customer_id is not None:
        await events.record(
            database,
            "answering",
            {"at": at},
            to_user=conversation.customer_id,
            conversation_id=conversation.id,
        )
    else:
        await events.record(database, "answering", {"at": at}, to_guest_of=conversation.id)


READ_MARKER = Query(
    sa.select(read_markers.c.last_read_message_id, read_markers.c.read_at).where(
        read_markers.c.user_id == sa.bindparam("user_id"),
        read_markers.c.conversation_id == sa.bindparam("conversation_id"),
    )
)


async def seen_by_customer(database: Database, conversation) -> Any:
    """When the customer last opened the conversation, if that was after the latest
    answer; None while the answer is unread (or there is none, or no customer account)."""
    if conversation.customer_id is None or conversation.last_public_message_id is None:
        return None
    if conversation.last_public_author_id == conversation.customer_id:
        return None
    marker = await READ_MARKER.row(
        database, user_id=conversation.customer_id, conversation_id=conversation.id
    )
    if marker is None or marker.last_read_message_id < conversation.last_public_message_id:
        return None
    return marker.read_at


async def written_since(
    database: Database, conversation_id: int, message_id: int, author_id: int
) -> str | None:
    """Who else wrote in the conversation after `message_id` (the newest such message's
    author, a guest's name, or ""), or None when nobody did."""
    row = await database.fetch_one(
        sa.select(users.c.name, conversations.c.guest_name)
        .select_from(
            messages.join(
                conversations, conversations.c.id == messages.c.conversation_id
            ).outerjoin(users, users.c.id == messages.c.author_id)
        )
        .where(
            messages.c.conversation_id == conversation_id,
            messages.c.id > message_id,
            sa.or_(messages.c.author_id.is_(None), messages.c.author_id != author_id),
        )
        .order_by(messages.c.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    return row.name or row.guest_name or ""


routes = [
    Route("/events", stream, name="events"),
    Route("/staff/t/{number:int}/typing", typing, methods=["POST"], name="staff_typing"),
]
