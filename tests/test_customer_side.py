"""The customer's side of a request (issue 23): its status in the customer's words, the
status filter, marking a request done, the confirmation after sending, where a login
lands, and header badges that agree."""

from __future__ import annotations

import re
from datetime import datetime, time

import pytest
import sqlalchemy as sa

from board.db import (
    conversations,
    notifications,
    read_markers,
    sync_engine,
)
from board.hours import BusinessHours
from board.i18n import speaking
from board.inbox.answer_time import expected_answer
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_from, submit
from tests.test_inbox import open_conversation
from tests.test_staff import conversation, history

# Runs on PostgreSQL too: the status filter is SQL the inbox runs.
pytestmark = pytest.mark.postgresql


def inbox_rows(page: str) -> dict[int, str]:
    """Ticket number -> the row's text, as the inbox lists them."""
    found = {}
    for row in re.findall(r'<li class="conversation-row[^"]*">.*?</li>', page, re.S):
        number = int(re.search(r'class="ticket">#(\d+)<', row).group(1))
        found[number] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
    return found


@pytest.fixture
def three_requests(people):
    """Erika's requests in every state: waiting for us, answered, solved."""
    erika, staff = people.customer(), people.staff()
    waiting = open_conversation(erika, "Wo bleibt meine Bestellung 4711?")
    answered = open_conversation(erika, "Passt das Netzteil zum Modell M4?")
    solved = open_conversation(erika, "Bitte die Rechnung an die neue Adresse.")
    staff.submit(
        f"/staff/t/{answered}/reply", {"body": "Welche Seriennummer?", "status": "pending"}
    )
    staff.submit(f"/staff/t/{solved}/reply", {"body": "Erledigt.", "status": "solved"})
    return erika, staff, waiting, answered, solved


# --- 1. the status on every inbox row, and a filter ---------------------------------------


def test_every_inbox_row_says_whose_turn_it_is(three_requests):
    erika, _staff, waiting, answered, solved = three_requests
    listed = inbox_rows(erika.get("/inbox").text)
    assert "Wartet auf unsere Antwort" in listed[waiting]
    assert "Antwort liegt vor" in listed[answered]
    assert "Erledigt" in listed[solved]
    english = inbox_rows(erika.get("/inbox", headers={"Accept-Language": "en"}).text)
    assert "Waiting for our answer" in english[waiting]
    assert "Answer available" in english[answered]
    assert "Done" in english[solved]


def test_a_status_change_shows_in_the_inbox_row_at_once(three_requests):
    """The rows are cached fragments: the status is part of their key."""
    erika, staff, waiting, _answered, _solved = three_requests
    assert "Wartet auf unsere Antwort" in inbox_rows(erika.get("/inbox").text)[waiting]
    staff.submit(f"/staff/t/{waiting}/update", {"status": "solved"})
    assert "Erledigt" in inbox_rows(erika.get("/inbox").text)[waiting]


def test_the_status_filter_keeps_open_or_done_requests(three_requests):
    erika, _staff, waiting, answered, solved = three_requests
    assert set(inbox_rows(erika.get("/inbox?status=open").text)) == {waiting, answered}
    assert set(inbox_rows(erika.get("/inbox?status=done").text)) == {solved}
    assert set(inbox_rows(erika.get("/inbox?status=nonsense").text)) == {
        waiting,
        answered,
        solved,
    }
    page = erika.get("/inbox?status=done").text
    current = re.search(r'<nav class="status-filter".*?</nav>', page, re.S).group(0)
    assert re.search(r'aria-current="page">Erledigt<', current)


def test_the_status_filter_and_the_search_box_keep_each_other(three_requests, app, client):
    from tests.conftest import index_now

    erika, _staff, waiting, answered, _solved = three_requests
    index_now(app, client)
    page = erika.get("/inbox?status=open&q=Bestellung").text
    assert set(inbox_rows(page)) == {waiting}
    # The search form sends the filter along; the filter's links keep the query.
    form = re.search(r'<form method="get" action="/inbox".*?</form>', page, re.S).group(0)
    assert 'name="status" value="open"' in form
    assert 'value="Bestellung"' in form
    links = re.search(r'<nav class="status-filter".*?</nav>', page, re.S).group(0)
    assert links.count("q=Bestellung") == 3
    assert set(inbox_rows(erika.get("/inbox?status=done&q=Bestellung").text)) == set()
    assert "Keine Unterhaltung passt" in erika.get("/inbox?status=done&q=Bestellung").text
    assert answered in inbox_rows(erika.get("/inbox?status=open").text)


# --- 3. customers mark their own request done -------------------------------------------


def status_history(settings, number: int) -> list[tuple]:
    """(who, from, to) of each status change: test_staff's history of its status events."""
    return [
        (actor, old, new)
        for action, old, new, actor, _note in history(settings, number)
        if action == "status"
    ]


def status_of(settings, number: int) -> str:
    return conversation(settings, number).status


def test_a_customer_marks_their_request_done_and_writing_again_reopens_it(three_requests, settings):
    erika, staff, _waiting, answered, _solved = three_requests
    page = erika.get(f"/inbox/{answered}").text
    assert "Als erledigt markieren" in page
    response = erika.submit(f"/inbox/{answered}/done", {}, form_page=f"/inbox/{answered}")
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/inbox/{answered}")
    assert status_of(settings, answered) == "solved"
    # In the history like every status change, under the customer's name.
    assert status_history(settings, answered)[-1] == (erika.user_id, "pending", "solved")
    page = erika.get(f"/inbox/{answered}").text
    assert re.search(r'id="conversation-status" class="status status-solved">Erledigt<', page)
    assert "Als erledigt markieren" not in page
    assert "Ihre Nachricht öffnet die Anfrage wieder" in page
    assert "Erledigt" in inbox_rows(erika.get("/inbox").text)[answered]
    assert "Erika Mustermann" in staff.get(f"/staff/t/{answered}").text

    # A second click changes nothing more.
    again = erika.submit(f"/inbox/{answered}/done", {}, form_page=f"/inbox/{answered}")
    assert again.status_code == 303 and len(status_history(settings, answered)) == 2

    reply = erika.submit(
        f"/inbox/{answered}/reply", {"body": "Doch noch eine Frage."}, form_page="/inbox"
    )
    assert reply.status_code == 303
    assert status_of(settings, answered) == "open"
    assert status_history(settings, answered)[-1] == (None, "solved", "open")


def test_marking_done_needs_the_csrf_token_and_a_post(three_requests, settings):
    erika, _staff, waiting, _answered, _solved = three_requests
    refused = erika.client.post(f"/inbox/{waiting}/done", data={})
    assert refused.status_code == 403
    assert erika.client.get(f"/inbox/{waiting}/done").status_code == 405
    assert status_of(settings, waiting) == "open"


def test_nobody_marks_someone_elses_request_done(three_requests, people, settings):
    _erika, staff, waiting, _answered, _solved = three_requests
    max_ = people.customer("Max Muster")
    response = max_.submit(f"/inbox/{waiting}/done", {}, form_page="/inbox")
    assert response.status_code == 404
    assert "Als erledigt markieren" not in max_.get(f"/inbox/{waiting}").text
    assert staff.submit(f"/inbox/{waiting}/done", {}, form_page="/staff").status_code == 403
    assert status_of(settings, waiting) == "open"
    assert status_history(settings, waiting) == []


def test_announcements_and_spam_cannot_be_marked_done(three_requests, settings):
    erika, staff, waiting, _answered, _solved = three_requests
    staff.submit(f"/staff/t/{waiting}/update", {"status": "spam"})
    assert "Als erledigt markieren" not in erika.get(f"/inbox/{waiting}").text
    response = erika.submit(f"/inbox/{waiting}/done", {}, form_page="/inbox")
    assert response.status_code == 403
    assert status_of(settings, waiting) == "spam"


# --- 5. after sending: when to expect an answer -------------------------------------------

# Europe/Berlin in December is UTC+1; the shop opens Monday to Friday, 09:00-17:00.
TUESDAY_10_BERLIN = datetime(2026, 12, 8, 9, 0)
TUESDAY_6_BERLIN = datetime(2026, 12, 8, 5, 0)
FRIDAY_18_BERLIN = datetime(2026, 12, 11, 17, 0)
SATURDAY_NOON_BERLIN = datetime(2026, 12, 12, 11, 0)


def test_the_promise_follows_the_business_hours():
    office = BusinessHours("Europe/Berlin", (0, 1, 2, 3, 4), time(9, 0), time(17, 0))
    with speaking("de"):
        assert (
            expected_answer(office, TUESDAY_10_BERLIN, 4)
            == "Wir antworten werktags meist innerhalb von 4 Stunden."
        )
        assert expected_answer(office, TUESDAY_6_BERLIN, 4) == (
            "Unser Büro ist gerade geschlossen: Wir antworten heute ab 09:00 Uhr."
        )
        for closed in (FRIDAY_18_BERLIN, SATURDAY_NOON_BERLIN):
            assert expected_answer(office, closed, 4) == (
                "Unser Büro ist gerade geschlossen: Wir antworten am nächsten Werktag, "
                "Montag, ab 09:00 Uhr."
            )
    with speaking("en"):
        assert (
            expected_answer(office, TUESDAY_10_BERLIN, 1)
            == "We usually answer on working days within 1 hour."
        )
        assert expected_answer(office, SATURDAY_NOON_BERLIN, 4) == (
            "Our office is closed now: we answer on the next working day, Monday, "
            "from 9:00\u202fAM."
        )
    late_opening = BusinessHours("Europe/Berlin", (0, 1, 2, 3, 4), time(8, 0), time(16, 0))
    with speaking("de"):
        assert "ab 08:00 Uhr" in expected_answer(late_opening, FRIDAY_18_BERLIN, 4)


def sent_notice(page: str) -> str | None:
    found = re.search(
        r'<p class="notice notice-success" role="status" id="sent-notice">(.*?)</p>', page, re.S
    )
    return re.sub(r"\s+", " ", found.group(1)).strip() if found else None


@pytest.mark.parametrize(
    ("sent_at", "promise"),
    [
        (TUESDAY_10_BERLIN, "Wir antworten werktags meist innerhalb von 4 Stunden."),
        (SATURDAY_NOON_BERLIN, "am nächsten Werktag, Montag, ab 09:00 Uhr."),
    ],
)
def test_after_sending_the_page_says_when_to_expect_an_answer(people, settings, sent_at, promise):
    erika = people.customer()
    page = erika.get("/inbox/new").text
    response = erika.client.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(page), "body": "Wo bleibt meine Bestellung?"},
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )
    number = int(response.headers["location"].rsplit("/", 1)[1])
    # The clock of the request: as if it had been sent then.
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            conversations.update()
            .where(conversations.c.number == number)
            .values(created_at=sent_at)
        )
    engine.dispose()
    notice = sent_notice(erika.get(f"/inbox/{number}").text)
    assert notice is not None and notice.startswith(
        f"Danke, Ihre Anfrage #{number} ist angekommen."
    )
    assert notice.endswith(promise)
    # Said once: a later visit, or another request's page, shows no confirmation.
    assert sent_notice(erika.get(f"/inbox/{number}").text) is None


def test_no_confirmation_without_sending(three_requests):
    erika, _staff, waiting, _answered, _solved = three_requests
    assert sent_notice(erika.get(f"/inbox/{waiting}").text) is not None  # just sent
    assert sent_notice(erika.get(f"/inbox/{waiting}").text) is None
    # A cookie naming another request shows nothing here.
    erika.client.cookies.set("board_sent", str(waiting + 1), path=f"/inbox/{waiting}")
    assert sent_notice(erika.get(f"/inbox/{waiting}").text) is None


# --- 6. where a login lands ----------------------------------------------------------------


def log_in(visitor, login_value: str, password: str, next_path: str | None = None):
    fields = {"login": login_value, "password": password}
    if next_path is not None:
        fields["next"] = next_path
    response = submit(visitor, "/login", fields, form_page="/login")
    assert response.status_code == 303, response.text[:2000]
    return response.headers["location"]


def test_a_login_lands_customers_in_their_inbox_and_staff_in_the_queue(people, new_client):
    erika = people.customer()
    assert log_in(new_client(), erika.email, erika.password) == "/inbox"
    assert log_in(new_client(), str(erika.customer_number), erika.password) == "/inbox"
    assert log_in(new_client(), ADMIN_EMAIL, ADMIN_PASSWORD) == "/staff"
    staff = people.staff(admin=False)
    assert log_in(new_client(), staff.email, staff.password) == "/staff"


def test_next_still_wins_but_only_within_the_site(people, new_client):
    erika = people.customer()
    assert log_in(new_client(), erika.email, erika.password, "/t/1") == "/t/1"
    assert log_in(new_client(), ADMIN_EMAIL, ADMIN_PASSWORD, "/inbox/1001") == "/inbox/1001"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil"):
        assert log_in(new_client(), erika.email, erika.password, evil) == "/inbox"
        assert log_in(new_client(), ADMIN_EMAIL, ADMIN_PASSWORD, evil) == "/staff"


# --- 7. the inbox badge and the bell agree ---------------------------------------------------


def header_counts(person) -> tuple[int, int]:
    """(unread conversations, unread notifications) as the header shows them."""
    page = person.get("/notifications").text
    unread = int(re.search(r'id="unread-count"[^>]*>(\d+)<', page).group(1))
    bell = re.search(r'<span id="bell-count" class="badge"(?: hidden)?>(\d*)</span>', page)
    return unread, int(bell.group(1) or 0)


def test_the_notification_centres_read_all_clears_the_inbox_badge_too(people):
    erika, staff = people.customer(), people.staff()
    first = open_conversation(erika, "Erste Frage")
    second = open_conversation(erika, "Zweite Frage")
    staff.submit(f"/staff/t/{first}/reply", {"body": "Antwort eins"})
    staff.submit(f"/staff/t/{second}/reply", {"body": "Antwort zwei"})
    assert header_counts(erika) == (2, 2)
    erika.submit("/notifications/read-all", {}, form_page="/notifications")
    assert header_counts(erika) == (0, 0)


def test_replying_from_a_page_opened_before_the_answer_reads_its_notification(people):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Wo bleibt mein Paket?")
    form_page = erika.get(f"/inbox/{number}").text  # open before the answer came
    staff.submit(f"/staff/t/{number}/reply", {"body": "Welche Bestellnummer?"})
    assert header_counts(erika) == (1, 1)
    erika.client.post(
        f"/inbox/{number}/reply",
        data={"csrf_token": csrf_from(form_page), "body": "Die 4711."},
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )
    assert header_counts(erika) == (0, 0)


def test_a_guest_conversation_taken_into_the_inbox_arrives_read(people, client, new_client):
    guest = new_client()
    form = guest.get("/contact").text
    contacted = guest.post(
        "/contact",
        data={
            "csrf_token": csrf_from(form),
            "name": "Erika",
            "email": "erika@example.com",
            "body": "Als Gast geschrieben",
        },
    )
    link = contacted.headers["location"]
    staff = people.staff()
    staff.submit("/staff/t/1001/reply", {"body": "Antwort an den Gast"})
    erika = people.customer()
    assert header_counts(erika) == (0, 0)
    joined = erika.submit(f"{link}/join", {}, form_page=link)
    assert joined.status_code == 303
    assert header_counts(erika) == (0, 0)


def test_the_demo_customers_badges_agree_with_their_bells(settings):
    """The issue saw "3 unread" beside "no notifications yet": the demo wrote unread
    answers and never a notification. Every customer's unread conversations are now
    exactly those with an unread notification."""
    from board.demo import fill_demo
    from board.setup import initialize

    initialize(settings)
    fill_demo(settings, customers=30, topics=5, posts=10, conversations=300, seed=5)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        marker = sa.func.coalesce(
            sa.select(read_markers.c.last_read_message_id)
            .where(
                read_markers.c.conversation_id == conversations.c.id,
                read_markers.c.user_id == conversations.c.customer_id,
            )
            .scalar_subquery(),
            0,
        )
        unread = set(
            connection.execute(
                sa.select(conversations.c.customer_id, conversations.c.id).where(
                    conversations.c.customer_id.is_not(None),
                    conversations.c.last_public_message_id > marker,
                )
            ).all()
        )
        told = set(
            connection.execute(
                sa.select(notifications.c.user_id, notifications.c.conversation_id)
                .where(notifications.c.read_at.is_(None))
                .distinct()
            ).all()
        )
        everyone_told = connection.execute(
            sa.select(sa.func.count(sa.distinct(notifications.c.user_id)))
        ).scalar_one()
    engine.dispose()
    assert unread, "the demo should leave some answers unread"
    assert unread == told
    assert everyone_told > 10
