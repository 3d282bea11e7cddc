"""A person's own data: the ZIP export (customers and staff) and erasure (staff only).

GET /account/data.zip                    the logged-in person downloads their data
GET /staff/customers/{id}/data.zip       staff download a customer's data (with the note)
GET, POST /staff/customers/{id}/erase    staff confirm with the customer number, then erase

What the archive holds is described in board/accounts/export.py, what erasure changes
and keeps in board/accounts/erasure.py.
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from board.accounts import erasure, export, queries
from board.i18n import gettext as _
from board.security import hash_password_async
from board.web import (
    db,
    field,
    path_for,
    read_form,
    redirect,
    render,
    require_staff,
    require_user,
    settings_of,
)

# --- export --------------------------------------------------------------------------------


async def _archive_response(request: Request, person, for_staff: bool) -> Response:
    collected = await export.collect(db(request), person, for_staff)
    archive = await run_in_threadpool(
        export.write_archive, collected, settings_of(request).upload_dir
    )
    size = archive.seek(0, 2)
    archive.seek(0)
    return StreamingResponse(
        export.read_chunks(archive),  # a plain iterator: Starlette reads it in a thread
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="{export.archive_name(person)}"',
            "content-length": str(size),
            "cache-control": "private, no-store",
        },
    )


async def account_export(request: Request) -> Response:
    user = require_user(request)
    person = await queries.user_by_id(db(request), user.id)
    return await _archive_response(request, person, for_staff=False)


async def staff_customer_export(request: Request) -> Response:
    require_staff(request)
    person = await queries.user_by_id(db(request), request.path_params["customer_id"])
    if person is None or person.role != "customer":
        raise HTTPException(404)  # staff accounts are no customers
    return await _archive_response(request, person, for_staff=True)


# --- erasure -------------------------------------------------------------------------------


def confirmation_matches(typed: str, customer_number: int | None) -> bool:
    """Staff type the customer number ("10023" or "#10023") to confirm."""
    typed = typed.strip().removeprefix("#").strip()
    return customer_number is not None and typed == str(customer_number)


# Changed texts the confirmation page lists; the count says how many there are in all.
PREVIEW_CHANGES = 50


async def _erase_page(request: Request, facts, status_code: int = 200, **context) -> Response:
    changes = []
    if facts.person.erased_at is None:
        changes = (await erasure.planned_changes(db(request), facts.person)).texts
    return render(
        request,
        "accounts/erase.html",
        status_code,
        facts=facts,
        person=facts.person,
        changes=changes[:PREVIEW_CHANGES],
        change_count=len(changes),
        confirm=context.get("confirm", ""),
        errors=context.get("errors", {}),
    )


async def erase(request: Request) -> Response:
    staff = require_staff(request)
    facts = await erasure.customer_for_erasure(db(request), request.path_params["customer_id"])
    if facts is None:
        raise HTTPException(404)
    if request.method == "GET":
        return await _erase_page(request, facts)
    form = await read_form(request)
    person = facts.person
    if person.erased_at is not None:
        return await _erase_page(request, facts, 409)  # the page says since when
    typed = field(form, "confirm", 40)
    if not confirmation_matches(typed, person.customer_number):
        message = _(
            "Nothing was erased. Please type the customer number %(number)s to confirm.",
            number=person.customer_number,
        )
        return await _erase_page(request, facts, 400, confirm=typed, errors={"confirm": message})
    unusable_password_hash = await hash_password_async(secrets.token_urlsafe(32))
    removed = await erasure.erase_customer(db(request), person.id, staff.id, unusable_password_hash)
    if removed is None:  # another staff member erased them a moment ago
        facts = await erasure.customer_for_erasure(db(request), person.id)
        return await _erase_page(request, facts, 409)
    await erasure.remove_unreferenced_files(db(request), settings_of(request).upload_dir, removed)
    target = path_for(request, "staff_customer", customer_id=person.id)
    return redirect(target.include_query_params(erased=1))


routes = [
    Route("/account/data.zip", account_export, name="account_export"),
    Route(
        "/staff/customers/{customer_id:int}/data.zip",
        staff_customer_export,
        name="staff_customer_export",
    ),
    Route(
        "/staff/customers/{customer_id:int}/erase",
        erase,
        methods=["GET", "POST"],
        name="staff_customer_erase",
    ),
]
