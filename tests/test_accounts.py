"""Registration, login, sessions, CSRF, throttling and the account page, through HTTP."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.db import sessions, sync_engine, users
from board.security import SESSION_COOKIE
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    csrf_from,
    login,
    register,
    submit,
    user_row,
)


def session_count(settings, user_id: int) -> int:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count()).where(sessions.c.user_id == user_id)
        ).scalar_one()
    engine.dispose()
    return count


# --- registration ------------------------------------------------------------------------


@pytest.mark.postgresql  # customer numbers under an advisory lock there
def test_registration_assigns_sequential_customer_numbers_shown_in_the_header(
    client, new_client, settings
):
    first = register(client, "Erika Mustermann", "erika@example.com")
    assert first.status_code == 303
    welcome = client.get(first.headers["location"])
    assert 'id="customer-number"' in welcome.text
    assert re.search(r'id="customer-number"[^>]*>[^<]*10001<', welcome.text)
    assert "10001" in welcome.text and "Erika Mustermann" in welcome.text

    second_client = new_client()
    assert register(second_client, "Max Muster", "max@example.com").status_code == 303
    assert user_row(settings, "max@example.com").customer_number == 10002
    assert re.search(r'id="customer-number"[^>]*>[^<]*10002<', second_client.get("/").text)


def test_password_is_stored_as_argon2_hash(client, settings):
    register(client, "Erika Mustermann", "erika@example.com")
    stored = user_row(settings, "erika@example.com").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_duplicate_email_is_refused_and_the_form_keeps_the_name(client, new_client, settings):
    register(client, "Erika Mustermann", "erika@example.com")
    other = new_client()
    response = register(other, "Erika Zwei", "ERIKA@example.com")
    assert response.status_code == 400
    assert "Erika Zwei" in response.text
    assert "existiert bereits" in response.text
    assert user_row(settings, "erika@example.com").name == "Erika Mustermann"


@pytest.mark.parametrize(
    ("name", "email", "password", "message"),
    [
        ("", "a@example.com", PASSWORD, "Bitte geben Sie Ihren Namen ein."),
        ("Anna", "not-an-email", PASSWORD, "gültige E-Mail-Adresse"),
        ("Anna", "a@example.com", "kurz", "mindestens 10 Zeichen"),
        ("Anna", "a@example.com", "x" * 1001, "höchstens 1000 Zeichen"),
    ],
)
def test_registration_refuses_bad_input_with_a_clear_message(
    client, settings, name, email, password, message
):
    response = register(client, name, email, password)
    assert response.status_code == 400
    assert message in response.text
    if name:
        assert f'value="{name}"' in response.text
    assert user_row(settings, "a@example.com") is None


def test_honeypot_filled_by_a_bot_creates_no_account(client, settings):
    response = submit(
        client,
        "/register",
        {"name": "Bot", "email": "bot@example.com", "password": PASSWORD, "website": "spam"},
    )
    assert response.status_code == 303
    assert user_row(settings, "bot@example.com") is None


# --- login -------------------------------------------------------------------------------


def test_login_with_customer_number_and_with_email_in_any_case(client, new_client):
    register(client, "Erika Mustermann", "erika@example.com")
    by_number = new_client()
    response = login(by_number, "10001", PASSWORD)
    assert response.status_code == 303
    assert "Erika Mustermann" in by_number.get("/").text

    by_email = new_client()
    assert login(by_email, "Erika@Example.COM", PASSWORD).status_code == 303
    assert "10001" in by_email.get("/").text


def test_wrong_password_and_unknown_account_get_the_same_answer(client, new_client):
    register(client, "Erika Mustermann", "erika@example.com")
    wrong = login(new_client(), "erika@example.com", "falsches-passwort")
    unknown = login(new_client(), "niemand@example.com", "falsches-passwort")
    assert wrong.status_code == unknown.status_code == 400
    message = "Kundennummer, E-Mail oder Passwort ist nicht korrekt."
    assert message in wrong.text and message in unknown.text
    assert 'value="erika@example.com"' in wrong.text  # the login field is kept
    assert SESSION_COOKIE not in wrong.cookies


def test_login_redirects_only_to_paths_of_this_site(client, new_client):
    register(client, "Erika Mustermann", "erika@example.com")
    visitor = new_client()
    response = submit(
        visitor,
        "/login",
        {"login": "erika@example.com", "password": PASSWORD, "next": "/c/technik-und-fragen"},
    )
    assert response.headers["location"] == "/c/technik-und-fragen"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        other = new_client()
        response = submit(
            other, "/login", {"login": "erika@example.com", "password": PASSWORD, "next": evil}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/inbox"  # the customer's landing page


def test_failed_logins_are_throttled_per_account(client, new_client, settings):
    register(client, "Erika Mustermann", "erika@example.com")
    attacker = new_client()
    for _ in range(settings.login_failures_per_account):
        assert login(attacker, "erika@example.com", "falsch-falsch").status_code == 400
    blocked = login(attacker, "erika@example.com", PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert "Zu viele fehlgeschlagene Versuche" in blocked.text
    # However the account is named, it is the same account.
    assert login(new_client(), "ERIKA@example.com", PASSWORD).status_code == 429
    assert login(new_client(), "10001", PASSWORD).status_code == 429


@pytest.mark.parametrize(
    "settings_overrides",
    [{"login_failures_per_address": 3, "forwarded_allow_ips": ("testclient",)}],
)
def test_failed_logins_are_throttled_per_client_address_behind_a_trusted_proxy(client, new_client):
    register(client, "Erika Mustermann", "erika@example.com")
    attacker = new_client()
    spoofed = {"X-Forwarded-For": "203.0.113.7"}
    for number in range(3):
        response = submit(
            attacker,
            "/login",
            {"login": f"user{number}@example.com", "password": "falsch-falsch"},
            headers=spoofed,
        )
        assert response.status_code == 400
    response = submit(
        attacker, "/login", {"login": "erika@example.com", "password": PASSWORD}, headers=spoofed
    )
    assert response.status_code == 429
    # Another client address behind the same proxy is not affected.
    response = submit(
        new_client(),
        "/login",
        {"login": "erika@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.4"},
    )
    assert response.status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_address": 3}])
def test_forwarded_for_from_an_untrusted_client_does_not_dodge_the_limit(client, new_client):
    attacker = new_client()
    for number in range(3):
        submit(
            attacker,
            "/login",
            {"login": f"user{number}@example.com", "password": "falsch-falsch"},
            headers={"X-Forwarded-For": f"203.0.113.{number}"},
        )
    register(client, "Erika Mustermann", "erika@example.com")
    response = submit(
        new_client(),
        "/login",
        {"login": "erika@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.99"},
    )
    assert response.status_code == 429


# --- sessions and CSRF -------------------------------------------------------------------


def test_post_without_or_with_a_foreign_csrf_token_is_refused(client, new_client, settings):
    response = client.post("/login", data={"login": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 403
    assert "Formular ist abgelaufen" in response.text
    forged = client.post(
        "/login", data={"login": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    other_token = csrf_from(new_client().get("/login").text)
    stolen = client.post(
        "/login",
        data={"login": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": other_token},
    )
    assert stolen.status_code == 403
    assert session_count(settings, user_row(settings, ADMIN_EMAIL).id) == 0


def test_session_cookie_is_httponly_samesite_and_new_at_every_login(client):
    response = login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    first = client.cookies[SESSION_COOKIE]
    second = login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert second.status_code == 303
    assert client.cookies[SESSION_COOKIE] != first


def test_logout_ends_the_session_on_the_server(client, new_client, settings):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = client.cookies[SESSION_COOKIE]
    assert submit(client, "/logout", {}).status_code == 303
    assert session_count(settings, user_row(settings, ADMIN_EMAIL).id) == 0
    replay = new_client()
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/account").status_code == 303  # sent to the login page
    assert "Abmelden" not in replay.get("/").text


def test_changing_the_password_ends_the_other_sessions(client, new_client, people, settings):
    erika = people.customer()
    laptop = new_client()
    login(laptop, erika.email, PASSWORD)
    assert "Erika" in laptop.get("/").text
    new_password = "ein-ganz-neues-passwort"
    response = erika.submit(
        "/account",
        {"action": "password", "current_password": PASSWORD, "password": new_password},
        form_page="/account",
    )
    assert response.status_code == 303
    assert "Erika" in erika.get("/").text  # this session stays
    assert laptop.get("/account").status_code == 303  # the other one is gone
    assert login(new_client(), erika.email, PASSWORD).status_code == 400
    assert login(new_client(), erika.email, new_password).status_code == 303


def test_password_change_needs_the_current_password(people):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {"action": "password", "current_password": "falsch", "password": "neues-passwort-1"},
        form_page="/account",
    )
    assert response.status_code == 400
    assert "Ihr aktuelles Passwort ist nicht korrekt." in response.text


# --- the account page --------------------------------------------------------------------


def test_account_changes_name_and_language(people, settings):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {"action": "profile", "name": "Erika Beispiel", "email": erika.email, "locale": "en"},
        form_page="/account",
    )
    assert response.status_code == 303
    page = erika.get("/account").text
    assert "Erika Beispiel" in page
    assert "Your account" in page  # English now, whatever the browser says
    assert user_row(settings, erika.email).locale == "en"


def test_changing_the_email_needs_the_password_and_a_free_address(people, settings):
    erika = people.customer()
    people.customer("Max Muster", "max@example.com")
    without_password = erika.submit(
        "/account",
        {"action": "profile", "name": "Erika", "email": "neu@example.com"},
        form_page="/account",
    )
    assert without_password.status_code == 400
    assert 'value="neu@example.com"' in without_password.text
    taken = erika.submit(
        "/account",
        {
            "action": "profile",
            "name": "Erika",
            "email": "max@example.com",
            "current_password": PASSWORD,
        },
        form_page="/account",
    )
    assert taken.status_code == 400
    assert "gehört zu einem anderen Konto" in taken.text
    changed = erika.submit(
        "/account",
        {
            "action": "profile",
            "name": "Erika",
            "email": "Neu@Example.com",
            "current_password": PASSWORD,
        },
        form_page="/account",
    )
    assert changed.status_code == 303
    assert user_row(settings, "neu@example.com").id == erika.user_id


def test_account_page_needs_a_login(client):
    response = client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


# --- language ----------------------------------------------------------------------------


def test_language_follows_setting_then_browser_then_default(client, people):
    assert "Anmelden" in client.get("/").text  # BOARD_LOCALE default: German
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert "Log in" in english and 'lang="en"' in english
    erika = people.customer()
    erika.submit(
        "/account",
        {"action": "profile", "name": "Erika", "email": erika.email, "locale": "de"},
        form_page="/account",
    )
    page = erika.get("/", headers={"Accept-Language": "en"}).text
    assert "Abmelden" in page  # the user's setting wins over the browser


def test_guest_language_switch_is_remembered(client):
    response = submit(client, "/language", {"locale": "en", "next": "/c/technik-und-fragen"})
    assert response.status_code == 303
    assert response.headers["location"] == "/c/technik-und-fragen"
    assert "Open a new topic" in client.get("/c/technik-und-fragen").text


def test_generated_admin_password_works_once_and_asks_for_a_new_one(tmp_path, new_client):
    from board.app import create_app
    from board.config import Settings
    from board.setup import initialize

    settings = Settings.from_env({"BOARD_DATA_DIR": str(tmp_path / "fresh")})
    created = initialize(settings)
    assert created.email == "admin@localhost" and len(created.password) >= 12
    assert initialize(settings) is None  # the second start creates nobody
    from starlette.testclient import TestClient

    with TestClient(create_app(settings), follow_redirects=False) as visitor:
        response = login(visitor, created.email, created.password)
        assert response.headers["location"] == "/account"
        assert "Einmal-Passwort" in visitor.get("/account").text


def test_a_one_time_password_opens_only_the_page_that_replaces_it(people, settings):
    """Not only the redirect after login: every request until the password is changed."""
    erika = people.customer()
    number = erika.submit("/inbox/new", {"body": "Vorher geschrieben"}, form_page="/inbox/new")
    assert number.status_code == 303
    engine = sync_engine(settings)
    with engine.begin() as connection:  # as the team page sets it for a new staff account
        connection.execute(
            users.update().where(users.c.id == erika.user_id).values(must_change_password=True)
        )
    engine.dispose()
    for path in ("/", "/inbox", number.headers["location"], "/notifications", "/search?q=x"):
        response = erika.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/account#password", path
    page = erika.get("/account")
    assert page.status_code == 200 and "Einmal-Passwort" in page.text
    written = erika.submit("/inbox/new", {"body": "Noch nicht"}, form_page="/account")
    assert written.status_code == 303 and written.headers["location"] == "/account#password"

    changed = erika.submit(
        "/account",
        {"action": "password", "current_password": PASSWORD, "password": "ein-neues-passwort-7"},
        form_page="/account",
    )
    assert changed.status_code == 303
    assert erika.get("/inbox").status_code == 200
