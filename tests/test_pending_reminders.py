"""A pending request the customer does not answer: one reminder after M business days
(BOARD_PENDING_REMINDER_DAYS), solved with a note after M more; the customer's answer
resets it. Mail through a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from board import mail
from board.app import postman_for
from board.config import Settings
from board.conversations import reminders
from board.db import conversation_events, conversations, outbox, utcnow
from tests.conftest import csrf_from, mail_text, wait_for
from tests.test_inbox import open_conversation, rows

# The claims are conditional UPDATE … RETURNING on either database.
pytestmark = pytest.mark.postgresql

DAYS = 2
WEEK = timedelta(days=7)  # five business days or more, whatever the weekday


@pytest.fixture
def settings_overrides(smtp_port):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "pending_reminder_days": DAYS}


def run_job(app, client, now, settings=None) -> int:
    return client.portal.call(reminders.run_due, app.state.db, settings or app.state.settings, now)


def send_mail(app, client) -> None:
    """Sends what is queued; a row the app's own sender claimed first is waited for."""
    client.portal.call(mail.run_once, app.state.db, postman_for(app))
    unsent = sa.select(sa.func.count()).where(
        outbox.c.sent_at.is_(None), outbox.c.failed_at.is_(None)
    )
    wait_for(lambda: rows(app.state.settings, unsent)[0][0] == 0)


def ask_customer(staff, number: int) -> None:
    page = f"/staff/t/{number}"
    response = staff.submit(
        f"{page}/reply",
        {"body": "Welche Farbe hatte der Artikel?", "status": "pending"},
        form_page=page,
    )
    assert response.status_code == 303, response.text[:1000]


def state(settings, number: int):
    return rows(
        settings,
        sa.select(conversations.c.status, conversations.c.reminded_at).where(
            conversations.c.number == number
        ),
    )[0]


def history(settings, number: int) -> list:
    return rows(
        settings,
        sa.select(
            conversation_events.c.action,
            conversation_events.c.actor_id,
            conversation_events.c.new_value,
            conversation_events.c.note,
        )
        .join(conversations, conversations.c.id == conversation_events.c.conversation_id)
        .where(conversations.c.number == number, conversation_events.c.action != "assignee")
        .order_by(conversation_events.c.id),
    )


def reminders_to(smtp, address: str) -> list:
    return [
        message
        for message in smtp.messages
        if "wartet auf Ihre Antwort" in message["Subject"]
        and message["To"].addresses[0].addr_spec == address
    ]


def test_one_reminder_then_solved_with_a_note(people, smtp, app, client, settings, new_client):
    erika = people.customer()
    staff = people.staff()
    number = open_conversation(erika, "Die Jacke mit Bestellnummer 4711 ist zu klein.")
    ask_customer(staff, number)
    asked = utcnow()

    assert run_job(app, client, asked + timedelta(hours=1)) == 0  # not yet
    assert state(settings, number) == ("pending", None)

    assert run_job(app, client, asked + WEEK) == 1
    send_mail(app, client)
    [reminder] = reminders_to(smtp, erika.email)
    assert reminder["Subject"] == f"Ihre Anfrage #{number} wartet auf Ihre Antwort"
    assert reminder["To"].addresses[0].addr_spec == erika.email
    text = mail_text(reminder)
    assert "4711" not in text and "Farbe" not in text  # a doorbell: no message text
    # Like an answer's doorbell, its link opens this request without a password.
    assert "7 Tage" in text and "nicht weiter" in text
    link = urlsplit(re.search(r"https?://\S+/m/[\w.-]+", text).group(0)).path
    page = new_client().get(link)
    assert page.status_code == 200 and f"#{number}" in page.text
    assert 'name="body"' in page.text  # the answer it asks for can be written right there
    status, reminded_at = state(settings, number)
    assert status == "pending" and reminded_at is not None

    # Once only: another round, another worker or a restart sends no second one.
    assert run_job(app, client, asked + WEEK + timedelta(hours=1)) == 0
    send_mail(app, client)
    assert len(reminders_to(smtp, erika.email)) == 1
    assert state(settings, number)[0] == "pending"  # M more business days to answer

    assert run_job(app, client, reminded_at + WEEK) == 0
    assert state(settings, number) == ("solved", None)
    events = history(settings, number)
    assert events[-2][:3] == ("reminder", None, None)
    action, actor, new_value, note = events[-1]
    assert (action, actor, new_value) == ("status", None, "solved")
    assert note == (
        f"Automatisch erledigt: keine Antwort innerhalb von {DAYS} Werktagen nach der Erinnerung."
    )
    page = staff.get(f"/staff/t/{number}").text
    assert "hat den Kunden an die offene Frage erinnert" in page
    assert note in page and "automatisch" in page.lower()
    assert run_job(app, client, reminded_at + 2 * WEEK) == 0
    assert [e.action for e in history(settings, number)].count("reminder") == 1


def test_the_customers_answer_resets_the_count(people, smtp, app, client, settings):
    erika = people.customer()
    staff = people.staff()
    number = open_conversation(erika, "Frage zur Lieferung")
    ask_customer(staff, number)
    assert run_job(app, client, utcnow() + WEEK) == 1
    page = erika.get(f"/inbox/{number}").text
    replied = erika.client.post(
        f"/inbox/{number}/reply", data={"csrf_token": csrf_from(page), "body": "Blau."}
    )
    assert replied.status_code == 303
    assert state(settings, number) == ("open", None)
    # Far later, but open: nothing is solved, nobody reminded.
    assert run_job(app, client, utcnow() + 3 * WEEK) == 0
    assert state(settings, number) == ("open", None)
    # Pending again: a new period with its own single reminder, not the old one's solve.
    ask_customer(staff, number)
    assert run_job(app, client, utcnow() + WEEK) == 1
    assert state(settings, number)[0] == "pending"
    send_mail(app, client)
    assert len(reminders_to(smtp, erika.email)) == 2


def test_a_guest_is_reminded_through_the_secret_link(people, smtp, app, client, settings):
    contact = client.get("/contact").text
    sent = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(contact),
            "name": "Gast",
            "email": "gast@example.com",
            "body": "Frage ohne Konto",
        },
    )
    assert sent.status_code == 303
    number = rows(settings, sa.select(sa.func.max(conversations.c.number)))[0][0]
    ask_customer(people.staff(), number)
    assert run_job(app, client, utcnow() + WEEK) == 1
    send_mail(app, client)
    [reminder] = reminders_to(smtp, "gast@example.com")
    assert reminder["To"].addresses[0].addr_spec == "gast@example.com"
    link = re.search(r"http://\S+/g/\S+", mail_text(reminder))[0]
    assert client.get(urlsplit(link).path).status_code == 200


def test_customers_who_chose_no_mail_are_not_mailed_but_the_clock_runs(
    people, smtp, app, client, settings
):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {"name": "Erika Mustermann", "email": erika.email, "locale": "", "notify": "off"},
    )
    assert response.status_code == 303
    number = open_conversation(erika, "Frage")
    ask_customer(people.staff(), number)
    assert run_job(app, client, utcnow() + WEEK) == 0
    assert state(settings, number)[1] is not None
    assert [e.action for e in history(settings, number)][-1] == "reminder"


def test_two_workers_at_once_remind_once(people, smtp, app, client, settings):
    erika = people.customer()
    number = open_conversation(erika, "Frage")
    ask_customer(people.staff(), number)
    later = utcnow() + WEEK

    async def both():
        return await asyncio.gather(
            reminders.run_due(app.state.db, settings, later),
            reminders.run_due(app.state.db, settings, later),
        )

    assert sorted(client.portal.call(both)) == [0, 1]
    assert [e.action for e in history(settings, number)].count("reminder") == 1


def test_off_by_default_and_when_zero(people, app, client, settings):
    assert Settings.from_env({"BOARD_SECRET_KEY": "k"}).pending_reminder_days == 0
    number = open_conversation(people.customer(), "Frage")
    ask_customer(people.staff(), number)
    off = replace(settings, pending_reminder_days=0)
    assert run_job(app, client, utcnow() + 10 * WEEK, off) == 0
    assert state(settings, number) == ("pending", None)


def test_a_negative_number_of_days_is_refused_at_start(tmp_path):
    env = {"BOARD_DATA_DIR": str(tmp_path), "BOARD_SECRET_KEY": "k"}
    assert Settings.from_env({**env, "BOARD_PENDING_REMINDER_DAYS": "3"}).pending_reminder_days == 3
    with pytest.raises(ValueError, match="BOARD_PENDING_REMINDER_DAYS"):
        Settings.from_env({**env, "BOARD_PENDING_REMINDER_DAYS": "-1"})
