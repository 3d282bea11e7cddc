"""The webhooks page (admins only): register a URL, see its secret once or again on
request, remove it, and read the delivery log (board/webhooks.py sends)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import webhooks
from board.errors import Invalid
from board.web import db, field, path_for, read_form, redirect, render, require_admin, settings_of


async def _render(request: Request, status_code: int = 200, **context: Any) -> Response:
    defaults: dict[str, Any] = {"form": {"url": ""}, "errors": {}, "shown_secret": None}
    return render(
        request,
        "staff/webhooks.html",
        status_code,
        hooks=await webhooks.active_webhooks(db(request)),
        deliveries=await webhooks.delivery_log(db(request)),
        events=webhooks.EVENTS,
        max_attempts=webhooks.MAX_ATTEMPTS,
        **{**defaults, **context},
    )


async def webhook_list(request: Request) -> Response:
    """GET: the page. POST `url`: a new webhook, its secret shown on the answer."""
    user = require_admin(request)
    if request.method == "GET":
        return await _render(request)
    form = await read_form(request)
    url = field(form, "url", webhooks.URL_MAX + 100)
    try:
        webhook_id, secret = await webhooks.register(
            db(request), settings_of(request), url, user.id
        )
    except Invalid as invalid:
        return await _render(request, 400, form={"url": url}, errors=invalid.errors)
    # Not a redirect: the secret is on this answer only, never in a URL or a later page.
    return await _render(request, 201, shown_secret=(webhook_id, secret))


async def webhook_secret(request: Request) -> Response:
    """POST: shows the secret again (a POST, so no link, history or cache holds it)."""
    require_admin(request)
    await read_form(request)
    webhook_id = request.path_params["webhook_id"]
    secret = await webhooks.secret_of(db(request), settings_of(request), webhook_id)
    response = await _render(request, shown_secret=(webhook_id, secret))
    response.headers["Cache-Control"] = "no-store"
    return response


async def webhook_remove(request: Request) -> Response:
    require_admin(request)
    await read_form(request)
    await webhooks.remove(db(request), request.path_params["webhook_id"])
    return redirect(path_for(request, "webhooks"))


routes = [
    Route("/staff/webhooks", webhook_list, methods=["GET", "POST"], name="webhooks"),
    Route(
        "/staff/webhooks/{webhook_id:int}/secret",
        webhook_secret,
        methods=["POST"],
        name="webhook_secret",
    ),
    Route(
        "/staff/webhooks/{webhook_id:int}/remove",
        webhook_remove,
        methods=["POST"],
        name="webhook_remove",
    ),
]
