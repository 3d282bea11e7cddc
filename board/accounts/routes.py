"""Registration, login and logout, the account page and the language switch."""

from __future__ import annotations

from datetime import timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import security
from board.accounts import queries
from board.accounts.passwords import password_problem
from board.config import SUPPORTED_LOCALES
from board.db import utcnow
from board.i18n import gettext as _
from board.i18n import ngettext
from board.notify import NOTIFY_CHOICES
from board.security import STAFF_ROLES
from board.web import (
    HONEYPOT_FIELD,
    client_ip,
    current_user,
    db,
    email_problem,
    field,
    landing_path,
    path_for,
    read_form,
    redirect,
    render,
    require_user,
    safe_next,
    set_cookie,
    settings_of,
)

# --- registration ------------------------------------------------------------------------


async def register(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "accounts/register.html", form={}, errors={})
    form = await read_form(request)
    values = {"name": field(form, "name", 120), "email": field(form, "email", 320)}
    password = form.get("password") or ""
    if field(form, HONEYPOT_FIELD):
        return redirect(path_for(request, "index"))  # a bot: pretend nothing happened
    ip = client_ip(request)
    limit = settings_of(request).registrations_per_hour
    if await security.limit_reached(db(request), "register", ip, limit, timedelta(hours=1)):
        errors = {"form": _("Too many registrations from your network. Please try again later.")}
        return render(request, "accounts/register.html", 429, form=values, errors=errors)
    errors = {}
    if not values["name"]:
        errors["name"] = _("Please enter your name.")
    if problem := email_problem(values["email"]):
        errors["email"] = problem
    if problem := password_problem(password):
        errors["password"] = problem
    if not errors:
        # Counted before the address is checked: whoever tries address after address to
        # learn which ones have an account runs into the limit as fast as a bot that
        # creates accounts does.
        await security.record_event(db(request), "register", ip)
        try:
            password_hash = await security.hash_password_async(password)
            user = await queries.create_customer(
                db(request), values["name"], values["email"], password_hash
            )
        except queries.EmailTaken:
            errors["email"] = _(
                "An account with this email address already exists. Please log in instead."
            )
    if errors:
        return render(request, "accounts/register.html", 400, form=values, errors=errors)
    response = redirect(path_for(request, "account").include_query_params(welcome=1))
    await start_session(request, response, user.id)
    return response


async def start_session(request: Request, response: Response, user_id: int) -> None:
    token = await security.create_session(
        db(request), user_id, client_ip(request), request.headers.get("user-agent")
    )
    set_cookie(
        response,
        request,
        security.SESSION_COOKIE,
        token,
        int(security.SESSION_LIFETIME.total_seconds()),
    )


# --- login -------------------------------------------------------------------------------


async def _login_wait_minutes(request: Request, login_key: str) -> int:
    """Minutes until the next attempt is allowed, per account and per client address."""
    settings = settings_of(request)
    window = timedelta(seconds=settings.login_failure_window_seconds)
    checks = (
        ("login-account", login_key, settings.login_failures_per_account),
        ("login-address", client_ip(request), settings.login_failures_per_address),
    )
    for bucket, key, limit in checks:
        if await security.limit_reached(db(request), bucket, key, limit, window):
            oldest = await security.oldest_recent_event(db(request), bucket, key, window)
            remaining = window - (utcnow() - oldest)
            return max(1, int(remaining.total_seconds() // 60) + 1)
    return 0


async def login(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"), "")
    if request.method == "GET":
        return render(request, "accounts/login.html", login="", next=next_path, errors={})
    form = await read_form(request)
    login_value = field(form, "login", 320)
    next_path = safe_next(field(form, "next", 2000), "")
    password = form.get("password") or ""
    user = await queries.user_by_login(db(request), login_value) if login_value else None
    # Failures count against the account however it was named (number or email), and
    # against the typed name when no such account exists.
    login_key = f"user:{user.id}" if user else f"login:{login_value.lower()}"
    wait = await _login_wait_minutes(request, login_key)
    if wait:
        message = ngettext(
            "Too many failed attempts. Please try again in %(num)s minute.",
            "Too many failed attempts. Please try again in %(num)s minutes.",
            wait,
        )
        return render(
            request,
            "accounts/login.html",
            429,
            login=login_value,
            next=next_path,
            errors={"form": message},
        )
    if not await security.verify_password_async(password, user.password_hash if user else None):
        await security.record_event(db(request), "login-account", login_key)
        await security.record_event(db(request), "login-address", client_ip(request))
        # One message for an unknown account and a wrong password: no account enumeration.
        message = _("Customer number, email or password is not correct.")
        return render(
            request,
            "accounts/login.html",
            400,
            login=login_value,
            next=next_path,
            errors={"form": message},
        )
    await security.clear_events(db(request), "login-account", login_key)
    if user.must_change_password:
        target = str(path_for(request, "account"))
    else:
        target = next_path or landing_path(request, user.role)
    response = redirect(target)
    old_token = request.cookies.get(security.SESSION_COOKIE)
    if old_token:
        await security.end_session(db(request), old_token)
    await start_session(request, response, user.id)
    return response


async def logout(request: Request) -> Response:
    await read_form(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        await security.end_session(db(request), token)
    response = redirect(path_for(request, "index"))
    response.delete_cookie(
        security.SESSION_COOKIE, secure=settings_of(request).https, httponly=True, samesite="lax"
    )
    return response


# --- account -----------------------------------------------------------------------------


async def account(request: Request) -> Response:
    user = require_user(request)
    record = await queries.user_by_id(db(request), user.id)
    if request.method == "GET":
        return _render_account(request, record, saved=request.query_params.get("saved"))
    form = await read_form(request)
    if field(form, "action", 20) == "password":
        return await _change_password(request, record, form)
    return await _change_profile(request, record, form)


def _render_account(request: Request, record, status_code: int = 200, **context) -> Response:
    values = context.pop("form", None) or {
        "name": record.name,
        "email": record.email,
        "locale": record.locale or "",
        "notify": record.notify,
        "notify_new": record.notify_new,
        "daily_summary": record.daily_summary,
        "personal_summary": record.personal_summary,
    }
    return render(
        request,
        "accounts/account.html",
        status_code,
        account=record,
        form=values,
        errors=context.pop("errors", {}),
        password_errors=context.pop("password_errors", {}),
        locales=SUPPORTED_LOCALES,
        notify_choices=NOTIFY_CHOICES,
        welcome=request.query_params.get("welcome"),
        **context,
    )


async def _change_profile(request: Request, record, form) -> Response:
    values = {
        "name": field(form, "name", 120),
        "email": field(form, "email", 320),
        "locale": field(form, "locale", 8),
        # A form without the choice (an older page, a script) keeps the stored one.
        "notify": field(form, "notify", 8) or record.notify,
        "notify_new": bool(form.get("notify_new")),
        "daily_summary": bool(form.get("daily_summary")),
        "personal_summary": bool(form.get("personal_summary")),
    }
    errors = {}
    if values["notify"] not in NOTIFY_CHOICES:
        errors["notify"] = _("Please choose how we should tell you about answers.")
    if not values["name"]:
        errors["name"] = _("Please enter your name.")
    if problem := email_problem(values["email"]):
        errors["email"] = problem
    elif values["email"].lower() != record.email and not await security.verify_password_async(
        form.get("current_password") or "", record.password_hash
    ):
        errors["current_password"] = _("Please confirm the new email with your current password.")
    locale = values["locale"] if values["locale"] in SUPPORTED_LOCALES else None
    if not errors:
        try:
            await queries.update_profile(
                db(request),
                record.id,
                values["name"],
                values["email"],
                locale,
                notify=values["notify"],
                # Mail about the queue is for staff; a customer's form has no such boxes.
                notify_new=values["notify_new"] and record.role in STAFF_ROLES,
                daily_summary=values["daily_summary"] and record.role in STAFF_ROLES,
                personal_summary=(
                    values["personal_summary"] if record.role in STAFF_ROLES else None
                ),
            )
        except queries.EmailTaken:
            errors["email"] = _("This email address belongs to another account.")
    if errors:
        return _render_account(request, record, 400, form=values, errors=errors)
    return redirect(path_for(request, "account").include_query_params(saved="profile"))


async def _change_password(request: Request, record, form) -> Response:
    errors = {}
    current_password = form.get("current_password") or ""
    if not await security.verify_password_async(current_password, record.password_hash):
        errors["current_password"] = _("Your current password is not correct.")
    new_password = form.get("password") or ""
    if problem := password_problem(new_password):
        errors["password"] = problem
    if errors:
        return _render_account(request, record, 400, password_errors=errors)
    password_hash = await security.hash_password_async(new_password)
    await queries.set_password(db(request), record.id, password_hash)
    # Every session ends, this one too: whoever held one (a stolen one, another device)
    # is logged out now, and this browser goes on under a new session id.
    await security.end_other_sessions(db(request), record.id, None)
    response = redirect(path_for(request, "account").include_query_params(saved="password"))
    await start_session(request, response, record.id)
    return response


async def unsubscribe(request: Request) -> Response:
    """The link in List-Unsubscribe: notification mail off, without logging in.

    Mail programs POST "List-Unsubscribe=One-Click" here (RFC 8058) and cannot carry a
    CSRF token; the signed token in the path names the account and proves the link came
    from us, which is what the CSRF token would prove.
    """
    user_id, token = request.path_params["user_id"], request.path_params["token"]
    if not security.signed_valid(settings_of(request).secret_key, "unsubscribe", user_id, token):
        raise HTTPException(404)
    record = await queries.user_by_id(db(request), user_id)
    if record is None:
        raise HTTPException(404)
    if request.method == "POST":
        await queries.set_notify(db(request), user_id, "off")
        return render(request, "accounts/unsubscribe.html", done=True)
    return render(request, "accounts/unsubscribe.html", done=record.notify == "off")


async def language(request: Request) -> Response:
    """The language switch in the footer: stored on the account, or in a cookie for guests."""
    form = await read_form(request)
    locale = field(form, "locale", 8)
    response = redirect(safe_next(field(form, "next", 2000)))
    if locale not in SUPPORTED_LOCALES:
        return response
    user = current_user(request)
    if user is not None:
        await queries.set_locale(db(request), user.id, locale)
    set_cookie(response, request, "board_locale", locale, 365 * 24 * 3600)
    return response


routes = [
    Route("/register", register, methods=["GET", "POST"], name="register"),
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/account", account, methods=["GET", "POST"], name="account"),
    Route("/language", language, methods=["POST"], name="language"),
    Route(
        "/unsubscribe/{user_id:int}/{token}",
        unsubscribe,
        methods=["GET", "POST"],
        name="unsubscribe",
    ),
]
