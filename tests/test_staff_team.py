"""The team page through HTTP: accounts, roles, deactivation, CSV, availability, absences."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from board import i18n
from board.db import absences, sessions, users
from board.staff.team_csv import csv_cell, parse_flag, parse_team_csv
from tests.conftest import ADMIN_EMAIL, csrf_from, login, submit, user_row
from tests.test_inbox import execute, open_conversation, rows

BOM = b"\xef\xbb\xbf"


@pytest.fixture
def member(sven):
    """A staff member who is no admin (conftest's `sven`), reading English."""
    return sven


def user_count(settings) -> int:
    return rows(settings, sa.select(sa.func.count()).select_from(users))[0][0]


def upload(person, content: bytes, filename: str = "team.csv"):
    token = csrf_from(person.get("/staff/team").text)
    return person.client.post(
        "/staff/team",
        data={"csrf_token": token},
        files={"csv": (filename, content, "text/csv")},
    )


def shown_passwords(html: str) -> list[str]:
    return re.findall(r'<code class="one-time-password">([^<]+)</code>', html)


def absence_rows(settings):
    return rows(settings, sa.select(absences).order_by(absences.c.id))


# --- accounts ----------------------------------------------------------------------------


def test_admin_creates_a_staff_account_whose_one_time_password_works(admin, settings, new_client):
    response = admin.submit(
        "/staff/team/new",
        {
            "email": "Lena@Example.com",
            "name": "Lena Lager",
            "role": "staff",
            "title": "Versand",
            "signature": "Viele Grüße\r\nLena",  # as browsers send a textarea
        },
    )
    assert response.status_code == 200
    (password,) = shown_passwords(response.text)
    assert "shown only this once" in response.text
    row = user_row(settings, "lena@example.com")
    assert (row.role, row.name, row.title, row.signature) == (
        "staff",
        "Lena Lager",
        "Versand",
        "Viele Grüße\nLena",
    )
    assert row.must_change_password and row.is_active and row.customer_number is None
    assert password not in admin.get("/staff/team").text  # shown once, never again
    lena = new_client()
    answer = login(lena, "lena@example.com", password)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    # The staff area opens once she has chosen her own password.
    assert lena.get("/staff/team").headers["location"] == "/account#password"
    changed = submit(
        lena,
        "/account",
        {"action": "password", "current_password": password, "password": "lenas-eigenes-1"},
        form_page="/account",
    )
    assert changed.status_code == 303
    assert lena.get("/staff/team").status_code == 200


def test_create_with_bad_input_is_refused_and_keeps_the_input(admin, settings):
    before = user_count(settings)
    response = admin.submit(
        "/staff/team/new",
        {"email": "kein-at-zeichen", "name": "", "role": "boss", "title": "Lager"},
    )
    assert response.status_code == 400
    assert "Please enter a valid email address." in response.text
    assert "Please enter the name." in response.text
    assert "The role must be “admin” or “staff”." in response.text
    assert 'value="kein-at-zeichen"' in response.text and 'value="Lager"' in response.text
    assert user_count(settings) == before


def test_create_refuses_an_address_that_belongs_to_a_customer(admin, people, settings):
    erika = people.customer()
    response = admin.submit("/staff/team/new", {"email": erika.email, "name": "Erika"})
    assert response.status_code == 400
    assert "This email address belongs to another account." in response.text
    assert user_row(settings, erika.email).role == "customer"


def test_staff_see_the_team_but_only_admins_change_it(member, admin, settings):
    page = member.get("/staff/team")
    assert page.status_code == 200
    assert "Sven Support" in page.text and "Administrator" in page.text
    assert "Add a staff account" not in page.text and "/staff/team/new" not in page.text
    assert "Add a staff account" in admin.get("/staff/team").text

    csv_file = b"email,name\nneu@example.com,Neu\n"
    attempts = [
        member.submit("/staff/team/new", {"email": "neu@example.com", "name": "Neu"}),
        member.submit(f"/staff/team/{admin.user_id}", {"role": "staff", "active": "0"}),
        upload(member, csv_file),
        member.get("/staff/team?format=csv"),
    ]
    assert [response.status_code for response in attempts] == [403, 403, 403, 403]
    assert user_row(settings, "neu@example.com") is None
    assert user_row(settings, ADMIN_EMAIL).role == "admin"


def test_staff_email_addresses_are_shown_to_admins_only(member, admin, people):
    staff_emails = (ADMIN_EMAIL, member.email)
    erika = people.customer("Erika Mustermann", "erika@example.com")
    number = open_conversation(erika, "Wo bleibt mein Paket?")
    admin.submit(f"/staff/t/{number}/reply", {"body": "Ist unterwegs.", "internal": "0"})
    admin.submit(f"/staff/t/{number}/update", {"assignee": str(member.user_id), "note": "Bitte"})
    pages = ("/staff/team", "/staff", "/staff/home", f"/staff/t/{number}", "/staff/stats")
    for path in pages:
        seen = member.get(path)
        assert seen.status_code == 200, path
        assert not [email for email in staff_emails if email in seen.text], path
    # The customer's own address is for every agent.
    assert "erika@example.com" in member.get(f"/staff/t/{number}").text
    team = admin.get("/staff/team").text
    assert ADMIN_EMAIL in team and member.email in team
    table = team.split('id="team"', 1)[1].split("</table>", 1)[0]
    assert f"<td>{member.email}</td>" in table and ">Email</th>" in table
    assert ">Email</th>" not in member.get("/staff/team").text


def test_customers_and_visitors_are_kept_out(people, client):
    assert people.customer().get("/staff/team").status_code == 403
    response = client.get("/staff/team")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fstaff%2Fteam"


def test_update_changes_role_title_and_signature(admin, member, settings):
    response = admin.submit(
        f"/staff/team/{member.user_id}",
        {"name": "Sven Support", "role": "admin", "title": "Leitung", "signature": "Sven"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/staff/team"
    row = user_row(settings, member.email)
    assert (row.role, row.title, row.signature, row.is_active) == ("admin", "Leitung", "Sven", True)


def test_deactivation_keeps_the_account_and_logs_it_out_at_once(admin, member, settings):
    assert member.get("/staff/team").status_code == 200
    response = admin.submit(f"/staff/team/{member.user_id}", {"active": "0"})
    assert response.status_code == 303
    next_request = member.get("/staff/team")
    assert next_request.status_code == 303
    assert next_request.headers["location"].startswith("/login")
    row = user_row(settings, member.email)
    assert row is not None and not row.is_active  # deactivated, never deleted
    assert rows(settings, sa.select(sessions).where(sessions.c.user_id == member.user_id)) == []
    assert login(member.client, member.email, member.password).status_code == 400
    page = admin.get("/staff/team").text
    assert "Sven Support" in page and "Deactivated" in page

    assert admin.submit(f"/staff/team/{member.user_id}", {"active": "1"}).status_code == 303
    assert login(member.client, member.email, member.password).status_code == 303


def test_an_admin_cannot_demote_or_deactivate_themselves(admin, settings):
    response = admin.submit(f"/staff/team/{admin.user_id}", {"role": "staff", "active": "0"})
    assert response.status_code == 400
    assert "You cannot remove your own administrator role." in response.text
    assert "You cannot deactivate your own account." in response.text
    row = user_row(settings, ADMIN_EMAIL)
    assert row.role == "admin" and row.is_active


def test_customers_are_not_team_members_to_edit(admin, people, settings):
    erika = people.customer()
    response = admin.submit(f"/staff/team/{erika.user_id}", {"role": "admin"})
    assert response.status_code == 404
    assert user_row(settings, erika.email).role == "customer"


def test_a_form_without_csrf_token_is_refused(admin, member, settings):
    response = admin.client.post(f"/staff/team/{member.user_id}", data={"active": "0"})
    assert response.status_code == 403
    response = member.client.post("/staff/team/availability", data={"accepting": "0"})
    assert response.status_code == 403
    row = user_row(settings, member.email)
    assert row.is_active and row.accepting


# --- CSV export --------------------------------------------------------------------------


def test_csv_export_has_a_bom_and_defuses_formulas(admin, member, settings):
    execute(
        settings,
        users.update()
        .where(users.c.id == member.user_id)
        .values(
            name="Jürgen Größe",
            title="+49 30 1234",
            signature='=HYPERLINK("http://evil.example","Klick")',
            accepting=False,
        ),
    )
    response = admin.get("/staff/team?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(BOM)
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert table[0] == [
        "email",
        "name",
        "role",
        "title",
        "signature",
        "active",
        "accepting",
        "areas",
    ]
    assert table[1:] == [
        [ADMIN_EMAIL, "Administrator", "admin", "Inhaber", "", "1", "1", ""],
        [
            member.email,
            "Jürgen Größe",
            "staff",
            "'+49 30 1234",
            '\'=HYPERLINK("http://evil.example","Klick")',
            "1",
            "0",
            "",
        ],
    ]


def test_csv_export_uses_semicolons_for_german_spreadsheets(people):
    admin = people.staff(admin=True)  # no Accept-Language: the German default
    text = admin.get("/staff/team?format=csv").content.decode("utf-8-sig")
    assert text.splitlines()[0] == "email;name;role;title;signature;active;accepting;areas"


def test_an_exported_file_imports_back_unchanged(admin, member, settings):
    execute(
        settings,
        users.update().where(users.c.id == member.user_id).values(signature="-- \nSven"),
    )
    before = rows(settings, sa.select(users).order_by(users.c.id))
    exported = admin.get("/staff/team?format=csv").content
    response = upload(admin, exported)
    assert response.status_code == 303
    assert rows(settings, sa.select(users).order_by(users.c.id)) == before


# --- CSV import ---------------------------------------------------------------------------


@pytest.fixture
def english_messages():
    token = i18n.current_locale.set("en")
    yield
    i18n.current_locale.reset(token)


def test_import_rules_on_plain_values(english_messages):
    assert [parse_flag(word) for word in ("1", "Ja", "YES", "true", "0", "nein", "No", "")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        None,
    ]
    with pytest.raises(ValueError):
        parse_flag("vielleicht")
    assert [csv_cell(value) for value in ("=1+1", "@SUM(A1)", "-2", "Grüße", "a=b")] == [
        "'=1+1",
        "'@SUM(A1)",
        "'-2",
        "Grüße",
        "a=b",
    ]
    # A quoted cell over two lines: the next row is reported with its own first line.
    report = parse_team_csv(b'email,name,signature\na@example.com,A,"zwei\nZeilen"\nkaputt,B,\n')
    assert report.messages() == ["Line 4: Please enter a valid email address."]
    assert [row.line for row in report.rows] == [2, 4]


# --- CSV import through the page ----------------------------------------------------------


def test_csv_import_with_bad_rows_reports_each_and_imports_nothing(admin, people, settings):
    erika = people.customer()
    content = (
        "email,name,role,title,active\n"
        "gut@example.com,Gute Zeile,staff,Support,1\n"
        "kaputt,Keine Adresse,staff,,1\n"
        f"{erika.email},Erika,staff,,1\n"
        "gut@example.com,Doppelt,boss,,vielleicht\n"
        f"{'x' * 130}@example.com,,,,\n"
    ).encode()
    before = user_count(settings)
    response = upload(admin, content)
    assert response.status_code == 400
    errors = re.search(r'id="import-errors".*?</div>', response.text, re.S).group(0)
    assert "Line 2" not in errors
    assert "Line 3: Please enter a valid email address." in errors
    assert "Line 4: This email address belongs to a customer account." in errors
    line5 = re.search(r"<li>Line 5: (.*?)</li>", errors).group(1)
    assert "already appears in line 2" in line5
    assert "The role must be" in line5 and "“active” must be 1 or 0" in line5
    assert "Line 6: Please enter the name." in errors
    assert user_count(settings) == before
    assert user_row(settings, "gut@example.com") is None


def test_csv_import_creates_new_accounts_and_updates_existing_ones(admin, member, settings):
    content = (
        BOM
        + (
            "Email;Name;Role;Title;Signature;Active;Accepting\n"
            f"{member.email.upper()};Sven Support;admin;Leitung;'-- Sven;ja;nein\n"
            "\n"
            'neu@example.com;"Nina Neu";staff;Versand;"Grüße\nNina";1;1\n'
            "zwei@example.com;Zora Zwei;;;;;\n"
        ).encode()
    )
    response = upload(admin, content)
    assert response.status_code == 200, response.text
    passwords = shown_passwords(response.text)
    assert len(passwords) == 2 and len(set(passwords)) == 2
    assert "1 existing account was updated." in response.text
    sven = user_row(settings, member.email)
    assert (sven.role, sven.title, sven.signature, sven.accepting) == (
        "admin",
        "Leitung",
        "-- Sven",
        False,
    )
    nina = user_row(settings, "neu@example.com")
    assert (nina.role, nina.name, nina.signature, nina.must_change_password) == (
        "staff",
        "Nina Neu",
        "Grüße\nNina",
        True,
    )
    zora = user_row(settings, "zwei@example.com")
    assert (zora.role, zora.is_active, zora.accepting, zora.title) == ("staff", True, True, None)


def test_csv_import_refuses_what_it_cannot_read(admin, settings):
    before = user_count(settings)
    cases = [
        ("Gr\xfc\xdfe".encode("latin-1"), "not UTF-8 encoded"),
        (b"", "Please choose a CSV file."),  # an empty file field sends no file
        (b"email,name,phone\n", "Unknown column “phone”"),
        (b"name\nNina\n", "lacks the column “email”"),
        (b"email,name\n", "contains no staff accounts"),
        (b"email,name\n" + b"a@example.com,A\n" * 201, "more than 200 rows"),
        (b"x" * (1024 * 1024 + 1), "larger than 1 MB"),
    ]
    for content, message in cases:
        response = upload(admin, content, filename="team.csv" if content else "")
        assert response.status_code == 400, message
        assert message in response.text
    assert user_count(settings) == before


def test_an_admin_cannot_deactivate_themselves_by_import(admin, settings):
    response = upload(admin, f"email,name,active\n{ADMIN_EMAIL},Chefin,0\n".encode())
    assert response.status_code == 400
    assert "Line 2: You cannot deactivate your own account." in response.text
    assert user_row(settings, ADMIN_EMAIL).name == "Administrator"


# --- availability and absences -----------------------------------------------------------


def test_staff_switch_their_availability(member, settings):
    assert "Accepting new conversations" in member.get("/staff/team").text
    response = member.submit("/staff/team/availability", {"accepting": "0"})
    assert response.status_code == 303
    assert not user_row(settings, member.email).accepting
    assert "Not accepting new conversations" in member.get("/staff/team").text
    member.submit("/staff/team/availability", {"accepting": "1"})
    assert user_row(settings, member.email).accepting


def test_absence_from_local_days_is_stored_as_utc(member, settings):
    # Berlin switches to summer time on 31 March 2030: the end is 22:00 UTC, the start 23:00.
    response = member.submit(
        "/staff/team/absences", {"starts": "2030-03-30", "ends": "2030-03-31", "note": "Urlaub"}
    )
    assert response.status_code == 303
    (absence,) = absence_rows(settings)
    assert absence.user_id == member.user_id and absence.note == "Urlaub"
    assert absence.starts_at == datetime(2030, 3, 29, 23, 0)
    assert absence.ends_at == datetime(2030, 3, 31, 22, 0)
    row = re.search(
        rf'<tr id="member-{member.user_id}".*?</tr>', member.get("/staff/team").text, re.S
    )
    assert "Mar 30, 2030 – Mar 31, 2030" in row.group(0) and "Urlaub" in row.group(0)


def test_a_current_absence_overrides_accepting(member, admin, settings):
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    response = member.submit(
        "/staff/team/absences",
        {"starts": today.isoformat(), "ends": (today + timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 303
    assert user_row(settings, member.email).accepting  # the general setting stays
    row = re.search(
        rf'<tr id="member-{member.user_id}".*?</tr>', admin.get("/staff/team").text, re.S
    )
    assert "Away until" in row.group(0) and "Accepting new conversations" not in row.group(0)


def test_absence_ending_before_it_starts_is_refused_with_the_input_kept(member, settings):
    response = member.submit(
        "/staff/team/absences", {"starts": "2030-05-10", "ends": "2030-05-01", "note": "Kur"}
    )
    assert response.status_code == 400
    assert "The last day cannot be before the first day." in response.text
    assert 'value="2030-05-10"' in response.text and 'value="Kur"' in response.text
    response = member.submit("/staff/team/absences", {"starts": "morgen", "ends": "2030-02-30"})
    assert response.status_code == 400
    assert response.text.count("Please enter a valid date.") == 2
    response = member.submit("/staff/team/absences", {"starts": "2020-01-01", "ends": "2020-01-02"})
    assert response.status_code == 400
    assert "This absence would already be over." in response.text
    assert absence_rows(settings) == []


def test_staff_enter_absences_only_for_themselves_admins_for_anyone(member, admin, settings):
    dates = {"starts": "2030-06-01", "ends": "2030-06-02"}
    refused = member.submit("/staff/team/absences", {**dates, "user_id": str(admin.user_id)})
    assert refused.status_code == 403
    assert absence_rows(settings) == []
    response = admin.submit("/staff/team/absences", {**dates, "user_id": str(member.user_id)})
    assert response.status_code == 303
    assert [absence.user_id for absence in absence_rows(settings)] == [member.user_id]


def test_absences_are_removed_by_their_owner_or_an_admin(member, admin, settings):
    dates = {"starts": "2030-06-01", "ends": "2030-06-02"}
    member.submit("/staff/team/absences", dates)
    admin.submit("/staff/team/absences", dates)
    own, admins = absence_rows(settings)
    assert member.submit(f"/staff/team/absences/{admins.id}/delete", {}).status_code == 403
    assert member.submit(f"/staff/team/absences/{own.id}/delete", {}).status_code == 303
    assert [absence.id for absence in absence_rows(settings)] == [admins.id]
    assert admin.submit(f"/staff/team/absences/{admins.id}/delete", {}).status_code == 303
    assert absence_rows(settings) == []
    assert admin.submit("/staff/team/absences/999/delete", {}).status_code == 404
