"""The conversation behind a doorbell mail's signed link (/m/…), and revoking such links.

The link speaks for its customer in that one conversation: it reads, marks read and
answers there, and nothing else. It never starts a session, so /inbox, other requests
and the account stay behind the login (board/mail_links.py, SECURITY.md).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import mail_links, permissions
from board.conversations import writing
from board.db import conversations, fetch_row, utcnow, write_transaction
from board.errors import TooSoon
from board.i18n import gettext as _
from board.inbox import queries
from board.message_form import BODY_MAX, read_message_form, read_refused_form
from board.security import CurrentUser
from board.web import (
    current_user,
    db,
    field,
    flood_message,
    path_for,
    read_form,
    redirect,
    render,
    require_staff,
    require_user,
    settings_of,
)

# The links of the pages opened, so that their attachments download (board.inbox.routes.
# attachment); sent to /attachments only, and each checked again there.
MAIL_LINK_COOKIE = "board_mail_link"
COOKIE_SEPARATOR = "~"  # in no token: digits, a dot and URL-safe base64
COOKIE_TOKENS = 5


async def _holder(request: Request, token: str) -> mail_links.Holder | mail_links.Dead | None:
    settings = settings_of(request)
    return await mail_links.holder(db(request), settings.secret_key, token, settings.mail_link_days)


def link_tokens(request: Request) -> list[str]:
    cookie = request.cookies.get(MAIL_LINK_COOKIE, "")
    return [token for token in cookie.split(COOKIE_SEPARATOR) if token][:COOKIE_TOKENS]


async def opens_attachment(request: Request, file) -> bool:
    """A page opened through a mail link downloads the files of its conversation that
    the customer sees, while the link works."""
    if file.internal:
        return False
    for token in link_tokens(request):
        found = await _holder(request, token)
        if isinstance(found, mail_links.Holder) and found.conversation_id == file.conversation_id:
            return True
    return False


def _remember(request: Request, response: Response, token: str, holder: mail_links.Holder):
    tokens = [t for t in link_tokens(request) if t != token][: COOKIE_TOKENS - 1] + [token]
    remaining = holder.expires_at - utcnow()
    response.set_cookie(
        MAIL_LINK_COOKIE,
        COOKIE_SEPARATOR.join(tokens),
        max_age=max(60, int(remaining.total_seconds())),
        path="/attachments",
        httponly=True,
        samesite="lax",
        secure=settings_of(request).https,
    )


def _other_account(request: Request, status_code: int = 403) -> Response:
    """Someone else is logged in in this browser: the link's page is not shown beside
    their account, and nothing is written under either name."""
    return render(request, "inbox/mail_link_dead.html", status_code, other_account=True)


def _dead(request: Request, found: mail_links.Dead, body: str = "") -> Response:
    target = None
    if found.number is not None:
        target = path_for(request, "conversation", number=found.number)
    login_url = path_for(request, "login")
    if target is not None:
        login_url = login_url.include_query_params(next=str(target))
    return render(
        request,
        "inbox/mail_link_dead.html",
        410,
        login_url=login_url,
        days=f"{settings_of(request).mail_link_days:g}",
        body=body,
    )


async def _opened(request: Request, token: str) -> mail_links.Holder | Response:
    """The link's holder, or the page that answers instead (a redirect for the logged-in
    customer and staff, a refusal for another account, the page of a dead link)."""
    found = await _holder(request, token)
    if found is None:
        raise HTTPException(404)
    if isinstance(found, mail_links.Dead):
        return _dead(request, found)
    user = current_user(request)
    if user is not None and user.is_staff:
        return redirect(path_for(request, "staff_conversation", number=found.number))
    if user is not None and user.id == found.customer.id:
        return redirect(path_for(request, "conversation", number=found.number))
    if user is not None:
        return _other_account(request)
    return found


async def _conversation(request: Request, holder: mail_links.Holder):
    record = await fetch_row(
        db(request), queries.CONVERSATION.where(conversations.c.id == holder.conversation_id)
    )
    if record is None:  # pragma: no cover - the link's query joined it a moment ago
        raise HTTPException(404)
    return record


async def _render(
    request: Request, token: str, holder: mail_links.Holder, record, status_code=200, **form
) -> Response:
    customer: CurrentUser = holder.customer
    thread = await queries.messages_of(db(request), record.id, customer)
    response = render(
        request,
        "inbox/conversation.html",
        status_code,
        conversation=record,
        thread=thread,
        mail_link=True,
        live_link=token,
        link_expires_at=holder.expires_at,
        login_url=path_for(request, "login").include_query_params(
            next=str(path_for(request, "conversation", number=record.number))
        ),
        can_reply=permissions.can_reply_to_conversation(customer, record),
        can_mark_done=False,
        reply_url=path_for(request, "mail_link_reply", token=token),
        body=form.pop("body", ""),
        errors=form.pop("errors", {}),
    )
    _remember(request, response, token, holder)
    return response


async def mail_link(request: Request) -> Response:
    token = request.path_params["token"]
    holder = await _opened(request, token)
    if isinstance(holder, Response):
        return holder
    record = await _conversation(request, holder)
    # The customer has read it, as on their inbox page: the doorbell may ring again.
    async with write_transaction(db(request)):
        await queries.mark_read(db(request), holder.customer.id, record)
    return await _render(request, token, holder, record)


async def mail_link_reply(request: Request) -> Response:
    token = request.path_params["token"]
    found = await _holder(request, token)
    if found is None:
        await read_refused_form(request)  # a POST without its CSRF token is a 403 first
        raise HTTPException(404)
    if isinstance(found, mail_links.Dead):
        # Nothing is stored; the text comes back so that it is not lost.
        form = await read_refused_form(request)
        return _dead(request, found, field(form, "body", BODY_MAX))
    user = current_user(request)
    if user is not None and user.id != found.customer.id:
        await read_refused_form(request)  # the CSRF check first: a 403 either way
        return _other_account(request)
    holder, customer = found, found.customer
    record = await _conversation(request, holder)
    flood_seconds = settings_of(request).flood_seconds
    if wait := await writing.seconds_to_wait(db(request), customer, None, flood_seconds):
        body = field(await read_refused_form(request), "body", BODY_MAX)
        errors = {"form": flood_message(wait)}
        return await _render(request, token, holder, record, 429, body=body, errors=errors)
    form, body, files, errors = await read_message_form(request)
    if not permissions.can_reply_to_conversation(customer, record):
        raise HTTPException(403, _("This conversation does not accept replies."))
    if errors:
        return await _render(request, token, holder, record, 400, body=body, errors=errors)
    try:
        message_id = await writing.reply(
            db(request), record.id, customer, body, files, flood_seconds=flood_seconds
        )
    except TooSoon as wait:
        errors = {"form": flood_message(wait.seconds)}
        return await _render(request, token, holder, record, 429, body=body, errors=errors)
    return redirect(path_for(request, "mail_link", token=token), anchor=f"m{message_id}")


# --- revoking ------------------------------------------------------------------------------


async def revoke_mine(request: Request) -> Response:
    """The customer, logged in: every link in mails sent to them stops working."""
    user = require_user(request)
    await read_form(request)
    await mail_links.revoke_for_customer(db(request), user.id)
    return redirect(path_for(request, "account").include_query_params(saved="links"))


async def revoke_for_conversation(request: Request) -> Response:
    """Staff: the links in mails about this conversation stop working."""
    require_staff(request)
    await read_form(request)
    record = await queries.conversation_by_number(db(request), request.path_params["number"])
    if record is None:
        raise HTTPException(404)
    await mail_links.revoke_for_conversation(db(request), record.id)
    target = path_for(request, "staff_conversation", number=record.number)
    return redirect(target.include_query_params(links="revoked"))


routes = [
    Route("/m/{token}", mail_link, name="mail_link"),
    Route("/m/{token}/reply", mail_link_reply, methods=["POST"], name="mail_link_reply"),
    Route("/account/mail-links/revoke", revoke_mine, methods=["POST"], name="revoke_mail_links"),
    Route(
        "/staff/t/{number:int}/mail-links/revoke",
        revoke_for_conversation,
        methods=["POST"],
        name="staff_revoke_mail_links",
    ),
]
