"""The customer area ("Postfach"): conversations, replies, attachments, guest links."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from board import events, live, mail, notify, permissions, security
from board.conversations import types as request_types
from board.conversations import workflow, writing
from board.conversations.numbers import token_hash
from board.errors import Invalid, NotAllowed, TooSoon
from board.i18n import current_locale
from board.i18n import gettext as _
from board.inbox import mail_link, queries
from board.inbox.answer_time import expected_answer
from board.message_form import BODY_MAX, read_message_form, read_refused_form
from board.notifications import queries as notifications
from board.search import querying
from board.staff import notices
from board.uploads import (
    content_disposition,
    stored_path,
)
from board.web import (
    HONEYPOT_FIELD,
    client_ip,
    current_user,
    db,
    email_problem,
    field,
    flood_message,
    page_count,
    page_number,
    path_for,
    read_form,
    redirect,
    render,
    require_user,
    settings_of,
)

PER_PAGE = 20
GUEST_COOKIE = "board_guest"  # the guest's link tokens, so their attachments download
# The request just sent, for the confirmation on its page: a cookie on that page's path,
# read once (a query parameter would stay in the address and in bookmarks).
SENT_COOKIE = "board_sent"
INLINE_TYPES = {"image/png", "image/jpeg"}
CONTACT_FIELDS = {"name": 120, "email": 320, "body": BODY_MAX}  # field -> longest kept
DOWNLOAD_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


# --- the customer's inbox ----------------------------------------------------------------


async def inbox(request: Request) -> Response:
    user = require_user(request)
    if user.is_staff:
        return redirect(path_for(request, "staff_queue"))  # staff answer from the queue
    kind = request.query_params.get("kind", "all")
    kind_filter = kind if kind in queries.KINDS else None
    status = request.query_params.get("status", "all")
    status_filter = status if status in queries.STATUS_FILTERS else None
    query = request.query_params.get("q", "").replace("\x00", "").strip()[:200]
    page = page_number(request)
    numbers = None
    if query:
        numbers = await querying.conversation_numbers(settings_of(request), query, user)
    database = db(request)
    rows = await queries.inbox_page(
        database, user, kind_filter, query, page, PER_PAGE, numbers, status_filter
    )
    total = await queries.inbox_count(database, user, kind_filter, query, numbers, status_filter)
    return render(
        request,
        "inbox/list.html",
        conversations=rows,
        kind=kind_filter or "all",
        kinds=queries.KINDS,
        status=status_filter or "all",
        query=query,
        page=page,
        pages=page_count(total, PER_PAGE),
        total=total,
    )


def _read_about(form, offered) -> tuple[writing.About, dict[str, str], dict[str, str]]:
    """The request type and order number of a new-message form: what the service gets,
    the values to show again, and their errors."""
    values = {"type": field(form, "type", 20), "order_number": field(form, "order_number", 200)}
    errors = {}
    type_id, problem = request_types.chosen_type(values["type"], offered)
    if problem:
        errors["type"] = problem
    if problem := request_types.order_number_problem(values["order_number"]):
        errors["order_number"] = problem
    return writing.About(type_id, values["order_number"]), values, errors


async def _render_new(
    request: Request, template: str, status_code: int = 200, rules_open: bool = True, **context
) -> Response:
    """The new-message page (inbox) or the contact form, with the types to choose from.
    The house rules are open on a first visit and folded once the writer has written."""
    context.setdefault("about", {"type": "", "order_number": ""})
    return render(
        request,
        template,
        status_code,
        request_types=await request_types.active_types(db(request)),
        rules_open=rules_open,
        **context,
    )


async def new_message(request: Request) -> Response:
    user = require_user(request)
    if user.is_staff:
        raise HTTPException(403, _("Staff answer customers; they do not write to themselves."))
    page = partial(
        _render_new,
        request,
        "inbox/new.html",
        rules_open=not await queries.has_written_before(db(request), user.id),
    )
    if request.method == "GET":
        return await page(body="", errors={})
    flood_seconds = settings_of(request).flood_seconds
    # An early answer saves reading the files; the service decides in its transaction.
    if wait := await writing.seconds_to_wait(db(request), user, None, flood_seconds):
        form = await read_refused_form(request)
        _about, shown, _errors = _read_about(form, [])
        errors = {"form": flood_message(wait)}
        return await page(429, body=field(form, "body", BODY_MAX), errors=errors, about=shown)
    form, body, files, errors = await read_message_form(request)
    about, shown, about_errors = _read_about(form, await request_types.active_types(db(request)))
    errors.update(about_errors)
    if errors:
        return await page(400, body=body, errors=errors, about=shown)
    try:
        conversation = await writing.open_request(
            db(request),
            user,
            body,
            files,
            flood_seconds,
            notify_cc=settings_of(request).notify_cc,
            about=about,
        )
    except TooSoon as wait:
        errors = {"form": flood_message(wait.seconds)}
        return await page(429, body=body, errors=errors, about=shown)
    except Invalid as invalid:  # the type was deactivated while the form was open
        return await page(400, body=body, errors=invalid.errors, about=shown)
    target = path_for(request, "conversation", number=conversation.number)
    response = redirect(target)
    response.set_cookie(
        SENT_COOKIE,
        str(conversation.number),
        max_age=600,
        path=str(target),
        httponly=True,
        samesite="lax",
        secure=settings_of(request).https,
    )
    return response


async def conversation(request: Request) -> Response:
    user = require_user(request)
    record = await queries.conversation_or_404(db(request), request.path_params["number"], user)
    if user.is_staff:
        return redirect(path_for(request, "staff_conversation", number=record.number))
    just_sent = request.cookies.get(SENT_COOKIE) == str(record.number)
    confirmation = None
    if just_sent and record.customer_id == user.id:
        settings = settings_of(request)
        confirmation = expected_answer(settings.office, record.created_at, settings.answer_hours)
    response = await _render_conversation(request, record, user, confirmation=confirmation)
    if just_sent:
        response.delete_cookie(SENT_COOKIE, path=request.url.path)
    return response


async def _render_conversation(
    request: Request, record, user, status_code: int = 200, **form_state
) -> Response:
    thread = await queries.messages_of(db(request), record.id, user)
    # Opening it marks it read. The header bell was read before that: again if it changed.
    if record.customer_id == user.id and await queries.mark_read(db(request), user.id, record):
        request.state.bell = await notifications.bell(db(request), user.id)
    return render(
        request,
        "inbox/conversation.html",
        status_code,
        conversation=record,
        thread=thread,
        can_reply=permissions.can_reply_to_conversation(user, record),
        can_mark_done=permissions.can_mark_done(user, record),
        reply_url=path_for(request, "conversation_reply", number=record.number),
        body=form_state.pop("body", ""),
        errors=form_state.pop("errors", {}),
        confirmation=form_state.pop("confirmation", None),
        unread_count=await queries.unread_count(db(request), user.id) if not user.is_staff else 0,
    )


async def conversation_reply(request: Request) -> Response:
    user = require_user(request)
    record = await queries.conversation_or_404(db(request), request.path_params["number"], user)
    if user.is_staff:
        # Staff answer from the queue, where they choose the status the answer leaves.
        raise HTTPException(403, _("Please answer from the staff queue."))
    flood_seconds = settings_of(request).flood_seconds
    if wait := await writing.seconds_to_wait(db(request), user, None, flood_seconds):
        body = field(await read_refused_form(request), "body", BODY_MAX)
        errors = {"form": flood_message(wait)}
        return await _render_conversation(request, record, user, 429, body=body, errors=errors)
    form, body, files, errors = await read_message_form(request)
    if not permissions.can_reply_to_conversation(user, record):
        raise HTTPException(403, _("This conversation does not accept replies."))
    if errors:
        return await _render_conversation(request, record, user, 400, body=body, errors=errors)
    try:
        message_id = await writing.reply(
            db(request), record.id, user, body, files, flood_seconds=flood_seconds
        )
    except TooSoon as wait:
        errors = {"form": flood_message(wait.seconds)}
        return await _render_conversation(request, record, user, 429, body=body, errors=errors)
    return redirect(
        path_for(request, "conversation", number=record.number), anchor=f"m{message_id}"
    )


async def conversation_done(request: Request) -> Response:
    """The customer marks their request done (board.conversations.writing.mark_done)."""
    user = require_user(request)
    record = await queries.conversation_or_404(db(request), request.path_params["number"], user)
    if user.is_staff:
        raise HTTPException(403, _("Please set the status from the staff queue."))
    await read_form(request)
    await writing.mark_done(db(request), record.id, user)
    return redirect(path_for(request, "conversation", number=record.number))


async def read_all(request: Request) -> Response:
    user = require_user(request)
    await read_form(request)
    await queries.mark_all_read(db(request), user.id)
    await events.record(db(request), "counts", to_user=user.id)  # the user's other tabs
    return redirect(path_for(request, "inbox"))


async def read_now(request: Request) -> Response:
    """An answer appeared on the customer's open page (static/js/live.js): it is read, as
    if the page had been loaded again; returns the header's new counts."""
    user = require_user(request)
    await read_form(request)
    database = db(request)
    record = await queries.conversation_or_404(database, request.path_params["number"], user)
    if record.customer_id == user.id:
        await queries.mark_read(database, user.id, record)
        await events.record(database, "counts", to_user=user.id)  # the user's other tabs
    counts = await live.header_counts(database, user)
    return JSONResponse(counts, headers={"Cache-Control": "no-store"})


# --- attachments -------------------------------------------------------------------------


def _guest_tokens(request: Request) -> list[str]:
    return [token for token in request.cookies.get(GUEST_COOKIE, "").split(".") if token][:10]


async def attachment(request: Request) -> Response:
    file = await queries.attachment_or_404(db(request), request.path_params["attachment_id"])
    user = current_user(request)
    is_party = user is not None and (user.is_staff or file.customer_id == user.id)
    # A guest link opens files only while its conversation is a guest's, not once joined.
    holds_link = (
        file.customer_id is None
        and file.guest_token_hash is not None
        and any(token_hash(token) == file.guest_token_hash for token in _guest_tokens(request))
    )
    allowed = is_party or holds_link or await mail_link.opens_attachment(request, file)
    if not allowed or (file.internal and not (user and user.is_staff)):
        raise HTTPException(404)  # not a 403: nobody learns that the file exists
    path = stored_path(settings_of(request).upload_dir, file.sha256)
    if not path.exists():
        raise HTTPException(404)
    # Only pictures open in the browser; everything else (and anything a browser could run:
    # HTML, SVG, scripts) is a download, whatever type was stored.
    inline = file.content_type in INLINE_TYPES
    return FileResponse(
        path,
        media_type=file.content_type,
        headers={
            "Content-Disposition": content_disposition(file.filename, inline),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            # Should a file ever be rendered as a page, it runs nothing and reaches nothing.
            "Content-Security-Policy": DOWNLOAD_CSP,
        },
    )


# --- guests ------------------------------------------------------------------------------


async def contact(request: Request) -> Response:
    user = current_user(request)
    if user is not None and not user.is_staff:
        return redirect(path_for(request, "new_message"))  # customers write from the inbox

    async def page(status_code: int = 200, **state) -> Response:
        # A visitor whose browser holds a guest link has written before: rules folded. The
        # shop's banner for visitors shows here too (board/staff/notices.py); a form that
        # is sent and redirects never reads it.
        return await _render_new(
            request,
            "inbox/contact.html",
            status_code,
            rules_open=not _guest_tokens(request),
            public_banner=await notices.public_banner(db(request)),
            **state,
        )

    if request.method == "GET":
        return await page(form={}, errors={})
    ip = client_ip(request)
    limit = settings_of(request).guest_messages_per_hour
    # Checked before the files are even read.
    if await security.limit_reached(db(request), "contact", ip, limit, timedelta(hours=1)):
        form = await read_refused_form(request)
        values = {key: field(form, key, size) for key, size in CONTACT_FIELDS.items()}
        _about, shown, _errors = _read_about(form, [])
        errors = {"form": _("Too many messages from your network. Please try again later.")}
        return await page(429, form=values, errors=errors, about=shown)
    form, body, files, errors = await read_message_form(request)
    # Every post with a valid token counts, refused ones too: each brings files to check.
    await security.record_event(db(request), "contact", ip)
    values = {"name": field(form, "name", 120), "email": field(form, "email", 320), "body": body}
    about, shown, about_errors = _read_about(form, await request_types.active_types(db(request)))
    errors.update(about_errors)
    if field(form, HONEYPOT_FIELD):
        return redirect(path_for(request, "index"))
    blocked = False
    if not values["name"]:
        errors["name"] = _("Please enter your name.")
    if problem := email_problem(values["email"]):
        errors["email"] = problem
    elif blocked := await workflow.is_blocked(db(request), values["email"]):
        errors["email"] = _("We do not accept messages from this address.")
    if errors:
        status_code = 403 if blocked else 400
        return await page(status_code, form=values, errors=errors, about=shown)
    settings = settings_of(request)

    async def mail_the_link(record) -> None:
        await mail.queue(
            db(request),
            "guest_link",
            values["email"],
            {"number": record.number, "conversation_id": record.id},
            to_name=values["name"],
            locale=current_locale.get(),
        )

    try:
        conversation = await writing.open_as_guest(
            db(request),
            values["name"],
            values["email"],
            body,
            files,
            guest_token=partial(mail.guest_token, settings),
            side_effects=mail_the_link,
            notify_cc=settings.notify_cc,
            about=about,
        )
    except NotAllowed as blocked_now:  # blocked while the form was on its way
        errors = {"email": blocked_now.message}
        return await page(403, form=values, errors=errors, about=shown)
    except Invalid as invalid:  # the type was deactivated while the form was open
        return await page(400, form=values, errors=invalid.errors, about=shown)
    token = mail.guest_token(settings, conversation.id)
    response = redirect(path_for(request, "guest_conversation", token=token))
    _remember_guest_token(request, response, token)
    return response


def _remember_guest_token(request: Request, response: Response, token: str) -> None:
    tokens = [t for t in _guest_tokens(request) if t != token][:9] + [token]
    response.set_cookie(
        GUEST_COOKIE,
        ".".join(tokens),
        max_age=180 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).https,
    )


async def _guest_conversation_or_login(request: Request, token: str) -> queries.Record:
    """The conversation behind a guest link, while it is a guest's. Once joined to a
    customer account, the link shows nothing more: its holder is asked to log in."""
    record = await queries.conversation_for_token(db(request), token)
    if record.customer_id is None:
        return record
    target = path_for(request, "conversation", number=record.number)
    user = current_user(request)
    if user is not None and user.id == record.customer_id:
        return redirect(target)
    return redirect(path_for(request, "login").include_query_params(next=str(target)))


async def guest_conversation(request: Request) -> Response:
    token = request.path_params["token"]
    record = await _guest_conversation_or_login(request, token)
    if isinstance(record, Response):
        return record
    await notify.opened(db(request), record)
    response = await _render_guest(request, record, token)
    _remember_guest_token(request, response, token)
    return response


async def guest_join(request: Request) -> Response:
    """Moves a guest conversation into the inbox of the logged-in customer whose address
    it was written under, after they said so on the guest page (a POST: a link or an
    image in someone's post cannot do it)."""
    user = require_user(request)
    token = request.path_params["token"]
    await read_form(request)
    record = await _guest_conversation_or_login(request, token)
    if isinstance(record, Response):
        return record
    await writing.join_to_account(db(request), record.id, user)
    return redirect(path_for(request, "conversation", number=record.number))


async def _render_guest(request, record, token, status_code=200, **form_state) -> Response:
    thread = await queries.messages_of(db(request), record.id, None)
    user = current_user(request)
    response = render(
        request,
        "inbox/conversation.html",
        status_code,
        conversation=record,
        thread=thread,
        guest=True,
        live_guest=token,
        can_reply=permissions.guest_can_reply(record),
        reply_url=path_for(request, "guest_reply", token=token),
        join_url=path_for(request, "guest_join", token=token)
        if user is not None and permissions.customer_may_join(record, user)
        else None,
        body=form_state.pop("body", ""),
        errors=form_state.pop("errors", {}),
    )
    # The URL holds the secret: it must not leak to other sites or caches.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


async def guest_reply(request: Request) -> Response:
    token = request.path_params["token"]
    record = await _guest_conversation_or_login(request, token)
    if isinstance(record, Response):
        raise HTTPException(403, _("This conversation now belongs to a customer account."))
    flood_seconds = settings_of(request).flood_seconds
    if wait := await writing.seconds_to_wait(db(request), None, record.id, flood_seconds):
        body = field(await read_refused_form(request), "body", BODY_MAX)
        errors = {"form": flood_message(wait)}
        return await _render_guest(request, record, token, 429, body=body, errors=errors)
    form, body, files, errors = await read_message_form(request)
    if not permissions.guest_can_reply(record):
        raise HTTPException(403, _("This conversation does not accept replies."))
    if errors:
        return await _render_guest(request, record, token, 400, body=body, errors=errors)
    try:
        message_id = await writing.reply(
            db(request), record.id, None, body, files, flood_seconds=flood_seconds
        )
    except TooSoon as wait:
        errors = {"form": flood_message(wait.seconds)}
        return await _render_guest(request, record, token, 429, body=body, errors=errors)
    return redirect(path_for(request, "guest_conversation", token=token), anchor=f"m{message_id}")


routes = [
    Route("/inbox", inbox, name="inbox"),
    Route("/inbox/new", new_message, methods=["GET", "POST"], name="new_message"),
    Route("/inbox/read-all", read_all, methods=["POST"], name="read_all"),
    Route("/inbox/{number:int}", conversation, name="conversation"),
    Route("/inbox/{number:int}/read", read_now, methods=["POST"], name="conversation_read"),
    Route(
        "/inbox/{number:int}/reply", conversation_reply, methods=["POST"], name="conversation_reply"
    ),
    Route(
        "/inbox/{number:int}/done", conversation_done, methods=["POST"], name="conversation_done"
    ),
    Route("/attachments/{attachment_id:int}/{filename}", attachment, name="attachment"),
    Route("/contact", contact, methods=["GET", "POST"], name="contact"),
    Route("/g/{token}", guest_conversation, name="guest_conversation"),
    Route("/g/{token}/reply", guest_reply, methods=["POST"], name="guest_reply"),
    Route("/g/{token}/join", guest_join, methods=["POST"], name="guest_join"),
]
