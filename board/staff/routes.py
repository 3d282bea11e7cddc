"""The staff area: the queue, one conversation with its customer, answers, canned replies,
customers' notes, announcements and invoice notices, and the staff home page."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import i18n, live
from board.conversations import types as request_types
from board.conversations import workflow, writing
from board.db import users, utcnow
from board.errors import Invalid
from board.i18n import gettext as _
from board.inbox import queries as inbox_queries
from board.message_form import read_message_form
from board.search import querying
from board.security import STAFF_ROLES
from board.staff import canned, handover, notices, publish, queries
from board.staff.cover_page import routes as cover_routes
from board.staff.customers_page import routes as customer_routes
from board.staff.notices_page import routes as notice_routes
from board.staff.publish import routes as publish_routes
from board.staff.stats_list_page import routes as stats_list_routes
from board.staff.stats_page import routes as stats_routes
from board.staff.team import routes as team_routes
from board.staff.types_page import routes as type_routes
from board.staff.webhooks_page import routes as webhook_routes
from board.web import (
    conversation_opened,
    db,
    field,
    page_count,
    page_number,
    path_for,
    read_form,
    redirect,
    render,
    require_staff,
    row_key,
    safe_next,
    settings_of,
)

PER_PAGE = 30
# Mine and nobody's first: what a staff member should pick up. Newest first within it (see
# queries.queue_order): a request that just arrived is never on page 2.
ASSIGNED_FILTERS = ("me_none", "me", "none", "all")
NOTE_MAX = 5_000
CANNED_BODY_MAX = 20_000


def _wait_facts(request: Request, rows, now: datetime) -> dict[int, tuple]:
    """How long each open request has waited (to the minute, as the queue shows it), its
    business hours, and whether that is past the alert; for a pending one, how long the
    customer has not answered, and whether that is past BOARD_STALE_PENDING_DAYS. The
    same tuple for a minute, so that the queue's rows come from the fragment cache."""
    settings = settings_of(request)
    office = settings.office
    minute = now.replace(second=0, microsecond=0)
    alert_since = office.moment_before(now, settings.wait_alert_hours)
    stale_hours = settings.stale_pending_days * office.hours_per_day()
    stale_since = office.moment_before(now, stale_hours) if stale_hours > 0 else None
    facts = {}
    for row in rows:
        if row.status == "open" and row.waiting_since is not None:
            since, alert = row.waiting_since, alert_since
        elif row.status == "pending" and stale_since is not None and row.last_message_at:
            since, alert = row.last_message_at, stale_since
        else:
            continue
        facts[row.id] = WaitFact(
            max(timedelta(0), minute - since.replace(second=0, microsecond=0)),
            round(_business_hours(office, since, minute), 1),
            since < alert,
        )
    return facts


class WaitFact(NamedTuple):
    waited: timedelta
    business_hours: float
    overdue: bool


@lru_cache(maxsize=4096)
def _business_hours(office, since: datetime, minute: datetime) -> float:
    """Each open request's business hours, computed once a minute rather than per view."""
    return office.hours_between(since, minute)


# --- the queue and the staff home --------------------------------------------------------


async def queue(request: Request) -> Response:
    user = require_staff(request)
    view = await _queue_view(request, user)
    return render(
        request,
        "staff/queue.html",
        queue_tag=_queue_tag(request, user, view),
        notice=await notices.staff_notice(db(request)),
        handed=await handover.handed_over(db(request), user.id),
        **view,
    )


async def queue_live(request: Request) -> Response:
    """The queue's changing parts alone, for live.js when an event says the queue changed:
    304 without rendering while what this view shows is the same (most events concern
    conversations on other pages or in other tabs), else just the parts, not the page."""
    user = require_staff(request)
    view = await _queue_view(request, user)
    tag = _queue_tag(request, user, view)
    headers = {"ETag": tag, "Cache-Control": "no-cache, private"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    response = render(request, "staff/_queue_parts.html", queue_tag=tag, **view)
    response.headers.update(headers)
    return response


def _queue_tag(request: Request, user, view: dict) -> str:
    """What the parts are made of, as a tag that is the same in every worker."""
    shown = (
        user.id,
        i18n.current_locale.get(),
        i18n.current_timezone.get(),
        view["counts_key"],
        [row_key(row) for row in view["rows"]],
        sorted(view["waits"].items()),
        sorted((key, row_key(row)) for key, row in view["absent"].items()),
        *(view[name] for name in ("status", "assigned", "order", "type", "query", "page")),
        view["pages"],
        [row_key(row) for row in view["request_types"]],
    )
    return '"' + hashlib.blake2b(repr(shown).encode(), digest_size=12).hexdigest() + '"'


def _type_filter(text: str, known: list) -> tuple[str, int | None]:
    """The queue's `type` parameter as shown ("" for all) and as the queries take it."""
    if text == "none":
        return text, queries.NO_TYPE
    if text.isdigit() and int(text) in {row.id for row in known}:
        return text, int(text)
    return "", None


async def _queue_view(request: Request, user) -> dict:
    params = request.query_params
    status = params.get("status") if params.get("status") in workflow.STATUSES else "open"
    assigned = params.get("assigned") if params.get("assigned") in ASSIGNED_FILTERS else "me_none"
    order = queries.queue_order(status, params.get("order"))
    query = params.get("q", "").replace("\x00", "").strip()[:200]
    page = page_number(request)
    all_types = await request_types.all_types(db(request))
    type_param, type_id = _type_filter(params.get("type", ""), all_types)
    numbers = None
    if query:
        numbers = await querying.conversation_numbers(settings_of(request), query, user)
    counts = await queries.queue_counts(db(request), user.id, type_id)
    rows = await queries.queue_page(
        db(request), status, assigned, user.id, query, page, PER_PAGE, numbers, order, type_id
    )
    if query:
        total = await queries.queue_total(
            db(request), status, assigned, user.id, query, numbers, type_id
        )
    else:
        total = counts[status][assigned]
    return {
        "request_types": all_types,
        "type": type_param,
        "rows": rows,
        "waits": _wait_facts(request, rows, utcnow()),
        "absent": await queries.current_absences(db(request)),
        "counts": counts,
        "counts_key": tuple((name, tuple(sorted(n.items()))) for name, n in counts.items()),
        "status": status,
        "assigned": assigned,
        "order": order,
        "query": query,
        "page": page,
        "pages": page_count(total, PER_PAGE),
        "total": total,
    }


async def home(request: Request) -> Response:
    user = require_staff(request)
    settings = settings_of(request)
    now = utcnow()
    counts = await queries.queue_counts(db(request), user.id)
    overdue = await queries.count_waiting_since_before(
        db(request), settings.office.moment_before(now, settings.wait_alert_hours)
    )
    latest = await queries.latest_conversations(db(request))
    return render(
        request,
        "staff/home.html",
        counts=counts,
        overdue=overdue,
        latest=latest,
        waits=_wait_facts(request, latest, now),
        notice=await notices.staff_notice(db(request)),
        handed=await handover.handed_over(db(request), user.id),
    )


# --- one conversation --------------------------------------------------------------------


async def conversation(request: Request) -> Response:
    user = require_staff(request)
    record = await inbox_queries.conversation_or_404(
        db(request), request.path_params["number"], user
    )
    await conversation_opened(request, record.id)
    return await _render_conversation(request, record, user)


def _canned_texts(record, person, user, thread, replies) -> dict[str, str]:
    """Each canned reply's text by shortcut, its placeholders filled for this conversation
    and this staff member: what the reply box inserts and what `#shortcut` becomes."""
    from_customer = (
        message["body"]
        for message in reversed(thread)
        if not message["internal"] and message["author_role"] not in STAFF_ROLES
    )
    values = canned.placeholder_values(
        person.name if person is not None else record.guest_name,
        record.number,
        user.name,
        canned.order_number_in(from_customer),
    )
    return {row.shortcut: canned.fill(row.body, values) for row in replies}


async def _render_conversation(
    request: Request, record, user, status_code: int = 200, **form_state
) -> Response:
    database = db(request)
    person = await queries.customer_or_none(database, record.customer_id)
    thread = await inbox_queries.messages_of(database, record.id, user)
    replies = await queries.canned_replies_list(database)
    filled = _canned_texts(record, person, user, thread, replies)
    return render(
        request,
        "staff/conversation.html",
        status_code,
        conversation=record,
        thread=thread,
        history=await queries.history_of(database, record.id),
        person=person,
        others=await queries.conversations_of_person(
            database, record.customer_id, record.guest_email, except_id=record.id
        ),
        can_publish=publish.can_publish(record),
        staff=await queries.active_staff(database),
        absent=await queries.current_absences(database),
        # For the reply box's #shortcut suggestions (static/js/staff.js), filled in.
        canned_json=[
            {"shortcut": row.shortcut, "title": row.title, "body": filled[row.shortcut]}
            for row in replies
        ],
        seen_at=await live.seen_by_customer(database, record),
        body=form_state.get("body", ""),
        internal=form_state.get("internal", False),
        errors=form_state.get("errors", {}),
    )


async def _staff_signature(request: Request, user_id: int) -> str:
    return await db(request).fetch_val(sa.select(users.c.signature).where(users.c.id == user_id))


async def reply(request: Request) -> Response:
    user = require_staff(request)
    record = await inbox_queries.conversation_or_404(
        db(request), request.path_params["number"], user
    )
    form, body, files, errors = await read_message_form(request)
    internal = field(form, "internal") in {"1", "on", "true"}
    status = field(form, "status") or ("pending" if not internal else record.status)
    if status not in workflow.STATUSES:
        errors["status"] = _("Please choose a status.")
    seen = field(form, "seen")
    if not errors and seen.isdigit():
        # Without scripts too: an answer that crossed this one is shown before it is sent.
        crossing = await live.written_since(db(request), record.id, int(seen), user.id)
        if crossing is not None:
            errors["collision"] = _(
                "%(name)s wrote in this conversation while you were typing. "
                "Please read it, then send your answer again.",
                name=crossing,
            )
            return await _render_conversation(
                request,
                record,
                user,
                409,
                body=body,
                internal=internal,
                errors=errors,
            )
    if errors:
        return await _render_conversation(
            request,
            record,
            user,
            400,
            body=body,
            internal=internal,
            errors=errors,
        )
    replies = await queries.canned_replies_list(db(request))
    if replies and "#" in body:
        thread = await inbox_queries.messages_of(db(request), record.id, user)
        person = await queries.customer_or_none(db(request), record.customer_id)
        body = canned.expand(body, _canned_texts(record, person, user, thread, replies))
    if canned.UNFILLED_ORDER in body:
        # No order number was found for {order}: the staff member fills it in first.
        errors["body"] = _(
            "No order number is known for {order} in this conversation. "
            "Please replace {order} with the order number."
        )
        return await _render_conversation(
            request, record, user, 400, body=body, internal=internal, errors=errors
        )
    if not internal and (signature := await _staff_signature(request, user.id)):
        body = f"{body}\n\n{signature}"
    message_id = await writing.reply(
        db(request), record.id, user, body, files, internal=internal, status=status
    )
    if field(form, "then") == "next":  # "Send and next": the next request that waits
        number = await queries.next_waiting(db(request), user.id, record.id)
        if number is not None:
            return redirect(path_for(request, "staff_conversation", number=number))
        return redirect(path_for(request, "staff_queue"))
    return redirect(
        path_for(request, "staff_conversation", number=record.number), anchor=f"m{message_id}"
    )


async def update(request: Request) -> Response:
    """Status and assignee without an answer: take it, hand it on with a note, close it."""
    user = require_staff(request)
    record = await inbox_queries.conversation_or_404(
        db(request), request.path_params["number"], user
    )
    form = await read_form(request)
    status = field(form, "status")
    wanted = field(form, "assignee")
    note = field(form, "note", 1_000)
    errors = {}
    if status and status not in workflow.STATUSES:
        errors["update"] = _("Please choose a status.")
    staff_ids = {member.id for member in await queries.active_staff(db(request))}
    assignee_id: int | None = record.assignee_id
    if wanted == "me":
        assignee_id = user.id
    elif wanted == "none":
        assignee_id = None
    elif wanted.isdigit() and int(wanted) in staff_ids:
        assignee_id = int(wanted)
    elif wanted:
        errors["update"] = _("Please choose an active staff member.")
    if errors:
        return await _render_conversation(request, record, user, 400, errors=errors)
    try:
        await writing.change(db(request), record.id, user, status or None, assignee_id, note)
    except Invalid as invalid:  # the staff member was deactivated meanwhile
        return await _render_conversation(request, record, user, 400, errors=invalid.errors)
    return redirect(path_for(request, "staff_conversation", number=record.number))


# --- customers ---------------------------------------------------------------------------


async def customer(request: Request) -> Response:
    require_staff(request)
    person = await queries.customer_or_none(db(request), request.path_params["customer_id"])
    if person is None:
        raise HTTPException(404)
    if request.method == "POST":
        form = await read_form(request)
        await queries.save_customer_note(
            db(request), person.id, field(form, "note", NOTE_MAX), field(form, "vip") == "1"
        )
        fallback = str(path_for(request, "staff_customer", customer_id=person.id))
        return redirect(safe_next(field(form, "next"), fallback))
    return render(
        request,
        "staff/customer.html",
        person=person,
        conversations=await queries.conversations_of_person(db(request), person.id, None, limit=50),
    )


# --- canned replies ----------------------------------------------------------------------


def _canned_problems(shortcut: str, title: str, body: str) -> dict[str, str]:
    errors = {}
    if not canned.is_valid_shortcut(shortcut):
        errors["shortcut"] = _(
            "A shortcut starts with a letter and uses only a-z, 0-9, - and _ (at most 40)."
        )
    if not title:
        errors["title"] = _("Please enter a title.")
    if not body:
        errors["body"] = _("Please write the text of the reply.")
    elif unknown := canned.unknown_placeholders(body):
        errors["body"] = _(
            "Unknown placeholder: %(names)s. Possible are {vorname}, {first_name}, {name}, "
            "{ticket}, {agent} and {order}.",
            names=", ".join("{" + name + "}" for name in unknown),
        )
    return errors


async def canned_replies(request: Request) -> Response:
    user = require_staff(request)
    values = {"shortcut": "", "title": "", "body": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = await read_form(request)
        values = {
            "shortcut": canned.normalize_shortcut(field(form, "shortcut", 60)),
            "title": field(form, "title", 120),
            "body": field(form, "body", CANNED_BODY_MAX),
        }
        errors = _canned_problems(**values)
        if not errors and await queries.shortcut_taken(db(request), values["shortcut"], None):
            errors["shortcut"] = _("This shortcut is already in use.")
        if not errors:
            await queries.save_canned_reply(db(request), None, author_id=user.id, **values)
            return redirect(path_for(request, "canned_replies"))
    return render(
        request,
        "staff/replies.html",
        400 if errors else 200,
        replies=await queries.canned_replies_list(db(request)),
        values=values,
        errors=errors,
    )


async def canned_reply(request: Request) -> Response:
    user = require_staff(request)
    existing = await queries.canned_reply_or_404(db(request), request.path_params["reply_id"])
    values = {"shortcut": existing.shortcut, "title": existing.title, "body": existing.body}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = await read_form(request)
        values = {
            "shortcut": canned.normalize_shortcut(field(form, "shortcut", 60)),
            "title": field(form, "title", 120),
            "body": field(form, "body", CANNED_BODY_MAX),
        }
        errors = _canned_problems(**values)
        if not errors and await queries.shortcut_taken(
            db(request), values["shortcut"], existing.id
        ):
            errors["shortcut"] = _("This shortcut is already in use.")
        if not errors:
            await queries.save_canned_reply(db(request), existing.id, author_id=user.id, **values)
            return redirect(path_for(request, "canned_replies"))
    return render(
        request,
        "staff/reply_edit.html",
        400 if errors else 200,
        reply=existing,
        values=values,
        errors=errors,
    )


async def canned_reply_delete(request: Request) -> Response:
    require_staff(request)
    existing = await queries.canned_reply_or_404(db(request), request.path_params["reply_id"])
    await read_form(request)
    await queries.delete_canned_reply(db(request), existing.id)
    return redirect(path_for(request, "canned_replies"))


# --- announcements and invoice notices ---------------------------------------------------


async def announce(request: Request) -> Response:
    user = require_staff(request)
    if request.method == "GET":
        sent = request.query_params.get("sent", "")
        return render(
            request,
            "staff/announce.html",
            body="",
            errors={},
            sent=int(sent) if sent.isdigit() else None,
        )
    form = await read_form(request)
    body = field(form, "body", 60_000)
    if not body:
        errors = {"body": _("Please write the announcement.")}
        return render(request, "staff/announce.html", 400, body=body, errors=errors, sent=None)
    count = await writing.announce(db(request), user, body)
    return redirect(path_for(request, "announce").include_query_params(sent=count))


async def write(request: Request) -> Response:
    """A new request that staff open with a customer; it waits for the customer's answer."""
    return await _to_one_customer(request, "staff/write.html", writing.open_by_staff)


async def invoice(request: Request) -> Response:
    return await _to_one_customer(
        request, "staff/invoice.html", writing.send_invoice, _invoice_file_errors
    )


def _invoice_file_errors(files) -> dict[str, str]:
    if not files:
        return {"attachments": _("Please attach the invoice as a PDF file.")}
    if any(file.content_type != "application/pdf" for file in files):
        return {"attachments": _("Invoices must be PDF files.")}
    return {}


async def _to_one_customer(request: Request, template: str, send, file_errors=None) -> Response:
    """The form of a message from the shop to one customer, found by customer number or
    email (a new request, an invoice notice): refused with the text kept, else `send`."""
    user = require_staff(request)
    if request.method == "GET":
        wanted = {"customer": request.query_params.get("customer", "")[:320]}
        return render(request, template, values=wanted, errors={})
    form, body, files, errors = await read_message_form(request)
    values = {"customer": field(form, "customer", 320), "body": body}
    recipient = await queries.customer_by_login(db(request), values["customer"])
    if recipient is None:
        errors["customer"] = _("No customer has this customer number or email address.")
    if file_errors is not None and "attachments" not in errors:
        errors.update(file_errors(files))
    if errors:
        return render(request, template, 400, values=values, errors=errors)
    try:
        record = await send(db(request), user, recipient.id, body, files)
    except Invalid as invalid:  # the customer was erased or deactivated meanwhile
        return render(request, template, 400, values=values, errors=invalid.errors)
    return redirect(path_for(request, "staff_conversation", number=record.number))


routes = [
    Route("/staff", queue, name="staff_queue"),
    Route("/staff/queue/live", queue_live, name="staff_queue_live"),
    Route("/staff/home", home, name="staff_home"),
    Route("/staff/t/{number:int}", conversation, name="staff_conversation"),
    Route("/staff/t/{number:int}/reply", reply, methods=["POST"], name="staff_reply"),
    Route("/staff/t/{number:int}/update", update, methods=["POST"], name="staff_update"),
    *customer_routes,
    Route(
        "/staff/customers/{customer_id:int}",
        customer,
        methods=["GET", "POST"],
        name="staff_customer",
    ),
    Route("/staff/replies", canned_replies, methods=["GET", "POST"], name="canned_replies"),
    Route(
        "/staff/replies/{reply_id:int}", canned_reply, methods=["GET", "POST"], name="canned_reply"
    ),
    Route(
        "/staff/replies/{reply_id:int}/delete",
        canned_reply_delete,
        methods=["POST"],
        name="canned_reply_delete",
    ),
    Route("/staff/announce", announce, methods=["GET", "POST"], name="announce"),
    Route("/staff/invoice", invoice, methods=["GET", "POST"], name="invoice"),
    Route("/staff/write", write, methods=["GET", "POST"], name="staff_write"),
    *team_routes,
    *cover_routes,
    *notice_routes,
    *webhook_routes,
    *type_routes,
    *publish_routes,
    *stats_routes,
    *stats_list_routes,
]
