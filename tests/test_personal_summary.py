"""Each staff member's own daily summary: on by default, off on the account page; through
the outbox and a real SMTP server on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from board import schedule
from board.db import conversations, scheduled_jobs, users, utcnow
from tests.conftest import mail_text, wait_for
from tests.test_inbox import execute, open_conversation, rows
from tests.test_mail import answer, settings_overrides  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgresql

QUESTION = "Meine Bestellung 4711 ist kaputt angekommen"


def run_summary(app, client, settings) -> list[str]:
    morning = schedule.todays_moment(settings, settings.summary_hour, utcnow()) + timedelta(
        minutes=5
    )
    execute(settings, scheduled_jobs.delete())
    return client.portal.call(schedule.run_due, app.state.db, settings, morning)


def ticket_of(settings, number: int) -> int:
    [(conversation_id,)] = rows(
        settings, sa.select(conversations.c.id).where(conversations.c.number == number)
    )
    return conversation_id


def test_every_staff_member_gets_their_own_summary(people, smtp, app, client, settings):
    chefin = people.staff()
    sven = people.staff(admin=False)
    erika = people.customer()
    answered = open_conversation(erika, "Frage eins")
    waiting = open_conversation(erika, QUESTION)
    answer(chefin, answered, status="solved")
    [(answered_at,)] = rows(
        settings,
        sa.select(conversations.c.first_response_at).where(conversations.c.number == answered),
    )
    execute(  # Chefin answered two hours after the question
        settings,
        conversations.update()
        .where(conversations.c.number == answered)
        .values(created_at=answered_at - timedelta(hours=2)),
    )
    execute(  # the other request waits for a week, Sven's
        settings,
        conversations.update()
        .where(conversations.c.number == waiting)
        .values(waiting_since=utcnow() - timedelta(days=7), assignee_id=sven.user_id),
    )
    wait_for(lambda: smtp.messages)  # the customer's doorbell
    smtp.messages.clear()

    assert "summary" in run_summary(app, client, settings)
    wait_for(lambda: len(smtp.messages) == 2)
    by_reader = {message["To"].addresses[0].addr_spec: message for message in smtp.messages}
    assert set(by_reader) == {chefin.email, sven.email}

    mine = mail_text(by_reader[chefin.email])  # German: nobody chose a language
    assert "Neue Anfragen: 2" in mine  # the team's figures stay
    assert "Von Ihnen beantwortete Anfragen: 1" in mine
    assert "Von Ihnen gelöste Anfragen: 1" in mine
    assert "Ihre mittlere Zeit bis zur ersten Antwort: 2 Std." in mine
    link = f"{settings.base_url}/staff/t/{waiting}"
    assert f"#{waiting}, 40 Geschäftsstunden" in mine and link in mine  # 5 days of 8 h
    assert "(Ihre)" not in mine  # Sven's, not hers
    assert QUESTION not in mine and "Frage eins" not in mine  # only the doorbell

    his = mail_text(by_reader[sven.email])
    assert "Von Ihnen beantwortete Anfragen: 0" in his
    assert "Ihre mittlere Zeit bis zur ersten Antwort: –" in his
    assert f"#{waiting}, " in his and "(Ihre)" in his and link in his
    html = by_reader[sven.email].get_body(("html",)).get_content()
    assert f'href="{link}"' in html


def test_turned_off_on_the_account_page(people, smtp, app, client, settings):
    chefin = people.staff()
    sven = people.staff(admin=False)
    page = sven.get("/account").text
    assert 'name="personal_summary" value="1" checked' in page  # on by default
    response = sven.submit(
        "/account", {"name": "Sven Support", "email": sven.email, "locale": "en"}
    )
    assert response.status_code == 303
    assert 'name="personal_summary" value="1" checked' not in sven.get("/account").text
    [(personal,)] = rows(
        settings, sa.select(users.c.personal_summary).where(users.c.id == sven.user_id)
    )
    assert personal is False

    run_summary(app, client, settings)
    [summary] = wait_for(lambda: smtp.messages)
    assert summary["To"].addresses[0].addr_spec == chefin.email
    assert "Von Ihnen beantwortete Anfragen" in mail_text(summary)

    # Back on: the next day's run includes him again.
    sven.submit(
        "/account",
        {"name": "Sven Support", "email": sven.email, "locale": "en", "personal_summary": "1"},
    )
    smtp.messages.clear()
    run_summary(app, client, settings)
    wait_for(lambda: len(smtp.messages) == 2)
    english = [m for m in smtp.messages if m["To"].addresses[0].addr_spec == sven.email]
    assert "Requests you answered: 0" in mail_text(english[0])
    assert "No request waits too long." in mail_text(english[0])


def test_a_customer_cannot_turn_it_on(people, settings):
    erika = people.customer()
    response = erika.submit(
        "/account",
        {"name": "Erika", "email": erika.email, "locale": "", "notify": "each",
         "personal_summary": "1", "daily_summary": "1"},
    )  # fmt: skip
    assert response.status_code == 303
    [(daily,)] = rows(settings, sa.select(users.c.daily_summary).where(users.c.id == erika.user_id))
    assert daily is False
    assert 'name="personal_summary"' not in erika.get("/account").text


def test_the_summary_without_csrf_token_changes_nothing(people, settings):
    sven = people.staff(admin=False)
    response = sven.client.post(
        "/account", data={"name": "Sven Support", "email": sven.email, "locale": "en"}
    )
    assert response.status_code in (400, 403)
    [(personal,)] = rows(
        settings, sa.select(users.c.personal_summary).where(users.c.id == sven.user_id)
    )
    assert personal is True
