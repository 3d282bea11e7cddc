"""The doorbell: mail through a real SMTP server on loopback (aiosmtpd), the outbox's
retries and restarts, notification choices, the daily jobs and the `outbox` command."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board import mail, schedule
from board.app import create_app, postman_for
from board.db import conversations, outbox, scheduled_jobs, users, utcnow, write_transaction
from board.setup import initialize
from tests.conftest import SMTPCollector, csrf_from, mail_text, start_smtp, wait_for
from tests.test_app import run_command
from tests.test_inbox import PDF, execute, open_conversation, rows

# Runs on PostgreSQL too: outbox claims (FOR UPDATE SKIP LOCKED) and daily jobs (ON CONFLICT, FOR
# UPDATE).
pytestmark = pytest.mark.postgresql

ANSWER = "Ihr Paket liegt beim Nachbarn, Hausnummer 7."


@pytest.fixture
def settings_overrides(smtp_port):
    """Every app here sends through SMTP on `smtp_port`; tests without `smtp` find it down."""
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_port}


def answer(staff, number: int, body: str = ANSWER, **fields):
    response = staff.submit(f"/staff/t/{number}/reply", {"body": body, **fields})
    assert response.status_code == 303, response.text[:2000]


def link_in(message) -> str:
    return re.search(r"http://\S+", message.get_body(("plain",)).get_content()).group(0)


def set_notify(person, choice: str, name: str = "Erika Mustermann") -> None:
    response = person.submit(
        "/account", {"name": name, "email": person.email, "locale": "", "notify": choice}
    )
    assert response.status_code == 303, response.text[:2000]


class Refusing(SMTPCollector):
    """An SMTP server with no mailbox for weg@…: a 550, refused for good."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("weg@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def pending(settings) -> list:
    return rows(settings, sa.select(outbox).where(outbox.c.sent_at.is_(None)))


# --- the doorbell --------------------------------------------------------------------------


def test_an_answer_rings_once_with_number_and_link_but_no_text(people, smtp, settings):
    erika = people.customer()
    staff = people.staff()
    number = open_conversation(erika, "Mein Paket mit der Bestellnummer 4711 fehlt.")
    answer(staff, number)
    [message] = wait_for(lambda: smtp.messages)

    assert message["Subject"] == f"Neue Antwort zu Ihrer Anfrage #{number}"
    assert message["To"].addresses[0].addr_spec == erika.email
    text = mail_text(message)
    # The customer's signed link to this one conversation (tests/test_mail_links.py).
    assert re.search(rf"{settings.base_url}/m/\d+\.[\w-]+\s", text)
    assert "nicht gelesen" in text  # replies to this mail are not read
    for secret in ("Nachbarn", "4711", "Paket"):  # no answer, no quoted request
        assert secret not in text and secret not in message["Subject"]
    assert not [part for part in message.walk() if part.get_filename()]  # no attachments
    assert message.get_body(("html",)) is not None
    assert message["Message-ID"] and message["Date"]
    assert message["Auto-Submitted"] == "auto-generated"

    # The link opens the conversation, with the answer, for the customer who got it; she
    # is logged in here, so it leads to her inbox's page of it.
    link = link_in(message)
    assert link.startswith(settings.base_url)
    opened = erika.get(link.removeprefix(settings.base_url))
    assert opened.status_code == 303 and opened.headers["location"] == f"/inbox/{number}"
    page = erika.get(opened.headers["location"])
    assert page.status_code == 200 and ANSWER in page.text


def test_internal_notes_ring_nothing(people, smtp, mailbox, settings):
    erika = people.customer()
    staff = people.staff()
    number = open_conversation(erika)
    answer(staff, number, "Intern: Kunde hat schon zweimal geschrieben", internal="1")
    mailbox.drain()
    assert smtp.messages == [] and pending(settings) == []


def test_no_second_mail_until_the_customer_has_opened_the_conversation(
    people, smtp, mailbox, settings
):
    erika = people.customer()
    staff = people.staff()
    number = open_conversation(erika)
    answer(staff, number)
    answer(staff, number, "Noch ein Nachtrag.")
    wait_for(lambda: smtp.messages)
    mailbox.drain()
    assert len(smtp.messages) == 1
    assert rows(settings, sa.select(conversations.c.bell))[0].bell == "rung"

    assert erika.get(f"/inbox/{number}").status_code == 200  # she reads it
    answer(staff, number, "Und noch etwas.")
    wait_for(lambda: len(smtp.messages) == 2)
    assert [m["Subject"] for m in smtp.messages] == [f"Neue Antwort zu Ihrer Anfrage #{number}"] * 2


def test_a_guest_gets_the_doorbell_with_a_working_secret_link(
    client, new_client, people, smtp, settings
):
    page = client.get("/contact").text
    token_field = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    response = client.post(
        "/contact",
        data={
            "csrf_token": token_field,
            "name": "Gustav Gast",
            "email": "gast@example.com",
            "body": "Kann ich auch per Rechnung zahlen?",
        },
        files=[("attachments", ("", b"", "application/octet-stream"))],
    )
    assert response.status_code == 303
    own_link = response.headers["location"]
    [first] = wait_for(lambda: smtp.messages)  # the link to the new request
    assert own_link in link_in(first)

    answer(people.staff(), 1001, "Ja, Rechnungskauf geht ab der zweiten Bestellung.")
    wait_for(lambda: len(smtp.messages) == 2)
    doorbell = smtp.messages[1]
    assert doorbell["Subject"] == "Neue Antwort zu Ihrer Anfrage #1001"
    assert "Rechnungskauf" not in mail_text(doorbell)
    stranger = new_client()  # the link alone opens it, in any browser
    opened = stranger.get(link_in(doorbell).removeprefix(settings.base_url))
    assert opened.status_code == 200 and "Rechnungskauf" in opened.text


def test_names_cannot_inject_headers_and_umlauts_are_encoded(people, smtp, settings):
    sneaky = people.customer(
        'Jürgen "Boss" Müller\r\nBcc: boese@example.net', "juergen@example.com"
    )
    staff = people.staff()
    number = open_conversation(sneaky)
    answer(staff, number)
    [message] = wait_for(lambda: smtp.messages)
    envelope = smtp.envelopes[0]
    assert envelope.rcpt_tos == ["juergen@example.com"]  # nobody else received it
    assert message["Bcc"] is None
    raw = envelope.content.decode("ascii")  # 7-bit clean: umlauts are encoded words
    header_block = raw.split("\r\n\r\n", 1)[0]
    [to] = message["To"].addresses
    assert to.addr_spec == "juergen@example.com"
    assert to.display_name.startswith('Jürgen "Boss" Müller') and "\n" not in to.display_name
    assert not re.search(r"^Bcc:", header_block, re.MULTILINE | re.IGNORECASE)


# --- choices ---------------------------------------------------------------------------


def test_off_stops_answers_and_announcements_but_not_invoices(people, smtp, mailbox, settings):
    erika = people.customer()
    staff = people.staff()
    set_notify(erika, "off")
    number = open_conversation(erika)
    answer(staff, number)
    response = staff.submit("/staff/announce", {"body": "Neue Versandpreise ab Januar."})
    assert response.status_code == 303
    mailbox.drain()
    assert smtp.messages == []

    invoice = staff.submit(
        "/staff/invoice",
        {"customer": str(erika.customer_number), "body": "Rechnung 2026-11"},
        files=[("attachments", ("rechnung.pdf", PDF, "application/pdf"))],
    )
    assert invoice.status_code == 303, invoice.text[:2000]
    [message] = wait_for(lambda: smtp.messages)
    assert "Rechnung" in message["Subject"] and "2026-11" not in mail_text(message)


def test_announcements_carry_a_one_click_unsubscribe(people, new_client, smtp, settings):
    erika = people.customer()
    max_ = people.customer("Max Muster")
    set_notify(max_, "off", name="Max Muster")
    staff = people.staff()
    assert staff.submit("/staff/announce", {"body": "Wir ziehen um!"}).status_code == 303
    [message] = wait_for(lambda: smtp.messages)
    assert message["To"].addresses[0].addr_spec == erika.email  # Max chose "off"
    assert "umziehen" not in mail_text(message) and "Wir ziehen" not in mail_text(message)
    unsubscribe = re.fullmatch(r"<(.+)>", message["List-Unsubscribe"]).group(1)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # A mail program POSTs without cookies or CSRF token (RFC 8058); the signed link suffices.
    path = unsubscribe.removeprefix(settings.base_url)
    mail_program = new_client()
    response = mail_program.post(path, content=b"List-Unsubscribe=One-Click")
    assert response.status_code == 200
    assert rows(settings, sa.select(users.c.notify).where(users.c.email == erika.email)) == [
        ("off",)
    ]
    forged = re.sub(r"/[^/]+$", "/AAAA", path)
    assert mail_program.post(forged).status_code == 404
    other_user = re.sub(r"/unsubscribe/\d+/", f"/unsubscribe/{max_.user_id}/", path)
    assert mail_program.post(other_user).status_code == 404


def test_the_daily_digest_names_the_conversations_once(people, smtp, app, client, settings):
    erika = people.customer()
    staff = people.staff()
    set_notify(erika, "digest")
    first = open_conversation(erika, "Erste Frage")
    second = open_conversation(erika, "Zweite Frage")
    answer(staff, first)
    answer(staff, second)
    answer(staff, second, "Nachtrag")
    assert smtp.messages == [] and pending(settings) == []

    evening = schedule.todays_moment(settings, settings.digest_hour, utcnow()) + timedelta(
        minutes=1
    )
    execute(settings, scheduled_jobs.delete())  # whatever the app's own round did at start
    assert "digest" in client.portal.call(schedule.run_due, app.state.db, settings, evening)

    def hers() -> list:  # staff get their own daily summary from the same run
        return [message for message in smtp.messages if erika.email in message["To"]]

    [digest] = wait_for(hers)
    text = mail_text(digest)
    assert f"/inbox/{first}" in text and f"/inbox/{second}" in text
    assert "Nachtrag" not in text and ANSWER not in text
    assert digest["List-Unsubscribe"]

    # Same day again: nothing. The next answer waits for her to open the conversation.
    assert client.portal.call(schedule.run_due, app.state.db, settings, evening) == []
    answer(staff, first, "Dritte Antwort")
    next_evening = evening + timedelta(days=1)
    assert "digest" in client.portal.call(schedule.run_due, app.state.db, settings, next_evening)
    postman = postman_for(app)
    client.portal.call(mail.run_once, app.state.db, postman)
    assert len(hers()) == 1


def test_staff_may_ask_for_a_mail_for_each_new_request(people, smtp, settings):
    staff = people.staff()
    response = staff.submit(
        "/account",
        {"name": "Chefin", "email": staff.email, "locale": "", "notify_new": "1"},
    )
    assert response.status_code == 303
    erika = people.customer()
    number = open_conversation(erika, "Wo ist mein Gutschein?")
    [message] = wait_for(lambda: smtp.messages)
    assert message["To"].addresses[0].addr_spec == staff.email
    assert f"/staff/t/{number}" in mail_text(message) and "Gutschein" not in mail_text(message)


def test_the_account_page_refuses_an_unknown_choice_and_keeps_the_input(people):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {"name": "Erika Neu", "email": erika.email, "locale": "", "notify": "sometimes"},
    )
    assert response.status_code == 400
    assert 'value="Erika Neu"' in response.text


# --- the outbox ------------------------------------------------------------------------


def test_smtp_down_for_an_hour_then_up_delivers_each_mail_exactly_once(
    people, mailbox, settings, smtp_port
):
    erika = people.customer()
    staff = people.staff()
    number = open_conversation(erika)
    answer(staff, number)
    wait_for(lambda: pending(settings) and pending(settings)[0].attempts >= 1)
    [waiting] = pending(settings)
    assert waiting.last_error and waiting.failed_at is None
    assert waiting.next_attempt_at > utcnow()  # backs off instead of hammering

    later = utcnow()
    for minutes in (1, 3, 7, 15, 30, 45, 60):  # an hour of retries against a dead server
        later = utcnow() + timedelta(minutes=minutes)
        mailbox.drain(now=later)
    [still] = pending(settings)
    assert still.attempts >= 3 and still.failed_at is None

    collector = SMTPCollector()
    server = start_smtp(smtp_port, collector)
    try:
        assert mailbox.drain(now=later + timedelta(minutes=16)) == 1
        assert mailbox.drain(now=later + timedelta(hours=2)) == 0
        assert len(collector.messages) == 1
        assert pending(settings) == []
    finally:
        server.stop()


def test_the_outbox_survives_a_restart(settings, smtp_port):
    initialize(settings)
    first_run = create_app(settings)
    with TestClient(first_run) as visitor:
        visitor.portal.call(_queue_test_mail, first_run.state.db)
        wait_for(lambda: pending(settings)[0].attempts >= 1)  # SMTP was down
    assert len(pending(settings)) == 1

    collector = SMTPCollector()
    server = start_smtp(smtp_port, collector)
    try:
        second_run = create_app(settings)
        with TestClient(second_run) as visitor:
            execute(settings, outbox.update().values(next_attempt_at=utcnow()))  # backoff over
            visitor.portal.call(mail.run_once, second_run.state.db, postman_for(second_run))
            [message] = wait_for(lambda: collector.messages)
        assert message["Subject"] == "Neue Antwort zu Ihrer Anfrage #1234"
        assert pending(settings) == []
    finally:
        server.stop()


async def _queue_test_mail(db) -> None:
    async with write_transaction(db):
        await mail.queue(db, "reply", "kunde@example.com", {"number": 1234}, to_name="Kunde")


def test_a_refused_address_fails_for_good_and_the_command_lists_it(
    people, mailbox, settings, smtp_port, tmp_path
):
    collector = Refusing()
    server = start_smtp(smtp_port, collector)
    try:
        gone = people.customer("Weg Kunde", "weg@example.com")
        here = people.customer()
        staff = people.staff()
        answer(staff, open_conversation(gone))
        answer(staff, open_conversation(here))
        wait_for(lambda: collector.messages)
        mailbox.drain()
    finally:
        server.stop()
    [failed] = pending(settings)
    assert failed.to_address == "weg@example.com" and failed.failed_at is not None
    assert "550" in failed.last_error

    env = {"BOARD_SMTP_HOST": "127.0.0.1", "BOARD_SMTP_PORT": str(smtp_port)}
    listing = run_command(["-m", "board", "outbox"], settings.data_dir, env)
    assert listing.returncode == 0, listing.stderr
    assert "failed" in listing.stdout and "weg@example.com" in listing.stdout
    assert "erika@example.com" not in listing.stdout  # sent mail is not listed
    retry = run_command(["-m", "board", "outbox", "--retry-failed"], settings.data_dir, env)
    assert "1 failed" in retry.stdout and "pending" in retry.stdout


def test_login_codes_and_reset_links_wait_sealed_and_go_when_sent_or_given_up(
    people, mailbox, settings, smtp_port
):
    """A copy of the database (a backup, a support dump) holds no code or link that opens
    an account: sealed with the secret key while waiting, dropped once sent or failed for
    good. The .eml copy of a sent mail holds it as sent (SECURITY.md)."""
    erika = people.customer()
    gone = people.customer("Weg Kunde", "weg@example.com")
    visitor = erika.client
    for address in (erika.email, gone.email):
        page = visitor.get("/login/code").text
        sent = visitor.post("/login/code", data={"csrf_token": csrf_from(page), "email": address})
        assert sent.status_code == 200
    reset = visitor.get("/password/reset").text
    asked = visitor.post(
        "/password/reset", data={"csrf_token": csrf_from(reset), "email": erika.email}
    )
    assert asked.status_code == 303
    wait_for(lambda: len(pending(settings)) == 3 and all(r.attempts for r in pending(settings)))
    for row in pending(settings):  # SMTP is down: they wait
        assert set(json.loads(row.params)) == {"sealed"}
        assert not re.search(r"\b\d{6}\b", row.params)

    collector = Refusing()
    server = start_smtp(smtp_port, collector)
    try:
        mailbox.drain(now=utcnow() + timedelta(hours=1))
    finally:
        server.stop()
    code_mail, reset_mail = sorted(collector.messages, key=lambda m: "code" not in mail_text(m))
    code = re.search(r"\b(\d{6})\b", mail_text(code_mail))[1]
    assert "/password/reset/" in mail_text(reset_mail)
    everything = rows(settings, sa.select(outbox))
    assert [json.loads(row.params) for row in everything if row.template != "reply"] == [{}] * 3
    assert [row.to_address for row in everything if row.failed_at] == ["weg@example.com"]
    assert code not in "".join(row.params for row in everything)


def test_written_as_eml_files_when_no_smtp_host_is_set(settings, tmp_path):
    from dataclasses import replace

    plain = replace(settings, smtp_host=None)
    initialize(plain)
    app = create_app(plain)
    with TestClient(app) as visitor:
        visitor.portal.call(_queue_test_mail, app.state.db)
        visitor.portal.call(mail.run_once, app.state.db, postman_for(app))
    [path] = (settings.data_dir / "outbox").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Neue Antwort zu Ihrer Anfrage #1234"


# --- the daily summary -----------------------------------------------------------------


def test_the_daily_summary_reaches_staff_who_chose_it(people, smtp, app, client, settings):
    staff = people.staff()
    response = staff.submit(
        "/account",
        {"name": "Chefin", "email": staff.email, "locale": "en", "daily_summary": "1"},
    )
    assert response.status_code == 303
    erika = people.customer()
    answered = open_conversation(erika, "Frage eins")
    open_conversation(erika, "Frage zwei")
    answer(staff, answered)
    [(answered_at,)] = rows(
        settings,
        sa.select(conversations.c.first_response_at).where(conversations.c.number == answered),
    )
    execute(  # the answer came two hours after the question
        settings,
        conversations.update()
        .where(conversations.c.number == answered)
        .values(created_at=answered_at - timedelta(hours=2)),
    )
    wait_for(lambda: smtp.messages)  # the customer's doorbell
    smtp.messages.clear()

    morning = schedule.todays_moment(settings, settings.summary_hour, utcnow()) + timedelta(
        minutes=5
    )
    execute(settings, scheduled_jobs.delete())
    assert "summary" in client.portal.call(schedule.run_due, app.state.db, settings, morning)
    [summary] = wait_for(lambda: smtp.messages)
    assert summary["To"].addresses[0].addr_spec == staff.email
    text = mail_text(summary)
    assert "Daily summary" in summary["Subject"]
    assert "New requests: 2" in text and "Answered: 1" in text and "Open now: 1" in text
    assert "Median time to the first answer: 2 hr" in text
    assert client.portal.call(schedule.run_due, app.state.db, settings, morning) == []

    # On demand from the command line, through the same SMTP server.
    env = {"BOARD_SMTP_HOST": "127.0.0.1", "BOARD_SMTP_PORT": str(settings.smtp_port)}
    result = run_command(["-m", "board", "send-summary"], settings.data_dir, env)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: len(smtp.messages) == 2)


def test_workers_starting_a_daily_job_together_run_it_once(app, client, settings, people):
    """Two workers' minute ticks at the same moment, on their own connections: the first
    run's row, locked while it queues the mail, tells the second that the day is done."""
    staff = people.staff()
    execute(settings, users.update().where(users.c.email == staff.email).values(daily_summary=True))
    execute(settings, scheduled_jobs.delete())
    morning = schedule.todays_moment(settings, settings.summary_hour, utcnow()) + timedelta(
        minutes=5
    )

    async def two_workers():
        database = app.state.db
        return await asyncio.gather(
            schedule.run_due(database, settings, morning),
            schedule.run_due(database, settings, morning),
        )

    first, second = client.portal.call(two_workers)
    assert sorted(first + second).count("summary") == 1
    queued = rows(settings, sa.select(outbox.c.template).where(outbox.c.template == "summary"))
    assert len(queued) == 1


def test_daily_jobs_wait_for_their_hour(app, client, settings):
    execute(settings, scheduled_jobs.delete())
    before = schedule.todays_moment(
        settings, min(settings.summary_hour, settings.digest_hour), utcnow()
    )
    too_early = before - timedelta(minutes=1)
    assert client.portal.call(schedule.run_due, app.state.db, settings, too_early) == []
    assert rows(settings, sa.select(scheduled_jobs)) == []


# --- as a new customer does it -----------------------------------------------------------


@pytest.mark.e2e
def test_a_new_customer_writes_staff_answer_and_the_mailed_link_opens_it(
    live_server: str, page, browser, smtp, settings
):
    from playwright.sync_api import expect

    from tests.test_browser import log_in, register

    register(page, live_server)
    page.goto(f"{live_server}/inbox/new")
    page.get_by_label("Ihre Nachricht").fill("Mein Gutschein GUT-2026 wird nicht angenommen.")
    page.get_by_role("button", name="Nachricht senden").click()
    expect(page.locator("#ticket-number")).to_have_text("#1001")
    page.get_by_role("button", name="Abmelden").click()

    staff_context = browser.new_context(locale="de-DE")
    staff = staff_context.new_page()
    log_in(staff, live_server, "chefin@example.com", "admin-passwort-123")
    staff.goto(f"{live_server}/staff/t/1001")
    staff.locator("#field-body").fill("Der Gutschein gilt ab 50 Euro Bestellwert.")
    staff.get_by_role("button", name="Senden", exact=True).click()
    expect(staff.locator(".thread .message")).to_have_count(2)
    staff_context.close()

    [message] = wait_for(lambda: smtp.messages)
    assert message["Subject"] == "Neue Antwort zu Ihrer Anfrage #1001"
    assert "Gutschein" not in mail_text(message)
    link = link_in(message)
    assert re.fullmatch(rf"{settings.base_url}/m/\d+\.[\w-]+", link)

    # The customer follows the link from the mail: straight to the answer, no password.
    page.goto(live_server + link.removeprefix(settings.base_url))
    expect(page.locator("#ticket-number")).to_have_text("#1001")
    expect(page.locator("#mail-link-notice")).to_be_visible()
    expect(page.locator(".thread")).to_contain_text("Der Gutschein gilt ab 50 Euro Bestellwert.")
