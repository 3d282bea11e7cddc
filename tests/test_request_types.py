"""Request types and order numbers: the shop's types (staff area), the new-message fields,
the queue's type filter, round-robin by areas of responsibility, statistics and the
new-message page (house rules, formatting help)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
import sqlalchemy as sa

from board.db import (
    absences,
    conversations,
    queue_counts,
    request_types,
    staff_request_types,
    users,
    utcnow,
)
from tests.conftest import csrf_from
from tests.test_inbox import execute, rows
from tests.test_staff import add_staff

DEFAULT_TYPES = ["Bestellung", "Rücksendung", "Rechnung", "Technik"]


def type_ids(settings) -> dict[str, int]:
    found = rows(
        settings,
        sa.select(request_types.c.name, request_types.c.id).order_by(
            request_types.c.position, request_types.c.id
        ),
    )
    return {row.name: row.id for row in found}


def conversation(settings, number):
    return rows(settings, sa.select(conversations).where(conversations.c.number == number))[0]


def write_request(person, body, type_id="", order_number="", path="/inbox/new", **extra):
    """The new-message form as a browser sends it (multipart, with an empty file field)."""
    page = person.get(path).text
    return person.post(
        path,
        data={
            "csrf_token": csrf_from(page),
            "body": body,
            "type": str(type_id),
            "order_number": order_number,
            **extra,
        },
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )


def request_number(response) -> int:
    assert response.status_code == 303, response.text[:2000]
    return int(response.headers["location"].rsplit("/", 1)[1])


def select_options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    return [text.strip() for text in re.findall(r"<option[^>]*>([^<]*)</option>", select[1])]


# --- the shop's types --------------------------------------------------------------------


def test_a_new_installation_has_four_german_types_shown_as_stored_in_english_too(people, settings):
    assert list(type_ids(settings)) == DEFAULT_TYPES
    erika = people.customer()
    execute(settings, users.update().where(users.c.id == erika.user_id).values(locale="en"))
    page = erika.get("/inbox/new").text
    assert "What is it about?" in page  # the English interface…
    assert select_options(page, "type")[1:] == DEFAULT_TYPES  # …with the shop's own words


def test_staff_add_rename_and_deactivate_types(people, settings):
    staff, erika = people.staff(admin=False), people.customer()
    page = staff.get("/staff/types")
    assert page.status_code == 200 and all(name in page.text for name in DEFAULT_TYPES)

    added = staff.submit("/staff/types", {"name": "  Garantie  "}, form_page="/staff/types")
    assert added.status_code == 303 and added.headers["location"] == "/staff/types"
    ids = type_ids(settings)
    assert "Garantie" in ids  # spaces folded
    assert select_options(erika.get("/inbox/new").text, "type")[-1] == "Garantie"

    garantie = ids["Garantie"]
    renamed = staff.submit(
        f"/staff/types/{garantie}", {"name": "Garantie & Reparatur", "active": "1"}
    )
    assert renamed.status_code == 303
    number = request_number(write_request(erika.client, "Display defekt", garantie))
    assert "Garantie &amp; Reparatur" in erika.get(f"/inbox/{number}").text

    deactivated = staff.submit(
        f"/staff/types/{garantie}", {"name": "Garantie & Reparatur", "active": "0"}
    )
    assert deactivated.status_code == 303
    assert "Garantie & Reparatur" not in select_options(erika.get("/inbox/new").text, "type")
    # Its requests keep it: the customer's header, the staff panel, the queue's filter.
    assert "Garantie &amp; Reparatur" in erika.get(f"/inbox/{number}").text
    assert "Garantie &amp; Reparatur" in staff.get(f"/staff/t/{number}").text
    assert f"type={garantie}" in staff.get("/staff").text
    # A form still showing it is refused, the text kept.
    refused = write_request(erika.client, "Noch ein Defekt", garantie, "A-1")
    assert refused.status_code == 400
    assert "Noch ein Defekt" in refused.text and 'value="A-1"' in refused.text


def test_type_names_are_checked_and_kept_in_the_form(people, settings):
    staff = people.staff()
    duplicate = staff.submit("/staff/types", {"name": "rechnung"}, form_page="/staff/types")
    assert duplicate.status_code == 400
    assert "existiert bereits" in duplicate.text and 'value="rechnung"' in duplicate.text
    too_long = staff.submit("/staff/types", {"name": "x" * 61}, form_page="/staff/types")
    assert too_long.status_code == 400 and "höchstens 60 Zeichen" in too_long.text
    empty = staff.submit("/staff/types", {"name": "   "}, form_page="/staff/types")
    assert empty.status_code == 400
    ids = type_ids(settings)
    taken = staff.submit(f"/staff/types/{ids['Technik']}", {"name": "Bestellung", "active": "1"})
    assert taken.status_code == 400 and 'value="Bestellung"' in taken.text
    bad_state = staff.submit(f"/staff/types/{ids['Technik']}", {"name": "Technik", "active": "2"})
    assert bad_state.status_code == 400
    assert staff.submit("/staff/types/999999", {"name": "X", "active": "1"}).status_code == 404
    assert list(type_ids(settings)) == DEFAULT_TYPES  # nothing changed


def test_only_staff_manage_types_and_only_with_the_csrf_token(people, client, settings):
    erika = people.customer()
    technik = type_ids(settings)["Technik"]
    assert erika.get("/staff/types").status_code == 403
    assert client.get("/staff/types").status_code == 303  # to the login
    assert erika.submit("/staff/types", {"name": "Kunde"}).status_code == 403
    assert erika.submit(f"/staff/types/{technik}", {"name": "X", "active": "0"}).status_code == 403
    staff = people.staff()
    no_token = staff.client.post("/staff/types", data={"name": "Ohne Token"})
    assert no_token.status_code == 403
    no_token = staff.client.post(f"/staff/types/{technik}", data={"name": "X", "active": "0"})
    assert no_token.status_code == 403
    assert list(type_ids(settings)) == DEFAULT_TYPES


# --- the new message's type and order number ---------------------------------------------


def test_a_request_carries_its_type_and_order_number_everywhere(people, settings):
    erika, staff = people.customer(), people.staff()
    rechnung = type_ids(settings)["Rechnung"]
    number = request_number(
        write_request(erika.client, "Die Rechnung fehlt", rechnung, " 100-4711-DE ")
    )
    stored = conversation(settings, number)
    assert (stored.type_id, stored.order_number) == (rechnung, "100-4711-DE")

    header = erika.get(f"/inbox/{number}").text.split('id="request-facts"', 1)[1]
    assert "Rechnung" in header.split("</p>", 1)[0] and "100-4711-DE" in header
    panel = staff.get(f"/staff/t/{number}").text.split('id="request-facts"', 1)[1]
    assert "Rechnung" in panel.split("</dl>", 1)[0] and "100-4711-DE" in panel
    row = staff.get("/staff").text.split(f"#{number}</a>", 1)[1].split("</tr>", 1)[0]
    assert "Rechnung" in row and "100-4711-DE" in row

    # Both are optional: a request without them shows neither.
    plain = request_number(write_request(erika.client, "Nur eine Frage"))
    assert conversation(settings, plain).type_id is None
    assert 'id="request-facts"' not in erika.get(f"/inbox/{plain}").text


@pytest.mark.parametrize(
    "order_number",
    ["1" * 41, "A\u200b123", "12\t34", "ABC\x00", "4711\nDROP"],
    ids=["too-long", "zero-width", "tab", "nul", "line-break"],
)
def test_a_bad_order_number_is_refused_with_the_input_kept(people, settings, order_number):
    erika = people.customer()
    technik = type_ids(settings)["Technik"]
    response = write_request(erika.client, "Mein Drucker druckt nicht", technik, order_number)
    assert response.status_code == 400
    assert 'id="error-field-order_number"' in response.text
    assert "Mein Drucker druckt nicht" in response.text
    assert re.search(rf'<option value="{technik}" selected>Technik</option>', response.text)
    assert rows(settings, sa.select(conversations.c.id)) == []


def test_an_unknown_type_is_refused_with_the_input_kept(people, settings):
    erika = people.customer()
    for value in ("999", "Bestellung", "-1"):
        response = write_request(erika.client, "Wo ist mein Paket?", value, "4711")
        assert response.status_code == 400, value
        assert 'id="error-field-type"' in response.text
        assert "Wo ist mein Paket?" in response.text and 'value="4711"' in response.text
    assert rows(settings, sa.select(conversations.c.id)) == []


def test_guests_give_a_type_and_order_number_on_the_contact_form(client, settings):
    ruecksendung = type_ids(settings)["Rücksendung"]
    page = client.get("/contact").text
    assert select_options(page, "type")[1:] == DEFAULT_TYPES
    refused = write_request(
        client,
        "Ich möchte zurückschicken",
        ruecksendung,
        "x" * 50,
        path="/contact",
        name="Gerda Gast",
        email="gerda@example.com",
    )
    assert refused.status_code == 400
    assert 'value="Gerda Gast"' in refused.text and "Ich möchte zurückschicken" in refused.text
    sent = write_request(
        client,
        "Ich möchte zurückschicken",
        ruecksendung,
        "R-2026-17",
        path="/contact",
        name="Gerda Gast",
        email="gerda@example.com",
    )
    assert sent.status_code == 303
    (stored,) = rows(settings, sa.select(conversations))
    assert (stored.type_id, stored.order_number) == (ruecksendung, "R-2026-17")
    guest_page = client.get(sent.headers["location"]).text
    assert "Rücksendung" in guest_page and "R-2026-17" in guest_page


# --- the queue's type filter -------------------------------------------------------------


@pytest.mark.postgresql
def test_the_queue_filters_by_type_with_counts_per_type(people, settings):
    staff = people.staff()
    erika = people.customer()
    ids = type_ids(settings)
    bestellung = request_number(write_request(erika.client, "Bestellung A", ids["Bestellung"]))
    technik = request_number(write_request(erika.client, "Technikfrage B", ids["Technik"]))
    untyped = request_number(write_request(erika.client, "Ohne Typ C"))

    def numbers(page: str) -> set[int]:
        return {int(n) for n in re.findall(r'class="queue-link" href="/staff/t/(\d+)"', page)}

    assert numbers(staff.get("/staff").text) == {bestellung, technik, untyped}
    only = staff.get(f"/staff?type={ids['Technik']}").text
    assert numbers(only) == {technik}
    assert re.search(r'aria-current="page">Offen <span class="count">1</span>', only)
    assert f'name="type" value="{ids["Technik"]}"' in only  # the search keeps the filter
    assert numbers(staff.get("/staff?type=none").text) == {untyped}
    assert numbers(staff.get(f"/staff?type={ids['Technik']}&assigned=none").text) == set()
    # Unknown values show everything rather than nothing.
    assert numbers(staff.get("/staff?type=abc").text) == {bestellung, technik, untyped}

    # The counts follow a solved request of the type, kept by the triggers.
    staff.submit(f"/staff/t/{technik}/update", {"status": "solved"})
    solved = staff.get(f"/staff?type={ids['Technik']}&status=solved").text
    assert numbers(solved) == {technik}
    counted = rows(settings, sa.select(queue_counts).order_by(queue_counts.c.type_id))
    assert {(row.status, row.type_id, row.n) for row in counted} == {
        ("open", 0, 1),
        ("open", ids["Bestellung"], 1),
        ("solved", ids["Technik"], 1),
    }


@pytest.mark.sqlite_only
def test_the_type_filter_reads_the_queue_from_an_index(people, settings, app, client):
    from board.staff import queries

    people.staff()
    plans = []
    orders = ("waiting", "newest", "activity")
    for order in orders:
        prepared = queries.QUEUE_PAGES[order, "me_none", True].statement
        compiled = prepared.compile(
            dialect=sa.dialects.sqlite.dialect(), compile_kwargs={"render_postcompile": True}
        )
        engine = sa.create_engine(f"sqlite:///{settings.sqlite_path}")
        with engine.connect() as connection:
            params = {
                "status": "solved" if order == "activity" else "open",
                "me": 1,
                "type_id": 1,
                "limit": 30,
                "offset": 0,
            }
            values = {**compiled.params, **params}
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled),
                tuple(values[name] for name in compiled.positiontup),
            ).all()
        engine.dispose()
        plans.append([row[-1] for row in plan])
    # The page's ids come from the index in its order; only the 30 rows found are sorted.
    indexes = ("type_waiting", "type_newest", "type_activity")
    for plan, index in zip(plans, indexes, strict=True):
        # In the index's order; mine and nobody's reads the assignee from the row unless
        # the index holds it (the default order's does).
        assert re.search(
            f"SEARCH page USING (COVERING )?INDEX ix_conversations_{index} ", " ".join(plan)
        )
        assert [step for step in plan if "TEMP B-TREE" in step] == ["USE TEMP B-TREE FOR ORDER BY"]


# --- round-robin by areas of responsibility ----------------------------------------------


def test_round_robin_prefers_staff_responsible_for_the_type(people, settings):
    admin = people.staff()
    anna = add_staff(settings, "anna@shop.example", "Anna Rechnung")
    ben = add_staff(settings, "ben@shop.example", "Ben Technik")
    ids = type_ids(settings)
    admin.submit(f"/staff/team/{anna}/areas", {"types": str(ids["Rechnung"])})
    admin.submit(f"/staff/team/{ben}/areas", {"types": str(ids["Technik"])})
    erika = people.customer()

    invoices = [
        request_number(write_request(erika.client, f"Rechnung {n}", ids["Rechnung"]))
        for n in range(3)
    ]
    assert {conversation(settings, n).assignee_id for n in invoices} == {anna}
    technical = request_number(write_request(erika.client, "Technik", ids["Technik"]))
    assert conversation(settings, technical).assignee_id == ben
    # Nobody is responsible for returns: everyone takes turns, longest idle first; the
    # setup admin only when nobody else can.
    returns = [
        request_number(write_request(erika.client, f"Retoure {n}", ids["Rücksendung"]))
        for n in range(3)
    ]
    assert {conversation(settings, n).assignee_id for n in returns} == {anna, ben}

    # Anna away: invoices fall back to everyone who is available.
    now = utcnow()
    execute(
        settings,
        absences.insert().values(
            user_id=anna,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=1),
            note="Urlaub",
            created_at=now,
        ),
    )
    while_away = request_number(write_request(erika.client, "Rechnung weg", ids["Rechnung"]))
    assert conversation(settings, while_away).assignee_id in {admin.user_id, ben}
    # Ben not accepting and Anna away: the admin, for a technical question too.
    execute(settings, users.update().where(users.c.id == ben).values(accepting=False))
    fallback = request_number(write_request(erika.client, "Technik 2", ids["Technik"]))
    assert conversation(settings, fallback).assignee_id == admin.user_id


def test_staff_set_their_own_areas_and_admins_anyones(people, settings):
    admin, sven = people.staff(), people.staff(admin=False)
    ids = type_ids(settings)
    own = sven.submit(
        f"/staff/team/{sven.user_id}/areas",
        {"types": [str(ids["Technik"]), str(ids["Bestellung"])]},
        form_page="/staff/team",
    )
    assert own.status_code == 303

    def areas(user_id):
        found = rows(
            settings,
            sa.select(staff_request_types.c.type_id).where(
                staff_request_types.c.user_id == user_id
            ),
        )
        return {row.type_id for row in found}

    assert areas(sven.user_id) == {ids["Technik"], ids["Bestellung"]}
    team = sven.get("/staff/team").text
    row = team.split(f'id="member-{sven.user_id}"', 1)[1].split("</tr>", 1)[0]
    assert "Technik" in row and "Bestellung" in row
    assert f'id="areas-{admin.user_id}"' not in team  # only their own form

    others = sven.submit(f"/staff/team/{admin.user_id}/areas", {"types": str(ids["Technik"])})
    assert others.status_code == 403 and areas(admin.user_id) == set()
    by_admin = admin.submit(f"/staff/team/{sven.user_id}/areas", {})
    assert by_admin.status_code == 303 and areas(sven.user_id) == set()
    bad = admin.submit(f"/staff/team/{sven.user_id}/areas", {"types": "999"})
    assert bad.status_code == 400 and 'id="error-areas-' in bad.text
    assert admin.submit("/staff/team/999999/areas", {"types": "1"}).status_code == 404
    erika = people.customer()
    assert erika.submit(f"/staff/team/{sven.user_id}/areas", {}).status_code == 403


# --- statistics and exports --------------------------------------------------------------


@pytest.mark.postgresql
def test_statistics_count_requests_per_type_on_the_page_and_in_the_csv(people, settings):
    staff, erika = people.staff(), people.customer()
    ids = type_ids(settings)
    write_request(erika.client, "Rechnung 1", ids["Rechnung"], "RE-1")
    write_request(erika.client, "Rechnung 2", ids["Rechnung"])
    write_request(erika.client, "Ohne Typ")
    page = staff.get("/staff/stats").text
    table = page.split('id="stat-types"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", table.split("<tbody>", 1)[1])
    assert [cell.strip() for cell in cells] == ["Rechnung", "2", "1", "Ohne Art", "1", "0"]

    exported = staff.get("/staff/stats?format=csv").text.lstrip("\ufeff")
    lines = list(csv.reader(io.StringIO(exported), delimiter=";"))
    assert ["type", "Rechnung", "received", "2"] in lines
    assert ["type", "Rechnung", "with_order_number", "1"] in lines
    assert ["type", "", "received", "1"] in lines


def test_the_team_csv_exports_and_imports_areas_of_responsibility(people, settings):
    admin, sven = people.staff(), people.staff(admin=False)
    ids = type_ids(settings)
    admin.submit(
        f"/staff/team/{sven.user_id}/areas",
        {"types": [str(ids["Technik"]), str(ids["Rechnung"])]},
    )
    exported = admin.get("/staff/team?format=csv").text.lstrip("\ufeff")
    table = {row["email"]: row for row in csv.DictReader(io.StringIO(exported), delimiter=";")}
    assert table[sven.email]["areas"] == "Rechnung | Technik"  # in the shop's order
    assert table[admin.email]["areas"] == ""

    def areas(user_id):
        chosen = sa.select(staff_request_types.c.type_id).where(
            staff_request_types.c.user_id == user_id
        )
        return {row.type_id for row in rows(settings, chosen)}

    def upload(content: str):
        token = csrf_from(admin.get("/staff/team").text)
        return admin.client.post(
            "/staff/team",
            data={"csrf_token": token},
            files={"csv": ("team.csv", content.encode(), "text/csv")},
        )

    refused = upload(f"email;name;areas\n{sven.email};Sven Support;Technik | Garten\n")
    assert refused.status_code == 400 and "Unbekannte Anfrageart „Garten“" in refused.text
    assert areas(sven.user_id) == {ids["Technik"], ids["Rechnung"]}  # nothing imported
    imported = upload(
        f"email;name;areas\n{sven.email};Sven Support;bestellung|Rücksendung\n"
        f"neu@shop.example;Nora Neu;Technik\n{admin.email};Administrator;\n"
    )
    assert imported.status_code == 200  # the new account's one-time password
    assert areas(sven.user_id) == {ids["Bestellung"], ids["Rücksendung"]}
    nora = rows(settings, sa.select(users.c.id).where(users.c.email == "neu@shop.example"))
    assert areas(nora[0].id) == {ids["Technik"]}
    assert areas(admin.user_id) == set()  # a blank cell keeps what was


def test_the_personal_data_export_names_type_and_order_number(people, settings):
    erika = people.customer()
    write_request(erika.client, "Wo ist Bestellung 77?", type_ids(settings)["Bestellung"], "77")
    archive = zipfile.ZipFile(io.BytesIO(erika.get("/account/data.zip").content))
    (request,) = json.loads(archive.read("conversations.json"))
    assert (request["type"], request["order_number"]) == ("Bestellung", "77")


# --- the new-message page ----------------------------------------------------------------


def test_the_house_rules_fold_away_once_the_customer_has_written(people, client):
    erika = people.customer()

    def rules(page: str) -> str:
        return re.search(r'<details class="house-rules"[^>]*>', page)[0]

    assert " open" in rules(erika.get("/inbox/new").text)
    request_number(write_request(erika.client, "Meine erste Anfrage"))
    assert " open" not in rules(erika.get("/inbox/new").text)
    # A guest's browser holding a guest link has written before too.
    assert " open" in rules(client.get("/contact").text)
    write_request(
        client, "Gastfrage", path="/contact", name="Gerda Gast", email="gerda@example.com"
    )
    assert " open" not in rules(client.get("/contact").text)


def test_the_new_message_page_speaks_of_formatting_not_markdown(people, client):
    erika = people.customer()
    for page in (erika.get("/inbox/new").text, client.get("/contact").text):
        assert "Markdown" not in page
        help_box = page.split('id="formatting-help"', 1)[1].split("</details>", 1)[0]
        assert "Formatierung" in help_box
        assert "**fett**" in help_box and "*kursiv*" in help_box and "](https://" in help_box
