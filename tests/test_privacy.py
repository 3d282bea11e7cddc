"""A customer's data: the ZIP export (theirs and staff's) and erasure through the staff form.

One scene with everything a customer leaves behind: conversations with their files, a
staff answer with a credit note, an internal note, an invoice, a guest message from
before they registered, forum posts (one deleted by staff), the staff's note about them;
and another customer beside them whose data must stay out of the export and intact.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from whoosh import index as whoosh_index

from board.accounts import erasure
from board.accounts.erasure import ERASED_NAME, erased_email
from board.accounts.export import archive_path
from board.accounts.privacy import confirmation_matches
from board.accounts.redaction import REDACTED, redactor
from board.db import (
    attachments,
    conversations,
    login_tokens,
    metadata,
    outbox,
    statement_listener,
    sync_engine,
    users,
)
from board.search.indexing import index_dir
from board.uploads import stored_path
from tests.conftest import (
    PASSWORD,
    Person,
    count_statements,
    csrf_from,
    index_now,
    login,
    page_selects,
    submit,
)
from tests.test_inbox import PDF, open_conversation, png_bytes, rows
from tests.test_search import hits, open_topic, reply

NAME, EMAIL = "Zoraida Quengelbrink", "zoraida.q@example.org"
NEEDLES = ("zoraida", "quengelbrink", EMAIL)  # name parts and address, any case
BELEG = PDF + b"% Beleg der Kundin\n"
SHARED = PDF + b"% dasselbe Dokument, von beiden Kunden hochgeladen\n"
GUTSCHRIFT = PDF + b"% Gutschrift vom Shop\n"
RECHNUNG = PDF + b"% Rechnung vom Shop\n"


@dataclass
class Scene:
    zoraida: Person
    bertram: Person
    staff: Person
    number: int  # her support conversation
    bertram_number: int  # his, with the same file as hers
    invoice_number: int
    topic_id: int
    deleted_post_id: int
    guest_number: int  # what she wrote as a guest, then took into her account


def english(person: Person) -> None:
    """Pages in English: the new texts are not translated to German yet."""
    assert person.submit("/language", {"locale": "en", "next": "/"}).status_code == 303


def upload(person: Person, path: str, form_page: str, data: dict, files: list):
    token = csrf_from(person.get(form_page).text)
    return person.client.post(
        path, data={"csrf_token": token, **data}, files=[("attachments", f) for f in files]
    )


@pytest.fixture
def scene(people, client) -> Scene:
    # Before registering she wrote as a guest, with the address she registers with later.
    contact = submit(
        client,
        "/contact",
        {"name": "Zoraida Q.", "email": "Zoraida.Q@example.org", "body": "Gastfrage von Zoraida"},
        form_page="/contact",
    )
    assert contact.status_code == 303
    zoraida = people.customer(NAME, EMAIL)
    # She proves the address is hers: with the mailed link, she takes it into her account.
    guest_path = contact.headers["location"]
    joined = zoraida.submit(f"{guest_path}/join", {}, form_page=guest_path)
    assert joined.status_code == 303
    bertram = people.customer("Bertram Nebenan", "bertram@example.org")
    staff = people.staff()
    english(staff)
    number = open_conversation(
        zoraida,
        f"Hier {NAME}, Kundennummer {zoraida.customer_number}. Foto und Beleg anbei; "
        f"Rückfragen gern an {EMAIL}.",
        [
            ("foto.png", png_bytes(), "image/png"),
            ("beleg.pdf", BELEG, "application/pdf"),
            ("shared.pdf", SHARED, "application/pdf"),
        ],
    )
    bertram_number = open_conversation(
        bertram, "Bertram fragt nach seiner Lieferung", [("shared.pdf", SHARED, "application/pdf")]
    )
    answered = upload(
        staff,
        f"/staff/t/{number}/reply",
        f"/staff/t/{number}",
        {"body": "Hallo Frau Quengelbrink, die Gutschrift ist anbei.", "status": "pending"},
        [("gutschrift.pdf", GUTSCHRIFT, "application/pdf")],
    )
    assert answered.status_code == 303
    for path, data in (
        (
            f"/staff/t/{number}/reply",
            {"body": "GEHEIM: Quengelbrink ist Stammkundin", "internal": "1"},
        ),
        (f"/staff/t/{number}/update", {"status": "solved", "note": "Mit Zoraida telefoniert"}),
        (
            f"/staff/customers/{zoraida.user_id}",
            {"note": "Ruft oft an, sehr freundlich", "vip": "1"},
        ),
    ):
        assert staff.submit(path, data).status_code == 303, path
    invoiced = upload(
        staff,
        "/staff/invoice",
        "/staff/invoice",
        {"customer": str(zoraida.customer_number), "body": f"Ihre Rechnung, {NAME}"},
        [("rechnung.pdf", RECHNUNG, "application/pdf")],
    )
    assert invoiced.status_code == 303
    invoice_number = int(invoiced.headers["location"].rsplit("/", 1)[1])
    topic_id = open_topic(
        zoraida, "Versandfrage von Zoraida", f"Ich bin {NAME}. Wie lange dauert DHL?"
    )
    reply(bertram, topic_id, "Hallo Zoraida, meist zwei Tage.")
    deleted_post_id = reply(zoraida, topic_id, f"Danke! Schreibt mir an {EMAIL}")
    assert staff.submit(f"/p/{deleted_post_id}/delete", {}).status_code == 303
    return Scene(
        zoraida,
        bertram,
        staff,
        number,
        bertram_number,
        invoice_number,
        topic_id,
        deleted_post_id,
        int(joined.headers["location"].rsplit("/", 1)[1]),
    )


def open_zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def json_of(archive: zipfile.ZipFile, name: str):
    return json.loads(archive.read(name).decode())


def downloaded(person: Person, page_path: str, filename: str) -> bytes:
    link = re.search(
        rf'href="(/attachments/\d+/{re.escape(filename)})"', person.get(page_path).text
    )
    return person.get(link.group(1)).content


# --- export ---------------------------------------------------------------------------------


def test_a_customer_downloads_their_own_data_as_a_zip(scene):
    zoraida = scene.zoraida
    assert 'href="/account/data.zip"' in zoraida.get("/account").text
    response = zoraida.get("/account/data.zip")
    archive = open_zip(response)
    number = zoraida.customer_number
    assert response.headers["content-disposition"] == (
        f'attachment; filename="supportboard-data-{number}.zip"'
    )
    assert response.headers["cache-control"] == "private, no-store"

    profile = json_of(archive, "profile.json")
    assert profile["customer_number"] == number
    assert profile["name"] == NAME and profile["email"] == EMAIL
    assert profile["notify"] == "each" and profile["locale"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", profile["registered_at"])
    # Staff's knowledge about her is the staff export's; the password hash is nobody's.
    assert "staff_note" not in profile and "vip" not in profile
    everything = b"".join(
        archive.read(name) for name in archive.namelist() if name.endswith(".json")
    )
    assert b"argon2" not in everything and b"password" not in everything
    assert b"Ruft oft an" not in everything

    listed = {c["number"]: c for c in json_of(archive, "conversations.json")}
    # Her request, the invoice and the guest conversation she took into her account (which
    # proved the address hers); Bertram's is his.
    assert sorted(listed) == sorted([scene.guest_number, scene.number, scene.invoice_number])
    request = listed[scene.number]
    assert request["kind"] == "support" and request["status"] == "solved"
    assert request["subject"].startswith(f"Hier {NAME}")
    assert request["created_at"].endswith("Z")
    thread = request["messages"]
    assert [(m["author_role"], m["author_name"]) for m in thread] == [
        ("customer", NAME),
        ("staff", "Administrator"),
    ]
    assert thread[0]["body"].startswith(f"Hier {NAME}, Kundennummer {number}.")
    assert thread[1]["body"] == "Hallo Frau Quengelbrink, die Gutschrift ist anbei."
    assert b"GEHEIM" not in everything  # internal notes never leave the staff area
    assert b"Bertram" not in everything  # his conversation, his file, his forum reply

    files = {f["filename"]: f for m in thread for f in m["attachments"]}
    assert sorted(files) == ["beleg.pdf", "foto.png", "gutschrift.pdf", "shared.pdf"]
    expected = {"beleg.pdf": BELEG, "shared.pdf": SHARED, "gutschrift.pdf": GUTSCHRIFT}
    for filename, data in expected.items():
        described = files[filename]
        assert archive.read(described["path"]) == data
        assert described["size"] == len(data) and described["content_type"] == "application/pdf"
    message_id = thread[0]["id"]
    assert files["beleg.pdf"]["path"] == f"attachments/{message_id}-beleg.pdf"
    # The picture as stored (its metadata stripped on upload), as the download serves it.
    photo = archive.read(files["foto.png"]["path"])
    assert photo == downloaded(zoraida, f"/inbox/{scene.number}", "foto.png")
    invoice_files = listed[scene.invoice_number]["messages"][0]["attachments"]
    assert archive.read(invoice_files[0]["path"]) == RECHNUNG
    assert len([n for n in archive.namelist() if n.startswith("attachments/")]) == 5

    posts = json_of(archive, "forum_posts.json")
    assert [(p["topic_id"], p["topic_title"], p["deleted"]) for p in posts] == [
        (scene.topic_id, "Versandfrage von Zoraida", False),
        (scene.topic_id, "Versandfrage von Zoraida", True),
    ]
    assert posts[1]["id"] == scene.deleted_post_id and posts[1]["deleted_at"].endswith("Z")


def test_the_staff_export_adds_the_note_and_the_vip_flag(scene):
    zoraida, staff = scene.zoraida, scene.staff
    page = staff.get(f"/staff/customers/{zoraida.user_id}").text
    assert f'href="/staff/customers/{zoraida.user_id}/data.zip"' in page
    archive = open_zip(staff.get(f"/staff/customers/{zoraida.user_id}/data.zip"))
    profile = json_of(archive, "profile.json")
    assert profile["staff_note"] == "Ruft oft an, sehr freundlich" and profile["vip"] is True
    assert profile["email"] == EMAIL
    conversations = json.dumps(json_of(archive, "conversations.json"))
    assert "GEHEIM" not in conversations and "Bertram" not in conversations


def export_selects(app, client, person: Person) -> list[str]:
    statements: list[str] = []
    count_statements(app, client, statements)
    try:
        assert person.get("/account/data.zip").status_code == 200
    finally:
        statement_listener(app.state.db, None)
    return page_selects(statements)


def test_the_export_is_one_query_per_list_however_much_there_is(scene, app, client):
    zoraida = scene.zoraida
    before = export_selects(app, client, zoraida)
    for index in range(3):
        open_conversation(
            zoraida, f"Noch eine Frage {index}", [("b.pdf", BELEG, "application/pdf")]
        )
        reply(zoraida, scene.topic_id, f"Noch ein Beitrag {index}")
    after = export_selects(app, client, zoraida)
    # session, unread count and bell of the page cycle; profile, conversations, messages,
    # attachments, forum posts, votes on solutions
    assert len(after) == len(before) <= 9, after


def test_only_the_person_and_staff_reach_an_export(scene, client):
    zoraida, bertram, staff = scene.zoraida, scene.bertram, scene.staff
    for person in (zoraida, bertram):
        assert person.get(f"/staff/customers/{zoraida.user_id}/data.zip").status_code == 403
        assert person.get(f"/staff/customers/{zoraida.user_id}/erase").status_code == 403
    # Bertram's own download is his own data, whoever else exists.
    mine = json_of(open_zip(bertram.get("/account/data.zip")), "profile.json")
    assert mine["email"] == "bertram@example.org"
    for path in (
        "/account/data.zip",
        f"/staff/customers/{zoraida.user_id}/data.zip",
        f"/staff/customers/{zoraida.user_id}/erase",
    ):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    # Staff accounts are no customers to export or erase.
    assert staff.get(f"/staff/customers/{staff.user_id}/data.zip").status_code == 404
    assert staff.get(f"/staff/customers/{staff.user_id}/erase").status_code == 404


# --- erasure --------------------------------------------------------------------------------


def text_values(settings) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text value in the database, every table of it."""
    engine = sync_engine(settings)
    found = []
    try:
        with engine.connect() as connection:
            for table in sa.inspect(connection).get_table_names():
                result = connection.exec_driver_sql(f'SELECT * FROM "{table}"')
                columns = list(result.keys())
                for row in result:
                    found += [
                        (table, column, value)
                        for column, value in zip(columns, row, strict=True)
                        if isinstance(value, str)
                    ]
    finally:
        engine.dispose()
    return found


def personal_data_in_database(settings, customer_number: int) -> list:
    number = re.compile(rf"(?<!\w){customer_number}(?!\w)")
    return [
        (table, column, value)
        for table, column, value in text_values(settings)
        if any(needle in value.lower() for needle in NEEDLES) or number.search(value)
    ]


def personal_data_in_index(settings) -> list[str]:
    """The index's files as bytes (stored fields hold the text as written), and its terms."""
    folder = index_dir(settings)
    found = [
        path.name
        for path in folder.rglob("*")
        if path.is_file() and any(n.encode() in path.read_bytes().lower() for n in NEEDLES)
    ]
    with whoosh_index.open_dir(str(folder)).searcher() as searcher:
        for field in ("title", "body", "staff_body", "words", "codes", "staff_codes"):
            terms = [term.decode() for term in searcher.lexicon(field)]
            found += [f"{field}:{t}" for t in terms if "zorai" in t or "quengelbr" in t]
    return found


def erase(staff: Person, customer_id: int, confirm: str | None, with_token: bool = True):
    page = staff.get(f"/staff/customers/{customer_id}/erase").text
    data = {} if confirm is None else {"confirm": confirm}
    if with_token:
        data["csrf_token"] = csrf_from(page)
    return staff.client.post(f"/staff/customers/{customer_id}/erase", data=data)


def user_of(settings, user_id: int):
    return rows(settings, sa.select(users).where(users.c.id == user_id))[0]


def test_erasure_needs_the_token_and_the_customer_number(scene, settings):
    zoraida, staff = scene.zoraida, scene.staff
    page = staff.get(f"/staff/customers/{zoraida.user_id}").text
    assert f'href="/staff/customers/{zoraida.user_id}/erase"' in page
    form = staff.get(f"/staff/customers/{zoraida.user_id}/erase").text
    assert "§ 147 AO" in form and str(zoraida.customer_number) in form
    # Her request, the invoice and the guest conversation; three uploads; two posts.
    assert "their conversations (3)" in form and "(forum posts: 2)" in form
    assert "Files they uploaded (3)" in form
    before = user_of(settings, zoraida.user_id)

    assert (
        erase(staff, zoraida.user_id, str(zoraida.customer_number), with_token=False).status_code
        == 403
    )
    wrong = erase(staff, zoraida.user_id, "12345")
    assert wrong.status_code == 400
    assert "Nothing was erased" in wrong.text and 'aria-invalid="true"' in wrong.text
    assert erase(staff, zoraida.user_id, None).status_code == 400
    assert user_of(settings, zoraida.user_id) == before
    assert zoraida.get("/account").status_code == 200  # still logged in


def test_the_confirmation_page_shows_how_each_text_will_read(scene, settings):
    """Staff see the result before they confirm; nothing is written by looking."""
    zoraida, staff = scene.zoraida, scene.staff
    before = rows(settings, sa.select(sa.func.count()).select_from(conversations))
    page = staff.get(f"/staff/customers/{zoraida.user_id}/erase").text
    preview = page.split('id="redactions"', 1)[1].split("</ol>", 1)[0]
    assert "Hallo Frau Quengelbrink, die Gutschrift ist anbei." in preview
    assert f"Hallo Frau {REDACTED}, die Gutschrift" in preview
    assert "Versandfrage von Zoraida" in preview  # her topic's title
    assert "Bertram fragt nach seiner Lieferung" not in preview  # his conversation
    assert user_of(settings, zoraida.user_id).erased_at is None
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations)) == before
    assert "Quengelbrink" in staff.get(f"/staff/t/{scene.number}").text


def test_erasure_leaves_no_personal_data_and_keeps_the_shops_records(scene, app, client, settings):
    zoraida, bertram, staff = scene.zoraida, scene.bertram, scene.staff
    number = zoraida.customer_number
    index_now(app, client)
    assert hits(staff, "Quengelbrink", "all") and hits(staff, str(number), "all")
    # The checks below would see her data where it is now.
    assert personal_data_in_index(settings) and personal_data_in_database(settings, number)
    stored = {
        row.filename: stored_path(settings.upload_dir, row.sha256)
        for row in rows(settings, sa.select(attachments))
    }
    assert all(path.exists() for path in stored.values())
    # A guest reads her topic: the page is cached for guests from now on.
    assert "Versandfrage von Zoraida" in client.get(f"/t/{scene.topic_id}").text

    response = erase(staff, zoraida.user_id, f"#{number}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/staff/customers/{zoraida.user_id}?erased=1"
    customer_page = staff.get(response.headers["location"]).text
    assert "personal data was erased" in customer_page
    assert "personal data erased on" in customer_page
    # Her kept number finds no one to invoice any more.
    invoice = staff.submit(
        "/staff/invoice",
        {"customer": str(number), "body": "Rechnung 2"},
        form_page="/staff/invoice",
    )
    assert invoice.status_code == 400

    # Nothing left in the database: no text value names her, mails her or has her number.
    assert personal_data_in_database(settings, number) == []
    erased = user_of(settings, zoraida.user_id)
    assert erased.name == ERASED_NAME and erased.email == erased_email(zoraida.user_id)
    assert erased.erased_at is not None and not erased.is_active and not erased.vip
    assert erased.note == "" and erased.notify == "off"
    assert erased.customer_number == number  # the kept invoices refer to it

    # Nor in the search index, once the queue is indexed: not found, not stored, no term.
    index_now(app, client)
    for text in ("Quengelbrink", "Zoraida", EMAIL, str(number)):
        assert hits(staff, text, "all") == [], text
    assert personal_data_in_index(settings) == []
    assert hits(staff, "Gutschrift", "all")  # what else was written stays findable

    # Her uploads left the disk; what Bertram shares and what the shop sent stay.
    assert not stored["foto.png"].exists() and not stored["beleg.pdf"].exists()
    assert stored["shared.pdf"].exists()
    assert stored["gutschrift.pdf"].read_bytes() == GUTSCHRIFT
    assert stored["rechnung.pdf"].read_bytes() == RECHNUNG
    assert downloaded(bertram, f"/inbox/{scene.bertram_number}", "shared.pdf") == SHARED

    # The conversation stays readable for the shop, with who erased it in the history.
    page = staff.get(f"/staff/t/{scene.number}").text
    assert f"Hier {REDACTED}, Kundennummer {REDACTED}." in page
    assert f"Hallo Frau {REDACTED}, die Gutschrift ist anbei." in page
    assert "gutschrift.pdf" in page and "beleg.pdf" not in page
    assert "erased the customer's personal data" in page
    assert f"Mit {REDACTED} telefoniert" in page
    topic = client.get(f"/t/{scene.topic_id}").text
    assert f"Versandfrage von {REDACTED}" in topic and f"Hallo {REDACTED}, meist" in topic
    assert ERASED_NAME in topic

    # She cannot come back in: her session ended; password, number, code and reset fail.
    assert zoraida.get("/account").status_code == 303
    assert login(client, EMAIL, PASSWORD).status_code == 400
    assert login(client, str(number), PASSWORD).status_code == 400
    submit(client, "/login/code", {"email": EMAIL}, form_page="/login/code")
    submit(client, "/password/reset", {"email": EMAIL}, form_page="/password/reset")
    assert (
        rows(settings, sa.select(login_tokens).where(login_tokens.c.user_id == zoraida.user_id))
        == []
    )
    assert rows(settings, sa.select(outbox).where(outbox.c.to_address == EMAIL)) == []

    # Erasing again: the page says it was done, and a second confirmation changes nothing.
    again = staff.get(f"/staff/customers/{zoraida.user_id}/erase").text
    assert "was erased on" in again and 'name="confirm"' not in again
    assert erase(staff, zoraida.user_id, str(number)).status_code == 409


# What erasure changes; the background tasks write elsewhere (search queue, outbox, live
# events, sessions), so a snapshot of these is stable between two reads.
ERASED_TABLES = (
    "users",
    "conversations",
    "messages",
    "attachments",
    "conversation_events",
    "topics",
    "posts",
    "login_tokens",
    "notifications",
    "read_markers",
    "blocked_senders",
)


def person_records(settings) -> list[tuple[str, tuple]]:
    engine = sync_engine(settings)
    try:
        with engine.connect() as connection:
            return [
                (table.name, tuple(row))
                for table in (metadata.tables[name] for name in ERASED_TABLES)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
    finally:
        engine.dispose()


def test_a_failure_midway_leaves_nothing_half_erased(scene, settings, monkeypatch):
    zoraida, staff = scene.zoraida, scene.staff

    async def crash(*_args) -> None:
        raise RuntimeError("the disk is full")

    # The last step before the history: everything else has been written by then.
    monkeypatch.setattr(erasure, "_anonymise_account", crash)
    before = person_records(settings)
    stored = rows(settings, sa.select(attachments))
    files = [stored_path(settings.upload_dir, row.sha256) for row in stored]
    with pytest.raises(RuntimeError, match="disk is full"):
        erase(staff, zoraida.user_id, str(zoraida.customer_number))
    monkeypatch.undo()
    assert person_records(settings) == before
    assert all(path.exists() for path in files)
    assert zoraida.get("/account").status_code == 200


def test_erasure_reaches_the_guest_conversation_she_took_into_her_account(scene, settings):
    staff = scene.staff
    assert "Gastfrage von Zoraida" in staff.get(f"/staff/t/{scene.guest_number}").text
    zoraida = scene.zoraida
    assert erase(staff, zoraida.user_id, str(zoraida.customer_number)).status_code == 303
    page = staff.get(f"/staff/t/{scene.guest_number}").text
    assert f"Gastfrage von {REDACTED}" in page and "Zoraida" not in page


def test_erasure_leaves_a_guest_conversation_that_merely_uses_her_address(
    scene, new_client, settings
):
    """Anyone can type her address into the contact form: until she proves it is hers
    (she takes the conversation into her account), it is somebody else's data."""
    stranger = new_client()
    written = upload(
        Person(stranger, 0, "", ""),
        "/contact",
        "/contact",
        {"name": "Jemand Anderes", "email": EMAIL, "body": "Ich bin nicht Zoraida, Tel. 0171"},
        [("fremd.pdf", SHARED, "application/pdf")],
    )
    assert written.status_code == 303
    link = written.headers["location"]
    zoraida = scene.zoraida
    assert erase(scene.staff, zoraida.user_id, str(zoraida.customer_number)).status_code == 303
    page = stranger.get(link).text
    assert "Ich bin nicht Zoraida, Tel. 0171" in page and "fremd.pdf" in page
    file_link = re.search(r'href="(/attachments/[^"]+)"', page).group(1)
    assert stranger.get(file_link).content == SHARED
    [(address,)] = rows(
        settings,
        sa.select(conversations.c.guest_email).where(
            conversations.c.guest_name == "Jemand Anderes"
        ),
    )
    assert address == EMAIL.lower()  # the conversation keeps whom it came from


# --- rules on plain values ------------------------------------------------------------------


def test_the_redaction_replaces_address_number_and_name_and_nothing_else():
    text = (
        "Herr Müller schrieb von J.Mueller@Example.org, Kundennummer 10023, "
        "Bestellung 100234 und #10023; Jörg Müller-Lüdenscheidt bittet um Rückruf. "
        "Lüdenscheidt ist eine Stadt."
    )
    about = redactor("Jörg Müller-Lüdenscheidt", "j.mueller@example.org", 10023, own_text=False)
    assert about(text) == (
        f"Herr {REDACTED} schrieb von {REDACTED}, Kundennummer {REDACTED}, "
        f"Bestellung 100234 und #{REDACTED}; {REDACTED} bittet um Rückruf. "
        "Lüdenscheidt ist eine Stadt."  # the town, in somebody else's words
    )
    own = redactor("Jörg Müller-Lüdenscheidt", "j.mueller@example.org", 10023, own_text=True)
    # In their own words a part alone counts too, but for a common word: a first name as
    # frequent as "Jörg" names nobody without the rest.
    assert own("Lüdenscheidt hier, Jörgs Paket") == f"{REDACTED} hier, Jörgs Paket"


def test_a_name_made_of_common_words_is_replaced_only_where_it_is_a_name():
    """The review's example: every part of the name is a common German word."""
    text = "Danke für die Rechnung! Das Paket mit Bestellung 10001"
    for own_text in (True, False):
        redact = redactor("Paket Rechnung Danke", "p.danke@example.org", 10002, own_text)
        assert redact(text) == text
        assert redact("Hallo Frau Danke, Paket Rechnung Danke schrieb") == (
            f"Hallo Frau {REDACTED}, {REDACTED} schrieb"
        )


def test_the_confirmation_is_the_customer_number():
    assert confirmation_matches(" #10023 ", 10023) and confirmation_matches("10023", 10023)
    assert not confirmation_matches("1002", 10023) and not confirmation_matches("", 10023)
    assert not confirmation_matches("10023", None)


def test_archive_paths_are_safe_and_unique():
    taken: set[str] = set()
    assert archive_path(7, "../../etc/passwd", taken) == "attachments/7-passwd"
    assert archive_path(7, "scan.pdf", taken) == "attachments/7-scan.pdf"
    assert archive_path(7, "scan.pdf", taken) == "attachments/7-scan (2).pdf"
    assert archive_path(8, "scan.pdf", taken) == "attachments/8-scan.pdf"


def test_the_export_lists_the_persons_own_votes_on_solutions(people):
    """ "Was this helpful?" says what the person thought of an answer: it is theirs to
    download, and only theirs."""
    author, staff = people.customer(), people.staff()
    voter, other = people.customer("Vera Votum"), people.customer("Otto Anders")
    topic_id = open_topic(author, "Drucker zieht kein Papier ein", "Was kann ich tun?")
    answer_id = reply(staff, topic_id, "Die Andruckrolle reinigen.")
    assert author.submit(f"/p/{answer_id}/solution", {"solved": "1"}).status_code == 303
    assert voter.submit(f"/p/{answer_id}/helpful", {"helpful": "no"}).status_code == 303
    assert voter.submit(f"/p/{answer_id}/helpful", {"helpful": "yes"}).status_code == 303
    assert other.submit(f"/p/{answer_id}/helpful", {"helpful": "no"}).status_code == 303

    votes = json_of(open_zip(voter.get("/account/data.zip")), "solution_votes.json")
    assert [(v["post_id"], v["topic_id"], v["helpful"]) for v in votes] == [
        (answer_id, topic_id, True)
    ]
    assert votes[0]["topic_title"] == "Drucker zieht kein Papier ein"
    assert votes[0]["voted_at"].endswith("Z")
    assert json_of(open_zip(author.get("/account/data.zip")), "solution_votes.json") == []
