"""The customer area through HTTP: conversations, unread state, attachments, guests, access."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from PIL import Image

from board.db import attachments, conversations, messages, outbox, read_markers, sync_engine
from tests.conftest import csrf_from, index_now, mail_text, submit

# Runs on PostgreSQL too: read markers' upsert per database, ILIKE search, ticket numbers under an
# advisory lock.
pytestmark = pytest.mark.postgresql

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return buffer.getvalue()


def write(person, body, files=(), path="/inbox/new"):
    """Sends a message form with files, as the browser does (multipart)."""
    page = person.get(path if path.endswith("/new") else "/inbox").text
    upload = [("attachments", (name, data, mime)) for name, data, mime in files]
    return person.client.post(
        path,
        data={"csrf_token": csrf_from(page), "body": body},
        files=upload or [("attachments", ("", b"", "application/octet-stream"))],
    )


def open_conversation(person, body="Mein Paket ist nicht angekommen.", files=()):
    response = write(person, body, files)
    assert response.status_code == 303, response.text[:2000]
    return int(response.headers["location"].rsplit("/", 1)[1])


def rows(settings, query):
    engine = sync_engine(settings)
    with engine.connect() as connection:
        result = connection.execute(query).all()
    engine.dispose()
    return result


def execute(settings, statement):
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def unread_badge(person) -> int:
    match = re.search(r'id="unread-count"[^>]*>(\d+)<', person.get("/").text)
    assert match, "no unread badge in the header"
    return int(match.group(1))


# --- writing -----------------------------------------------------------------------------


def test_new_message_page_shows_the_house_rules(people):
    page = people.customer().get("/inbox/new").text
    assert "Keine Anrede nötig" in page
    assert "Die ersten 100 Zeichen werden zum Betreff" in page
    assert "Keine zusätzliche E-Mail nötig" in page
    assert 'href="/"' in page and "im Forum stöbern" in page


def test_a_message_becomes_a_conversation_with_ticket_number_and_subject(people, settings):
    erika = people.customer()
    body = "**Rücksendung** für Bestellung 4711:\n\n" + "Der Pullover ist zu klein. " * 8
    number = open_conversation(erika, body)
    assert number == 1001
    page = erika.get(f"/inbox/{number}").text
    subject = re.search(r'<h1 id="subject">(.*?)</h1>', page, re.S).group(1)
    assert subject.startswith("Rücksendung für Bestellung 4711: Der Pullover ist zu klein.")
    assert subject.endswith("…") and 90 < len(subject) <= 101
    assert "#1001" in page and "<strong>Rücksendung</strong>" in page
    assert open_conversation(erika, "Zweite Frage") == 1002


def test_empty_message_is_refused_and_keeps_nothing_half_done(people, settings):
    erika = people.customer()
    response = write(erika, "   ", [("rechnung.pdf", PDF, "application/pdf")])
    assert response.status_code == 400
    assert "Bitte schreiben Sie Ihre Nachricht." in response.text
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 0


def test_overview_lists_newest_activity_first_with_counts_and_unread(people, settings):
    erika, staff = people.customer(), people.staff()
    first = open_conversation(erika, "Erste Anfrage zur Lieferung")
    second = open_conversation(erika, "Zweite Anfrage zur Rechnung")
    page = erika.get("/inbox").text
    assert page.index("Zweite Anfrage") < page.index("Erste Anfrage")
    assert "is-unread" not in page  # own messages are read
    assert staff.submit(f"/staff/t/{first}/reply", {"body": "Ist unterwegs."}).status_code == 303
    page = erika.get("/inbox").text
    assert page.index("Erste Anfrage") < page.index("Zweite Anfrage")
    first_row = re.search(r'<li class="conversation-row is-unread">.*?</li>', page, re.S).group(0)
    assert "Erste Anfrage" in first_row and "#1001" in first_row and "2 Nachrichten" in first_row
    assert "unread-dot" in first_row
    assert "betreut von Administrator" in first_row  # the staff member who answered
    assert second


def test_unread_badge_opening_and_mark_all_read(people):
    erika, staff = people.customer(), people.staff()
    numbers = [open_conversation(erika, f"Frage {n}") for n in range(3)]
    assert unread_badge(erika) == 0
    for number in numbers:
        staff.submit(f"/staff/t/{number}/reply", {"body": "Antwort vom Team"})
    assert unread_badge(erika) == 3
    page = erika.get(f"/inbox/{numbers[0]}").text  # opening marks it read
    assert re.search(r'id="unread-count"[^>]*>2<', page)
    assert unread_badge(erika) == 2
    assert erika.submit("/inbox/read-all", {}).status_code == 303
    assert unread_badge(erika) == 0
    assert "is-unread" not in erika.get("/inbox").text


def test_the_badge_counts_what_the_read_markers_say(people, settings, client):
    """The badge reads the customer's marker mirrored on each conversation: after answers,
    opening, an internal note, reading all and a guest conversation joined, the mirror
    agrees with the read markers and the badge with the conversations unread by them."""
    erika, staff = people.customer(email="erika@example.com"), people.staff()
    numbers = [open_conversation(erika, f"Frage {n}") for n in range(3)]
    link = guest_writes(client, email="erika@example.com").headers["location"]
    staff.submit(f"/staff/t/{numbers[0]}/reply", {"body": "Antwort"})
    staff.submit(f"/staff/t/{numbers[1]}/reply", {"body": "Nur intern", "internal": "1"})

    def unread_by_the_markers() -> int:
        marked = rows(
            settings,
            sa.select(
                conversations.c.customer_read_message_id,
                read_markers.c.last_read_message_id,
                conversations.c.last_public_message_id,
            )
            .select_from(
                conversations.outerjoin(
                    read_markers,
                    sa.and_(
                        read_markers.c.conversation_id == conversations.c.id,
                        read_markers.c.user_id == conversations.c.customer_id,
                    ),
                )
            )
            .where(conversations.c.customer_id == erika.user_id),
        )
        assert all(mirror == marker for mirror, marker, _ in marked)
        return sum(1 for _, marker, newest in marked if newest > (marker or 0))

    assert unread_badge(erika) == unread_by_the_markers() == 1
    assert erika.submit(f"{link}/join", {}, form_page=link).status_code == 303
    assert unread_badge(erika) == unread_by_the_markers() == 1  # it arrives read
    staff.submit(f"/staff/t/{numbers[2]}/reply", {"body": "Antwort"})
    assert unread_badge(erika) == unread_by_the_markers() == 2
    erika.get(f"/inbox/{numbers[2]}")
    assert unread_badge(erika) == unread_by_the_markers() == 1
    assert erika.submit("/inbox/read-all", {}).status_code == 303
    assert unread_badge(erika) == unread_by_the_markers() == 0


def test_staff_opening_a_conversation_does_not_mark_it_read_for_the_customer(people):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    staff.submit(f"/staff/t/{number}/reply", {"body": "Antwort"})
    staff.get(f"/staff/t/{number}")
    assert unread_badge(erika) == 1


def test_filter_by_kind_and_pagination(people, settings):
    erika = people.customer()
    for n in range(21):
        open_conversation(erika, f"Anfrage Nummer {n}")
    execute(
        settings,
        conversations.update().where(conversations.c.number == 1001).values(kind="invoice"),
    )
    invoices = erika.get("/inbox?kind=invoice").text
    assert "Anfrage Nummer 0" in invoices and "Anfrage Nummer 1<" not in invoices
    first_page = erika.get("/inbox").text
    assert "Anfrage Nummer 20" in first_page and 'href="/inbox?kind=all&amp;q=&amp;page=2"' in (
        first_page
    )
    assert "Anfrage Nummer 0" in erika.get("/inbox?page=2").text


def test_search_finds_own_conversations_by_words_and_ticket_number(people, app, client):
    erika, max_ = people.customer(), people.customer("Max Muster")
    open_conversation(erika, "Die Lieferung nach Österreich dauert zu lange")
    other = open_conversation(max_, "Geheimnis: meine Lieferung ist beschädigt")
    index_now(app, client)
    by_word = erika.get("/inbox?q=Österreich").text
    assert "Lieferung nach Österreich" in by_word
    assert "Geheimnis" not in erika.get("/inbox?q=Lieferung").text
    assert "Lieferung nach Österreich" in erika.get("/inbox?q=%231001").text
    assert "Lieferung nach Österreich" in erika.get("/inbox?q=1001").text
    assert "Geheimnis" not in erika.get(f"/inbox?q={other}").text
    assert "passt zu" in erika.get("/inbox?q=Pinguin").text  # "No conversation matches"


def test_a_customer_reply_reopens_a_solved_conversation(people, settings):
    erika = people.customer()
    number = open_conversation(erika)
    execute(
        settings,
        conversations.update().where(conversations.c.number == number).values(status="solved"),
    )
    reply = erika.submit(f"/inbox/{number}/reply", {"body": "Doch noch eine Frage"})
    assert reply.status_code == 303
    status = rows(settings, sa.select(conversations.c.status))[0][0]
    assert status == "open"


def test_announcements_take_no_replies(people, settings):
    erika = people.customer()
    number = open_conversation(erika, "Neue Öffnungszeiten")
    execute(
        settings,
        conversations.update().where(conversations.c.number == number).values(kind="announcement"),
    )
    response = erika.submit(f"/inbox/{number}/reply", {"body": "Danke"})
    assert response.status_code == 403


def test_internal_notes_never_reach_the_customer(people, app, client):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    note = {"body": "Kunde ist schwierig", "internal": "1"}
    assert staff.submit(f"/staff/t/{number}/reply", note).status_code == 303
    index_now(app, client)  # the note is in the search index, for staff only
    assert "Kunde ist schwierig" not in erika.get(f"/inbox/{number}").text
    assert f'href="/inbox/{number}"' not in erika.get("/inbox?q=schwierig").text
    assert f'href="/staff/t/{number}"' in staff.get("/staff?q=schwierig").text
    assert "Kunde ist schwierig" in staff.get(f"/staff/t/{number}").text


# --- access ------------------------------------------------------------------------------


def test_another_customers_conversation_and_files_are_404(people, client, settings):
    erika, max_, staff = people.customer(), people.customer("Max Muster"), people.staff()
    number = open_conversation(erika, "Meine Rechnung", [("rechnung.pdf", PDF, "application/pdf")])
    attachment_id = rows(settings, sa.select(attachments.c.id))[0][0]
    file_url = f"/attachments/{attachment_id}/rechnung.pdf"
    assert max_.get(f"/inbox/{number}").status_code == 404
    assert max_.submit(f"/inbox/{number}/reply", {"body": "Hallo"}).status_code == 404
    assert max_.get(file_url).status_code == 404
    assert client.get(file_url).status_code == 404
    assert client.get(f"/inbox/{number}").status_code == 303  # guests go to the login
    assert staff.get(f"/staff/t/{number}").status_code == 200
    assert staff.get(file_url).status_code == 200
    assert erika.get(file_url).content == PDF
    assert rows(settings, sa.select(sa.func.count()).select_from(messages))[0][0] == 1


# --- attachments -------------------------------------------------------------------------


def test_files_are_attached_and_downloaded_safely(people, settings):
    erika = people.customer()
    number = open_conversation(
        erika,
        "Foto und Rechnung anbei",
        [("rechnung.pdf", PDF, "application/pdf"), ("schaden.png", png_bytes(), "image/png")],
    )
    page = erika.get(f"/inbox/{number}").text
    links = re.findall(r'href="(/attachments/\d+/[^"]+)"', page)
    assert [link.rsplit("/", 1)[1] for link in links] == ["rechnung.pdf", "schaden.png"]
    pdf = erika.get(links[0])
    assert pdf.headers["content-disposition"].startswith("attachment;")
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-type"] == "application/pdf"
    image = erika.get(links[1])
    assert image.headers["content-disposition"].startswith("inline;")
    stored = rows(settings, sa.select(attachments.c.sha256, attachments.c.filename))
    data_dir = settings.data_dir / "uploads"
    stored_names = {path.name for path in data_dir.rglob("*") if path.is_file()}
    assert {row.sha256 for row in stored} <= stored_names
    assert not any("rechnung" in name for name in stored_names)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("programm.exe", b"MZ\x90\x00" + b"\x00" * 100, "programm.exe"),
        ("rechnung.pdf", png_bytes(), "rechnung.pdf"),  # a picture disguised as a PDF
        ("notiz.txt", b"nur Text", "notiz.txt"),
    ],
)
def test_refused_files_name_the_file_and_keep_the_text(people, settings, name, data, message):
    erika = people.customer()
    response = write(erika, "Bitte prüfen Sie den Anhang", [(name, data, "application/pdf")])
    assert response.status_code == 400
    assert message in response.text and 'id="error-files"' in response.text
    assert "Bitte prüfen Sie den Anhang" in response.text
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 0


@pytest.mark.parametrize("settings_overrides", [{"upload_max_mb": 1}])
def test_an_oversized_file_is_refused_and_leaves_no_file(people, settings):
    erika = people.customer()
    big = b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10)
    response = write(erika, "Großes PDF", [("gross.pdf", big, "application/pdf")])
    assert response.status_code == 400
    assert "gross.pdf" in response.text and "1 MB" in response.text
    assert "Großes PDF" in response.text
    uploads = settings.data_dir / "uploads"
    assert not [path for path in uploads.rglob("*") if path.is_file()]


def test_too_many_files_are_refused(people, settings):
    erika = people.customer()
    files = [(f"datei{n}.pdf", PDF, "application/pdf") for n in range(11)]
    response = write(erika, "Elf Dateien", files)
    assert response.status_code == 400
    assert "höchstens 10 Dateien" in response.text and "Elf Dateien" in response.text
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 0


def test_path_traversal_in_a_filename_is_neutralised(people, settings):
    erika = people.customer()
    number = open_conversation(
        erika, "Anhang", [("../../../etc/passwd.pdf", PDF, "application/pdf")]
    )
    assert rows(settings, sa.select(attachments.c.filename))[0][0] == "passwd.pdf"
    assert "passwd.pdf" in erika.get(f"/inbox/{number}").text
    assert not (settings.data_dir.parent / "etc").exists()


# --- guests ------------------------------------------------------------------------------


def guest_writes(client, body="Wo bleibt meine Bestellung?", email="gast@example.com", files=()):
    page = client.get("/contact").text
    upload = [("attachments", (name, data, mime)) for name, data, mime in files]
    return client.post(
        "/contact",
        data={"csrf_token": csrf_from(page), "name": "Gustav Gast", "email": email, "body": body},
        files=upload or [("attachments", ("", b"", "application/octet-stream"))],
    )


def test_guest_writes_gets_a_secret_link_by_mail_and_replies(
    client, new_client, app, settings, mailbox
):
    response = guest_writes(client, files=[("beleg.pdf", PDF, "application/pdf")])
    assert response.status_code == 303
    link = response.headers["location"]
    token = link.rsplit("/", 1)[1]
    stored = rows(settings, sa.select(conversations.c.guest_token_hash))[0][0]
    assert stored != token and len(stored) == 64  # only the hash is kept

    page = client.get(link)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "Wo bleibt meine Bestellung?" in page.text and "#1001" in page.text
    file_link = re.search(r'href="(/attachments/[^"]+)"', page.text).group(1)
    assert client.get(file_link).content == PDF
    assert new_client().get(file_link).status_code == 404  # without the link: nothing

    [message] = mailbox.to("gast@example.com")
    text = mail_text(message)
    assert f"{settings.base_url}/g/{token}" in text and "#1001" in message["Subject"]
    assert "Wo bleibt meine Bestellung?" not in text  # the doorbell carries no message
    stored = rows(settings, sa.select(outbox))
    assert stored and not any(token in str(tuple(row)) for row in stored)  # made when sent

    stranger = new_client()
    reply_page = stranger.get(link).text  # whoever holds the link may reply
    response = stranger.post(
        f"{link}/reply", data={"csrf_token": csrf_from(reply_page), "body": "Nachtrag vom Gast"}
    )
    assert response.status_code == 303
    assert "Nachtrag vom Gast" in client.get(link).text


def test_unknown_guest_token_is_404(client):
    assert client.get("/g/unbekannt").status_code == 404
    assert submit(client, "/g/unbekannt/reply", {"body": "x"}).status_code == 404


def test_guest_contact_has_a_honeypot_and_a_rate_limit(client, settings):
    page = client.get("/contact").text
    bot = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(page),
            "name": "Bot",
            "email": "bot@example.com",
            "body": "Spam",
            "website": "http://spam.example",
        },
    )
    assert bot.status_code == 303
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 0
    # The refused post counts towards the 5 an hour: each brings files to check.
    for number in range(4):
        assert guest_writes(client, f"Nachricht {number}").status_code == 303
    limited = guest_writes(client, "Noch eine")
    assert limited.status_code == 429 and "Noch eine" in limited.text


def test_guest_form_refuses_a_bad_email_and_keeps_the_text(client):
    response = guest_writes(client, "Mein Text bleibt", email="kein-at-zeichen")
    assert response.status_code == 400
    assert "Mein Text bleibt" in response.text and "gültige E-Mail-Adresse" in response.text


def test_opening_a_guest_link_moves_nothing_the_customer_is_asked_first(client, people, settings):
    """A plain GET never moves a conversation: an <img src="/g/..."> in a forum post
    would do it for whoever views the post."""
    link = guest_writes(client, email="erika@example.com").headers["location"]
    erika = people.customer(email="erika@example.com")
    opened = erika.get(link)
    assert opened.status_code == 200 and "Wo bleibt meine Bestellung?" in opened.text
    assert f'action="{link}/join"' in opened.text  # offered, with the reason
    assert rows(settings, sa.select(conversations.c.customer_id)) == [(None,)]
    assert "Wo bleibt meine Bestellung?" not in erika.get("/inbox").text
    # Without the page's CSRF token, as a forged form elsewhere would post it: refused.
    assert erika.client.post(f"{link}/join", data={}).status_code == 403
    assert rows(settings, sa.select(conversations.c.customer_id)) == [(None,)]


def test_only_the_account_with_the_guests_address_joins_the_conversation(client, people):
    link = guest_writes(client, email="erika@example.com").headers["location"]
    max_ = people.customer("Max Muster")
    page = max_.get(link)
    assert page.status_code == 200 and f'action="{link}/join"' not in page.text
    refused = max_.submit(f"{link}/join", {}, form_page=link)
    assert refused.status_code == 403
    assert "Wo bleibt meine Bestellung?" not in max_.get("/inbox").text

    erika = people.customer(email="erika@example.com")
    joined = erika.submit(f"{link}/join", {}, form_page=link)
    assert joined.status_code == 303 and joined.headers["location"] == "/inbox/1001"
    assert "Wo bleibt meine Bestellung?" in erika.get("/inbox").text


def test_a_joined_conversation_no_longer_opens_through_its_guest_link(
    client, new_client, people, settings
):
    written = guest_writes(
        client, email="erika@example.com", files=[("a.pdf", PDF, "application/pdf")]
    )
    link = written.headers["location"]
    file_link = re.search(r'href="(/attachments/[^"]+)"', client.get(link).text).group(1)
    erika = people.customer(email="erika@example.com")
    assert erika.submit(f"{link}/join", {}, form_page=link).status_code == 303
    staff = people.staff()
    staff.submit(
        "/staff/t/1001/reply", {"body": "Antwort nur für Erika"}, form_page="/staff/t/1001"
    )

    # The visitor who wrote it keeps the link and the guest cookie: both ask for a login.
    again = client.get(link)
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=%2Finbox%2F1001"
    assert "Antwort nur für Erika" not in client.get(link, follow_redirects=True).text
    assert client.get(file_link).status_code == 404
    replied = submit(client, f"{link}/reply", {"body": "Ich bin noch da"}, form_page="/contact")
    assert replied.status_code == 403
    assert rows(settings, sa.select(sa.func.count()).select_from(messages)) == [(2,)]
    # The customer who took it is sent to her inbox; her files are hers.
    assert erika.get(link).headers["location"] == "/inbox/1001"
    assert erika.get(file_link).content == PDF


def test_logged_in_customers_write_from_the_inbox_not_the_contact_form(people):
    erika = people.customer()
    assert erika.get("/contact").headers["location"] == "/inbox/new"


@pytest.mark.parametrize("settings_overrides", [{"upload_max_mb": 1}])
def test_a_request_body_beyond_any_form_is_refused_early(people, settings):
    erika = people.customer()
    page = erika.get("/inbox/new").text
    huge = b"%PDF-1.4\n" + b"0" * (12 * 1024 * 1024)  # more than 10 files of 1 MB
    response = erika.client.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(page), "body": "Riesig"},
        files=[("attachments", ("riesig.pdf", huge, "application/pdf"))],
    )
    assert response.status_code == 413
    assert 'class="site-header"' in response.text
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 0
