"""The request types page (/staff/types): the shop's types, added, renamed, deactivated."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.conversations import types as request_types
from board.errors import Invalid
from board.i18n import gettext as _
from board.web import db, field, path_for, read_form, redirect, render, require_staff

NAME_FIELD_MAX = 200  # read a little longer than allowed, so that "too long" can be said


async def _render_types(request: Request, status_code: int = 200, **context) -> Response:
    context.setdefault("new_name", "")
    context.setdefault("errors", {})
    context.setdefault("edit_forms", {})
    context.setdefault("edit_errors", {})
    return render(
        request,
        "staff/types.html",
        status_code,
        request_types=await request_types.all_types(db(request)),
        **context,
    )


async def types_list(request: Request) -> Response:
    """Every type; a POST adds one (field `name`)."""
    require_staff(request)
    if request.method == "GET":
        return await _render_types(request)
    form = await read_form(request)
    name = field(form, "name", NAME_FIELD_MAX)
    try:
        await request_types.create_type(db(request), name)
    except Invalid as invalid:
        return await _render_types(request, 400, new_name=name, errors=invalid.errors)
    return redirect(path_for(request, "request_types"))


async def type_update(request: Request) -> Response:
    """Renames a type or (de)activates it: fields `name` and `active` (1 or 0)."""
    require_staff(request)
    form = await read_form(request)
    existing = await request_types.type_or_404(db(request), request.path_params["type_id"])
    shown = {
        "name": field(form, "name", NAME_FIELD_MAX) if "name" in form else existing.name,
        "active": field(form, "active", 5) if "active" in form else str(int(existing.is_active)),
    }
    active = {"1": True, "0": False}.get(shown["active"])
    errors = {}
    if active is None:
        errors["active"] = _("Please choose active or deactivated.")
    else:
        try:
            await request_types.change_type(db(request), existing.id, shown["name"], active)
        except Invalid as invalid:
            errors = invalid.errors
    if errors:
        return await _render_types(
            request, 400, edit_forms={existing.id: shown}, edit_errors={existing.id: errors}
        )
    return redirect(path_for(request, "request_types"))


routes = [
    Route("/staff/types", types_list, methods=["GET", "POST"], name="request_types"),
    Route("/staff/types/{type_id:int}", type_update, methods=["POST"], name="request_type_update"),
]
