"""One-time login codes and password reset links, through HTTP, the outbox and real SMTP."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from board.db import login_tokens, outbox, rate_events, sessions, sync_engine, users, utcnow
from board.security import SESSION_COOKIE, signed
from tests.conftest import PASSWORD, login, mail_text, submit, user_row, wait_for

NEW_PASSWORD = "ein-ganz-neues-passwort"
NOBODY = "niemand@example.com"
TOPIC_PAGE = "/c/technik-und-fragen"


@pytest.fixture
def settings_overrides(request) -> dict:
    """Tests that ask for the `smtp` server send through it; the others write .eml files."""
    if "smtp" in request.fixturenames:
        return {"smtp_host": "127.0.0.1", "smtp_port": request.getfixturevalue("smtp_port")}
    return {}


def english(client):
    """Page and mail text in English: the catalog's German comes later, the ids are English."""
    client.cookies.set("board_locale", "en")
    return client


def request_code(visitor, email: str, **headers):
    return submit(visitor, "/login/code", {"email": email}, form_page="/login/code", **headers)


def enter_code(visitor, email: str, code: str, next_path: str = ""):
    data = {"email": email, "code": code, "next": next_path}
    return submit(visitor, "/login/code", data, form_page="/login/code")


def request_reset(visitor, email: str):
    return submit(visitor, "/password/reset", {"email": email}, form_page="/password/reset")


def set_new_password(visitor, path: str, password: str = NEW_PASSWORD):
    return submit(visitor, path, {"password": password}, form_page="/password/reset")


def mails_to(mailbox, address: str, count: int = 1) -> list:
    """The mails to `address` once there are `count`: the app's own sender may be writing one."""
    return wait_for(lambda: found if len(found := mailbox.to(address)) >= count else None)


def code_in(message) -> str:
    return re.search(r"\b\d{6}\b", message.get_body(("plain",)).get_content())[0]


def reset_path(settings, message) -> str:
    link = re.search(r"\S+/password/reset/[\w-]+", message.get_body(("plain",)).get_content())[0]
    assert link.startswith(settings.base_url + "/password/reset/")
    return link.removeprefix(settings.base_url)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def rows(settings, statement) -> list:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        found = connection.execute(statement).all()
    engine.dispose()
    return found


def change(settings, statement) -> None:
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def tokens_of(settings, user_id: int, purpose: str) -> list:
    return rows(
        settings,
        sa.select(login_tokens)
        .where(login_tokens.c.user_id == user_id, login_tokens.c.purpose == purpose)
        .order_by(login_tokens.c.id),
    )


def outbox_to(settings, address: str) -> list:
    return rows(settings, sa.select(outbox).where(outbox.c.to_address == address))


def session_count(settings, user_id: int) -> int:
    statement = sa.select(sa.func.count()).where(sessions.c.user_id == user_id)
    return rows(settings, statement)[0][0]


def expire_tokens(settings, user_id: int) -> None:
    change(
        settings,
        login_tokens.update()
        .where(login_tokens.c.user_id == user_id)
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )


# --- login with a code -------------------------------------------------------------------


def test_code_login_logs_in_once_and_goes_where_the_visitor_was_headed(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    visitor = english(new_client())
    page = request_code(visitor, erika.email)
    assert page.status_code == 200
    assert "we have sent a code" in page.text
    assert 'value="erika@example.com"' in page.text and 'name="code"' in page.text
    code = code_in(mails_to(mailbox, erika.email)[0])

    response = enter_code(visitor, erika.email, code, next_path=TOPIC_PAGE)
    assert response.status_code == 303
    assert response.headers["location"] == TOPIC_PAGE
    assert visitor.get("/account").status_code == 200
    assert session_count(settings, erika.user_id) == 2  # the registration's and this one

    replay = english(new_client())
    again = enter_code(replay, erika.email, code)
    assert again.status_code == 400
    assert "This code is not correct or no longer valid." in again.text
    assert 'value="erika@example.com"' in again.text
    assert SESSION_COOKIE not in replay.cookies
    assert tokens_of(settings, erika.user_id, "code")[0].used_at is not None


def test_code_mail_carries_the_code_and_nothing_else_of_the_account(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    request_code(english(new_client()), erika.email)
    [message] = mails_to(mailbox, erika.email)
    code = code_in(message)
    assert message["Subject"] == "Your login code"
    assert message["To"] == erika.email  # no display name
    assert "valid for 10 minutes" in mail_text(message)
    whole = message.as_string() + mail_text(message)
    assert "Erika" not in whole and "Mustermann" not in whole
    assert str(erika.customer_number) not in mail_text(message).replace(code, "")
    # Stored only as a keyed hash; the outbox forgets the code once the mail is out.
    [token] = tokens_of(settings, erika.user_id, "code")
    assert token.secret_hash == signed(settings.secret_key, "login-code", f"{erika.user_id}:{code}")
    assert token.expires_at - token.created_at == timedelta(minutes=10)
    [queued] = outbox_to(settings, erika.email)
    assert queued.sent_at is not None and queued.params == "{}"


def test_expired_code_is_refused(people, new_client, mailbox, settings):
    erika = people.customer()
    visitor = english(new_client())
    request_code(visitor, erika.email)
    code = code_in(mails_to(mailbox, erika.email)[0])
    expire_tokens(settings, erika.user_id)
    response = enter_code(visitor, erika.email, code)
    assert response.status_code == 400
    assert "no longer valid" in response.text
    assert SESSION_COOKIE not in visitor.cookies


def test_five_wrong_tries_void_the_code_even_for_the_right_sixth(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    visitor = english(new_client())
    request_code(visitor, erika.email)
    code = code_in(mails_to(mailbox, erika.email)[0])
    for attempt in range(1, 6):
        response = enter_code(visitor, erika.email, other_code(code))
        assert response.status_code == 400
        if attempt < 5:
            assert "This code is not correct" in response.text
    assert "Please request a new code." in response.text
    right = enter_code(visitor, erika.email, code)
    assert right.status_code == 400
    assert "Please request a new code." in right.text
    assert SESSION_COOKIE not in visitor.cookies
    [token] = tokens_of(settings, erika.user_id, "code")
    assert token.attempts == 5 and token.used_at is None

    request_code(visitor, erika.email)  # a new code starts afresh
    fresh = code_in(mails_to(mailbox, erika.email, count=2)[-1])
    assert enter_code(visitor, erika.email, fresh).status_code == 303


def test_a_new_code_replaces_the_older_one(people, new_client, mailbox, settings):
    erika = people.customer()
    visitor = english(new_client())
    request_code(visitor, erika.email)
    request_code(visitor, erika.email)
    first, second = (code_in(message) for message in mails_to(mailbox, erika.email, count=2))
    if first != second:
        assert enter_code(visitor, erika.email, first).status_code == 400
    assert enter_code(visitor, erika.email, second).status_code == 303


def test_code_login_sends_a_one_time_password_holder_to_the_account_page(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    change(
        settings,
        users.update().where(users.c.id == erika.user_id).values(must_change_password=True),
    )
    visitor = english(new_client())
    request_code(visitor, erika.email)
    code = code_in(mails_to(mailbox, erika.email)[0])
    response = enter_code(visitor, erika.email, code, next_path=TOPIC_PAGE)
    assert response.headers["location"] == "/account"


def test_code_requests_are_limited_per_address(people, new_client, settings):
    erika = people.customer()
    for _ in range(3):
        assert request_code(english(new_client()), erika.email).status_code == 200
    blocked = request_code(english(new_client()), erika.email)
    assert blocked.status_code == 429
    assert "Too many codes were requested" in blocked.text
    assert 'value="erika@example.com"' in blocked.text
    assert len(outbox_to(settings, erika.email)) == 3


@pytest.mark.parametrize(
    "settings_overrides", [{"login_mails_per_email": 0, "login_codes_per_day": 4}]
)
@pytest.mark.parametrize("address", ["erika@example.com", NOBODY])
def test_login_codes_are_capped_per_address_and_day(people, new_client, settings, address):
    """Each code takes five wrong tries and a new code starts them anew: the day's cap
    bounds the guesses. Unknown addresses get the same answers."""
    people.customer()
    for _ in range(4):
        assert request_code(english(new_client()), address).status_code == 200
    engine = sync_engine(settings)
    with engine.begin() as connection:  # hours ago: long past any 15-minute window
        connection.execute(rate_events.update().values(created_at=utcnow() - timedelta(hours=3)))
    engine.dispose()
    capped = request_code(english(new_client()), address)
    assert capped.status_code == 429
    assert "Too many codes were requested for this address today" in capped.text
    assert f'value="{address}"' in capped.text


@pytest.mark.parametrize("settings_overrides", [{"forwarded_allow_ips": ("testclient",)}])
def test_code_requests_are_limited_per_client(client, new_client, settings):
    english(client)
    crowd = {"X-Forwarded-For": "203.0.113.7"}
    for number in range(10):
        assert request_code(client, f"user{number}@example.com", headers=crowd).status_code == 200
    blocked = request_code(client, "user10@example.com", headers=crowd)
    assert blocked.status_code == 429
    assert "Too many codes were requested" in blocked.text
    assert 'value="user10@example.com"' in blocked.text
    # Another client behind the same proxy is not affected.
    other = request_code(new_client(), "user10@example.com", headers={"X-Forwarded-For": "1.2.3.4"})
    assert other.status_code == 200


def test_unknown_or_inactive_address_gets_the_same_page_and_no_mail(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    visitor = english(new_client())
    known = request_code(visitor, erika.email)
    unknown = request_code(visitor, NOBODY)
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(erika.email, "@") == unknown.text.replace(NOBODY, "@")
    assert outbox_to(settings, NOBODY) == [] and mailbox.to(NOBODY) == []

    change(settings, users.update().where(users.c.id == erika.user_id).values(is_active=False))
    inactive = request_code(visitor, erika.email)
    assert inactive.status_code == 200
    assert inactive.text == known.text
    assert len(outbox_to(settings, erika.email)) == 1
    # Counted like any address: the limit does not tell which addresses have an account.
    request_code(visitor, NOBODY)
    request_code(visitor, NOBODY)
    assert request_code(visitor, NOBODY).status_code == 429


def test_wrong_codes_get_the_same_answers_for_unknown_addresses(people, new_client, mailbox):
    erika = people.customer()
    visitor = english(new_client())
    request_code(visitor, erika.email)
    request_code(visitor, NOBODY)
    wrong = other_code(code_in(mails_to(mailbox, erika.email)[0]))

    def answers(email: str) -> list:
        found = []
        for _ in range(6):
            response = enter_code(visitor, email, wrong)
            found.append((response.status_code, response.text.replace(email, "@")))
        return found

    assert answers(erika.email) == answers(NOBODY)


# --- password reset ----------------------------------------------------------------------


def test_reset_link_sets_a_new_password_once_and_ends_every_session(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    laptop = new_client()
    assert login(laptop, erika.email, PASSWORD).status_code == 303
    change(
        settings,
        users.update().where(users.c.id == erika.user_id).values(must_change_password=True),
    )
    request_code(english(new_client()), erika.email)  # an outstanding code dies with the reset
    code = code_in(mails_to(mailbox, erika.email)[0])

    visitor = english(new_client())
    response = request_reset(visitor, erika.email)
    assert response.status_code == 303
    assert "we have sent a link" in visitor.get(response.headers["location"]).text
    message = [m for m in mails_to(mailbox, erika.email, count=2) if "/password/" in mail_text(m)]
    path = reset_path(settings, message[0])
    assert "Erika" not in message[0].as_string()
    token = path.rsplit("/", 1)[1]
    [stored] = tokens_of(settings, erika.user_id, "reset")
    assert stored.secret_hash == hashlib.sha256(token.encode()).hexdigest()

    form = visitor.get(path)
    assert form.status_code == 200 and 'name="password"' in form.text
    saved = set_new_password(visitor, path)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/account?saved=password"
    assert visitor.get("/account").status_code == 200
    # Every other session ended, including the one that asked for nothing.
    assert erika.get("/account").status_code == 303
    assert laptop.get("/account").status_code == 303
    assert session_count(settings, erika.user_id) == 1
    assert user_row(settings, erika.email).must_change_password is False

    assert login(new_client(), erika.email, PASSWORD).status_code == 400
    assert login(new_client(), erika.email, NEW_PASSWORD).status_code == 303
    assert enter_code(english(new_client()), erika.email, code).status_code == 400

    replay = english(new_client())
    used = replay.get(path)
    assert used.status_code == 400
    assert "Request a new link" in used.text
    assert set_new_password(replay, path, "noch-ein-anderes-passwort").status_code == 400
    assert login(new_client(), erika.email, NEW_PASSWORD).status_code == 303


def test_reset_link_expires_after_an_hour(people, new_client, mailbox, settings):
    erika = people.customer()
    visitor = english(new_client())
    request_reset(visitor, erika.email)
    path = reset_path(settings, mails_to(mailbox, erika.email)[0])
    [stored] = tokens_of(settings, erika.user_id, "reset")
    assert stored.expires_at - stored.created_at == timedelta(hours=1)
    expire_tokens(settings, erika.user_id)
    assert visitor.get(path).status_code == 400
    assert set_new_password(visitor, path).status_code == 400
    assert login(new_client(), erika.email, PASSWORD).status_code == 303


def test_a_new_reset_link_replaces_the_older_one(people, new_client, mailbox, settings):
    erika = people.customer()
    visitor = english(new_client())
    request_reset(visitor, erika.email)
    request_reset(visitor, erika.email)
    first, second = (reset_path(settings, m) for m in mails_to(mailbox, erika.email, count=2))
    assert visitor.get(first).status_code == 400
    assert visitor.get(second).status_code == 200


def test_a_too_short_password_keeps_the_link_usable(people, new_client, mailbox, settings):
    erika = people.customer()
    visitor = english(new_client())
    request_reset(visitor, erika.email)
    path = reset_path(settings, mails_to(mailbox, erika.email)[0])
    short = set_new_password(visitor, path, "kurz")
    assert short.status_code == 400
    assert "The password needs at least 10 characters." in short.text
    assert set_new_password(visitor, path).status_code == 303


def test_unknown_address_on_reset_gets_the_same_answer_and_no_mail(
    people, new_client, mailbox, settings
):
    erika = people.customer()
    visitor = english(new_client())
    known = request_reset(visitor, erika.email)
    unknown = request_reset(visitor, NOBODY)
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"]
    assert outbox_to(settings, NOBODY) == [] and mailbox.to(NOBODY) == []
    assert len(outbox_to(settings, erika.email)) == 1


def test_reset_requests_are_limited_per_address(people, new_client, settings):
    erika = people.customer()
    for _ in range(3):
        assert request_reset(english(new_client()), erika.email).status_code == 303
    blocked = request_reset(english(new_client()), erika.email)
    assert blocked.status_code == 429
    assert "Too many links were requested" in blocked.text
    assert 'value="erika@example.com"' in blocked.text


@pytest.mark.parametrize("path", ["/password/reset/not-a-token", "/password/reset/" + "x" * 500])
def test_a_made_up_link_gets_a_friendly_page(client, path):
    response = english(client).get(path)
    assert response.status_code == 400
    assert "Request a new link" in response.text


def test_posts_without_a_csrf_token_are_refused(people, new_client, mailbox, settings):
    erika = people.customer()
    visitor = new_client()
    request_reset(visitor, erika.email)
    path = reset_path(settings, mails_to(mailbox, erika.email)[0])
    attempts = [
        ("/login/code", {"email": erika.email}),
        ("/login/code", {"email": erika.email, "code": "123456"}),
        ("/password/reset", {"email": erika.email}),
        (path, {"password": NEW_PASSWORD}),
    ]
    for target, data in attempts:
        assert visitor.post(target, data=data).status_code == 403, target
    assert len(outbox_to(settings, erika.email)) == 1  # only the reset link asked for above
    assert visitor.get(path).status_code == 200  # still unused
    assert login(new_client(), erika.email, PASSWORD).status_code == 303


# --- through a real SMTP server ----------------------------------------------------------


def test_code_mail_goes_out_through_smtp_and_logs_in(people, new_client, smtp, settings):
    erika = people.customer()
    visitor = english(new_client())
    assert request_code(visitor, erika.email).status_code == 200
    [message] = wait_for(lambda: [m for m in smtp.messages if m["Subject"] == "Your login code"])
    assert message["To"] == erika.email
    assert smtp.envelopes[-1].rcpt_tos == [erika.email]
    code = code_in(message)
    assert enter_code(visitor, erika.email, code).status_code == 303
    [queued] = outbox_to(settings, erika.email)
    assert queued.sent_at is not None and queued.params == "{}"
