"""The request cycle shared by every feature: templates, forms with CSRF, guards, redirects."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import re
import unicodedata
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import jinja2
from databases import Database
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, FormData, Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, NoMatchFound, Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from board import i18n
from board.config import PROJECT_ROOT, Settings
from board.fragments import FragmentCache
from board.i18n import gettext as _
from board.i18n import ngettext
from board.inbox.queries import unread_count
from board.notifications import queries as notifications
from board.security import (
    ANON_COOKIE,
    SESSION_COOKIE,
    STAFF_ROLES,
    CurrentUser,
    csrf_token,
    csrf_valid,
    new_anon_id,
    user_for_session,
)
from board.uploads import StoredFile, discard

TEMPLATES_DIR = PROJECT_ROOT / "templates"


class SharedGlobalsTemplate(jinja2.Template):
    """On every `{% from … import … %}` Jinja checks whether the importing page brought
    globals of its own, with a set difference over a ChainMap of the globals: about 10 µs
    an import, a dozen imports a page. Every template here is loaded by name with the
    environment's globals alone (never with a `globals` argument of its own), so that
    difference is always empty and the module cached at the first import is the right
    one. tests/test_app.py checks that no template is loaded with globals of its own."""

    def _get_default_module(self, ctx=None):
        return super()._get_default_module(None)


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # HTML is escaped; plain-text mail templates (.txt) are not.
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=False),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.template_class = SharedGlobalsTemplate
    env.install_gettext_callables(i18n.template_gettext, i18n.template_ngettext, newstyle=True)
    env.filters["datetime"] = i18n.format_datetime
    env.filters["day"] = i18n.format_day
    env.filters["number"] = i18n.format_number
    env.filters["iso"] = i18n.iso
    env.filters["duration"] = i18n.format_duration
    env.filters["calendar_day"] = i18n.format_calendar_day
    env.filters["hours"] = i18n.format_hours
    env.filters["initials"] = initials
    env.filters["avatar_colour"] = avatar_colour
    templates = Jinja2Templates(env=env)
    env.globals["fragment"] = _cached_fragment
    env.filters["key"] = rows_key
    env.filters["row_key"] = row_key
    env.globals["fragments"] = FragmentCache()
    return templates


def row_key(row) -> tuple:
    """A query row as a fragment key: its values, whichever row type the database gave.
    Prepared queries give named tuples, which are such a key already."""
    if isinstance(row, tuple):
        return row
    return tuple(row._mapping.values()) if hasattr(row, "_mapping") else tuple(row)


def rows_key(rows) -> tuple:
    return tuple(row_key(row) for row in rows)


@jinja2.pass_context
def _cached_fragment(context, *key: Any, caller: Callable[[], str]) -> Markup:
    """`{% call fragment(key…) %}…{% endcall %}`: the block rendered once per key (board/
    fragments.py). The language and time zone are part of every key."""
    cache: FragmentCache = context.environment.globals["fragments"]
    full_key = (context.name, i18n.current_locale.get(), i18n.current_timezone.get(), *key)
    return cache.get_or_render(full_key, caller)


def template_url_for(paths: Callable[..., str]) -> Callable[..., URL]:
    """The templates' url_for over the app's routes (`route_paths`). Links are site-relative
    paths: they never depend on the Host header. It needs no request, so macros are imported
    without the page's context and Jinja keeps them compiled between pages."""

    @functools.lru_cache(maxsize=256)
    def fixed(name: str) -> URL:  # the links without parameters: the same on every page
        return URL(paths(name))

    def url_for(name: str, /, **params: Any) -> URL:
        return URL(paths(name, **params)) if params else fixed(name)

    return url_for


def path_for(request: Request, name: str, /, **params: Any) -> URL:
    return URL(route_paths(request.app)(name, **params))


def route_paths(app) -> Callable[..., str]:
    """A path builder over the app's routes, prepared once.

    Starlette's url_path_for tries every route in turn, about 50 µs per link; a page
    with a hundred links spent more time there than in its queries.
    """
    builder = app.state._state.get("route_paths")
    if builder is None:
        builder = app.state.route_paths = _make_route_paths(app.routes)
    return builder


def _make_route_paths(routes) -> Callable[..., str]:
    templates: dict[str, tuple[str, dict]] = {}
    mounts: dict[str, str] = {}
    for route in routes:
        if isinstance(route, Route):
            templates[route.name] = (route.path_format, route.param_convertors)
        elif isinstance(route, Mount):
            mounts[route.name] = route.path

    def build(name: str, /, **params: Any) -> str:
        if name in mounts:  # static files: /static/<path>
            return f"{mounts[name]}/{params['path']}"
        path_format, convertors = templates[name]
        if set(params) != set(convertors):
            raise NoMatchFound(name, params)
        for key, value in params.items():
            text = convertors[key].to_string(value)
            path_format = path_format.replace("{" + key + "}", quote(text, safe=""))
        return path_format

    return build


def avatar_colour(user_id: int | None, name: str | None = None) -> int:
    """One of the eight avatar colours: by account, so a person keeps theirs on every page;
    by name for guests, who have none."""
    if user_id:
        return user_id % 8
    return zlib.crc32((name or "").encode()) % 8


def initials(name: str) -> str:
    parts = [part for part in name.split() if part[:1].isalpha()]
    if not parts:
        return (name[:1] or "?").upper()
    return (parts[0][0] + (parts[-1][0] if len(parts) > 1 else "")).upper()


# --- per-request state -------------------------------------------------------------------


# Where a session with a one-time password may go (User.must_change_password).
OPEN_TO_ONE_TIME = frozenset({"/account", "/logout", "/language", "/healthz"})


class RequestContext:
    """Loads the visitor (session cookie), picks the language and adds security headers.

    Pure ASGI rather than BaseHTTPMiddleware, so the endpoint runs in the same task and
    the `databases` connection and the locale context variable carry through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        settings: Settings = scope["app"].state.settings
        i18n.current_timezone.set(settings.timezone)
        is_static = scope["path"].startswith("/static/")
        user: CurrentUser | None = None
        new_anon: str | None = None
        if not is_static:
            token = request.cookies.get(SESSION_COOKIE)
            if token:
                user = await user_for_session(scope["app"].state.db, token)
            anon = request.cookies.get(ANON_COOKIE)
            if user is None and not anon:
                anon = new_anon = new_anon_id()
            scope.setdefault("state", {})
            page = scope["method"] == "GET" and scope["path"] != "/events"
            if user is not None and not user.is_staff and page:
                # The header badge on every page: one indexed count, pages only.
                scope["state"]["unread_count"] = await unread_count(scope["app"].state.db, user.id)
            if user is not None and page:
                # The header bell: one indexed query, the count riding on the newest rows.
                scope["state"]["bell"] = await notifications.bell(scope["app"].state.db, user.id)
            scope["state"]["user"] = user
            scope["state"]["csrf_seed"] = user.session_hash if user else anon
        locale = i18n.negotiate_locale(
            user.locale if user else request.cookies.get("board_locale"),
            request.headers.get("accept-language", ""),
            settings.locale,
        )
        i18n.current_locale.set(locale)
        if not is_static:
            scope["state"]["locale"] = locale

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                # Known only now: the router has picked the route while the endpoint ran.
                secret_url = route_name(scope) in SECRET_URL_ROUTES
                headers.extend(
                    header
                    for header in security_headers(settings, user is not None, secret_url)
                    if header[0] not in present  # a response's own choice wins
                )
                if new_anon:
                    headers.append((b"set-cookie", cookie_header(settings, ANON_COOKIE, new_anon)))
                message = {**message, "headers": headers}
            await send(message)

        if user is not None and user.must_change_password and scope["path"] not in OPEN_TO_ONE_TIME:
            # A one-time password opens nothing but the page that replaces it, and the way
            # out, on every request until it is replaced.
            await RedirectResponse("/account#password", 303)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
        if scope["method"] == "POST":
            # A POST may have queued mail or index work: the background tasks look now
            # rather than at their next round. One query each when it did not.
            for name in ("mail_wake", "search_wake", "webhook_wake"):
                wake = scope["app"].state._state.get(name)
                if wake is not None:
                    wake.set()
            hub = scope["app"].state._state.get("hub")
            if hub is not None:
                await hub.announce()  # open pages learn of it at once, in every worker


# A form's text fields: the longest (a 60,000-character message) takes at most 720 KB
# URL-encoded (4 UTF-8 bytes a character, 3 characters a byte).
FORM_MAX_FIELDS = 50
FIELD_MAX_BYTES = 1024 * 1024
# A body without files (URL-encoded) never needs more than its fields.
TEXT_BODY_MAX_BYTES = 2 * FIELD_MAX_BYTES


class BodyLimit:
    """Refuses request bodies beyond what any form here can need, before they are parsed.

    Starlette spools uploads to disk without a size bound; this stops a huge or endless
    body early (413) instead of letting it fill the disk. Only a multipart body can carry
    files; any other gets the limit of text fields. Per-file limits are checked again, per
    file, by board.uploads; the number of fields and files by read_form.
    """

    def __init__(self, app: ASGIApp, max_files: int = 10) -> None:
        self.app = app
        self.max_files = max_files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        headers = Headers(scope=scope)
        if headers.get("content-type", "").lower().startswith("multipart/"):
            limit = (self.max_files * settings.upload_max_mb + 1) * 1024 * 1024
        else:
            limit = TEXT_BODY_MAX_BYTES
        declared = headers.get("content-length", "")
        declared_size = int(declared) if declared.isdigit() else 0
        received = 0

        # Raised while the endpoint reads the body, so the error page handler answers it.
        async def counting_receive() -> Message:
            nonlocal received
            if declared_size > limit:
                raise HTTPException(413)
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413)
            return message

        await self.app(scope, counting_receive, send)


# The files a request checked (board.uploads.check_upload) wait outside the store until the
# writer of their rows keeps them; whatever is left when the request ends was refused.
CHECKED_UPLOADS = "checked_uploads"


def remember_checked(request: Request, files: list[StoredFile]) -> None:
    checked = getattr(request.state, CHECKED_UPLOADS, None)
    if checked is None:
        checked = []
        setattr(request.state, CHECKED_UPLOADS, checked)
    checked.extend(files)


class DiscardUnkeptUploads:
    """Removes the checked uploads of a request that no writer kept: a form with errors, a
    refused permission, a limit, an error page. Nothing of a refused request stays."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})  # request.state of the endpoint's request
        try:
            await self.app(scope, receive, send)
        finally:
            checked = state.get(CHECKED_UPLOADS)
            if checked:
                await run_in_threadpool(discard, checked)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)


# Routes whose URL holds a secret (a reset link, a guest's conversation link, a mail's
# conversation link, an unsubscribe link): the URL must reach no other site as a
# Referer, and no cache.
SECRET_URL_ROUTES = frozenset(
    {
        "password_reset_link",
        "unsubscribe",
        "guest_conversation",
        "guest_reply",
        "guest_join",
        "mail_link",
        "mail_link_reply",
    }
)


def route_name(scope: Scope) -> str | None:
    route = scope.get("route")
    return getattr(route, "name", None)


def security_headers(
    settings: Settings, private: bool, secret_url: bool = False
) -> list[tuple[bytes, bytes]]:
    """Headers for every response; `private` pages (a logged-in visitor's) are not cached."""
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer" if secret_url else b"same-origin"),
    ]
    if private or secret_url:
        headers.append((b"cache-control", b"no-store"))
    if settings.https:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


def cookie_header(settings: Settings, name: str, value: str, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if settings.https:
        parts.append("Secure")
    return "; ".join(parts).encode()


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.https,
    )


# --- helpers endpoints use ---------------------------------------------------------------


def db(request: Request) -> Database:
    return request.app.state.db


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def current_user(request: Request) -> CurrentUser | None:
    return request.state.user


def require_user(request: Request) -> CurrentUser:
    user = current_user(request)
    if user is None:
        raise HTTPException(401)
    return user


def require_staff(request: Request) -> CurrentUser:
    """Staff pages: 401 (a login redirect) for visitors, 403 for customers."""
    user = require_user(request)
    if not user.is_staff:
        raise HTTPException(403)
    return user


def require_admin(request: Request) -> CurrentUser:
    user = require_staff(request)
    if not user.is_admin:
        raise HTTPException(403, _("Only administrators may change this."))
    return user


def client_ip(request: Request) -> str:
    """The client address after ProxyHeadersMiddleware applied BOARD_FORWARDED_ALLOW_IPS."""
    return request.client.host if request.client else "unknown"


async def read_form(request: Request, max_files: int = 0) -> FormData:
    """The submitted form, refused with 403 unless it carries this visitor's CSRF token.

    Parsing stops with a 400 at the first file beyond `max_files` (none unless the form
    takes uploads), the first field beyond FORM_MAX_FIELDS, or a field larger than
    FIELD_MAX_BYTES: a flood of parts costs neither memory nor time before it is refused.
    """
    form = await request.form(
        max_files=max_files, max_fields=FORM_MAX_FIELDS, max_part_size=FIELD_MAX_BYTES
    )
    settings = settings_of(request)
    if not csrf_valid(settings.secret_key, request.state.csrf_seed, form.get("csrf_token")):
        await form.close()  # spooled uploads are deleted, not left to the garbage collector
        raise HTTPException(403, _("The form has expired. Please reload the page and try again."))
    return form


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")
HONEYPOT_FIELD = "website"  # hidden from people by CSS; bots fill in every field


def email_problem(email: str) -> str | None:
    if not EMAIL_PATTERN.match(email) or len(email) > 320:
        return _("Please enter a valid email address.")
    return None


def field(form: FormData, name: str, max_length: int = 100_000) -> str:
    value = form.get(name)
    return value.strip()[:max_length] if isinstance(value, str) else ""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    user = current_user(request)
    seed = request.state.csrf_seed
    return request.app.state.templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "locale": request.state.locale,
            "csrf_token": csrf_token(settings_of(request).secret_key, seed) if seed else "",
            "unread_count": request.state._state.get("unread_count", 0),
            "bell": request.state._state.get("bell"),
            # The live event this page is current with (static/js/live.js continues there).
            "live_after": getattr(request.app.state._state.get("hub"), "seen", 0),
            **context,
        },
        status_code=status_code,
    )


def redirect(url: URL | str, anchor: str | None = None) -> RedirectResponse:
    target = str(url) + (f"#{anchor}" if anchor else "")
    return RedirectResponse(target, status_code=303)


def safe_next(target: str | None, fallback: str = "/") -> str:
    r"""Only paths of this site: `//evil.example`, `/\evil` and absolute URLs fall back.

    Browsers read a backslash as a slash and drop tabs and line breaks, so `/\evil`
    and `/<tab>/evil` mean `//evil`, another host; any backslash or control character
    falls back rather than guessing which ones a browser forgives.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in target):
        return fallback
    return target


def landing_path(request: Request, role: str) -> str:
    """Where a login leads when no `next` names a page: staff to the queue, customers
    to their inbox."""
    return str(path_for(request, "staff_queue" if role in STAFF_ROLES else "inbox"))


def flood_message(seconds: int) -> str:
    """The answer to a customer who writes again within BOARD_FLOOD_SECONDS."""
    return ngettext(
        "You are posting too quickly. Please wait %(num)s second and send again; "
        "your text is still here.",
        "You are posting too quickly. Please wait %(num)s seconds and send again; "
        "your text is still here.",
        seconds,
    )


def page_number(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def page_count(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


async def conversation_opened(request: Request, conversation_id: int) -> None:
    """The viewer opened a conversation: its notifications are read, and the header bell
    on this very page says so. Nothing is written when the bell shows nothing unread."""
    user = require_user(request)
    shown: notifications.Bell | None = request.state._state.get("bell")
    if shown is not None and not shown.unread_count:
        return
    if await notifications.mark_conversation_read(db(request), user.id, conversation_id):
        request.state.bell = await notifications.bell(db(request), user.id)


# --- work whose cost grows with the data ---------------------------------------------------

# Statistics computed at once per worker: one per core. Each holds its period's rows while
# it runs; 32 at once took one worker to 379 MiB. The next ones wait up to HEAVY_WAIT
# seconds for a slot, then get a 503 with Retry-After (as searches do, board/search/
# routes.py). The CSV of a period's requests streams in batches (stats_list.EXPORT_BATCH)
# and needs no slot.
HEAVY_SLOTS = max(1, os.cpu_count() or 1)
HEAVY_WAIT = 10.0
HEAVY_RETRY_AFTER = "10"


async def take_heavy_slot(request: Request) -> Callable[[], None]:
    """One of the worker's slots for heavy work, or a 503; returns what gives it back."""
    slots = request.app.state._state.get("heavy_slots")
    if slots is None:
        slots = request.app.state.heavy_slots = asyncio.Semaphore(HEAVY_SLOTS)
    try:
        await asyncio.wait_for(slots.acquire(), HEAVY_WAIT)
    except TimeoutError:
        raise HTTPException(
            503,
            _("Many figures are being computed right now. Please try again in a moment."),
            headers={"Retry-After": HEAVY_RETRY_AFTER},
        ) from None
    return slots.release
