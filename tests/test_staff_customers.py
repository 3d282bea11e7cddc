"""The customer list through HTTP: staff find any customer by number, part of the name or
email; search finds conversations by their customer for staff alone; a bare number that is
a ticket and a customer number offers both."""

from __future__ import annotations

import re

import pytest

from board.db import conversations, statement_listener, sync_engine, users, utcnow
from tests.conftest import count_statements, index_now, page_selects
from tests.test_inbox import execute, open_conversation
from tests.test_search import hits, search

# Runs on PostgreSQL too: ILIKE, the counts as correlated subqueries, the order by name.
pytestmark = pytest.mark.postgresql

ROW = re.compile(r'<tr class="customer-row" data-customer="(\d+)">')


def listed(staff, **params) -> list[int]:
    response = staff.get("/staff/customers", params=params)
    assert response.status_code == 200, response.text[:500]
    return [int(number) for number in ROW.findall(response.text)]


@pytest.fixture
def shop(people):
    erika = people.customer("Erika Mustermann", "erika@example.com")
    max_ = people.customer("Max Müller", "max.mueller@beispiel.de")
    jana = people.customer("Jana Schmidt", "jana@example.com")
    return erika, max_, jana, people.staff(admin=False)


def test_staff_find_a_customer_by_number_part_of_the_name_or_email(shop):
    erika, max_, jana, staff = shop
    everyone = {erika.customer_number, max_.customer_number, jana.customer_number}
    assert set(listed(staff)) == everyone
    assert listed(staff, q=str(max_.customer_number)) == [max_.customer_number]
    assert listed(staff, q="muster") == [erika.customer_number]  # part of the name
    assert listed(staff, q="SCHMI") == [jana.customer_number]  # any case
    assert listed(staff, q="max.mueller@beispiel.de") == [max_.customer_number]
    assert listed(staff, q="@example.com") == [erika.customer_number, jana.customer_number]
    assert listed(staff, q="mustermann erika") == [erika.customer_number]  # every word
    assert listed(staff, q="100%") == []  # LIKE's wildcards are letters here
    page = staff.get("/staff/customers", params={"q": "niemand"})
    assert page.status_code == 200 and 'id="no-customers"' in page.text
    assert 'value="niemand"' in page.text  # the search is kept in the box


def test_the_list_links_to_the_customer_and_shows_requests_vip_and_note(shop, settings):
    erika, _max, _jana, staff = shop
    open_conversation(erika, "Wo bleibt mein Paket?")
    open_conversation(erika, "Und die Rechnung?")
    staff.submit(
        f"/staff/customers/{erika.user_id}",
        {"note": "Ruft gern an, bitte zurückrufen.", "vip": "1"},
    )
    staff.submit("/staff/announce", {"body": "Wir haben neue Öffnungszeiten."})
    page = staff.get("/staff/customers", params={"q": "erika"}).text
    row = page.split(f'data-customer="{erika.customer_number}">', 1)[1].split("</tr>", 1)[0]
    assert f'href="/staff/customers/{erika.user_id}"' in row
    assert "badge-vip" in row and "Ruft gern an" in row
    assert re.search(r"<td>2 <span", row)  # two requests; the announcement is none
    # The staff navigation leads here.
    assert 'href="/staff/customers"' in staff.get("/staff").text


def test_a_customer_gets_no_access_and_a_visitor_is_sent_to_log_in(shop, client):
    erika, *_rest = shop
    assert erika.get("/staff/customers").status_code == 403
    assert erika.get("/staff/customers?q=jana").status_code == 403
    assert client.get("/staff/customers").headers["location"].startswith("/login?next=")


def test_the_list_pages_through_many_customers_in_one_query_per_page(people, settings, app, client):
    staff = people.staff()
    rows = [
        {
            "customer_number": 20000 + n,
            "email": f"kunde{n}@example.com",
            "name": f"Kunde {n:03d}",
            "password_hash": "x",
        }
        for n in range(75)
    ]
    _insert_customers(settings, rows)
    first, third = listed(staff), listed(staff, page=3)
    assert first[:2] == [20000, 20001] and len(first) == 30
    assert third == [20060 + n for n in range(15)]
    assert listed(staff, page=99) == third  # past the last page: the last one
    statements: list[str] = []
    count_statements(app, client, statements)
    listed(staff, page=2)
    selects = page_selects(statements)
    statement_listener(app.state.db, None)
    selects = [sql for sql in selects if "FROM users" in sql]
    # The session's user, the total, and the page with its counts: not one per customer.
    assert len([sql for sql in selects if "requests" in sql]) == 1, selects
    assert len(selects) <= 3, selects


def _insert_customers(settings, rows) -> None:
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(users.insert(), [{**row, "created_at": utcnow()} for row in rows])
    engine.dispose()


# --- search ------------------------------------------------------------------------------


def test_staff_find_a_conversation_by_its_customer_but_other_customers_never_do(shop, app, client):
    erika, max_, jana, staff = shop
    number = open_conversation(erika, "Die Lieferung kam beschädigt an.")
    mine = open_conversation(max_, "Meine Lieferung fehlt.")
    janas = open_conversation(jana, "Wo ist die Rechnung?")
    index_now(app, client)
    for text in ("erika@example.com", "Mustermann", str(erika.customer_number)):
        found = [ref for _kind, ref, _link in hits(staff, text, "inbox")]
        assert number in found and janas not in found, text  # Jana is @example.com too
    # Max searches for Erika's address, name and number: none of her conversations.
    for text in ("erika@example.com", "Mustermann", str(erika.customer_number), "erika"):
        assert number not in [ref for _kind, ref, _link in hits(max_, text, "all")], text
    # Not even his own conversation matches his own address: it is no text of it.
    assert hits(max_, "max.mueller@beispiel.de", "inbox") == []
    assert [ref for _k, ref, _l in hits(max_, "Lieferung", "inbox")] == [mine]


def test_a_changed_name_is_found_after_the_profile_is_saved(shop, app, client):
    erika, _max, _jana, staff = shop
    number = open_conversation(erika, "Die Lieferung kam beschädigt an.")
    account = erika.submit(
        "/account",
        {"name": "Erika Sonnenschein", "email": "erika@example.com", "locale": "de"},
        form_page="/account",
    )
    assert account.status_code == 303, account.text[:500]
    index_now(app, client)
    assert [ref for _k, ref, _l in hits(staff, "Sonnenschein", "inbox")] == [number]


def test_a_bare_number_that_is_ticket_and_customer_number_shows_both(shop, settings, app, client):
    erika, max_, _jana, staff = shop
    number = open_conversation(erika, "Die Lieferung kam beschädigt an.")
    # Ticket numbers grow into the customer numbers' range: make them meet.
    execute(
        settings,
        conversations.update()
        .where(conversations.c.number == number)
        .values(number=max_.customer_number),
    )
    index_now(app, client)
    page = search(staff, str(max_.customer_number), "all")
    assert page.status_code == 200
    choice = page.text.split('id="number-matches"', 1)[1].split("</div>", 1)[0]
    assert f'href="/staff/t/{max_.customer_number}"' in choice
    assert f'href="/staff/customers/{max_.user_id}"' in choice
    assert "Max Müller" in choice
    # "#number" is a ticket: it still opens the conversation at once.
    jump = search(staff, f"#{max_.customer_number}", "all")
    assert jump.status_code == 303
    assert jump.headers["location"] == f"/staff/t/{max_.customer_number}"
    # A number that is only a customer number offers the customer beside the results.
    only = search(staff, str(erika.customer_number), "all").text
    assert f'href="/staff/customers/{erika.user_id}"' in only and 'id="number-ticket"' not in only
    # Customers never see a customer: Max's own number is searched like any text.
    assert 'id="number-matches"' not in search(max_, str(erika.customer_number), "all").text
