"""The notification centre through HTTP: who is told what, the header bell, the list with
its search, marking read, and who may see which notifications."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.db import conversations, live_events, notifications, sync_engine, users
from board.notifications import queries
from tests.conftest import csrf_from
from tests.test_inbox import PDF, execute, open_conversation, rows
from tests.test_staff import add_staff, answer, guest_writes

# Runs on PostgreSQL too: ILIKE search and partial indexes, whose case and NULL rules differ.
pytestmark = pytest.mark.postgresql


def english(person):
    """Texts are asserted in English: the German catalog is filled in separately."""
    person.client.headers["accept-language"] = "en"
    return person


def notes(settings, user_id: int) -> list[tuple[str, int, bool]]:
    """(kind, ticket number, unread) of a user's notifications, oldest first."""
    return [
        (row.kind, row.number, row.read_at is None)
        for row in rows(
            settings,
            sa.select(notifications.c.kind, notifications.c.read_at, conversations.c.number)
            .join(conversations, conversations.c.id == notifications.c.conversation_id)
            .where(notifications.c.user_id == user_id)
            .order_by(notifications.c.id),
        )
    ]


def items(html: str) -> list[str]:
    return re.findall(r'<li class="notification[^"]*".*?</li>', html, re.S)


def bell(html: str) -> tuple[str, list[str]]:
    """The bell's count text and its list items, from any page."""
    found = re.search(r'<details class="bell" id="bell">.*?</details>', html, re.S)
    assert found, "no bell in the header"
    count = re.search(r'<span id="bell-count" class="badge"( hidden)?>(\d*)</span>', found[0])
    assert count, "no count element in the bell"
    assert bool(count[1]) == (count[2] == ""), "the count is hidden exactly when it is empty"
    return count[2], items(found[0])


def listing(person, **params) -> str:
    response = person.get("/notifications", params=params)
    assert response.status_code == 200, response.text[:500]
    return response.text.split('<main id="main"', 1)[1]  # the page, not the header bell


def announce(staff, body="**Neu:** Versand jetzt auch samstags."):
    response = staff.submit("/staff/announce", {"body": body})
    assert response.status_code == 303


def send_invoice(staff, customer, body="Ihre Rechnung R-2026-17"):
    page = staff.get("/staff/invoice").text
    response = staff.client.post(
        "/staff/invoice",
        data={"csrf_token": csrf_from(page), "customer": customer.email, "body": body},
        files=[("attachments", ("rechnung.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303
    return int(response.headers["location"].rsplit("/", 1)[1])


def live_rows(settings, kind="notification"):
    return rows(
        settings,
        sa.select(live_events.c.audience, live_events.c.user_id)
        .where(live_events.c.kind == kind)
        .order_by(live_events.c.id),
    )


# --- who is told what --------------------------------------------------------------------


def test_a_staff_answer_tells_the_customer_and_an_internal_note_does_not(people, settings):
    erika, staff = english(people.customer()), people.staff()
    number = open_conversation(erika, "Wo bleibt mein Paket?")
    assert notes(settings, erika.user_id) == []
    answer(staff, number, "Ist unterwegs.")
    assert notes(settings, erika.user_id) == [("answer", number, True)]
    answer(staff, number, "Kulanz möglich", internal="1")
    assert notes(settings, erika.user_id) == [("answer", number, True)]
    [item] = items(listing(erika))
    assert 'class="notification unread"' in item
    assert f"New answer to your request #{number}" in item
    assert "Wo bleibt mein Paket?" in item
    assert f'href="/inbox/{number}"' in item
    assert ("user", erika.user_id) in live_rows(settings)
    # The customer's own message tells nobody on the customer side.
    erika.submit(f"/inbox/{number}/reply", {"body": "Danke!"}, form_page="/inbox")
    assert len(notes(settings, erika.user_id)) == 1


def test_every_public_answer_is_a_notification_whatever_the_mail_setting(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    answer(staff, number, "Erste Antwort")  # rings the mail bell
    answer(staff, number, "Zweite Antwort")  # no second mail, still news
    execute(settings, users.update().where(users.c.id == erika.user_id).values(notify="off"))
    answer(staff, number, "Dritte Antwort")
    assert notes(settings, erika.user_id) == [("answer", number, True)] * 3


def test_an_announcement_reaches_every_customer_with_one_live_event(people, settings):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    before = len(live_rows(settings))
    announce(staff)
    for person in (erika, max_):
        [(kind, number, unread)] = notes(settings, person.user_id)
        owner = rows(
            settings, sa.select(conversations.c.customer_id).where(conversations.c.number == number)
        )
        assert (kind, unread, owner[0][0]) == ("announcement", True, person.user_id)
    assert notes(settings, staff.user_id) == []
    assert live_rows(settings)[before:] == [("customers", None)]
    [item] = items(listing(english(erika)))
    assert "New announcement #" in item and "Versand jetzt auch samstags." in item


def test_an_invoice_notice_tells_its_customer_only(people, settings):
    erika, max_, staff = english(people.customer()), people.customer("Max Muster"), people.staff()
    number = send_invoice(staff, erika)
    assert notes(settings, erika.user_id) == [("invoice", number, True)]
    assert notes(settings, max_.user_id) == []
    [item] = items(listing(erika))
    assert f"New invoice #{number}" in item and "R-2026-17" in item


def test_a_new_conversation_tells_every_active_staff_member(people, settings, client):
    erika, admin = people.customer(), english(people.staff())
    colleague = add_staff(settings, "kollege@shop.example", "Karl Kollege", accepting=False)
    retired = add_staff(settings, "alt@shop.example", "Alfred Alt", accepting=False)
    execute(settings, users.update().where(users.c.id == retired).values(is_active=False))
    before = len(live_rows(settings))
    number = open_conversation(erika, "Frage zum Umtausch")
    assert ("new_conversation", number, True) in notes(settings, admin.user_id)
    assert notes(settings, colleague) == [("new_conversation", number, True)]
    assert notes(settings, retired) == []
    assert notes(settings, erika.user_id) == []
    assert ("staff", None) in live_rows(settings)[before:]
    assert guest_writes(client).status_code == 303  # guests open conversations too
    assert [kind for kind, _number, _unread in notes(settings, colleague)] == [
        "new_conversation"
    ] * 2
    page = listing(admin)
    assert f"New request #{number}" in page and f'href="/staff/t/{number}"' in page


def test_assigned_to_you_by_someone_else_but_not_by_yourself(people, settings):
    erika, admin = people.customer(), people.staff()
    colleague = people.staff(admin=False)  # Sven Support
    english(colleague)
    execute(settings, users.update().values(accepting=False))  # no round robin
    number = open_conversation(erika)
    admin.submit(f"/staff/t/{number}/update", {"assignee": str(colleague.user_id)})
    assert ("assigned", number, True) in notes(settings, colleague.user_id)
    [item] = [item for item in items(listing(colleague)) if "Assigned to you" in item]
    assert f"Assigned to you: #{number}" in item and f'href="/staff/t/{number}"' in item
    admin.submit(f"/staff/t/{number}/update", {"assignee": "me"})
    colleague.submit(f"/staff/t/{number}/update", {"assignee": "me"}, form_page="/staff")
    kinds = [kind for kind, _number, _unread in notes(settings, colleague.user_id)]
    assert kinds.count("assigned") == 1  # taking it oneself tells nobody
    assert [kind for kind, *_ in notes(settings, admin.user_id)] == ["new_conversation"]


def test_the_round_robin_assignee_hears_of_it(people, settings):
    erika, admin = people.customer(), people.staff()
    number = open_conversation(erika)
    assert ("assigned", number, True) in notes(settings, admin.user_id)


# --- privacy -----------------------------------------------------------------------------


def test_nobody_sees_someone_elses_notifications(people, settings):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    number = open_conversation(erika, "Geheime Bestellung Schwalbennest")
    answer(staff, number, "Antwort")
    for page in (max_.get("/").text, max_.get("/notifications").text):
        count, bell_items = bell(page)
        assert count == "" and bell_items == []
        assert "Schwalbennest" not in page and f"#{number}" not in page
    assert items(listing(max_, q="Schwalbennest")) == []
    assert items(listing(max_, q=str(number))) == []
    count, bell_items = bell(erika.get("/").text)
    assert count == "1" and len(bell_items) == 1 and "Schwalbennest" in bell_items[0]


def test_the_notification_centre_needs_a_login(client):
    response = client.get("/notifications")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    page = client.get("/").text
    assert 'id="bell"' not in page and 'id="bell-count"' not in page
    token = csrf_from(page)
    refused = client.post("/notifications/read-all", data={"csrf_token": token})
    assert refused.status_code == 401


# --- reading -----------------------------------------------------------------------------


def test_opening_the_conversation_marks_its_notifications_read(people, settings):
    erika, staff = people.customer(), people.staff()
    first = open_conversation(erika, "Erste Frage")
    second = open_conversation(erika, "Zweite Frage")
    answer(staff, first, "Antwort eins")
    answer(staff, first, "Antwort zwei")
    answer(staff, second, "Antwort drei")
    assert bell(erika.get("/").text)[0] == "3"
    erika.get(f"/inbox/{first}")
    assert notes(settings, erika.user_id) == [
        ("answer", first, False),
        ("answer", first, False),
        ("answer", second, True),
    ]
    count, bell_items = bell(erika.get("/").text)
    assert count == "1"
    assert [("unread" in item.split(">", 1)[0]) for item in bell_items] == [True, False, False]


def test_staff_opening_the_conversation_marks_theirs_read_on_that_page(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    other = open_conversation(erika, "Noch etwas")
    assert bell(staff.get("/staff").text)[0] == "4"  # new + assigned, twice
    page = staff.get(f"/staff/t/{number}").text
    assert bell(page)[0] == "2"  # the header on the page itself is current
    assert [unread for _kind, n, unread in notes(settings, staff.user_id) if n == number] == [
        False,
        False,
    ]
    assert all(unread for _kind, n, unread in notes(settings, staff.user_id) if n == other)


def test_read_all_needs_the_form_token_and_goes_back(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    answer(staff, number, "Antwort")
    refused = erika.client.post("/notifications/read-all", data={})
    assert refused.status_code == 403
    refused = erika.client.post("/notifications/read-all", data={"csrf_token": "0" * 64})
    assert refused.status_code == 403
    assert notes(settings, erika.user_id) == [("answer", number, True)]
    response = erika.submit(
        "/notifications/read-all", {"next": "/notifications?q=x"}, form_page="/notifications"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/notifications?q=x"
    assert notes(settings, erika.user_id) == [("answer", number, False)]
    assert bell(erika.get("/").text)[0] == ""
    assert "unread" not in " ".join(items(listing(erika)))
    elsewhere = erika.submit("/notifications/read-all", {"next": "https://evil.example/"})
    assert elsewhere.headers["location"] == "/notifications"


def test_the_inbox_mark_all_read_clears_the_notifications_too(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    answer(staff, number, "Antwort")
    assert erika.submit("/inbox/read-all", {}, form_page="/inbox").status_code == 303
    assert notes(settings, erika.user_id) == [("answer", number, False)]


# --- the bell ------------------------------------------------------------------------------


def test_the_bell_shows_the_newest_five_and_the_unread_count(people, settings):
    erika, staff = english(people.customer()), people.staff()
    count, bell_items = bell(erika.get("/").text)
    assert count == "" and bell_items == []
    assert 'class="bell-empty"' in erika.get("/").text
    numbers = [open_conversation(erika, f"Frage Nummer {n}") for n in range(7)]
    for number in numbers:
        answer(staff, number, "Antwort")
    page = erika.get("/").text
    count, bell_items = bell(page)
    assert count == "7"
    assert len(bell_items) == 5
    shown = [int(re.search(r"#(\d+)", item)[1]) for item in bell_items]
    assert shown == numbers[::-1][:5]  # newest first
    assert 'href="/notifications"' in page.split('id="bell"', 1)[1].split("</details>", 1)[0]
    assert "Show all" in page


# --- the list and its search ----------------------------------------------------------------


def test_search_by_word_by_number_and_nothing_found(people, settings):
    erika, staff = english(people.customer()), people.staff()
    parcel = open_conversation(erika, "Paket beschädigt angekommen")
    invoice = open_conversation(erika, "Rechnung doppelt abgebucht")
    percent = open_conversation(erika, "Rabatt 100% falsch berechnet")
    for number in (parcel, invoice, percent):
        answer(staff, number, "Antwort")

    def found(query):
        shown = " ".join(items(listing(erika, q=query)))
        return sorted(int(number) for number in re.findall(r"#(\d+)", shown))

    assert found("paket") == [parcel]  # a word, any case
    assert found("RECHNUNG") == [invoice]
    assert found("Paket angekommen") == [parcel]  # every word
    assert found(f"#{invoice}") == [invoice]
    assert found(str(invoice)) == [invoice]
    assert found(f"  #{percent} ") == [percent]
    assert found("100%") == [percent]
    assert found("%") == [percent]  # a literal percent sign, not a wildcard
    assert found("_") == []  # a literal underscore, not any character
    assert found("") == sorted([parcel, invoice, percent])
    page = listing(erika, q="Schwalbennest")
    assert items(page) == []
    assert 'id="no-notifications"' in page and "No notification matches" in page


def test_an_empty_centre_says_so(people):
    erika = english(people.customer())
    page = listing(erika)
    assert items(page) == [] and 'id="no-notifications"' in page and "Nothing new so far" in page


def test_the_list_is_paginated_newest_first(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Viele Antworten")
    for index in range(23):
        answer(staff, number, f"Antwort {index}")
    first = listing(erika)
    assert len(items(first)) == 20 and 'rel="next"' in first
    second = listing(erika, page="2")
    assert len(items(second)) == 3 and 'rel="prev"' in second
    ids = [re.search(r'data-notification="(\d+)"', item)[1] for item in items(first)]
    assert ids == sorted(ids, key=int, reverse=True)


def test_bad_input_never_breaks_the_page(people):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    answer(staff, number, "Antwort")
    for params in (
        {"page": "abc"},
        {"page": "-5"},
        {"page": "99999999999999999999"},
        {"q": "x" * 60_000},
        {"q": "9" * 500},
        {"q": "#" + "9" * 40},
        {"q": "\x00%_\\'\""},
        {"q": "#"},
        {"q": "a b c d e f g h i j k l"},
    ):
        response = erika.get("/notifications", params=params)
        assert response.status_code == 200, params
    assert len(items(listing(erika, page="999"))) == 1  # past the end: the last page


@pytest.mark.sqlite_only  # SQLite's EXPLAIN QUERY PLAN; the indexes are the same migrations
def test_the_bell_on_every_page_reads_only_indexes(settings, app):
    engine = sync_engine(settings)
    statements = {
        "bell": queries.BELL.statement.params(user_id=1),
        "unread": queries._unread_of(1),
        "page": queries._listed()
        .where(queries._mine(1, "paket"))
        .order_by(notifications.c.id.desc())
        .limit(20),
    }
    with engine.connect() as connection:
        for name, statement in statements.items():
            sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(
                row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            )
            assert "SCAN notifications" not in plan and "TEMP B-TREE" not in plan, (name, plan)
            assert "ix_notifications_" in plan, (name, plan)
    engine.dispose()
