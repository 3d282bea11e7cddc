"""Absence cover through the web: a staff member names their deputy and availability
note (on the team page) and dismisses the notice of what was handed over while away."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.errors import Invalid
from board.staff import handover
from board.staff.team import render_team
from board.web import db, field, path_for, read_form, redirect, require_staff


async def team_cover(request: Request) -> Response:
    user = require_staff(request)
    form = await read_form(request)
    values = {
        "deputy": field(form, "deputy", 20),
        "availability_note": field(form, "availability_note", 10_000),
    }
    # Empty: no deputy (the rotation). Anything but a number is no account (id 0), which
    # the rule refuses like any other wrong choice.
    deputy_id: int | None = None
    if values["deputy"]:
        deputy_id = int(values["deputy"]) if values["deputy"].isdigit() else 0
    try:
        await handover.set_cover(db(request), user.id, deputy_id, values["availability_note"])
    except Invalid as invalid:
        return await render_team(request, 400, cover_form=values, cover_errors=invalid.errors)
    return redirect(path_for(request, "team"), anchor="availability")


async def handovers_dismiss(request: Request) -> Response:
    user = require_staff(request)
    form = await read_form(request)
    up_to = field(form, "up_to", 20)
    if not up_to.isdigit():
        raise HTTPException(400)
    await handover.dismiss(db(request), user.id, int(up_to))
    return redirect(path_for(request, "staff_home"))


routes = [
    Route("/staff/team/cover", team_cover, methods=["POST"], name="team_cover"),
    Route(
        "/staff/handovers/dismiss", handovers_dismiss, methods=["POST"], name="handovers_dismiss"
    ),
]
