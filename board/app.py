"""The application factory: routes, middleware, error pages and the lifespan."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from board import events, mail, maintenance, schedule, webhook_sender
from board.accounts.onetime import routes as onetime_routes
from board.accounts.privacy import routes as privacy_routes
from board.accounts.routes import routes as account_routes
from board.config import PROJECT_ROOT, Settings
from board.db import close_database, make_database
from board.errors import DomainError
from board.forum.routes import routes as forum_routes
from board.i18n import gettext as _
from board.inbox.mail_link import routes as mail_link_routes
from board.inbox.routes import routes as inbox_routes
from board.live import routes as live_routes
from board.message_form import MAX_FILES
from board.notifications.routes import routes as notification_routes
from board.pagecache import GuestPageCache
from board.search import indexing as search_indexing
from board.search import querying as search_querying
from board.search.routes import routes as search_routes
from board.staff import handover, stats_days
from board.staff.routes import routes as staff_routes
from board.web import (
    SECRET_URL_ROUTES,
    BodyLimit,
    DiscardUnkeptUploads,
    RequestContext,
    make_templates,
    path_for,
    redirect,
    render,
    route_name,
    route_paths,
    security_headers,
    template_url_for,
)

log = logging.getLogger("board")
# How long shutdown waits for the background tasks to finish after cancelling them.
SHUTDOWN_GRACE_SECONDS = 10


async def healthz(request: Request) -> Response:
    try:
        await request.app.state.db.fetch_val(sa.text("SELECT 1"))
    except Exception:
        log.exception("health check: database does not answer")
        return JSONResponse({"status": "error"}, status_code=503)
    return JSONResponse({"status": "ok"})


ERROR_TEXTS = {
    400: lambda: _("The request could not be understood."),
    401: lambda: _("Please log in to continue."),
    403: lambda: _("You are not allowed to do this."),
    404: lambda: _("This page does not exist, or it is not yours to see."),
    405: lambda: _("This page cannot be used that way."),
    413: lambda: _("The upload is too large."),
    429: lambda: _("Too many requests. Please wait a moment and try again."),
    500: lambda: _("Something went wrong on our side. Please try again in a moment."),
}


async def http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 401 and request.method == "GET":
        login_url = path_for(request, "login").include_query_params(next=request.url.path)
        return redirect(login_url)
    detail = exc.detail if exc.detail and exc.detail != _default_phrase(exc.status_code) else None
    return _error_page(request, exc.status_code, detail, exc.headers)


async def domain_error(request: Request, exc: DomainError) -> Response:
    return _error_page(request, exc.status, exc.message, None)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    response = _error_page(request, 500, None, None)
    # Starlette answers an unhandled error outside every middleware, RequestContext too:
    # the headers it would have added are set here. Not cached, whoever asked.
    secret_url = route_name(request.scope) in SECRET_URL_ROUTES
    for name, value in security_headers(request.app.state.settings, True, secret_url):
        response.headers.setdefault(name.decode(), value.decode())
    return response


def _default_phrase(status_code: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status_code).phrase


def _error_page(request: Request, status_code: int, detail, headers) -> Response:
    if "user" not in request.state._state:  # failed before the request context ran
        request.state.user, request.state.csrf_seed, request.state.locale = None, None, "de"
    message = detail or ERROR_TEXTS.get(status_code, ERROR_TEXTS[400])()
    response = render(
        request, "errors/error.html", status_code=status_code, code=status_code, message=message
    )
    if headers:
        response.headers.update(headers)
    return response


def postman_for(app: Starlette) -> mail.Postman:
    """The mail sender's view of the app: settings, templates, and paths for links."""
    return mail.Postman(app.state.settings, app.state.templates.env, route_paths(app))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await app.state.db.connect()
        app.state.mail_wake = asyncio.Event()
        app.state.search_wake = asyncio.Event()
        app.state.handover_wake = asyncio.Event()  # an absence was entered: look now
        app.state.webhook_wake = asyncio.Event()
        postman = postman_for(app)
        app.state.hub = events.Hub(
            app.state.db, settings.broadcast_url, settings.events_poll_seconds
        )
        app.state.typing_sent = {}
        workers = [
            asyncio.create_task(app.state.hub.run_forever()),
            asyncio.create_task(maintenance.run_forever(app.state.db, settings)),
            asyncio.create_task(mail.run_forever(app.state.db, postman, app.state.mail_wake)),
            asyncio.create_task(schedule.run_forever(app.state.db, settings, app.state.mail_wake)),
            asyncio.create_task(
                handover.run_forever(app.state.db, app.state.mail_wake, app.state.handover_wake)
            ),
            asyncio.create_task(
                webhook_sender.run_forever(app.state.db, settings, app.state.webhook_wake)
            ),
            asyncio.create_task(
                search_indexing.run_forever(app.state.db, settings, app.state.search_wake)
            ),
            asyncio.create_task(stats_days.run_forever(app.state.db, settings)),
        ]
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()
            # Bounded: a task that swallowed its cancellation must not keep the process
            # from exiting (systemd would kill it later anyway, without closing the pool).
            _done, stuck = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS)
            for worker in stuck:
                log.error("background task did not stop at shutdown: %r", worker)
            search_querying.forget_searchers(settings)
            await close_database(app.state.db)

    app = Starlette(
        routes=[
            *forum_routes,
            *account_routes,
            *onetime_routes,
            *privacy_routes,
            *inbox_routes,
            *mail_link_routes,
            *staff_routes,
            *notification_routes,
            *search_routes,
            *live_routes,
            Route("/healthz", healthz, name="healthz"),
            Mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static"),
        ],
        middleware=[
            # Rewrites the client address from X-Forwarded-For, trusting only these proxies.
            Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.forwarded_allow_ips)),
            Middleware(RequestContext),
            Middleware(GuestPageCache),
            Middleware(BodyLimit, max_files=MAX_FILES),
            Middleware(DiscardUnkeptUploads),
        ],
        exception_handlers={
            HTTPException: http_error,
            DomainError: domain_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = make_database(settings)
    app.state.templates = make_templates()
    app.state.templates.env.globals["url_for"] = template_url_for(route_paths(app))
    # The file field's hint states the rules that the upload checks apply.
    app.state.templates.env.globals["upload_rules"] = {
        "max_files": MAX_FILES,
        "max_mb": settings.upload_max_mb,
        "types": ", ".join(kind.upper() for kind in settings.upload_types),
    }
    return app
