"""The notice board's page (/staff/notices): administrators write the instructions for
staff and the public banner; everybody else only reads them where they are shown."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.errors import Invalid
from board.staff import notices
from board.web import db, field, path_for, read_form, redirect, render, require_admin


async def notice_board(request: Request) -> Response:
    user = require_admin(request)
    if request.method == "GET":
        staff_notice = await notices.staff_notice(db(request))
        values = {
            "staff_notice": staff_notice.body if staff_notice else "",
            "banner": await notices.public_banner(db(request)),
        }
        return render(request, "staff/notices.html", values=values, errors={})
    form = await read_form(request)
    values = {
        # Browsers send textarea line breaks as CRLF; stored text uses LF.
        "staff_notice": field(form, "staff_notice", 100_000).replace("\r\n", "\n"),
        "banner": field(form, "banner", 10_000),
    }
    try:
        await notices.save(db(request), user.id, values["staff_notice"], values["banner"])
    except Invalid as invalid:
        return render(request, "staff/notices.html", 400, values=values, errors=invalid.errors)
    return redirect(path_for(request, "staff_home"))


routes = [
    Route("/staff/notices", notice_board, methods=["GET", "POST"], name="staff_notices"),
]
