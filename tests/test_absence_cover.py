"""Absence cover through HTTP and the handover job: a deputy and an availability note per
staff member, the work handed over when an absence starts (at its start time, once, with
its history), and the notice the returning person sees and dismisses."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.app import create_app
from board.db import (
    absences,
    conversation_events,
    conversations,
    handovers,
    sync_engine,
    users,
    utcnow,
)
from board.setup import create_staff
from board.staff import handover
from tests.conftest import Person, csrf_from, login, user_row, wait_for
from tests.test_inbox import execute, open_conversation, rows


@pytest.fixture
def third(settings, new_client):
    """A third staff member, so that the rotation has somebody left when two are away."""
    email, password = "lena@shop.example", "lena-passwort-1"
    engine = sync_engine(settings)
    with engine.begin() as connection:
        create_staff(connection, email, "Lena Lager", password=password)
    engine.dispose()
    visitor = new_client()
    visitor.headers["accept-language"] = "en"
    assert login(visitor, email, password).status_code == 303
    return Person(visitor, user_row(settings, email).id, email, password)


def set_cover(person: Person, deputy: str, note: str = ""):
    return person.submit(
        "/staff/team/cover", {"deputy": deputy, "availability_note": note}, form_page="/staff/team"
    )


def give(admin: Person, number: int, assignee: Person, status: str | None = None) -> None:
    data = {"assignee": str(assignee.user_id)}
    if status:
        data["status"] = status
    response = admin.submit(f"/staff/t/{number}/update", data)
    assert response.status_code == 303, response.text[:500]


def assignee_of(settings, number: int) -> int | None:
    return rows(
        settings,
        sa.select(conversations.c.assignee_id).where(conversations.c.number == number),
    )[0][0]


def handover_events(settings, number: int) -> list:
    return rows(
        settings,
        sa.select(
            conversation_events.c.actor_id,
            conversation_events.c.old_value,
            conversation_events.c.new_value,
        )
        .join(conversations, conversations.c.id == conversation_events.c.conversation_id)
        .where(conversations.c.number == number, conversation_events.c.action == "handover")
        .order_by(conversation_events.c.id),
    )


def absence_from(settings, person: Person, starts_in: timedelta, days: int = 3) -> int:
    """An absence of `person` starting `starts_in` from now (negative: already begun)."""
    starts_at = utcnow() + starts_in
    engine = sync_engine(settings)
    with engine.begin() as connection:
        absence_id = connection.execute(
            absences.insert().values(
                user_id=person.user_id,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(days=days),
                note="",
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    engine.dispose()
    return absence_id


def starts_at(settings, absence_id: int):
    return rows(settings, sa.select(absences.c.starts_at).where(absences.c.id == absence_id))[0][0]


def handed_over_notice(person: Person, path: str = "/staff/home") -> str:
    """The notice of handed-over conversations on the page, empty when there is none."""
    page = person.get(path).text
    if 'id="handed-over"' not in page:
        return ""
    return page.split('id="handed-over"')[1].split("</section>")[0]


def hand_over(app, client, now) -> int:
    return client.portal.call(handover.hand_over_due, app.state.db, now)


# --- deputy and availability note --------------------------------------------------------


def test_staff_name_a_deputy_and_a_note_that_colleagues_see(admin, sven, settings):
    response = set_cover(sven, str(admin.user_id), "Mo–Mi vormittags")
    assert response.status_code == 303
    row = user_row(settings, sven.email)
    assert (row.deputy_id, row.availability_note) == (admin.user_id, "Mo–Mi vormittags")
    team = admin.get("/staff/team").text
    assert "Mo–Mi vormittags" in team and "Deputy: Sven Support" not in team
    member_row = team.split(f'id="member-{sven.user_id}"')[1].split("</tr>")[0]
    assert "Mo–Mi vormittags" in member_row and "Deputy: " in member_row
    # Nobody: the rotation takes over again.
    assert set_cover(sven, "", "").status_code == 303
    row = user_row(settings, sven.email)
    assert (row.deputy_id, row.availability_note) == (None, "")


def test_the_note_is_shown_where_work_is_assigned(admin, sven, people, settings):
    set_cover(sven, "", "nur vormittags")
    number = open_conversation(people.customer())
    page = admin.get(f"/staff/t/{number}").text
    option = page.split(f'<option value="{sven.user_id}"')[1].split("</option>")[0]
    assert "Sven Support" in option and "(nur vormittags)" in option


@pytest.mark.parametrize(
    ("deputy", "message"),
    [
        ("self", "You cannot be your own deputy."),
        ("customer", "Please choose an active staff member."),
        ("deactivated", "Please choose an active staff member."),
        ("nonsense", "Please choose an active staff member."),
        ("999999", "Please choose an active staff member."),
    ],
)
def test_a_deputy_must_be_another_active_staff_member(
    admin, sven, third, people, settings, deputy, message
):
    customer = people.customer()
    execute(settings, users.update().where(users.c.id == third.user_id).values(is_active=False))
    value = {
        "self": str(sven.user_id),
        "customer": str(customer.user_id),
        "deactivated": str(third.user_id),
        "nonsense": "Sven",
    }.get(deputy, deputy)
    response = set_cover(sven, value, "Di frei")
    assert response.status_code == 400
    assert message in response.text
    assert 'value="Di frei"' in response.text  # the rest of the input stays
    assert user_row(settings, sven.email).deputy_id is None


def test_a_long_note_is_refused_with_the_input_kept(sven, admin, settings):
    response = set_cover(sven, str(admin.user_id), "x" * 121)
    assert response.status_code == 400
    assert "at most 120 characters" in response.text
    assert f'<option value="{admin.user_id}" selected>' in response.text
    assert user_row(settings, sven.email).availability_note == ""


def test_cover_is_set_only_by_staff_for_themselves_with_a_token(admin, sven, people, client):
    customer = people.customer()
    token = csrf_from(customer.get("/").text)
    refused = customer.client.post("/staff/team/cover", data={"csrf_token": token, "deputy": ""})
    assert refused.status_code == 403
    anonymous = client.post("/staff/team/cover", data={"csrf_token": "x", "deputy": ""})
    assert anonymous.status_code in (401, 403)
    no_token = sven.client.post("/staff/team/cover", data={"deputy": str(admin.user_id)})
    assert no_token.status_code == 403
    assert user_row(client.app.state.settings, sven.email).deputy_id is None
    # A field naming somebody else's account is ignored: each sets only their own.
    set_cover(admin, str(sven.user_id), "")
    assert user_row(client.app.state.settings, sven.email).deputy_id is None


# --- the handover at an absence's start --------------------------------------------------


@pytest.mark.postgresql
def test_open_and_pending_work_goes_to_the_deputy_when_the_absence_starts(
    app, client, admin, sven, people, settings
):
    set_cover(sven, str(admin.user_id))
    erika = people.customer()
    waiting, asked, done = (open_conversation(erika, f"Frage {n}") for n in range(3))
    give(admin, waiting, sven)
    give(admin, asked, sven, "pending")
    give(admin, done, sven, "solved")
    absence_id = absence_from(settings, sven, timedelta(hours=5))
    start = starts_at(settings, absence_id)

    # Before the start: nothing moves, however often the job looks.
    assert hand_over(app, client, start - timedelta(seconds=1)) == 0
    assert assignee_of(settings, waiting) == sven.user_id

    assert hand_over(app, client, start + timedelta(seconds=1)) == 2
    assert assignee_of(settings, waiting) == admin.user_id
    assert assignee_of(settings, asked) == admin.user_id
    assert assignee_of(settings, done) == sven.user_id  # solved work stays where it was
    admin_name = user_row(settings, admin.email).name
    assert handover_events(settings, waiting) == [(None, "Sven Support", admin_name)]
    assert handover_events(settings, done) == []
    # Once: a restart, or the next round, finds the absence handed over.
    assert hand_over(app, client, start + timedelta(minutes=1)) == 0
    assert len(handover_events(settings, waiting)) == 1
    history = admin.get(f"/staff/t/{waiting}").text
    assert "handed over for an absence" in history and "Sven Support" in history
    # The deputy hears of it like of any assignment.
    assert f"#{waiting}" in admin.get("/notifications").text


@pytest.mark.postgresql
def test_without_a_present_deputy_the_rotation_takes_the_work(
    app, client, admin, sven, third, people, settings
):
    set_cover(sven, str(admin.user_id))
    erika = people.customer()
    numbers = [open_conversation(erika, f"Frage {n}") for n in range(2)]
    for number in numbers:
        give(admin, number, sven)
    absence_from(settings, admin, timedelta(hours=-1))  # the deputy is away too
    execute(
        settings,
        absences.update()
        .where(absences.c.user_id == admin.user_id)
        .values(handed_over_at=utcnow()),
    )
    absence_id = absence_from(settings, sven, timedelta(hours=1))
    assert hand_over(app, client, starts_at(settings, absence_id)) == 2
    # Lena is the only one present: the rotation gives her both.
    assert [assignee_of(settings, number) for number in numbers] == [third.user_id] * 2
    assert handover_events(settings, numbers[0])[0][1:] == ("Sven Support", "Lena Lager")


def test_with_nobody_present_the_work_is_left_unassigned(
    app, client, admin, sven, people, settings
):
    number = open_conversation(people.customer())
    give(admin, number, sven)
    execute(settings, users.update().where(users.c.id == admin.user_id).values(accepting=False))
    absence_id = absence_from(settings, sven, timedelta(hours=1))
    assert hand_over(app, client, starts_at(settings, absence_id)) == 1
    assert assignee_of(settings, number) is None
    assert handover_events(settings, number)[0][1:] == ("Sven Support", None)
    notice = handed_over_notice(sven)
    assert f"#{number}" in notice and "to nobody (nobody was available)" in notice


@pytest.mark.postgresql
def test_two_workers_at_the_same_moment_hand_over_once(app, client, admin, sven, people, settings):
    set_cover(sven, str(admin.user_id))
    erika = people.customer()
    numbers = [open_conversation(erika, f"Frage {n}") for n in range(3)]
    for number in numbers:
        give(admin, number, sven)
    absence_id = absence_from(settings, sven, timedelta(hours=1))
    moment = starts_at(settings, absence_id) + timedelta(seconds=1)

    async def two_workers():
        return await asyncio.gather(
            handover.hand_over_due(app.state.db, moment),
            handover.hand_over_due(app.state.db, moment),
        )

    assert sorted(client.portal.call(two_workers)) == [0, 3]
    assert all(len(handover_events(settings, number)) == 1 for number in numbers)
    assert len(rows(settings, sa.select(handovers.c.id))) == 3


def test_the_running_app_hands_over_at_the_start_time(admin, sven, people, settings):
    """No request and no hand on the clock: the job in the app's lifespan wakes at the
    absence's start, two seconds from now, and moves the work."""
    set_cover(sven, str(admin.user_id))
    number = open_conversation(people.customer())
    give(admin, number, sven)
    absence_from(settings, sven, timedelta(seconds=2))
    # A worker that starts now (as after a restart) knows of the absence ahead.
    with TestClient(create_app(settings)):
        assert assignee_of(settings, number) == sven.user_id
        started = time.monotonic()
        wait_for(lambda: assignee_of(settings, number) == admin.user_id, timeout=15)
        assert time.monotonic() - started < 10  # at the start, not at the next minute
    assert len(handover_events(settings, number)) == 1


# --- the returning person's notice -------------------------------------------------------


def test_the_returning_person_sees_what_was_handed_over_and_dismisses_it(
    app, client, admin, sven, people, settings
):
    set_cover(sven, str(admin.user_id))
    erika = people.customer()
    first, second = (open_conversation(erika, f"Paket {n} fehlt") for n in range(2))
    give(admin, first, sven)
    give(admin, second, admin)  # not Sven's, whatever the rotation chose
    absence_id = absence_from(settings, sven, timedelta(hours=1))
    hand_over(app, client, starts_at(settings, absence_id))

    notice = handed_over_notice(sven)
    assert "While you were away, 1 conversation was handed over" in notice
    assert f"#{first}" in notice and "Paket 0 fehlt" in notice
    assert f"#{second}" not in notice
    assert f"to {user_row(settings, admin.email).name}" in notice
    assert f"#{first}" in handed_over_notice(sven, "/staff")  # above the queue too
    # Only the one who was away sees it.
    assert handed_over_notice(admin) == ""

    shown_up_to = rows(settings, sa.select(sa.func.max(handovers.c.id)))[0][0]
    # Meanwhile a second absence hands over more: the dismissal covers what was shown.
    give(admin, second, sven)
    later = absence_from(settings, sven, timedelta(days=5))
    hand_over(app, client, starts_at(settings, later))

    no_token = sven.client.post("/staff/handovers/dismiss", data={"up_to": str(shown_up_to)})
    assert no_token.status_code == 403
    bad = sven.submit("/staff/handovers/dismiss", {"up_to": "alles"}, form_page="/staff/home")
    assert bad.status_code == 400
    # Somebody else's dismissal hides nothing of Sven's.
    admin.submit("/staff/handovers/dismiss", {"up_to": "999999"}, form_page="/staff/home")
    assert f"#{first}" in handed_over_notice(sven)

    done = sven.submit(
        "/staff/handovers/dismiss", {"up_to": str(shown_up_to)}, form_page="/staff/home"
    )
    assert done.status_code == 303
    notice = handed_over_notice(sven)
    assert f"#{first}" not in notice and f"#{second}" in notice
    # No move back when the absence ends: the work stays with the deputy.
    assert assignee_of(settings, first) == admin.user_id


def test_the_notice_lists_its_rows_in_one_query(app, client, admin, sven, people, settings):
    from tests.conftest import count_statements, page_selects

    erika = people.customer()
    numbers = [open_conversation(erika, f"Frage {n}") for n in range(4)]
    for number in numbers:
        give(admin, number, sven)
    absence_id = absence_from(settings, sven, timedelta(hours=1))
    hand_over(app, client, starts_at(settings, absence_id))
    statements: list[str] = []
    count_statements(app, client, statements)
    notice = handed_over_notice(sven)
    assert all(f"#{number}" in notice for number in numbers)
    assert len([sql for sql in page_selects(statements) if "FROM handovers" in sql]) == 1


def test_an_absence_entered_for_today_hands_over_at_once(admin, sven, people, settings):
    """The form's absence starts at the beginning of today, already past: the worker
    that stored it hands over now, not at its next minute."""
    set_cover(sven, str(admin.user_id))
    number = open_conversation(people.customer())
    give(admin, number, sven)
    today = datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
    response = sven.submit(
        "/staff/team/absences", {"starts": today, "ends": today}, form_page="/staff/team"
    )
    assert response.status_code == 303
    wait_for(lambda: assignee_of(settings, number) == admin.user_id, timeout=5)
    assert len(handover_events(settings, number)) == 1


def test_removing_the_absence_afterwards_keeps_the_notice_and_the_work_where_it_went(
    app, client, admin, sven, people, settings
):
    set_cover(sven, str(admin.user_id))
    number = open_conversation(people.customer())
    give(admin, number, sven)
    absence_id = absence_from(settings, sven, timedelta(hours=-1))
    hand_over(app, client, utcnow())
    response = sven.submit(f"/staff/team/absences/{absence_id}/delete", {}, form_page="/staff/team")
    assert response.status_code == 303
    assert rows(settings, sa.select(absences.c.id).where(absences.c.id == absence_id)) == []
    assert f"#{number}" in handed_over_notice(sven)
    assert assignee_of(settings, number) == admin.user_id
