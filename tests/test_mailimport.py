"""`python -m board import-mail PATH`: old support mail becomes threaded conversations."""

from __future__ import annotations

import mailbox
import os
from datetime import datetime
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from board.__main__ import main
from board.conversations.summary import Said, summary_columns
from board.db import (
    attachments,
    conversation_events,
    conversations,
    mail_imports,
    messages,
    outbox,
    read_markers,
    sync_engine,
    users,
)
from board.mailimport.reading import parse_mail, subject_key
from board.markup import subject_from
from board.security import hash_password, verify_password
from board.setup import create_staff
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, login
from tests.test_inbox import PDF, png_bytes, rows, unread_badge

# Runs on PostgreSQL too: INSERT … ON CONFLICT and GREATEST per database; numbers under BEGIN
# IMMEDIATE or an advisory lock.
pytestmark = pytest.mark.postgresql

SHOP = "Shop Support <support@shop.example>"
JUERGEN = "Jürgen Müller <Juergen.Mueller@example.com>"
ERIKA = "Erika Mustermann <erika@example.com>"
SVEN = "Sven Support <sven@shop.example>"
SUBJECT = "Rückfrage zur Bestellung 4711"
EXE = b"MZ\x90\x00" + b"\x00" * 100  # a Windows program

ASK_BODY = "Meine Bestellung 4711 ist noch nicht angekommen. Können Sie bitte nachsehen?"
ANSWER_BODY = f"Das Paket ist unterwegs und kommt morgen.\n\n> {ASK_BODY}"


def mail(sender, to, subject, date, body, message_id=None, refers_to=(), files=()):
    message = EmailMessage()
    message["From"] = sender
    if to:
        message["To"] = to
    message["Subject"] = subject
    message["Date"] = date
    if message_id:
        message["Message-ID"] = message_id
    if refers_to:
        message["In-Reply-To"] = refers_to[-1]
        message["References"] = " ".join(refers_to)
    message.set_content(body)
    for name, data in files:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message


def ask():
    files = [("rechnung.pdf", PDF), ("programm.pdf", EXE), ("foto.png", png_bytes())]
    return mail(
        JUERGEN,
        SHOP,
        SUBJECT,
        "Wed, 01 Mar 2023 09:15:00 +0100",
        ASK_BODY,
        "<frage@kunde.example>",
        files=files,
    )


def answer():
    return mail(
        SHOP,
        JUERGEN,
        f"Re: {SUBJECT}",
        "Wed, 01 Mar 2023 14:30:00 +0100",
        ANSWER_BODY,
        "<antwort@shop.example>",
        ["<frage@kunde.example>"],
    )


def thanks():
    return mail(
        JUERGEN,
        SHOP,
        f"AW: Re: {SUBJECT}",
        "Thu, 02 Mar 2023 08:00:00 +0100",
        "Danke, dann warte ich noch.",
        "<danke@kunde.example>",
        ["<frage@kunde.example>", "<antwort@shop.example>"],
    )


def afterthought():
    """No Message-ID, no In-Reply-To, no References: only the subject ties it to the thread."""
    return mail(
        JUERGEN,
        SHOP,
        f"AW:  {SUBJECT.upper()}",
        "Fri, 03 Mar 2023 10:00:00 +0100",
        "Noch eine Frage: Liegt die Rechnung im Paket?",
    )


def exchange():
    return mail(
        ERIKA,
        SHOP,
        "Umtausch",
        "Fri, 10 Feb 2023 12:00:00 +0100",
        "Kann ich die Jacke in Größe M umtauschen?",
        "<umtausch@kunde2.example>",
    )


def exchange_answer():
    return mail(
        SVEN,
        ERIKA,
        "WG: Umtausch",
        "Fri, 10 Feb 2023 15:00:00 +0100",
        "Ja, schicken Sie sie einfach zurück.",
        "<umtausch-antwort@shop.example>",
        ["<umtausch@kunde2.example>"],
    )


def write_mbox(path, mails):
    box = mailbox.mbox(path)
    for message in mails:
        box.add(message)
    box.close()
    return path


def write_emls(folder, mails):
    folder.mkdir()
    for number, message in enumerate(mails):
        (folder / f"{number:03}.eml").write_bytes(message.as_bytes())
    return folder


def counts(settings) -> dict[str, int]:
    tables = (
        users,
        conversations,
        messages,
        attachments,
        mail_imports,
        read_markers,
        conversation_events,
        outbox,
    )
    return {
        table.name: rows(settings, sa.select(sa.func.count()).select_from(table))[0][0]
        for table in tables
    }


def conversation_with(settings, number):
    conversation = rows(settings, sa.select(conversations).where(conversations.c.number == number))
    thread = rows(
        settings,
        sa.select(messages)
        .where(messages.c.conversation_id == conversation[0].id)
        .order_by(messages.c.id),
    )
    return conversation[0], thread


def user_id(settings, email) -> int:
    return rows(settings, sa.select(users.c.id).where(users.c.email == email))[0][0]


@pytest.fixture
def settings_overrides() -> dict:
    return {"mail_from": SHOP}


@pytest.fixture
def import_mail(settings, monkeypatch, capsys):
    """Runs the command as an operator would, with the settings of the test's app."""
    for name in list(os.environ):
        if name.startswith("BOARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BOARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BOARD_ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("BOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("BOARD_MAIL_FROM", SHOP)

    def run(*paths) -> tuple[int, str, str]:
        code = main(["import-mail", *map(str, paths)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def sven(app, settings) -> int:
    engine = sync_engine(settings)
    with engine.begin() as connection:
        create_staff(connection, "sven@shop.example", "Sven Support")
    engine.dispose()
    return user_id(settings, "sven@shop.example")


@pytest.fixture
def archive(tmp_path, sven):
    """Two threads, written out of order, as an mbox often is (several folders appended).

    Sven answered from his own address: his staff account exists before the import.
    """
    mails = [thanks(), afterthought(), exchange_answer(), answer(), ask(), exchange()]
    return write_mbox(tmp_path / "support.mbox", mails)


# --- threads, authors, dates --------------------------------------------------------------


def test_an_mbox_becomes_threads_in_date_order_with_authors_and_dates(
    client, settings, sven, archive, import_mail
):
    # `client` keeps the app running on the same SQLite file, as a live server would.
    assert b"=?utf-8?" in archive.read_bytes()  # the umlauts travel RFC 2047 encoded
    code, out, err = import_mail(archive)
    assert code == 0, err
    assert "Mail imported:       6" in out
    assert "New conversations:   2" in out
    assert "New customers:       2" in out
    assert "Skipped attachments: 1" in out
    assert "Failed mails:        0" in out

    admin = user_id(settings, ADMIN_EMAIL)
    juergen = user_id(settings, "juergen.mueller@example.com")
    erika = user_id(settings, "erika@example.com")
    # Ticket numbers follow the dates: Erika wrote in February, Jürgen in March.
    exchange_row, exchange_thread = conversation_with(settings, 1001)
    conversation, thread = conversation_with(settings, 1002)
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 2

    assert [m.author_id for m in thread] == [juergen, admin, juergen, juergen]
    assert [m.created_at for m in thread] == [
        datetime(2023, 3, 1, 8, 15),  # naive UTC, as board.db.utcnow()
        datetime(2023, 3, 1, 13, 30),
        datetime(2023, 3, 2, 7, 0),
        datetime(2023, 3, 3, 9, 0),
    ]
    assert thread[0].body.startswith(ASK_BODY)
    assert thread[1].body == ANSWER_BODY
    assert "<blockquote>" in thread[1].body_html  # quoted history stays, rendered as markdown
    assert thread[3].body == "Noch eine Frage: Liegt die Rechnung im Paket?"
    assert (conversation.subject, conversation.subject_cut) == subject_from(thread[0].body)
    assert conversation.subject.startswith(ASK_BODY)

    assert conversation.customer_id == juergen
    assert conversation.kind == "support"
    assert conversation.status == "open"  # the customer wrote last
    assert conversation.assignee_id == admin  # the shop's address answered: the first admin
    assert conversation.message_count == 4
    assert conversation.last_public_message_id == thread[-1].id
    assert conversation.last_public_author_id == juergen
    assert conversation.created_at == thread[0].created_at
    assert conversation.last_message_at == thread[-1].created_at
    assert conversation.last_customer_message_at == thread[-1].created_at
    assert conversation.first_response_at == thread[1].created_at
    assert conversation.waiting_since == thread[2].created_at  # first unanswered message
    assert conversation.bell is None

    assert [m.author_id for m in exchange_thread] == [erika, sven]
    assert exchange_row.customer_id == erika
    assert exchange_row.status == "solved"  # the shop wrote last
    assert exchange_row.assignee_id == sven  # answered from Sven's own address
    assert exchange_row.waiting_since is None
    assert exchange_row.first_response_at == datetime(2023, 2, 10, 14, 0)
    assert exchange_row.last_customer_message_at == datetime(2023, 2, 10, 11, 0)

    history = rows(
        settings,
        sa.select(conversation_events).order_by(
            conversation_events.c.conversation_id, conversation_events.c.id
        ),
    )
    assert [(e.conversation_id, e.actor_id, e.old_value, e.new_value) for e in history] == [
        (exchange_row.id, sven, "open", "solved"),
        (conversation.id, admin, "open", "solved"),
        (conversation.id, None, "solved", "open"),
    ]
    assert [e.created_at for e in history] == [
        m.created_at for m in (*exchange_thread[1:], *thread[1:3])
    ]


def test_unknown_senders_become_customers_without_a_working_password(
    client, settings, archive, import_mail
):
    assert import_mail(archive)[0] == 0
    customers = rows(
        settings,
        sa.select(users).where(users.c.role == "customer").order_by(users.c.customer_number),
    )
    assert [(c.name, c.email, c.customer_number) for c in customers] == [
        ("Erika Mustermann", "erika@example.com", 10001),
        ("Jürgen Müller", "juergen.mueller@example.com", 10002),  # RFC 2047 decoded
    ]
    for customer in customers:
        for guess in ("", PASSWORD, customer.email, customer.name):
            assert verify_password(guess, customer.password_hash) is False
        for login_value in (customer.email, str(customer.customer_number)):
            response = login(client, login_value, "irgendein-passwort")
            assert response.status_code == 400
            assert "Kundennummer, E-Mail oder Passwort ist nicht korrekt." in response.text


def test_a_name_falls_back_to_the_address(client, settings, tmp_path, import_mail):
    folder = write_emls(
        tmp_path / "mails",
        [
            mail(
                "kunde.ohne.namen@example.com",
                SHOP,
                "Frage",
                "Mon, 06 Mar 2023 10:00:00 +0000",
                "Hallo?",
            )
        ],
    )
    assert import_mail(folder)[0] == 0
    name = rows(
        settings, sa.select(users.c.name).where(users.c.email == "kunde.ohne.namen@example.com")
    )
    assert name[0][0] == "kunde.ohne.namen"


# --- attachments ---------------------------------------------------------------------------


def test_attachments_are_kept_and_a_disguised_program_is_skipped_and_noted(
    client, settings, archive, import_mail
):
    code, out, _err = import_mail(archive)
    assert code == 0
    assert "programm.pdf" in out  # the operator learns which file stayed behind
    files = rows(settings, sa.select(attachments).order_by(attachments.c.id))
    assert [(f.filename, f.content_type) for f in files] == [
        ("rechnung.pdf", "application/pdf"),
        ("foto.png", "image/png"),
    ]
    _conversation, thread = conversation_with(settings, 1002)
    assert {f.message_id for f in files} == {thread[0].id}
    assert files[0].created_at == thread[0].created_at
    assert "programm.pdf" in thread[0].body  # the message says what is missing
    for file in files:
        path = settings.data_dir / "uploads" / file.sha256[:2] / file.sha256[2:4] / file.sha256
        assert path.stat().st_size == file.size


def test_the_customer_reads_the_import_in_the_inbox_and_downloads_the_file(
    client, settings, archive, import_mail, new_client, people
):
    assert import_mail(archive)[0] == 0
    # What a password reset would do: the customer chooses a password.
    engine = sync_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            users.update()
            .where(users.c.email == "juergen.mueller@example.com")
            .values(password_hash=hash_password(PASSWORD))
        )
    engine.dispose()
    juergen = new_client()
    assert login(juergen, "10002", PASSWORD).status_code == 303
    assert unread_badge(juergen) == 0  # old mail is not news
    inbox = juergen.get("/inbox").text
    assert 'href="/inbox/1002"' in inbox and 'href="/inbox/1001"' not in inbox
    page = juergen.get("/inbox/1002")
    assert page.status_code == 200
    assert "Das Paket ist unterwegs" in page.text
    file_id = rows(settings, sa.select(attachments.c.id).order_by(attachments.c.id))[0][0]
    download = juergen.get(f"/attachments/{file_id}/rechnung.pdf")
    assert download.status_code == 200
    assert download.content == PDF
    assert juergen.get("/inbox/1001").status_code == 404  # Erika's
    assert new_client().get(f"/attachments/{file_id}/rechnung.pdf").status_code == 404
    staff_page = people.staff().get("/staff/t/1002")
    assert staff_page.status_code == 200 and "Das Paket ist unterwegs" in staff_page.text


# --- no notifications, no duplicates --------------------------------------------------------


def test_importing_sends_nothing_and_marks_everything_read(client, settings, archive, import_mail):
    assert import_mail(archive)[0] == 0
    assert rows(settings, sa.select(sa.func.count()).select_from(outbox))[0][0] == 0
    assert rows(settings, sa.select(conversations.c.bell)) == [(None,), (None,)]
    assert not list((settings.data_dir / "outbox").glob("*.eml"))
    markers = {
        (m.user_id, m.conversation_id): m.last_read_message_id
        for m in rows(settings, sa.select(read_markers))
    }
    for conversation in rows(settings, sa.select(conversations)):
        key = (conversation.customer_id, conversation.id)
        assert markers[key] == conversation.last_public_message_id


def test_importing_the_same_file_twice_changes_nothing(client, settings, archive, import_mail):
    assert import_mail(archive)[0] == 0
    before = counts(settings)
    stored = sorted(
        path.name for path in (settings.data_dir / "uploads").rglob("*") if path.is_file()
    )
    code, out, _err = import_mail(archive)
    assert code == 0
    assert counts(settings) == before
    assert "Mail imported:       0" in out
    assert "Already there:       6" in out
    assert (
        sorted(path.name for path in (settings.data_dir / "uploads").rglob("*") if path.is_file())
        == stored
    )
    assert before["conversations"] == 2 and before["mail_imports"] == 6


def test_a_reply_in_a_later_import_joins_its_conversation(client, settings, tmp_path, import_mail):
    assert import_mail(write_emls(tmp_path / "januar", [ask()]))[0] == 0
    code, out, _err = import_mail(write_emls(tmp_path / "februar", [thanks(), answer()]))
    assert code == 0
    assert "New conversations:   0" in out
    conversation, thread = conversation_with(settings, 1001)
    assert len(thread) == 3 and conversation.message_count == 3
    assert conversation.status == "open"
    assert conversation.last_public_message_id == thread[-1].id
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 1


def test_a_mail_that_refers_into_another_customers_thread_opens_its_own(
    client, settings, tmp_path, import_mail
):
    """Erika forwards Jürgen's thread (she was in CC) with a file of her own: it must not
    land in Jürgen's conversation, where he would read her text and download her file."""
    forwarded = mail(
        ERIKA,
        SHOP,
        f"WG: {SUBJECT}",
        "Thu, 02 Mar 2023 10:00:00 +0100",
        "Ich habe dieselbe Frage, meine Bestellung ist die 4712.",
        "<weiterleitung@kunde2.example>",
        ["<frage@kunde.example>"],
        files=[("erikas-rechnung.pdf", PDF)],
    )
    code, out, err = import_mail(write_emls(tmp_path / "post", [ask(), forwarded]))
    assert code == 0, err
    assert "New conversations:   2" in out
    juergens, juergens_thread = conversation_with(settings, 1001)
    erikas, erikas_thread = conversation_with(settings, 1002)
    assert juergens.customer_id == user_id(settings, "juergen.mueller@example.com")
    assert erikas.customer_id == user_id(settings, "erika@example.com")
    assert len(juergens_thread) == 1 and juergens_thread[0].body.startswith(ASK_BODY)
    assert len(erikas_thread) == 1 and "4712" in erikas_thread[0].body
    named = rows(settings, sa.select(attachments.c.conversation_id, attachments.c.filename))
    assert (juergens.id, "erikas-rechnung.pdf") not in named
    assert (erikas.id, "erikas-rechnung.pdf") in named


def test_an_inbox_and_its_sent_folder_interleave_by_date(client, settings, tmp_path, import_mail):
    inbox = write_mbox(tmp_path / "INBOX.mbox", [ask(), thanks()])
    sent = write_mbox(tmp_path / "Sent.mbox", [answer()])
    code, out, _err = import_mail(inbox, sent)
    assert code == 0
    assert "Mail imported:       3" in out
    _conversation, thread = conversation_with(settings, 1001)
    assert [m.body for m in thread][1:] == [ANSWER_BODY, "Danke, dann warte ich noch."]


def test_the_summary_follows_the_dates_not_the_order_of_arrival():
    day = datetime(2023, 3, 1)
    asked = Said(1, 7, False, False, day.replace(hour=8))
    thanked = Said(2, 7, False, False, day.replace(hour=18))
    late_answer = Said(3, 2, True, False, day.replace(hour=12))  # a later run brings it
    columns = summary_columns([asked, thanked, late_answer], "pending", None)
    assert columns["waiting_since"] is None  # nobody waits on a pending conversation
    assert columns["last_public_message_id"] == 2  # the newest by date
    assert columns["first_response_at"] == late_answer.at
    assert columns["assignee_id"] == 2
    reopened = summary_columns([asked, late_answer, thanked], "open", 5)
    assert reopened["waiting_since"] == thanked.at  # the first message after the answer
    assert reopened["assignee_id"] == 5
    note = Said(4, 2, True, True, day.replace(hour=20))
    assert summary_columns([asked, late_answer, thanked, note], "open", 5) == reopened


def test_an_old_mail_arriving_late_does_not_undo_the_status(
    client, settings, tmp_path, import_mail
):
    asked, thanked = ask(), thanks()
    assert import_mail(write_emls(tmp_path / "januar", [asked, thanked]))[0] == 0
    assert conversation_with(settings, 1001)[0].status == "open"
    late = answer()  # dated between the two, brought by a later run
    assert import_mail(write_emls(tmp_path / "februar", [late]))[0] == 0
    conversation, thread = conversation_with(settings, 1001)
    assert len(thread) == 3
    assert conversation.status == "open"  # the customer still wrote last
    assert conversation.first_response_at == thread[2].created_at


def test_a_reply_with_a_wrong_clock_still_joins_its_thread(client, settings, tmp_path, import_mail):
    early_reply = answer()
    early_reply.replace_header("Date", "Tue, 28 Feb 2023 08:00:00 +0100")  # before the question
    assert import_mail(write_emls(tmp_path / "mails", [ask(), early_reply]))[0] == 0
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 1


# --- formats and bad input ------------------------------------------------------------------


def test_a_maildir_is_imported(client, settings, tmp_path, import_mail):
    box = mailbox.Maildir(tmp_path / "Maildir")
    for message in (ask(), answer()):
        box.add(message)
    box.close()
    code, out, err = import_mail(tmp_path / "Maildir")
    assert code == 0, err
    conversation, thread = conversation_with(settings, 1001)
    assert len(thread) == 2
    assert conversation.status == "solved"
    assert "Mail imported:       2" in out


def test_a_folder_of_eml_files_is_imported_and_html_becomes_text(
    client, settings, tmp_path, import_mail
):
    html_only = EmailMessage()
    html_only["From"] = ERIKA
    html_only["To"] = SHOP
    html_only["Subject"] = "Lieferadresse"
    html_only["Date"] = "Mon, 06 Mar 2023 10:00:00 +0000"
    html_only.set_content(
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>Bitte liefern Sie an:</p><ul><li>Hauptstraße&nbsp;1</li><li>12345 Berlin</li></ul>"
        '<p>Mehr <a href="https://shop.example/konto">hier</a>.</p></body></html>',
        subtype="html",
    )
    folder = write_emls(tmp_path / "mails", [html_only, exchange()])
    assert import_mail(folder)[0] == 0
    bodies = [row.body for row in rows(settings, sa.select(messages).order_by(messages.c.id))]
    assert bodies[1] == (
        "Bitte liefern Sie an:\n\n- Hauptstraße 1\n- 12345 Berlin\n\n"
        "Mehr hier (https://shop.example/konto)."
    )
    subjects = rows(settings, sa.select(conversations.c.subject).order_by(conversations.c.number))
    assert subjects[1][0] == subject_from(bodies[1])[0]
    assert subjects[1][0].startswith("Bitte liefern Sie an: Hauptstraße 1 12345 Berlin")


def test_one_bad_mail_is_reported_and_the_rest_imported(client, settings, tmp_path, import_mail):
    nowhere = mail(SHOP, None, "Rundschreiben", "Mon, 06 Mar 2023 10:00:00 +0000", "An wen?")
    folder = write_emls(tmp_path / "mails", [nowhere, ask()])
    (folder / "002.eml").write_bytes(b"\xff\xfe not a mail at all \x00\x01")
    code, out, err = import_mail(folder)
    assert code == 1  # scripts notice that something stayed behind
    assert "000.eml" in err and "no To address" in err
    assert "Traceback" not in err
    assert "Failed mails:        2" in out
    assert "Mail imported:       1" in out


@pytest.mark.parametrize("kind", ["missing", "text file", "empty folder", "other files"])
def test_a_path_without_mail_is_refused_with_exit_code_2(tmp_path, import_mail, kind, settings):
    path = tmp_path / "input"
    if kind == "text file":
        path.write_text("Liebe Kundin,\nnur ein Brief.\n")
    elif kind == "empty folder":
        path.mkdir()
    elif kind == "other files":
        path.mkdir()
        (path / "notiz.txt").write_text("nichts")
    code, out, err = import_mail(path)
    assert code == 2
    assert str(path) in err
    assert "Traceback" not in err and out == ""
    assert not (settings.data_dir / "board.db").exists()  # nothing was set up for a typo


# --- parsing ---------------------------------------------------------------------------------


def test_subjects_thread_without_reply_prefixes_case_and_spacing():
    keys = {
        subject_key(subject)
        for subject in (
            SUBJECT,
            f"Re: {SUBJECT}",
            f"AW: Re:  {SUBJECT.lower()}",
            f"Fwd: WG: {SUBJECT}",
            f"Antw:{SUBJECT}",
            f"RE[2]: {SUBJECT}",
        )
    }
    assert keys == {"rückfrage zur bestellung 4711"}


def test_parsed_mail_carries_its_threading_headers_and_utc_date():
    parsed = parse_mail(thanks().as_bytes())
    assert parsed.message_id == "<danke@kunde.example>"
    assert parsed.references == ("<antwort@shop.example>", "<frage@kunde.example>")
    assert parsed.sender == ("Jürgen Müller", "juergen.mueller@example.com")
    assert parsed.date == datetime(2023, 3, 2, 7, 0)
    no_id = parse_mail(afterthought().as_bytes())
    assert no_id.message_id is None and no_id.references == ()
    assert no_id.source_hash != parse_mail(afterthought().as_bytes() + b"\n").source_hash


def test_a_signature_is_not_an_attachment_and_8bit_headers_are_read():
    signed = exchange()
    signed.add_attachment(
        b"-----BEGIN PGP SIGNATURE-----", maintype="application", subtype="pgp-signature"
    )
    assert parse_mail(signed.as_bytes()).attachments == ()
    latin1 = b'From: "M\xfcller, Hans" <hans@example.com>\nSubject: Gr\xfc\xdfe\n\nHallo\n'
    parsed = parse_mail(latin1)
    assert parsed.sender == ("Müller, Hans", "hans@example.com")
    assert parsed.subject_key == "grüsse"
