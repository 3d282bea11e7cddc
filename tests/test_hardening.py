"""Attacks on the running app (issue 9, points 1-3): headers, sessions and accounts, abuse limits.

Each test plays the attacker through HTTP against a real app and database, and fails when
the protection it names is taken out.
"""

from __future__ import annotations

import re
import statistics
import time

import pytest
import sqlalchemy as sa
from markupsafe import escape
from starlette.routing import Route
from starlette.testclient import TestClient

from board import i18n
from board.accounts.passwords import PASSWORD_MAX, common_passwords
from board.config import LIMIT_VARIABLES, Settings
from board.db import sessions, sync_engine, users
from board.security import ANON_COOKIE, SESSION_COOKIE, signed
from board.setup import create_staff
from board.web import SECRET_URL_ROUTES
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    csrf_from,
    index_now,
    login,
    mail_text,
    register,
    submit,
    user_row,
)
from tests.test_inbox import PDF, guest_writes
from tests.test_uploads import pdf_bytes

EVIL_HOST = "evil.example"
TRUST_TESTCLIENT = {"forwarded_allow_ips": ("testclient",)}  # as if behind our own proxy


def german(message: str, **variables) -> str:
    """What a German visitor reads for this msgid, HTML-escaped as the page shows it."""
    with i18n.speaking("de"):
        return str(escape(i18n.gettext(message, **variables)))


def csp(response) -> dict[str, list[str]]:
    directives = (part.split() for part in response.headers["content-security-policy"].split(";"))
    return {words[0]: words[1:] for words in directives if words}


def execute(settings: Settings, statement) -> None:
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def session_hashes(settings: Settings, user_id: int) -> set[str]:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(sessions.c.id_hash).where(sessions.c.user_id == user_id)
        ).scalars()
        hashes = set(found)
    engine.dispose()
    return hashes


def logged_in(client: TestClient) -> bool:
    return client.get("/account").status_code == 200


def with_cookie(new_client, token: str) -> TestClient:
    """A second browser holding a copy of a session cookie, as a thief would."""
    thief = new_client()
    thief.cookies.set(SESSION_COOKIE, token, domain="testserver.local")
    return thief


def add_staff(settings: Settings, email: str, admin: bool = False) -> str:
    password = "mitarbeiter-passwort-9"
    engine = sync_engine(settings)
    with engine.begin() as connection:
        create_staff(connection, email, "Sven Support", admin=admin, password=password)
    engine.dispose()
    return password


# --- 1. headers ----------------------------------------------------------------------------


def assert_security_headers(response) -> None:
    directives = csp(response)
    assert directives["script-src"] == ["'self'"], response.request.url
    assert "'unsafe-inline'" not in directives.get("default-src", [])
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("same-origin", "no-referrer")


def test_every_kind_of_response_carries_the_security_headers(client, people):
    anonymous = [
        client.get("/"),
        client.get("/login"),
        client.get("/static/css/board.css"),
        client.get("/healthz"),
        client.get("/nowhere"),  # 404
        client.get("/logout"),  # 405
        client.post("/login", data={"login": "x", "password": "y"}),  # 403, no CSRF token
        client.get("/inbox"),  # a redirect to the login page
    ]
    erika = people.customer()
    private = [erika.get("/"), erika.get("/inbox"), erika.get("/account")]
    for response in anonymous + private:
        assert_security_headers(response)


def test_the_server_error_page_carries_the_security_headers_too(app):
    async def broken(request):
        raise RuntimeError("boom")

    app.add_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as visitor:
        response = visitor.get("/broken")
    assert response.status_code == 500
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"


def test_pages_as_served_hold_no_inline_script_or_handler(people, client):
    """The rendered HTML, not only the templates: the CSP would block what it finds."""
    staff, erika = people.staff(), people.customer()
    topic = submit(
        erika.client,
        "/c/technik-und-fragen/new",
        {"title": "Frage", "body": "<script>alert(1)</script> <img src=x onerror=alert(2)>"},
    ).headers["location"]
    pages = [client.get(path) for path in ("/", "/login", "/register", "/contact", "/search")]
    pages += [erika.get(path) for path in ("/inbox", "/inbox/new", "/account", topic)]
    pages += [staff.get(path) for path in ("/staff", "/staff/team", "/staff/stats", topic)]
    for page in pages:
        assert page.status_code == 200, page.request.url
        inline = re.findall(
            r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", page.text
        )
        assert inline == [], page.request.url
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page.text), page.request.url


def test_urls_that_hold_a_secret_send_no_referrer_and_are_not_cached(client, people, settings):
    erika = people.customer()
    guest_link = guest_writes(client).headers["location"]
    token = signed(settings.secret_key, "unsubscribe", erika.user_id)
    secret_pages = [
        client.get(guest_link),
        client.get("/g/no-such-token"),  # its 404 page still shows the token in the URL
        client.get(f"/unsubscribe/{erika.user_id}/{token}"),
        client.get("/password/reset/made-up-or-expired-token"),
    ]
    for page in secret_pages:
        assert page.headers["referrer-policy"] == "no-referrer", page.request.url
        assert page.headers["cache-control"] == "no-store", page.request.url
    ordinary = client.get("/")
    assert ordinary.headers["referrer-policy"] == "same-origin"


def test_every_route_with_a_token_in_its_path_is_a_secret_url(app):
    """A new link with a token in it cannot forget its Referrer-Policy."""
    with_token = {
        route.name
        for route in app.routes
        if isinstance(route, Route) and "token" in route.param_convertors
    }
    assert with_token and with_token <= SECRET_URL_ROUTES


def test_private_pages_are_not_stored_by_caches(client, people):
    assert "cache-control" not in client.get("/").headers  # the public forum may be cached
    erika, staff = people.customer(), people.staff()
    for person, path in ((erika, "/"), (erika, "/inbox"), (erika, "/account"), (staff, "/staff")):
        assert person.get(path).headers["cache-control"] == "no-store", path


@pytest.mark.parametrize("settings_overrides", [{"base_url": "https://support.example.com"}])
def test_an_https_base_url_turns_on_hsts_and_secure_cookies(app):
    with TestClient(app, base_url="https://support.example.com", follow_redirects=False) as https:
        first = https.get("/login")
        assert first.headers["strict-transport-security"].startswith("max-age=")
        assert "Secure" in first.headers["set-cookie"]  # the guest's CSRF cookie
        logged = login(https, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert logged.status_code == 303
        session_cookie = logged.headers["set-cookie"]
        assert session_cookie.startswith(SESSION_COOKIE) and "; secure" in session_cookie.lower()
        switched = submit(https, "/language", {"locale": "en"})
        assert "; secure" in switched.headers["set-cookie"].lower()
        logout = submit(https, "/logout", {})
        assert "; secure" in logout.headers["set-cookie"].lower()


def test_a_plain_http_base_url_sends_no_hsts(client):
    response = client.get("/login")
    assert "strict-transport-security" not in response.headers
    assert ANON_COOKIE in response.headers["set-cookie"]
    assert "secure" not in response.headers["set-cookie"].lower()


# --- 2. sessions ---------------------------------------------------------------------------


def test_login_gives_a_new_session_id_and_ends_the_one_the_browser_had(client, new_client):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = client.cookies[SESSION_COOKIE]
    # Someone who planted or copied the cookie before the login gains nothing by it.
    assert login(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    after = client.cookies[SESSION_COOKIE]
    assert after != before
    assert not logged_in(with_cookie(new_client, before))
    assert logged_in(client)


def test_a_made_up_session_cookie_is_worth_nothing(new_client):
    forged = with_cookie(new_client, "a" * 43)
    assert not logged_in(forged)
    assert login(forged, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    assert forged.cookies[SESSION_COOKIE] != "a" * 43


def test_logout_ends_the_session_for_every_copy_of_the_cookie(client, new_client, settings):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    copy = with_cookie(new_client, client.cookies[SESSION_COOKIE])
    assert logged_in(copy)
    assert submit(client, "/logout", {}).status_code == 303
    assert not logged_in(copy)
    assert session_hashes(settings, user_row(settings, ADMIN_EMAIL).id) == set()


def test_a_password_change_ends_every_session_and_renews_this_one(people, new_client, settings):
    erika = people.customer()
    laptop = new_client()
    login(laptop, erika.email, PASSWORD)
    stolen = with_cookie(new_client, erika.client.cookies[SESSION_COOKIE])
    response = erika.submit(
        "/account",
        {"action": "password", "current_password": PASSWORD, "password": "neues-langes-passwort"},
        form_page="/account",
    )
    assert response.status_code == 303
    assert not logged_in(laptop)
    assert not logged_in(stolen)  # even a copy of the very session that changed it
    assert logged_in(erika.client)  # the one who changed it goes on, under a new id
    assert len(session_hashes(settings, erika.user_id)) == 1


def test_a_deactivated_account_is_out_on_its_next_request(people, settings):
    staff = people.staff(admin=False)
    assert staff.get("/staff").status_code == 200
    # Deactivated by some other way than the team page (which also deletes the sessions):
    # the session alone must not be enough.
    execute(settings, users.update().where(users.c.id == staff.user_id).values(is_active=False))
    response = staff.get("/staff")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_removed_admin_role_takes_effect_on_the_next_request(people, new_client, settings):
    admin = people.staff()
    password = add_staff(settings, "zweite@example.com", admin=True)
    second = new_client()
    assert login(second, "zweite@example.com", password).status_code == 303
    assert second.get("/staff/team?format=csv").status_code == 200  # admins only
    second_id = user_row(settings, "zweite@example.com").id
    demoted = admin.submit(f"/staff/team/{second_id}", {"role": "staff"}, form_page="/staff/team")
    assert demoted.status_code == 303
    assert second.get("/staff/team?format=csv").status_code == 403  # same session
    assert second.get("/staff").status_code == 200  # still staff
    execute(settings, users.update().where(users.c.id == second_id).values(role="customer"))
    assert second.get("/staff").status_code == 403


# --- 2. no account enumeration -------------------------------------------------------------


def _anonymised(html: str, *typed: str) -> str:
    """The page without what differs by design: the typed value and the CSRF token."""
    for value in typed:
        html = html.replace(value, "TYPED")
    return re.sub(r'name="csrf_token" value="[0-9a-f]+"', "", html)


def test_login_answers_alike_for_a_wrong_password_an_unknown_and_a_disabled_account(
    people, new_client, settings
):
    erika = people.customer()
    staff = people.staff(admin=False)
    execute(settings, users.update().where(users.c.id == staff.user_id).values(is_active=False))
    attempts = {
        "wrong password": (erika.email, "falsches-passwort-1"),
        "unknown": ("niemand@example.com", "falsches-passwort-1"),
        "disabled": (staff.email, staff.password),  # even with its right password
    }
    answers = {}
    for case, (login_value, password) in attempts.items():
        response = login(new_client(), login_value, password)
        answers[case] = (response.status_code, _anonymised(response.text, login_value))
    assert len(set(answers.values())) == 1, answers


def _timed_login(client: TestClient, login_value: str, token: str) -> float:
    started = time.perf_counter()
    response = client.post(
        "/login", data={"csrf_token": token, "login": login_value, "password": "falsch-falsch-1"}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 400
    return elapsed


def test_an_unknown_login_takes_as_long_as_a_wrong_password(
    production_password_cost, client, people
):
    """A password hash is checked either way, so the answer's time tells nothing."""
    erika = people.customer()
    token = csrf_from(client.get("/login").text)
    _timed_login(client, erika.email, token)  # warm up
    known = [_timed_login(client, erika.email, token) for _ in range(3)]
    unknown = [_timed_login(client, f"niemand{n}@example.com", token) for n in range(4)]
    # argon2 takes tens of milliseconds; a lookup without it a few. Generous for a busy box.
    assert statistics.median(unknown) > 0.5 * statistics.median(known), (known, unknown)


def test_code_and_reset_requests_answer_alike_for_known_and_unknown_addresses(
    people, new_client, mailbox
):
    erika = people.customer()
    for path in ("/login/code", "/password/reset"):
        answers = []
        for address in (erika.email, "niemand@example.com"):
            visitor = new_client()
            response = submit(visitor, path, {"email": address}, form_page=path)
            answers.append(
                (
                    response.status_code,
                    response.headers.get("location"),
                    _anonymised(response.text, address),
                )
            )
        assert answers[0] == answers[1], path
    assert len(mailbox.to(erika.email)) == 2 and mailbox.to("niemand@example.com") == []


# --- 2. redirects, mail links, forms, passwords ---------------------------------------------

EVIL_TARGETS = [
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example",
    "/\\/evil.example",
    "/x/..\\..\\\\evil.example",
    "https://evil.example/",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\x0b/evil.example",
    "/\x00/evil.example",
    "/\u200b/evil.example",  # a format character, invisible
    " //evil.example",
    "evil.example",
]


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_next_never_leads_off_the_site(client, target):
    response = submit(client, "/language", {"locale": "de", "next": target})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    form = client.get("/login", params={"next": target}).text
    assert 'name="next" value=""' in form


def test_login_follows_next_only_within_the_site(client, new_client):
    good = submit(
        client,
        "/login",
        {"login": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "/staff?status=open"},
        form_page="/login",
    )
    assert good.headers["location"] == "/staff?status=open"
    bad = submit(
        new_client(),
        "/login",
        {"login": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "/\\evil.example"},
        form_page="/login",
    )
    assert bad.status_code == 303 and bad.headers["location"] == "/staff"  # staff's landing


@pytest.mark.parametrize("settings_overrides", [{"base_url": "http://support.example.com"}])
def test_mail_links_use_the_base_url_not_the_host_header(people, new_client, mailbox):
    erika = people.customer()
    visitor = new_client()
    page = visitor.get("/password/reset", headers={"host": EVIL_HOST}).text
    response = visitor.post(
        "/password/reset",
        data={"csrf_token": csrf_from(page), "email": erika.email},
        headers={"host": EVIL_HOST, "x-forwarded-host": EVIL_HOST},
    )
    assert response.status_code == 303
    guest = new_client()
    guest_page = guest.get("/contact", headers={"host": EVIL_HOST}).text
    guest.post(
        "/contact",
        data={
            "csrf_token": csrf_from(guest_page),
            "name": "Gustav Gast",
            "email": "gast@example.com",
            "body": "Frage",
        },
        headers={"host": EVIL_HOST},
    )
    for address in (erika.email, "gast@example.com"):
        [message] = mailbox.to(address)
        text = mail_text(message)
        assert "http://support.example.com/" in text, address
        assert EVIL_HOST not in text and "testserver" not in text, address


def test_registration_takes_no_role_or_staff_flag_from_the_form(client, settings):
    page = client.get("/register").text
    response = client.post(
        "/register",
        data={
            "csrf_token": csrf_from(page),
            "name": "Mallory",
            "email": "mallory@example.com",
            "password": PASSWORD,
            "role": "admin",
            "is_staff": "1",
            "is_admin": "1",
            "is_active": "1",
            "customer_number": "1",
            "must_change_password": "0",
        },
    )
    assert response.status_code == 303
    row = user_row(settings, "mallory@example.com")
    assert row.role == "customer" and row.customer_number == 10001
    assert client.get("/staff").status_code == 403


def test_the_account_form_takes_no_role_or_staff_mail_settings(people, settings):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {
            "action": "profile",
            "name": "Erika Mustermann",
            "email": erika.email,
            "notify": "each",
            "role": "admin",
            "is_active": "0",
            "customer_number": "1",
            "notify_new": "1",  # mail about every new request in the staff queue
            "daily_summary": "1",
        },
        form_page="/account",
    )
    assert response.status_code == 303
    row = user_row(settings, erika.email)
    assert (row.role, row.is_active, row.customer_number) == ("customer", True, 10001)
    assert not row.notify_new and not row.daily_summary


@pytest.mark.parametrize(
    "password",
    ["password123", "Password123", "1234567890", "qwertyuiop", "QWERTYUIOP", "1q2w3e4r5t"],
)
def test_the_most_common_passwords_are_refused(client, settings, password):
    response = register(client, "Erika Mustermann", "erika@example.com", password)
    assert response.status_code == 400
    assert german("This password is one of the most common ones. Please choose another.") in (
        response.text
    )
    assert 'value="erika@example.com"' in response.text
    assert user_row(settings, "erika@example.com") is None


def test_a_common_password_is_refused_on_a_password_change_too(people):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {"action": "password", "current_password": PASSWORD, "password": "Password123"},
        form_page="/account",
    )
    assert response.status_code == 400
    assert german("This password is one of the most common ones. Please choose another.") in (
        response.text
    )
    assert login(erika.client, erika.email, PASSWORD).status_code == 303  # unchanged


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("neun-zchn", False),  # 9 characters
        ("zehn-zchn!", True),  # 10, nothing but letters and a dash and a mark
        ("nurkleinbuchstaben", True),  # no digit, no capital, no symbol: no such rules
        ("x" * PASSWORD_MAX, True),
        ("x" * (PASSWORD_MAX + 1), False),
    ],
)
def test_passwords_need_a_length_and_nothing_else(client, settings, password, accepted):
    response = register(client, "Erika Mustermann", "erika@example.com", password)
    assert response.status_code == (303 if accepted else 400)
    assert (user_row(settings, "erika@example.com") is not None) is accepted


def test_the_common_password_list_ships_with_the_package():
    listed = common_passwords()
    assert len(listed) >= 2000
    assert all(entry == entry.lower() and len(entry) >= 10 for entry in listed)


# --- 3. abuse limits -----------------------------------------------------------------------


@pytest.mark.parametrize("setting", sorted(LIMIT_VARIABLES))
def test_each_limit_is_a_setting_read_from_the_environment(tmp_path, setting):
    variable, default = LIMIT_VARIABLES[setting]
    env = {"BOARD_DATA_DIR": str(tmp_path), "BOARD_SECRET_KEY": "x"}
    assert getattr(Settings.from_env(env), setting) == default
    assert getattr(Settings.from_env({**env, variable: "7"}), setting) == 7


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_account": 2}])
def test_login_attempts_are_limited_per_account(client, new_client, people):
    erika = people.customer()
    for _ in range(2):
        assert login(new_client(), erika.email, "falsch-falsch-1").status_code == 400
    blocked = login(new_client(), str(erika.customer_number), PASSWORD)  # any name, any client
    assert blocked.status_code == 429
    assert "Zu viele fehlgeschlagene Versuche" in blocked.text
    assert f'value="{erika.customer_number}"' in blocked.text  # what was typed is kept


@pytest.mark.parametrize(
    "settings_overrides", [{"login_failures_per_address": 2, **TRUST_TESTCLIENT}]
)
def test_login_attempts_are_limited_per_client_address(client, new_client, people):
    erika = people.customer()
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for number in range(2):
        wrong = {"login": f"opfer{number}@example.com", "password": "falsch-falsch-1"}
        assert submit(new_client(), "/login", wrong, headers=attacker).status_code == 400
    right = {"login": erika.email, "password": PASSWORD}
    assert submit(new_client(), "/login", right, headers=attacker).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.4"}
    assert submit(new_client(), "/login", right, headers=other).status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"registrations_per_hour": 2, **TRUST_TESTCLIENT}])
def test_registrations_are_limited_per_client_address_and_count_taken_addresses(
    client, new_client, settings
):
    address = {"X-Forwarded-For": "203.0.113.7"}
    first = submit(
        new_client(),
        "/register",
        {"name": "Erika", "email": "erika@example.com", "password": PASSWORD},
        headers=address,
    )
    assert first.status_code == 303
    # Probing whether an address has an account counts like creating one.
    probe = {"name": "Max", "email": "erika@example.com", "password": PASSWORD}
    assert submit(new_client(), "/register", probe, headers=address).status_code == 400
    typed = {"name": "Mara Muster", "email": "mara@example.com", "password": PASSWORD}
    limited = submit(new_client(), "/register", typed, headers=address)
    assert limited.status_code == 429
    assert "Zu viele Registrierungen aus Ihrem Netzwerk" in limited.text
    assert 'value="Mara Muster"' in limited.text and 'value="mara@example.com"' in limited.text
    assert user_row(settings, "mara@example.com") is None
    other = {"X-Forwarded-For": "198.51.100.4"}
    assert submit(new_client(), "/register", typed, headers=other).status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"login_mails_per_client": 2, **TRUST_TESTCLIENT}])
@pytest.mark.parametrize(
    ("path", "accepted", "message"),
    [
        ("/login/code", 200, "Es wurden zu viele Codes angefordert"),  # the code entry page
        ("/password/reset", 303, "Es wurden zu viele Links angefordert"),  # to "link sent"
    ],
)
def test_code_and_reset_requests_are_limited_per_client_address(
    new_client, path, accepted, message
):
    address = {"X-Forwarded-For": "203.0.113.7"}
    for number in range(2):
        response = submit(
            new_client(), path, {"email": f"a{number}@example.com"}, form_page=path, headers=address
        )
        assert response.status_code == accepted
    typed = {"email": "dritte@example.com"}
    limited = submit(new_client(), path, typed, form_page=path, headers=address)
    assert limited.status_code == 429
    assert message in limited.text and 'value="dritte@example.com"' in limited.text
    other = {"X-Forwarded-For": "198.51.100.4"}
    assert submit(new_client(), path, typed, form_page=path, headers=other).status_code == accepted


@pytest.mark.parametrize("settings_overrides", [{"login_mails_per_email": 1}])
def test_code_requests_are_limited_per_email_address(people, new_client, mailbox):
    erika = people.customer()
    first = submit(new_client(), "/login/code", {"email": erika.email}, form_page="/login/code")
    assert first.status_code == 200
    again = submit(new_client(), "/login/code", {"email": erika.email}, form_page="/login/code")
    assert again.status_code == 429
    assert len(mailbox.to(erika.email)) == 1


@pytest.mark.parametrize("settings_overrides", [{"guest_messages_per_hour": 1, **TRUST_TESTCLIENT}])
def test_guest_messages_are_limited_and_a_refused_one_stores_no_file(client, new_client, settings):
    def stored() -> list:
        uploads = settings.data_dir / "uploads"
        found = (path.relative_to(uploads) for path in uploads.rglob("*") if path.is_file())
        return [path for path in found if path.parts[0] != "tmp"]  # not the spool folder

    address = {"X-Forwarded-For": "203.0.113.7"}

    def write(visitor, body, file):
        page = visitor.get("/contact").text
        return visitor.post(
            "/contact",
            data={
                "csrf_token": csrf_from(page),
                "name": "Gustav Gast",
                "email": "gast@example.com",
                "body": body,
            },
            files=[("attachments", ("beleg.pdf", file, "application/pdf"))],
            headers=address,
        )

    assert write(new_client(), "Erste Nachricht", PDF).status_code == 303
    files_kept = stored()
    assert files_kept  # such a file is stored when the message is taken
    limited = write(new_client(), "Zweite Nachricht", pdf_bytes("eine andere Datei"))
    assert limited.status_code == 429
    assert "Zu viele Nachrichten aus Ihrem Netzwerk" in limited.text
    assert "Zweite Nachricht" in limited.text and 'value="Gustav Gast"' in limited.text
    assert stored() == files_kept
    other = {"X-Forwarded-For": "198.51.100.4"}
    page = client.get("/contact").text
    from_elsewhere = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(page),
            "name": "Gina",
            "email": "gina@example.com",
            "body": "Hallo",
        },
        headers=other,
    )
    assert from_elsewhere.status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"flood_seconds": 60}])
def test_posts_and_topics_wait_for_the_flood_interval_and_keep_the_text(people):
    erika = people.customer()
    first = erika.submit("/c/technik-und-fragen/new", {"title": "Erstes", "body": "Text eins"})
    assert first.status_code == 303
    topic = first.headers["location"]
    reply = erika.submit(f"{topic}/reply", {"body": "Meine schnelle Antwort"}, form_page=topic)
    assert reply.status_code == 429
    assert "Sie schreiben zu schnell" in reply.text and "Meine schnelle Antwort" in reply.text
    second = erika.submit(
        "/c/technik-und-fragen/new", {"title": "Zweites Thema", "body": "Text zwei"}
    )
    assert second.status_code == 429
    assert 'value="Zweites Thema"' in second.text and "Text zwei" in second.text
    staff = people.staff()
    assert staff.submit(f"{topic}/reply", {"body": "Eins"}, form_page=topic).status_code == 303
    assert staff.submit(f"{topic}/reply", {"body": "Zwei"}, form_page=topic).status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"flood_seconds": 60}])
def test_customer_messages_wait_for_the_flood_interval_and_keep_the_text(people):
    erika = people.customer()
    first = erika.submit("/inbox/new", {"body": "Mein Paket fehlt."}, form_page="/inbox/new")
    assert first.status_code == 303
    conversation = first.headers["location"]
    reply = erika.submit(
        f"{conversation}/reply", {"body": "Noch eine Frage dazu"}, form_page=conversation
    )
    assert reply.status_code == 429
    assert "Sie schreiben zu schnell" in reply.text and "Noch eine Frage dazu" in reply.text
    another = erika.submit("/inbox/new", {"body": "Zweites Anliegen"}, form_page="/inbox/new")
    assert another.status_code == 429 and "Zweites Anliegen" in another.text


@pytest.mark.parametrize("settings_overrides", [{"flood_seconds": 60}])
def test_guest_replies_wait_for_the_flood_interval(client, new_client):
    link = guest_writes(client).headers["location"]
    first = submit(client, f"{link}/reply", {"body": "Nachtrag"}, form_page=link)
    assert first.status_code == 303
    # Another browser holding the same link is the same conversation.
    second = submit(new_client(), f"{link}/reply", {"body": "Noch ein Nachtrag"}, form_page=link)
    assert second.status_code == 429 and "Noch ein Nachtrag" in second.text


@pytest.mark.parametrize(
    "settings_overrides", [{"guest_searches_per_minute": 2, **TRUST_TESTCLIENT}]
)
def test_guest_searches_are_limited_per_client_address(app, client, new_client, people):
    index_now(app, client)  # a search before the first index is built answers 503
    address = {"X-Forwarded-For": "203.0.113.7"}
    for word in ("versand", "rechnung"):
        assert client.get("/search", params={"q": word}, headers=address).status_code == 200
    limited = new_client().get("/search", params={"q": "rücksendung"}, headers=address)
    assert limited.status_code == 429
    message = german("Too many searches from your network. Please wait a minute and search again.")
    assert message in limited.text
    assert 'value="rücksendung"' in limited.text  # the search box keeps the words
    other = {"X-Forwarded-For": "198.51.100.4"}
    assert client.get("/search", params={"q": "versand"}, headers=other).status_code == 200
    erika = people.customer()  # logged-in people are not counted
    for _ in range(3):
        assert erika.get("/search", params={"q": "versand"}, headers=address).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"guest_searches_per_minute": 1}])
def test_forwarded_for_from_an_untrusted_client_does_not_dodge_the_search_limit(client):
    client.get("/search", params={"q": "versand"}, headers={"X-Forwarded-For": "203.0.113.1"})
    response = client.get(
        "/search", params={"q": "versand"}, headers={"X-Forwarded-For": "203.0.113.2"}
    )
    assert response.status_code == 429


@pytest.mark.parametrize("settings_overrides", [{"guest_suggestions_per_minute": 1}])
def test_guest_suggestions_are_limited(client):
    draft = {"q": "Mein Paket ist nicht angekommen"}
    assert client.get("/search/suggest", params=draft).status_code == 200
    limited = client.get("/search/suggest", params=draft)
    assert limited.status_code == 429
    assert limited.json()["topics"] == [] and limited.json()["error"]


@pytest.mark.parametrize("settings_overrides", [{"guest_searches_per_minute": 0}])
def test_a_limit_of_zero_turns_it_off(app, client):
    index_now(app, client)
    for _ in range(5):
        assert client.get("/search", params={"q": "versand"}).status_code == 200
