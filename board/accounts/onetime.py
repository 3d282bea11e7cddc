"""Logging in with a mailed one-time code, and choosing a new password through a mailed link."""

from __future__ import annotations

import secrets
from datetime import timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board import mail, security
from board.accounts import tokens
from board.accounts.passwords import password_problem
from board.accounts.routes import start_session
from board.accounts.tokens import CodeCheck
from board.i18n import gettext as _
from board.web import (
    client_ip,
    db,
    email_problem,
    field,
    landing_path,
    path_for,
    read_form,
    redirect,
    render,
    safe_next,
    settings_of,
)

# Each request sends a mail: limited per address (nobody floods one inbox) and per client
# (nobody walks through a list of addresses); the counts are settings (login_mails_per_*).
REQUEST_WINDOW = timedelta(minutes=15)
DAY = timedelta(days=1)  # rate events are kept that long (board.maintenance)
GUESS_BUCKET = "code-guess"  # wrong codes for an address without a live code
TOKEN_MAX_LENGTH = 100  # token_urlsafe(32) has 43 characters


async def _admit_request(request: Request, kind: str, address: str) -> str | None:
    """Counts a mail request against its address and the client; None when admitted, else
    the message that refuses it.

    Unknown addresses count the same, so the limits tell nothing about which accounts exist.
    """
    settings = settings_of(request)
    soon = (
        _("Too many codes were requested. Please try again in a few minutes.")
        if kind == "code"
        else _("Too many links were requested. Please try again in a few minutes.")
    )
    checks = [
        (f"{kind}-email", address, settings.login_mails_per_email, REQUEST_WINDOW, soon),
        (f"{kind}-ip", client_ip(request), settings.login_mails_per_client, REQUEST_WINDOW, soon),
    ]
    if kind == "code":
        tomorrow = _(
            "Too many codes were requested for this address today. Please log in with your "
            "password or try again tomorrow."
        )
        checks.append(("code-day", address, settings.login_codes_per_day, DAY, tomorrow))
    for bucket, key, limit, window, message in checks:
        if await security.limit_reached(db(request), bucket, key, limit, window):
            return message
    for bucket, key, _limit, _window, _message in checks:
        await security.record_event(db(request), bucket, key)
    return None


async def _account_for(request: Request, email: str):
    if email_problem(email):
        return None
    return await tokens.active_user_by_email(db(request), email)


def _mail_locale(request: Request, user) -> str:
    return user.locale or request.state.locale


async def _log_in(request: Request, user_id: int, target: str) -> Response:
    """A fresh session for this browser; the one it had before (anyone's) ends."""
    response = redirect(target)
    old_token = request.cookies.get(security.SESSION_COOKIE)
    if old_token:
        await security.end_session(db(request), old_token)
    await start_session(request, response, user_id)
    return response


# --- login with a code -------------------------------------------------------------------


def _code_page(
    request: Request,
    status_code: int = 200,
    *,
    step: str,
    email: str,
    next_path: str,
    errors: dict | None = None,
    sent: bool = False,
) -> Response:
    return render(
        request,
        "accounts/login_code.html",
        status_code,
        step=step,
        email=email,
        next=next_path,
        errors=errors or {},
        sent=sent,
        minutes=int(tokens.CODE_LIFETIME.total_seconds() // 60),
    )


async def login_code(request: Request) -> Response:
    if request.method == "GET":
        next_path = safe_next(request.query_params.get("next"), "")
        return _code_page(request, step="email", email="", next_path=next_path)
    form = await read_form(request)
    next_path = safe_next(field(form, "next", 2000), "")
    email = field(form, "email", 320)
    if "code" in form:
        return await _check_code(request, form, email, next_path)
    return await _send_code(request, email, next_path)


async def _send_code(request: Request, email: str, next_path: str) -> Response:
    if problem := email_problem(email):
        errors = {"email": problem}
        return _code_page(
            request, 400, step="email", email=email, next_path=next_path, errors=errors
        )
    address = email.lower()
    if refused := await _admit_request(request, "code", address):
        errors = {"form": refused}
        return _code_page(
            request, 429, step="email", email=email, next_path=next_path, errors=errors
        )
    await security.clear_events(db(request), GUESS_BUCKET, address)
    user = await tokens.active_user_by_email(db(request), address)
    if user is not None:
        code = f"{secrets.randbelow(1_000_000):06d}"
        secret_hash = tokens.code_hash(settings_of(request).secret_key, user.id, code)
        locale = _mail_locale(request, user)
        params = mail.sealed(settings_of(request).secret_key, {"code": code})
        await tokens.issue(db(request), tokens.CODE, user, secret_hash, params, locale)
    # Rendered rather than redirected: the next step needs the address, which does not
    # belong in a URL. The page is the same whether or not the address has an account.
    return _code_page(request, step="code", email=email, next_path=next_path, sent=True)


async def _check_code(request: Request, form: FormData, email: str, next_path: str) -> Response:
    code = "".join(field(form, "code", 20).split())  # "123 456" as read out of the mail

    def refused(message: str) -> Response:
        errors = {"code": message}
        return _code_page(
            request, 400, step="code", email=email, next_path=next_path, errors=errors
        )

    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return refused(_("Please enter the 6-digit code from the email."))
    user = await _account_for(request, email)
    outcome = await _try_code(request, user, email.lower(), code)
    if outcome is CodeCheck.SPENT:
        return refused(_("This code was entered wrongly too often. Please request a new code."))
    if outcome is not CodeCheck.ACCEPTED:
        return refused(_("This code is not correct or no longer valid."))
    if user.must_change_password:
        target = str(path_for(request, "account"))
    else:
        target = next_path or landing_path(request, user.role)
    return await _log_in(request, user.id, target)


async def _try_code(request: Request, user, address: str, code: str) -> CodeCheck:
    if user is not None:
        secret_hash = tokens.code_hash(settings_of(request).secret_key, user.id, code)
        outcome = await tokens.use_code(db(request), user.id, secret_hash)
        if outcome is not CodeCheck.NO_CODE:
            return outcome
    # No live code, or no such account: wrong tries count all the same, so that after five
    # the answer changes here too and does not tell which addresses have an account.
    window = tokens.CODE_LIFETIME
    wrong = await security.recent_events(db(request), GUESS_BUCKET, address, window)
    if wrong < tokens.CODE_ATTEMPTS:
        await security.record_event(db(request), GUESS_BUCKET, address)
        wrong += 1
    return CodeCheck.SPENT if wrong >= tokens.CODE_ATTEMPTS else CodeCheck.WRONG


# --- password reset ----------------------------------------------------------------------


def _reset_page(request: Request, status_code: int = 200, **context) -> Response:
    context.setdefault("errors", {})
    return render(request, "accounts/password_reset.html", status_code, **context)


async def password_reset(request: Request) -> Response:
    if request.method == "GET":
        return _reset_page(request, email="", sent=request.query_params.get("sent") == "1")
    form = await read_form(request)
    email = field(form, "email", 320)
    if problem := email_problem(email):
        return _reset_page(request, 400, email=email, errors={"email": problem})
    address = email.lower()
    if refused := await _admit_request(request, "reset", address):
        return _reset_page(request, 429, email=email, errors={"form": refused})
    user = await tokens.active_user_by_email(db(request), address)
    if user is not None:
        token = secrets.token_urlsafe(32)
        locale = _mail_locale(request, user)
        params = mail.sealed(settings_of(request).secret_key, {"token": token})
        await tokens.issue(
            db(request), tokens.RESET, user, tokens.reset_hash(token), params, locale
        )
    # The same answer whether or not the address has an account.
    return redirect(path_for(request, "password_reset").include_query_params(sent=1))


def _link_page(request: Request, token: str, status_code: int = 200, **context) -> Response:
    context.setdefault("errors", {})
    return render(request, "accounts/password_reset_link.html", status_code, token=token, **context)


async def password_reset_link(request: Request) -> Response:
    token = request.path_params["token"]
    form = await read_form(request) if request.method == "POST" else None
    secret_hash = tokens.reset_hash(token)
    if len(token) > TOKEN_MAX_LENGTH or not await tokens.reset_link_owner(db(request), secret_hash):
        return _link_page(request, token, 400, invalid=True)
    if form is None:
        return _link_page(request, token)
    password = form.get("password") or ""
    if problem := password_problem(password):
        return _link_page(request, token, 400, errors={"password": problem})
    password_hash = await security.hash_password_async(password)
    user_id = await tokens.reset_password(db(request), secret_hash, password_hash)
    if user_id is None:  # used by a second tab while the password was hashed
        return _link_page(request, token, 400, invalid=True)
    target = path_for(request, "account").include_query_params(saved="password")
    return await _log_in(request, user_id, str(target))


routes = [
    Route("/login/code", login_code, methods=["GET", "POST"], name="login_code"),
    Route("/password/reset", password_reset, methods=["GET", "POST"], name="password_reset"),
    Route(
        "/password/reset/{token}",
        password_reset_link,
        methods=["GET", "POST"],
        name="password_reset_link",
    ),
]
