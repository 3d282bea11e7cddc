"""The staff queue through HTTP: states, assignment, internal notes, canned replies, broadcasts."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from board.db import (
    absences,
    canned_replies,
    conversation_events,
    conversations,
    messages,
    statement_listener,
    sync_engine,
    users,
    utcnow,
)
from board.hours import BusinessHours, parse_days, parse_hours
from board.setup import create_staff
from board.staff import canned
from tests.conftest import count_statements, csrf_from, mail_text, page_selects
from tests.test_inbox import PDF, execute, open_conversation, png_bytes, rows, unread_badge

# Runs on PostgreSQL too: the queue's order (NULLs sort differently) and SQLite's planner hint for
# the latest requests.
pytestmark = pytest.mark.postgresql


def conversation(settings, number):
    return rows(settings, sa.select(conversations).where(conversations.c.number == number))[0]


def history(settings, number):
    return [
        (row.action, row.old_value, row.new_value, row.actor_id, row.note)
        for row in rows(
            settings,
            sa.select(conversation_events)
            .join(conversations, conversations.c.id == conversation_events.c.conversation_id)
            .where(conversations.c.number == number)
            .order_by(conversation_events.c.id),
        )
    ]


def main_of(html: str) -> str:
    """The page without its header, whose notification bell names conversations too."""
    return html.split('<main id="main"', 1)[1]


def answer(staff, number, body, **fields):
    return staff.submit(f"/staff/t/{number}/reply", {"body": body, **fields})


def add_staff(settings, email, name, accepting=True):
    engine = sync_engine(settings)
    with engine.begin() as connection:
        create_staff(connection, email, name, password="staff-passwort-123")
        connection.execute(users.update().where(users.c.email == email).values(accepting=accepting))
        user_id = connection.execute(sa.select(users.c.id).where(users.c.email == email))
        user_id = user_id.scalar_one()
    engine.dispose()
    return user_id


def guest_writes(client, email="gast@example.com", body="Frage ohne Konto"):
    page = client.get("/contact").text
    return client.post(
        "/contact",
        data={"csrf_token": csrf_from(page), "name": "Gerda Gast", "email": email, "body": body},
    )


# --- who may enter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/staff", "/staff/home", "/staff/replies", "/staff/announce", "/staff/invoice"]
)
def test_staff_pages_send_visitors_to_login_and_refuse_customers(people, client, path):
    assert client.get(path).headers["location"].startswith("/login?next=")
    assert people.customer().get(path).status_code == 403


def test_customers_cannot_answer_or_update_through_the_staff_routes(people, settings):
    erika = people.customer()
    number = open_conversation(erika)
    assert answer(erika, number, "Ich bin kein Support").status_code == 403
    update = erika.submit(f"/staff/t/{number}/update", {"status": "solved"})
    assert update.status_code == 403
    assert erika.get(f"/staff/t/{number}").status_code == 403
    assert conversation(settings, number).status == "open"


def test_staff_answer_from_the_queue_not_from_the_customer_pages(people):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    assert staff.get(f"/inbox/{number}").headers["location"] == f"/staff/t/{number}"
    assert staff.get("/inbox").headers["location"] == "/staff"
    assert staff.submit(f"/inbox/{number}/reply", {"body": "Hier nicht"}).status_code == 403


# --- states ------------------------------------------------------------------------------


def test_every_state_transition_is_recorded_with_who_and_when(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Wo bleibt mein Paket?")
    opened = conversation(settings, number)
    assert opened.status == "open" and opened.waiting_since is not None

    # A staff answer defaults to pending: waiting for the customer.
    assert answer(staff, number, "Bitte nennen Sie die Bestellnummer.").status_code == 303
    pending = conversation(settings, number)
    assert pending.status == "pending" and pending.waiting_since is None
    assert pending.first_response_at is not None and pending.assignee_id == staff.user_id

    # The customer answers: open again, waiting from now.
    erika.submit(f"/inbox/{number}/reply", {"body": "Es ist die 4711."})
    reopened = conversation(settings, number)
    assert reopened.status == "open" and reopened.waiting_since > opened.waiting_since

    # Staff solve it with the answer; a later customer message reopens it.
    answer(staff, number, "Ist unterwegs.", status="solved")
    assert conversation(settings, number).status == "solved"
    erika.submit(f"/inbox/{number}/reply", {"body": "Doch nicht angekommen."})
    assert conversation(settings, number).status == "open"

    # Spam without an answer, through the update form; then taken back.
    staff.submit(f"/staff/t/{number}/update", {"status": "spam", "note": "Versehen?"})
    assert conversation(settings, number).status == "spam"
    staff.submit(f"/staff/t/{number}/update", {"status": "open"})
    assert conversation(settings, number).status == "open"

    status_changes = [
        (old, new, actor)
        for action, old, new, actor, _note in history(settings, number)
        if action == "status"
    ]
    assert status_changes == [
        ("open", "pending", staff.user_id),
        ("pending", "open", None),  # None: the customer
        ("open", "solved", staff.user_id),
        ("solved", "open", None),
        ("open", "spam", staff.user_id),
        ("spam", "open", staff.user_id),
    ]
    page = staff.get(f"/staff/t/{number}").text
    assert "„Versehen?“" in page and 'id="history"' in page


def test_one_status_control_and_an_answer_that_solves_or_waits(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    page = staff.get(f"/staff/t/{number}").text
    assert len(re.findall(r'<select[^>]*name="status"', page)) == 1  # the update form's
    assert re.search(r'<button[^>]*name="status" value="solved"', page)

    assert answer(staff, number, "Ist unterwegs.").status_code == 303
    assert conversation(settings, number).status == "pending"  # Send: the customer's turn
    answer(staff, number, "Intern: Lager fragen", internal="1")
    assert conversation(settings, number).status == "pending"  # a note keeps it
    answer(staff, number, "Erledigt, danke!", status="solved")  # Send and mark solved
    assert conversation(settings, number).status == "solved"


def test_send_and_next_opens_the_next_waiting_request_then_the_queue(people, settings):
    staff = people.staff()
    first, second = people.customer(), people.customer("Max Muster", "max@example.com")
    one = open_conversation(first, "Erste Anfrage")
    two = open_conversation(second, "Zweite Anfrage")
    sent = answer(staff, one, "Ist erledigt.", then="next")
    assert sent.headers["location"] == f"/staff/t/{two}"  # the next one that waits
    assert conversation(settings, one).status == "pending"  # and the answer went out
    assert answer(staff, two, "Auch das.", then="next").headers["location"] == "/staff"


def test_an_unknown_status_is_refused_with_the_answer_kept(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    response = answer(staff, number, "Meine Antwort bleibt", status="erledigt")
    assert response.status_code == 400 and "Meine Antwort bleibt" in response.text
    assert conversation(settings, number).message_count == 1


def test_spam_hides_the_conversation_and_blocks_the_guest_address(client, new_client, people):
    staff = people.staff()
    assert guest_writes(client).status_code == 303
    queue = staff.get("/staff").text
    assert "#1001" in queue
    staff.submit("/staff/t/1001/update", {"status": "spam"})
    assert "#1001" not in main_of(staff.get("/staff").text)
    assert "#1001" in staff.get("/staff?status=spam").text

    again = guest_writes(new_client(), body="Noch mehr Werbung")
    assert again.status_code == 403 and "Noch mehr Werbung" in again.text
    assert "nehmen wir keine Nachrichten an" in again.text
    assert guest_writes(new_client(), email="andere@example.com").status_code == 303

    staff.submit("/staff/t/1001/update", {"status": "open"})  # not spam after all
    assert guest_writes(new_client(), body="Wieder erlaubt").status_code == 303


# --- internal notes ----------------------------------------------------------------------


def test_internal_notes_never_reach_the_customer_the_guest_link_or_mail(
    people, client, settings, mailbox
):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    before = conversation(settings, number)
    page = staff.get(f"/staff/t/{number}").text
    response = staff.client.post(
        f"/staff/t/{number}/reply",
        data={"csrf_token": csrf_from(page), "body": "GEHEIM: Kunde zahlt spät", "internal": "1"},
        files=[("attachments", ("intern.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303
    after = conversation(settings, number)
    # Nothing the customer can see changed: not the count, not the unread state.
    assert after.message_count == before.message_count
    assert after.last_public_message_id == before.last_public_message_id
    assert after.status == "open" and after.waiting_since == before.waiting_since
    assert unread_badge(erika) == 0
    customer_page = erika.get(f"/inbox/{number}").text
    assert "GEHEIM" not in customer_page and "intern.pdf" not in customer_page
    staff_page = staff.get(f"/staff/t/{number}").text
    assert "GEHEIM" in staff_page and "intern.pdf" in staff_page
    file_url = re.search(r'href="(/attachments/\d+/intern.pdf)"', staff_page).group(1)
    assert erika.get(file_url).status_code == 404

    # A guest conversation: the secret link never shows the note, and no mail carries it.
    guest = guest_writes(client)
    token_path = guest.headers["location"]
    staff.submit("/staff/t/1002/reply", {"body": "GEHEIM: Gast prüfen", "internal": "1"})
    assert "GEHEIM" not in client.get(token_path).text
    mails = mailbox.messages()
    assert mails and not any("GEHEIM" in mail_text(m) + m["Subject"] for m in mails)


def test_an_internal_note_changes_nothing_in_the_customers_inbox_or_export(people, settings):
    erika, staff = people.customer(), people.staff()
    older = open_conversation(erika, "Die ältere Frage")
    open_conversation(erika, "Die neuere Frage")
    execute(  # the older one a day older, so that its time shows and orders differently
        settings,
        conversations.update()
        .where(conversations.c.number == older)
        .values(last_message_at=utcnow() - timedelta(days=1)),
    )

    def inbox() -> str:  # the page, but for where its live stream starts
        return re.sub(r"after=\d+", "after=N", erika.get("/inbox").text)

    def export() -> dict[str, bytes]:  # the files, not the archive's timestamps
        archive = zipfile.ZipFile(io.BytesIO(erika.get("/account/data.zip").content))
        return {name: archive.read(name) for name in archive.namelist()}

    inbox_before = inbox()
    export_before = export()
    assert inbox_before.index("Die neuere Frage") < inbox_before.index("Die ältere Frage")

    noted = staff.submit(
        f"/staff/t/{older}/reply",
        {"body": "Intern: Kundin anrufen", "internal": "1"},
        form_page=f"/staff/t/{older}",
    )
    assert noted.status_code == 303
    assert inbox() == inbox_before  # same order, same times, same badges
    assert export() == export_before


# --- assignment --------------------------------------------------------------------------


def test_round_robin_skips_absent_and_not_accepting_staff(people, settings):
    admin = people.staff()
    anna = add_staff(settings, "anna@shop.example", "Anna Aktiv")
    add_staff(settings, "ben@shop.example", "Ben Busy", accepting=False)  # takes none
    carla = add_staff(settings, "carla@shop.example", "Carla Urlaub")
    now = utcnow()
    execute(
        settings,
        absences.insert().values(
            user_id=carla,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=3),
            note="Urlaub",
            created_at=now,
        ),
    )
    erika = people.customer()
    numbers = [open_conversation(erika, f"Anfrage {index}") for index in range(4)]
    assignees = [conversation(settings, number).assignee_id for number in numbers]
    # The setup admin runs the shop: while Anna can take them, they are all hers.
    assert assignees == [anna] * 4
    assert history(settings, numbers[0])[0][:3] == ("assignee", None, "Anna Aktiv")

    # The absence is over: Carla is back in the rotation, in turn with Anna.
    execute(settings, absences.update().values(ends_at=now - timedelta(minutes=1)))
    later = [open_conversation(erika, f"Später {index}") for index in range(4)]
    later_assignees = [conversation(settings, number).assignee_id for number in later]
    assert later_assignees[0] == carla  # given one longest ago: never
    assert later_assignees == [carla, anna, carla, anna]

    # Nobody else can take one: the admin does, rather than nobody.
    execute(settings, users.update().where(users.c.id.in_([anna, carla])).values(accepting=False))
    last = open_conversation(erika, "Am Wochenende")
    assert conversation(settings, last).assignee_id == admin.user_id


def test_an_absent_assignee_shows_in_the_queue(people, settings):
    staff = people.staff()
    erika = people.customer()
    number = open_conversation(erika)
    assert conversation(settings, number).assignee_id == staff.user_id
    now = utcnow()
    execute(
        settings,
        absences.insert().values(
            user_id=staff.user_id,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=2),
            note="Messe",
            created_at=now,
        ),
    )
    row = re.search(r'<tr class="queue-row.*?</tr>', staff.get("/staff").text, re.S).group(0)
    assert "badge-absent" in row and "Messe" in row


def test_take_assign_and_transfer_with_a_note(people, settings):
    erika, admin = people.customer(), people.staff()
    number = open_conversation(erika)  # the admin's: nobody else is there to take it
    colleague = add_staff(settings, "kollege@shop.example", "Karl Kollege")
    response = admin.submit(
        f"/staff/t/{number}/update", {"assignee": str(colleague), "note": "Kennt den Fall"}
    )
    assert response.status_code == 303
    assert conversation(settings, number).assignee_id == colleague
    assert history(settings, number)[-1] == (
        "assignee",
        "Administrator",
        "Karl Kollege",
        admin.user_id,
        "Kennt den Fall",
    )
    admin.submit(f"/staff/t/{number}/update", {"assignee": "me"})
    assert conversation(settings, number).assignee_id == admin.user_id
    refused = admin.submit(f"/staff/t/{number}/update", {"assignee": str(erika.user_id)})
    assert refused.status_code == 400  # a customer is no assignee
    assert conversation(settings, number).assignee_id == admin.user_id


# --- the queue ---------------------------------------------------------------------------


def test_queue_sorts_vip_first_then_longest_waiting_and_marks_overdue(people, settings):
    staff = people.staff()
    customers = [
        people.customer(f"Kunde{index} Test", f"k{index}@example.com") for index in range(3)
    ]
    numbers = [
        open_conversation(person, f"Anliegen {index}") for index, person in enumerate(customers)
    ]
    now = utcnow()
    waits = {
        numbers[0]: timedelta(minutes=30),
        numbers[1]: timedelta(days=20),
        numbers[2]: timedelta(hours=1),
    }
    for number, waited in waits.items():
        execute(
            settings,
            conversations.update()
            .where(conversations.c.number == number)
            .values(waiting_since=now - waited),
        )
    page = staff.get("/staff?order=waiting").text
    order = [int(n) for n in re.findall(r'class="queue-link" href="/staff/t/(\d+)"', page)]
    assert order == [numbers[1], numbers[2], numbers[0]]  # longest wait first
    overdue_rows = re.findall(r'<tr class="queue-row is-overdue.*?</tr>', page, re.S)
    assert len(overdue_rows) == 1 and f"#{numbers[1]}" in overdue_rows[0]

    # The newest customer becomes VIP: their request floats to the top, marked.
    vip = customers[0]
    staff.submit(f"/staff/customers/{vip.user_id}", {"note": "Großkunde", "vip": "1"})
    page = staff.get("/staff?order=waiting").text
    order = [int(n) for n in re.findall(r'class="queue-link" href="/staff/t/(\d+)"', page)]
    assert order[0] == numbers[0] and "badge-vip" in page
    assert 'id="overdue-count">1<' in staff.get("/staff/home").text


def test_a_new_request_is_on_the_first_page_of_the_queue_as_it_opens(people, settings, monkeypatch):
    """The default view is mine and nobody's, newest first: a request that just arrived
    is on page 1 however many VIP or long-waiting ones there are, and colleagues' own
    requests are not in the way."""
    from board.staff import routes as staff_routes

    monkeypatch.setattr(staff_routes, "PER_PAGE", 2)
    admin, staff = people.staff(), people.staff(admin=False)
    vip = people.customer("Vera Wichtig", "vera@example.com")
    admin.submit(f"/staff/customers/{vip.user_id}", {"note": "", "vip": "1"})
    older = [open_conversation(vip, f"Alte Frage {index}") for index in range(3)]
    theirs = open_conversation(people.customer("Kai Kollege"), "Frage für den Kollegen")
    execute(
        settings,
        conversations.update()
        .where(conversations.c.number.in_(older))
        .values(waiting_since=utcnow() - timedelta(days=3), assignee_id=None),
    )
    execute(
        settings,
        conversations.update()
        .where(conversations.c.number == theirs)
        .values(assignee_id=admin.user_id),
    )
    new = open_conversation(people.customer("Nina Neu", "nina@example.com"), "Ganz neue Frage")

    page = main_of(staff.get("/staff").text)
    shown = [int(n) for n in re.findall(r'class="queue-link" href="/staff/t/(\d+)"', page)]
    assert shown[0] == new and theirs not in shown
    assert re.search(r'aria-current="page">Meine \+ nicht zugewiesen \(\d+\)', page)
    assert 'aria-current="page">Neueste zuerst<' in page
    # The other order keeps VIP first and the longest waiting: the new one is not on page 1.
    waiting = main_of(staff.get("/staff?order=waiting").text)
    assert f"#{new}<" not in waiting and f"#{older[0]}<" in waiting
    assert 'href="/staff?status=open&amp;assigned=me&amp;order=waiting"' in waiting


def test_queue_pages_follow_each_other_in_order_without_gaps(people, settings, monkeypatch):
    from board.staff import routes as staff_routes

    monkeypatch.setattr(staff_routes, "PER_PAGE", 2)
    staff = people.staff()
    customers = [people.customer(f"Kunde{i} Seite", f"seite{i}@example.com") for i in range(5)]
    numbers = [open_conversation(person, f"Anliegen {i}") for i, person in enumerate(customers)]
    now = utcnow()
    for index, number in enumerate(numbers):  # waited longest: the last one written
        execute(
            settings,
            conversations.update()
            .where(conversations.c.number == number)
            .values(
                waiting_since=now - timedelta(hours=index),
                last_message_at=now - timedelta(hours=index),
            ),
        )

    def shown(status: str, order: str = "") -> list[int]:
        found = []
        for page in (1, 2, 3, 4):
            text = staff.get(f"/staff?status={status}&assigned=all&order={order}&page={page}").text
            found += [int(n) for n in re.findall(r'class="queue-link" href="/staff/t/(\d+)"', text)]
        return found

    assert shown("open", "waiting") == numbers[::-1]  # longest waiting first, each once
    assert shown("open") == numbers  # by default the newest first
    for number in numbers:
        staff.submit(f"/staff/t/{number}/update", {"status": "solved"})
    assert shown("solved") == numbers  # latest activity first


def test_a_pending_request_without_answer_for_days_is_greyed_with_the_time_since(people, settings):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    old, fresh = open_conversation(erika, "Alte Frage"), open_conversation(max_, "Neue Frage")
    for number in (old, fresh):
        answer(staff, number, "Können Sie uns ein Foto schicken?")
    execute(
        settings,
        conversations.update()
        .where(conversations.c.number == old)
        .values(last_message_at=utcnow() - timedelta(days=10)),
    )
    page = main_of(staff.get("/staff?status=pending&assigned=all").text)
    rows = {
        int(number): classes
        for classes, number in re.findall(
            r'<tr class="queue-row([^"]*)">\s*<td><a class="queue-link" href="/staff/t/(\d+)"', page
        )
    }
    assert "is-stale" in rows[old] and "is-stale" not in rows[fresh]
    notes = re.findall(r'class="stale-note">([^<]*)<', page)
    assert notes == ["ohne Antwort: 10 Tg."], notes  # the duration as the queue writes it


def test_queue_filters_and_counts(people, settings):
    staff = people.staff()
    erika = people.customer()
    first, second, third = (open_conversation(erika, f"Frage {index}") for index in range(3))
    answer(staff, first, "Erledigt", status="solved")
    execute(
        settings,
        conversations.update().where(conversations.c.number == third).values(assignee_id=None),
    )
    page = main_of(staff.get("/staff?status=open&assigned=none").text)
    assert f"#{third}" in page and f"#{second}" not in page
    filters = re.search(r'<nav class="filter-links".*?</nav>', page, re.S).group(0)
    # mine and nobody's, mine, nobody's, all open
    assert re.findall(r"\((\d+)\)", filters) == ["2", "1", "1", "2"]
    tabs = re.findall(r'<span class="count">(\d+)</span>', page)
    assert tabs == ["1", "0", "0", "0"]  # per status, for the unassigned filter
    solved = main_of(staff.get("/staff?status=solved").text)
    assert f"#{first}" in solved and f"#{second}" not in solved
    mine = main_of(staff.get("/staff?status=open&assigned=me").text)
    assert f"#{second}" in mine and f"#{third}" not in mine
    found = main_of(staff.get(f"/staff?status=open&q={second}").text)
    assert f"#{second}" in found and f"#{third}" not in found
    assert staff.get("/staff?status=bogus&assigned=bogus&page=x").status_code == 200


def test_the_live_queue_answers_304_until_what_it_shows_changes(people, client):
    erika, staff = people.customer(), people.staff()
    open_conversation(erika, "Erste Frage zum Thermostat")
    path = "/staff/queue/live?status=open&assigned=all"
    first = staff.get(path)
    tag = first.headers["etag"]
    assert first.status_code == 200 and "Erste Frage" in first.text
    assert "<html" not in first.text and 'id="queue-list"' in first.text  # the parts alone
    page = staff.get("/staff?status=open&assigned=all").text
    assert f'data-tag="&#34;{tag.strip(chr(34))}&#34;"' in page  # the page's own tag

    assert staff.get(path, headers={"If-None-Match": tag}).status_code == 304
    open_conversation(erika, "Zweite Frage zur Lieferung")
    changed = staff.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and "Zweite Frage" in changed.text
    assert changed.headers["etag"] != tag
    # Another view (solved, or another language) is another tag.
    assert staff.get(path.replace("open", "solved")).headers["etag"] != changed.headers["etag"]

    assert erika.get(path).status_code in (302, 303, 403)
    assert client.get(path, follow_redirects=False).status_code in (302, 303)


def test_the_queue_page_is_a_fixed_number_of_queries(people, settings, app, client):
    staff = people.staff()
    for index in range(6):
        person = people.customer(f"Kunde{index} Viel", f"viel{index}@example.com")
        open_conversation(person, f"Frage {index}")
    statements: list[str] = []
    count_statements(app, client, statements)
    try:
        page = staff.get("/staff").text
    finally:
        statement_listener(app.state.db, None)
    assert all(f"Kunde{index} Viel" in page for index in range(6))
    selects = page_selects(statements)
    # session, the header's notification bell, counts, the page with customers and
    # assignees, absences, the notice board, the viewer's handed-over conversations, the
    # request types of the filter
    assert len(selects) <= 8, selects


# --- customers ---------------------------------------------------------------------------


def test_the_customer_note_is_for_staff_only(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    response = staff.submit(
        f"/staff/customers/{erika.user_id}",
        {"note": "Reklamiert oft – freundlich bleiben", "vip": "1", "next": f"/staff/t/{number}"},
    )
    assert response.headers["location"] == f"/staff/t/{number}"
    panel = staff.get(f"/staff/t/{number}").text
    assert "Reklamiert oft" in panel and "badge-vip" in panel
    assert str(erika.customer_number) in panel and erika.email in panel
    for path in (f"/inbox/{number}", "/inbox", "/account", f"/u/{erika.user_id}"):
        assert "Reklamiert oft" not in erika.get(path).text, path
    assert erika.get(f"/staff/customers/{erika.user_id}").status_code == 403
    assert conversation(settings, number).vip
    assert staff.get(f"/staff/customers/{staff.user_id}").status_code == 404  # not a customer


# --- canned replies ----------------------------------------------------------------------


def test_canned_reply_expands_on_send_without_javascript(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    created = staff.submit(
        "/staff/replies",
        {"shortcut": "#Versand", "title": "Versandzeit", "body": "Wir versenden in 2 Tagen."},
    )
    assert created.status_code == 303
    answer(staff, number, "Guten Tag,\n#versand\nSiehe #1001 und #unbekannt.")
    bodies = [row.body for row in rows(settings, sa.select(messages).order_by(messages.c.id))]
    assert bodies[-1] == "Guten Tag,\nWir versenden in 2 Tagen.\nSiehe #1001 und #unbekannt."
    assert "Wir versenden in 2 Tagen." in erika.get(f"/inbox/{number}").text


def test_canned_reply_mistakes_are_explained_with_the_input_kept(people):
    staff = people.staff()
    staff.submit("/staff/replies", {"shortcut": "gruss", "title": "Gruß", "body": "Viele Grüße"})
    taken = staff.submit("/staff/replies", {"shortcut": "gruss", "title": "Nochmal", "body": "X"})
    assert taken.status_code == 400 and "bereits vergeben" in taken.text and "Nochmal" in taken.text
    numeric = staff.submit("/staff/replies", {"shortcut": "1042", "title": "Zahl", "body": "Y"})
    assert numeric.status_code == 400 and "Zahl" in numeric.text
    empty = staff.submit("/staff/replies", {"shortcut": "leer", "title": "", "body": ""})
    assert empty.status_code == 400


def test_canned_replies_are_edited_and_deleted(people, settings):
    staff = people.staff()
    staff.submit("/staff/replies", {"shortcut": "dank", "title": "Dank", "body": "Danke!"})
    reply_id = re.search(r'href="/staff/replies/(\d+)"', staff.get("/staff/replies").text)[1]
    staff.submit(
        f"/staff/replies/{reply_id}", {"shortcut": "danke", "title": "Dank", "body": "Vielen Dank!"}
    )
    assert "#danke" in staff.get("/staff/replies").text
    staff.submit(f"/staff/replies/{reply_id}/delete", {})
    assert staff.get(f"/staff/replies/{reply_id}").status_code == 404


def test_canned_reply_placeholders_are_filled_on_send_without_javascript(people, settings):
    erika = people.customer("Erika Mustermann", "erika@example.com")
    staff = people.staff(admin=False)  # Sven Support
    number = open_conversation(erika, "Wo bleibt meine Bestellung 4711-2026? Danke!")
    created = staff.submit(
        "/staff/replies",
        {
            "shortcut": "versand",
            "title": "Versandzeit",
            "body": "Hallo {vorname} ({name}), Ihre Bestellung {order} zu {ticket} "
            "ist unterwegs. {first_name}, es grüßt {agent}.",
        },
    )
    assert created.status_code == 303
    answer(staff, number, "#versand")
    bodies = [row.body for row in rows(settings, sa.select(messages).order_by(messages.c.id))]
    assert bodies[-1] == (
        f"Hallo Erika (Erika Mustermann), Ihre Bestellung 4711-2026 zu #{number} "
        "ist unterwegs. Erika, es grüßt Sven Support."
    )
    # The reply box gets the same text for this conversation, already filled in.
    page = staff.get(f"/staff/t/{number}").text
    data = page.split('id="canned-data"', 1)[1].split("</script>", 1)[0]
    assert "Hallo Erika (Erika Mustermann), Ihre Bestellung 4711-2026" in data


def test_an_order_number_nobody_named_is_asked_for_before_sending(people, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Mein Paket ist nicht angekommen.")
    staff.submit(
        "/staff/replies",
        {"shortcut": "retoure", "title": "Retoure", "body": "Die Retoure zu {order} ist da."},
    )
    before = len(rows(settings, sa.select(messages)))
    refused = answer(staff, number, "Guten Tag,\n#retoure")
    assert refused.status_code == 400
    assert "Bitte ersetzen Sie {order} durch die Bestellnummer." in refused.text
    # The form keeps the text, expanded, for the number to be typed in.
    assert "Guten Tag,\nDie Retoure zu {order} ist da.</textarea>" in refused.text
    assert len(rows(settings, sa.select(messages))) == before
    assert 'id="canned-data"' in refused.text
    sent = answer(staff, number, "Guten Tag,\nDie Retoure zu A-778 ist da.")
    assert sent.status_code == 303


@pytest.mark.parametrize(
    "locale, words", [("de", "Unbekannter Platzhalter"), ("en", "Unknown placeholder")]
)
def test_an_unknown_placeholder_is_refused_with_the_form_kept(people, settings, locale, words):
    staff = people.staff()
    staff.client.headers["Accept-Language"] = locale
    body = "Hallo {vorname}, Ihr {kundennummer} und {Name}."
    refused = staff.submit(
        "/staff/replies", {"shortcut": "hallo", "title": "Begrüßung", "body": body}
    )
    assert refused.status_code == 400
    assert words in refused.text and "{kundennummer}, {Name}" in refused.text
    assert 'value="Begrüßung"' in refused.text and body in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert "hallo" not in [row.shortcut for row in rows(settings, sa.select(canned_replies))]
    # Editing an existing one is checked the same way.
    staff.submit("/staff/replies", {"shortcut": "hallo", "title": "Begrüßung", "body": "Hallo"})
    reply_id = re.search(r'href="/staff/replies/(\d+)"', staff.get("/staff/replies").text)[1]
    edited = staff.submit(
        f"/staff/replies/{reply_id}", {"shortcut": "hallo", "title": "Begrüßung", "body": body}
    )
    assert edited.status_code == 400 and words in edited.text and body in edited.text


@pytest.mark.parametrize(
    "texts, expected",
    [
        (["Meine Bestellung 4711 fehlt."], "4711"),
        (["Bestellnummer: A-2024-77."], "A-2024-77"),
        (["Bestell-Nr. 123456"], "123456"),
        (["order number 998877"], "998877"),
        (["Die Bestellung vom 3. Mai fehlt."], None),
        (["Bestellung 555 neu", "Bestellung 444 alt"], "555"),  # the newest first
        (["Ihr Paket kommt morgen."], None),
    ],
)
def test_order_numbers_are_found_after_the_word_that_names_them(texts, expected):
    assert canned.order_number_in(texts) == expected


def test_placeholders_fill_known_names_and_leave_other_braces():
    values = canned.placeholder_values("Jana  Schmidt", 1042, "Sven Support", None)
    assert canned.fill("{vorname} {name} {ticket} {agent} {order} {x} {", values) == (
        "Jana Jana  Schmidt #1042 Sven Support {order} {x} {"
    )
    assert canned.placeholder_values(None, 7, "A", "9")["first_name"] == ""  # a guest without name
    assert canned.unknown_placeholders("{name} {ticket} {foo} {foo} {Agent}") == ["foo", "Agent"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("#gruss", "Viele Grüße"),
        ("Hallo #GRUSS!", "Hallo Viele Grüße!"),
        ("siehe https://shop.example/faq#gruss", "siehe https://shop.example/faq#gruss"),
        ("Ticket #1042", "Ticket #1042"),
        ("##gruss und a#gruss", "##gruss und a#gruss"),
        ("#grussformel", "#grussformel"),
        ("#gruss-lang", "#gruss-lang"),
    ],
)
def test_shortcut_expansion_leaves_other_hashes_alone(text, expected):
    assert canned.expand(text, {"gruss": "Viele Grüße"}) == expected


# --- broadcasts --------------------------------------------------------------------------


def test_an_announcement_reaches_every_customer_unread_and_read_only(people, settings):
    staff = people.staff()
    readers = [
        people.customer(f"Leser{index} Test", f"leser{index}@example.com") for index in range(3)
    ]
    before = rows(settings, sa.select(sa.func.max(conversations.c.number)))[0][0] or 1000
    response = staff.submit("/staff/announce", {"body": "**Neu:** Versand jetzt auch samstags."})
    assert response.status_code == 303
    assert "3" in staff.get(response.headers["location"]).text
    for reader in readers:
        assert unread_badge(reader) == 1
        listing = reader.get("/inbox?kind=announcement").text
        number = int(re.search(r'href="/inbox/(\d+)"', listing)[1])
        assert number > before
        page = reader.get(f"/inbox/{number}").text
        assert "<strong>Neu:</strong> Versand jetzt auch samstags." in page
        assert unread_badge(reader) == 0
        assert reader.submit(f"/inbox/{number}/reply", {"body": "Danke"}).status_code == 403
    announced = rows(
        settings, sa.select(conversations).where(conversations.c.kind == "announcement")
    )
    assert len({row.number for row in announced}) == 3
    assert all(row.message_count == 1 and row.last_public_message_id for row in announced)
    assert staff.submit("/staff/announce", {"body": ""}).status_code == 400
    assert "Versand jetzt auch samstags" not in staff.get("/staff").text  # nothing to answer


def test_an_invoice_notice_with_its_pdf_reaches_one_customer(people, settings):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    page = staff.get("/staff/invoice").text

    def send(customer, files):
        return staff.client.post(
            "/staff/invoice",
            data={
                "csrf_token": csrf_from(page),
                "customer": customer,
                "body": "Ihre Rechnung R-2026-17",
            },
            files=files,
        )

    pdf = [("attachments", ("rechnung.pdf", PDF, "application/pdf"))]
    unknown = send("999999", pdf)
    assert unknown.status_code == 400 and "R-2026-17" in unknown.text and "999999" in unknown.text
    not_pdf = send(erika.email, [("attachments", ("bild.png", png_bytes(), "image/png"))])
    assert not_pdf.status_code == 400
    assert send(str(erika.customer_number), pdf).status_code == 303
    assert unread_badge(erika) == 1 and unread_badge(max_) == 0
    listing = erika.get("/inbox?kind=invoice").text
    number = int(re.search(r'href="/inbox/(\d+)"', listing)[1])
    notice = erika.get(f"/inbox/{number}").text
    assert "R-2026-17" in notice and "rechnung.pdf" in notice
    # A question about it is a new request: the notice itself takes no replies.
    assert 'href="/inbox/new"' in notice
    assert erika.submit(f"/inbox/{number}/reply", {"body": "Frage dazu"}).status_code == 403
    assert "R-2026-17" not in staff.get("/staff").text  # nothing waits in the queue


def test_staff_write_first_the_request_waits_for_the_customer_and_the_bell_rings(
    people, settings, mailbox
):
    erika, staff = people.customer(), people.staff()
    page = staff.get(f"/staff/write?customer={erika.customer_number}").text
    assert f'value="{erika.customer_number}"' in page  # from the customer's page link

    def send(customer: str, body: str):
        return staff.submit("/staff/write", {"customer": customer, "body": body})

    unknown = send("999999", "Ihr Paket kam beschädigt bei uns zurück.")
    assert unknown.status_code == 400 and "beschädigt" in unknown.text  # the text is kept
    assert send(erika.email, "").status_code == 400
    sent = send(str(erika.customer_number), "Ihre Bestellung 4711 kam beschädigt zurück.")
    assert sent.status_code == 303
    number = int(sent.headers["location"].rsplit("/", 1)[1])
    row = conversation(settings, number)
    assert (row.status, row.assignee_id, row.kind) == ("pending", staff.user_id, "support")
    assert unread_badge(erika) == 1
    assert "4711 kam beschädigt" in erika.get(f"/inbox/{number}").text
    [bell] = mailbox.to(erika.email)
    # A bell only, with the signed link to this request (tests/test_mail_links.py).
    assert f"#{number}" in mail_text(bell) and "/m/" in mail_text(bell)
    assert "4711" not in mail_text(bell)
    assert erika.submit("/staff/write", {"customer": erika.email, "body": "x"}).status_code == 403


# --- staff home --------------------------------------------------------------------------


def test_staff_home_shows_counts_and_the_latest_conversations_shortened(people):
    erika, staff = people.customer(), people.staff()
    long_text = "Sehr lange Frage " * 20
    open_conversation(erika, long_text)
    page = staff.get("/staff/home").text
    attention = re.search(r'<ul class="attention".*?</ul>', page, re.S).group(0)
    assert re.search(r'<strong class="figure">1</strong> offen', attention)
    assert "Sehr lange Frage" in page and long_text.strip() not in page


# --- business hours ----------------------------------------------------------------------

OFFICE = BusinessHours("Europe/Berlin", (0, 1, 2, 3, 4), *parse_hours("9-17"))


def berlin(text: str) -> datetime:
    """A Berlin wall-clock time as naive UTC, as the database stores it."""
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin"))
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.mark.parametrize(
    "start, end, hours",
    [
        ("2026-11-20 16:00", "2026-11-23 10:00", 2.0),  # Friday to Monday: the weekend is free
        ("2026-11-21 10:00", "2026-11-22 18:00", 0.0),  # all weekend
        ("2026-11-23 07:00", "2026-11-23 20:00", 8.0),  # before opening to after closing
        ("2026-11-23 12:30", "2026-11-23 13:00", 0.5),
        ("2026-11-23 09:00", "2026-11-30 09:00", 40.0),  # one whole week
        ("2026-10-23 16:00", "2026-10-26 10:00", 2.0),  # over the switch to winter time
        ("2026-11-23 13:00", "2026-11-23 12:00", 0.0),
    ],
)
def test_business_hours_between(start, end, hours):
    assert OFFICE.hours_between(berlin(start), berlin(end)) == pytest.approx(hours)


def test_the_alert_moment_is_the_inverse_of_the_business_hours():
    end = berlin("2026-11-23 10:00")  # Monday morning
    assert OFFICE.moment_before(end, 2) == berlin("2026-11-20 16:00")  # Friday afternoon
    for hours in (0.5, 8, 8.25, 45, 400):
        assert OFFICE.hours_between(OFFICE.moment_before(end, hours), end) == pytest.approx(hours)


def test_business_day_and_hour_settings_parse_and_refuse_nonsense():
    assert parse_days("1-5") == (0, 1, 2, 3, 4) and parse_days("1-3,6") == (0, 1, 2, 5)
    assert parse_hours("08:30-17:00")[0].minute == 30
    for bad in ("0-5", "5-1", "8"):
        with pytest.raises(ValueError):
            parse_days(bad)
    with pytest.raises(ValueError):
        parse_hours("17-9")


def test_an_answer_that_crossed_another_comes_back_with_the_draft_kept(people, settings):
    """No JavaScript needed: the reply form names the newest message its page showed."""
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Wo bleibt meine Bestellung?")
    page = staff.get(f"/staff/t/{number}").text
    shown = re.search(r'name="seen" value="(\d+)"', page)[1]
    assert erika.submit(f"/inbox/{number}/reply", {"body": "Hat sich erledigt!"}).status_code == 303
    draft = {"body": "Sie ist unterwegs.", "status": "pending", "seen": shown}
    crossed = staff.submit(f"/staff/t/{number}/reply", draft)
    assert crossed.status_code == 409
    assert 'id="collision-notice"' in crossed.text and "Erika Mustermann" in crossed.text
    assert "Hat sich erledigt!" in crossed.text  # the new message, shown now
    assert ">Sie ist unterwegs.</textarea>" in crossed.text  # the draft, kept
    assert rows(settings, sa.select(sa.func.count()).select_from(messages))[0][0] == 2
    newest = re.search(r'name="seen" value="(\d+)"', crossed.text)[1]
    assert int(newest) > int(shown)
    sent = staff.submit(f"/staff/t/{number}/reply", {**draft, "seen": newest})
    assert sent.status_code == 303
    own = staff.submit(f"/staff/t/{number}/reply", {**draft, "seen": newest, "body": "Noch was."})
    assert own.status_code == 303  # one's own answers in between cross nothing
