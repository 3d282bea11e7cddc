"""The customer's side of a request (issue 23): its status in the customer's words, the
status filter, marking a request done, the confirmation after sending, where a login
lands, and header badges that agree."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.db import conversation_events, conversations, sync_engine
from tests.conftest import csrf_from

# Runs on PostgreSQL too: the status filter is SQL the inbox runs.
pytestmark = pytest.mark.postgresql


def write(person, body: str) -> int:
    page = person.get("/inbox/new").text
    response = person.client.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(page), "body": body},
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )
    assert response.status_code == 303, response.text[:2000]
    return int(response.headers["location"].rsplit("/", 1)[1])


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
    waiting = write(erika, "Wo bleibt meine Bestellung 4711?")
    answered = write(erika, "Passt das Netzteil zum Modell M4?")
    solved = write(erika, "Bitte die Rechnung an die neue Adresse.")
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
    engine = sync_engine(settings)
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(
                conversation_events.c.actor_id,
                conversation_events.c.old_value,
                conversation_events.c.new_value,
            )
            .join(conversations, conversations.c.id == conversation_events.c.conversation_id)
            .where(conversations.c.number == number, conversation_events.c.action == "status")
            .order_by(conversation_events.c.id)
        ).all()
    engine.dispose()
    return [tuple(row) for row in found]


def status_of(settings, number: int) -> str:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(conversations.c.status).where(conversations.c.number == number)
        ).scalar_one()
    engine.dispose()
    return status


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
