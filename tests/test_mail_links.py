"""The signed link in a doorbell mail, through HTTP: it opens and answers that one
conversation without a password, and nothing else; expiry, password change, erasure and
revocation end it (board/mail_links.py, SECURITY.md "Links in mail")."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from board import mail_links as mail_links_module
from board.db import attachments, conversations, mail_links, messages, utcnow
from tests.conftest import PASSWORD, csrf_from, mail_text, wait_for
from tests.test_inbox import PDF, execute, open_conversation, rows
from tests.test_privacy import erase

# Runs on PostgreSQL too: the link's row is written in the answer's transaction.
pytestmark = pytest.mark.postgresql

ANSWER = "Ihr Paket liegt beim Nachbarn, Hausnummer 7."
LINK = re.compile(r"http://\S+?(/m/[0-9]+\.[A-Za-z0-9_-]+)")


def answer(staff, number: int, body: str = ANSWER, files=(), **fields) -> int:
    page = staff.get(f"/staff/t/{number}").text
    response = staff.client.post(
        f"/staff/t/{number}/reply",
        data={"csrf_token": csrf_from(page), "body": body, **fields},
        files=[("attachments", file) for file in files]
        or [("attachments", ("", b"", "application/octet-stream"))],
    )
    assert response.status_code == 303, response.text[:2000]
    return int(response.headers["location"].rsplit("#m", 1)[1])


def link_of(mailbox, person, mails: int = 1) -> str:
    """The path of the mail link in the newest doorbell mail to `person`, once `mails`
    mails reached her."""
    # The app's own sender may hold the mail for a moment: it writes the same file.
    newest = wait_for(lambda: len(found := mailbox.to(person.email)) >= mails and found)[-1]
    return LINK.search(newest.get_body(("plain",)).get_content()).group(1)


def reply_through(client, link: str, body: str, token: str | None = None, files=()):
    if token is None:
        token = csrf_from(client.get(link).text)
    return client.post(
        f"{link}/reply",
        data={"csrf_token": token, "body": body},
        files=[("attachments", file) for file in files]
        or [("attachments", ("", b"", "application/octet-stream"))],
    )


def status_of(settings, number: int) -> str:
    return rows(
        settings, sa.select(conversations.c.status).where(conversations.c.number == number)
    )[0].status


@pytest.fixture
def answered(people, mailbox):
    """Erika's request with a staff answer; the mail link of its doorbell."""
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Wo bleibt meine Bestellung 4711?")
    answer(staff, number)
    return erika, staff, number, link_of(mailbox, erika)


# --- what the link opens -----------------------------------------------------------------


def test_the_doorbell_links_to_the_conversation_without_a_password(answered, new_client, mailbox):
    erika, _staff, number, link = answered
    text = mail_text(mailbox.to(erika.email)[-1])
    assert "7 Tage" in text and "nicht weiter" in text  # lifetime; do not forward
    assert ANSWER not in text  # still only a doorbell

    phone = new_client()  # the mail opened on another device, nobody logged in
    page = phone.get(link)
    assert page.status_code == 200
    assert ANSWER in page.text and f"#{number}" in page.text
    assert 'id="mail-link-notice"' in page.text
    # The URL is the secret: no Referer to other sites, no cache.
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "board_session" not in page.headers.get("set-cookie", "")
    # Reading it there counts: the inbox shows it read.
    inbox = erika.get("/inbox").text
    assert re.search(r'id="unread-count"[^>]*>0<', inbox)


def test_the_link_never_opens_the_account_or_other_conversations(people, answered, new_client):
    erika, staff, number, link = answered
    other = open_conversation(erika, "Eine zweite, ganz private Frage zur Rechnung.")
    phone = new_client()
    assert phone.get(link).status_code == 200
    for path in ("/inbox", f"/inbox/{other}", f"/inbox/{number}", "/account", "/notifications"):
        response = phone.get(path)
        assert response.status_code == 303 and "/login" in response.headers["location"], path
    assert "zweite, ganz private" not in phone.get(link).text
    assert phone.get("/account/data.zip").status_code == 303
    # The link's page is no login for the POST routes of the account either.
    token = csrf_from(phone.get(link).text)
    written = phone.post(f"/inbox/{other}/reply", data={"csrf_token": token, "body": "x"})
    assert written.status_code == 401
    assert phone.get("/events").status_code == 401


def test_attachments_only_of_that_conversation_and_never_internal(
    people, mailbox, new_client, settings
):
    erika, staff = people.customer(), people.staff()
    open_conversation(erika, "Hier die Rechnung", files=[("rechnung.pdf", PDF, "application/pdf")])
    number = open_conversation(
        erika, "Mein Paket fehlt.", files=[("foto.pdf", PDF, "application/pdf")]
    )
    answer(
        staff,
        number,
        "Notiz: Lager fragen.",
        files=[("lager.pdf", PDF, "application/pdf")],
        internal="1",
    )
    answer(staff, number, "Hier der Lieferschein.", files=[("schein.pdf", PDF, "application/pdf")])
    link = link_of(mailbox, erika)
    files = {
        row.filename: row.id
        for row in rows(settings, sa.select(attachments.c.id, attachments.c.filename))
    }
    phone = new_client()
    page = phone.get(link).text
    assert "schein.pdf" in page and "foto.pdf" in page and "lager.pdf" not in page
    for name in ("schein.pdf", "foto.pdf"):
        assert phone.get(f"/attachments/{files[name]}/{name}").status_code == 200, name
    for name in ("lager.pdf", "rechnung.pdf"):  # an internal note's, another request's
        assert phone.get(f"/attachments/{files[name]}/{name}").status_code == 404, name
    # Revoked, the link opens no file either.
    staff.submit(f"/staff/t/{number}/mail-links/revoke", {}, form_page=f"/staff/t/{number}")
    assert phone.get(f"/attachments/{files['schein.pdf']}/schein.pdf").status_code == 404
    stranger = new_client()
    assert stranger.get(f"/attachments/{files['schein.pdf']}/schein.pdf").status_code == 404


def test_whoever_is_logged_in_gets_their_own_view_or_nothing(answered, people, settings):
    erika, staff, number, link = answered
    owner = erika.get(link)  # the customer herself, logged in: her inbox page
    assert owner.status_code == 303 and owner.headers["location"] == f"/inbox/{number}"
    at_work = staff.get(link)
    assert at_work.status_code == 303 and at_work.headers["location"] == f"/staff/t/{number}"

    max_ = people.customer("Max Muster")
    seen_by_max = max_.get(link)
    assert seen_by_max.status_code == 403
    assert ANSWER not in seen_by_max.text and "anderen Konto" in seen_by_max.text
    token = csrf_from(max_.get("/").text)
    refused = reply_through(max_.client, link, "Von Max geschrieben", token=token)
    assert refused.status_code == 403
    said = rows(settings, sa.select(messages.c.body))
    assert all("Von Max" not in row.body for row in said)
    # Max stays Max: his inbox, not Erika's request.
    assert f"#{number}" not in max_.get("/inbox").text


# --- answering through the link ----------------------------------------------------------


def test_an_answer_through_the_link_reopens_the_request_as_hers(
    people, mailbox, new_client, settings
):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika, "Kann ich noch umtauschen?")
    answer(staff, number, "Ja, bis Ende des Monats.", status="solved")
    assert status_of(settings, number) == "solved"
    link = link_of(mailbox, erika)
    phone = new_client()

    sent = reply_through(phone, link, "Danke, und wie schicke ich es zurück?")
    assert sent.status_code == 303 and sent.headers["location"].startswith(link + "#m")
    assert status_of(settings, number) == "open"  # back in the queue, as any answer of hers
    [latest] = rows(
        settings, sa.select(messages.c.author_id).order_by(messages.c.id.desc()).limit(1)
    )
    assert latest.author_id == erika.user_id
    assert "wie schicke ich es zurück" in staff.get(f"/staff/t/{number}").text


def test_an_answer_through_the_link_needs_its_csrf_token_and_a_text(answered, new_client, settings):
    _erika, _staff, number, link = answered
    phone = new_client()
    phone.get(link)
    before = len(rows(settings, sa.select(messages.c.id)))
    without_token = phone.post(f"{link}/reply", data={"body": "Ohne Token"})
    assert without_token.status_code == 403
    empty = reply_through(phone, link, "   ")
    assert empty.status_code == 400 and "Bitte schreiben Sie Ihre Nachricht" in empty.text
    too_big = reply_through(
        phone, link, "Mit falscher Datei", files=[("bild.pdf", b"GIF89a", "application/pdf")]
    )
    assert too_big.status_code == 400 and "Mit falscher Datei" in too_big.text  # text kept
    assert len(rows(settings, sa.select(messages.c.id))) == before
    assert status_of(settings, number) == "pending"


# --- how a link ends ---------------------------------------------------------------------


def test_a_link_ends_after_its_lifetime(answered, new_client, settings):
    _erika, _staff, number, link = answered
    execute(
        settings, mail_links.update().values(created_at=utcnow() - timedelta(days=7, minutes=1))
    )
    page = new_client().get(link)
    assert page.status_code == 410 and ANSWER not in page.text
    assert f"next=%2Finbox%2F{number}" in page.text  # the way in: a login
    assert page.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("settings_overrides", [{"mail_link_days": 0}])
def test_without_a_lifetime_the_mail_links_to_the_login(people, mailbox, settings):
    erika, staff = people.customer(), people.staff()
    number = open_conversation(erika)
    answer(staff, number)
    text = mail_text(wait_for(lambda: mailbox.to(erika.email))[-1])
    assert f"{settings.base_url}/inbox/{number}" in text and "/m/" not in text


def test_a_new_password_ends_every_link(answered, new_client):
    erika, _staff, _number, link = answered
    phone = new_client()
    assert phone.get(link).status_code == 200
    changed = erika.submit(
        "/account",
        {"action": "password", "current_password": PASSWORD, "password": "ein-neues-passwort-7"},
        form_page="/account",
    )
    assert changed.status_code == 303
    assert phone.get(link).status_code == 410
    refused = reply_through(phone, link, "Noch schnell eine Frage")
    assert refused.status_code == 410 and "Noch schnell eine Frage" in refused.text  # not lost


def test_erasure_ends_the_link(answered, new_client):
    erika, staff, number, link = answered
    erased = erase(staff, erika.user_id, str(erika.customer_number))
    assert erased.status_code == 303, erased.text[:500]
    page = new_client().get(link)
    assert page.status_code == 410 and ANSWER not in page.text
    assert f"%2Finbox%2F{number}" not in page.text


def test_the_customer_ends_her_links_and_the_next_answer_brings_a_new_one(
    answered, new_client, mailbox
):
    erika, staff, number, link = answered
    phone = new_client()
    assert phone.get(link).status_code == 200
    no_token = erika.client.post("/account/mail-links/revoke", data={})
    assert no_token.status_code == 403 and phone.get(link).status_code == 200
    revoked = erika.submit("/account/mail-links/revoke", {}, form_page="/account")
    assert revoked.headers["location"] == "/account?saved=links"
    assert phone.get(link).status_code == 410
    answer(staff, number, "Noch ein Hinweis zur Lieferung.")  # she opened it: it rings again
    fresh = link_of(mailbox, erika, mails=2)
    assert fresh != link and phone.get(fresh).status_code == 200


def test_staff_end_the_links_of_a_conversation(answered, new_client, people):
    erika, staff, number, link = answered
    phone = new_client()
    assert phone.get(link).status_code == 200
    assert (
        erika.submit(f"/staff/t/{number}/mail-links/revoke", {}, form_page="/inbox").status_code
        == 403
    )
    assert phone.get(link).status_code == 200
    revoked = staff.submit(
        f"/staff/t/{number}/mail-links/revoke", {}, form_page=f"/staff/t/{number}"
    )
    assert revoked.status_code == 303
    assert 'id="links-revoked"' in staff.get(revoked.headers["location"]).text
    assert phone.get(link).status_code == 410


def test_made_up_and_altered_links_open_nothing(answered, new_client):
    _erika, _staff, _number, link = answered
    link_id, signature = link.removeprefix("/m/").split(".")
    phone = new_client()
    for path in (
        "/m/erfunden",
        f"/m/{int(link_id) + 1}.{signature}",  # another id under this signature
        f"/m/{link_id}.{signature[:-1]}{'B' if signature.endswith('A') else 'A'}",
        f"/m/{link_id}.{signature}ä",
        f"/m/{'9' * 30}.{signature}",
    ):
        response = phone.get(path)
        assert response.status_code == 404, path
        assert response.headers["referrer-policy"] == "no-referrer"


def test_maintenance_forgets_links_a_day_after_their_end(answered, app, client, settings):
    _erika, _staff, _number, _link = answered
    execute(settings, mail_links.update().values(created_at=utcnow() - timedelta(days=7, hours=2)))
    client.portal.call(mail_links_module.forget_old, app.state.db, 7.0)
    assert len(rows(settings, sa.select(mail_links.c.id))) == 1  # ended, kept a day
    execute(settings, mail_links.update().values(created_at=utcnow() - timedelta(days=8, hours=1)))
    client.portal.call(mail_links_module.forget_old, app.state.db, 7.0)
    assert rows(settings, sa.select(mail_links.c.id)) == []
