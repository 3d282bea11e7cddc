"""The conversation service (board.conversations): one owner of every conversation write.

Over real HTTP where it is a web path: the flood rule holds for requests that arrive at
the same moment, authorization is decided on the conversation as it is when the write
happens, and the summary columns have one writer.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from board.db import conversations, messages, rate_events
from tests.conftest import csrf_from, register
from tests.test_events import staff, visitor
from tests.test_inbox import execute, rows

pytestmark = pytest.mark.postgresql  # the flood rule's lock differs per database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clients(live_server):
    """HTTP clients of the live server, each closed after the test."""
    opened: list[httpx.Client] = []

    def make(name: str | None = None, email: str | None = None, as_staff: bool = False):
        person = staff(live_server) if as_staff else visitor(live_server)
        opened.append(person)
        if name is not None:
            assert register(person, name, email).status_code == 303
        return person

    yield make
    for person in opened:
        person.close()


def at_once(person: httpx.Client, path: str, bodies: list[str], form_page: str) -> list[int]:
    """Posts every body at the same moment, each with its own valid CSRF token."""
    tokens = [csrf_from(person.get(form_page).text) for _ in bodies]
    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = pool.map(
            lambda pair: person.post(path, data={"csrf_token": pair[0], "body": pair[1]}),
            zip(tokens, bodies, strict=True),
        )
        return sorted(response.status_code for response in responses)


@pytest.mark.parametrize("settings_overrides", [{"flood_seconds": 60}])
def test_simultaneous_new_messages_pass_the_flood_rule_once(clients, settings):
    erika = clients("Erika Mustermann", "erika@example.com")
    bodies = [f"Anliegen Nummer {index}" for index in range(6)]
    statuses = at_once(erika, "/inbox/new", bodies, "/inbox/new")
    assert statuses == [303] + [429] * 5
    assert rows(settings, sa.select(sa.func.count()).select_from(conversations))[0][0] == 1
    counted = rows(settings, sa.select(sa.func.count()).where(rate_events.c.bucket == "message"))
    assert counted[0][0] == 1  # only the message that was written counts


@pytest.mark.parametrize("settings_overrides", [{"flood_seconds": 60}])
def test_simultaneous_replies_pass_the_flood_rule_once(clients, settings):
    erika = clients("Erika Mustermann", "erika@example.com")
    number = 1001
    first = erika.post(
        "/inbox/new",
        data={"csrf_token": csrf_from(erika.get("/inbox/new").text), "body": "Paket fehlt"},
    )
    assert first.headers["location"].endswith(f"/inbox/{number}")
    # The interval has passed for the first message (written directly in the database).
    execute(settings, sa.delete(rate_events))
    page = f"/inbox/{number}"
    statuses = at_once(erika, f"{page}/reply", [f"Nachtrag {i}" for i in range(5)], page)
    assert statuses == [303] + [429] * 4
    written = rows(settings, sa.select(sa.func.count()).select_from(messages))[0][0]
    assert written == 2


def test_a_reply_is_authorized_against_the_conversation_as_it_is_now(clients, settings):
    """The page was loaded while the conversation took replies; staff marked it spam
    before the customer pressed send: nothing is stored."""
    erika = clients("Erika Mustermann", "erika@example.com")
    token = csrf_from(erika.get("/inbox/new").text)
    assert erika.post("/inbox/new", data={"csrf_token": token, "body": "Hallo"}).status_code == 303
    page = erika.get("/inbox/1001").text
    team = clients(as_staff=True)
    form = team.get("/staff/t/1001").text
    marked = team.post(
        "/staff/t/1001/update", data={"csrf_token": csrf_from(form), "status": "spam"}
    )
    assert marked.status_code == 303
    late = erika.post(
        "/inbox/1001/reply", data={"csrf_token": csrf_from(page), "body": "Noch eine Frage"}
    )
    assert late.status_code == 403
    assert rows(settings, sa.select(sa.func.count()).select_from(messages))[0][0] == 1


def test_staff_changes_refuse_a_deactivated_assignee_with_a_form_message(people, settings):
    erika = people.customer()
    assert erika.submit("/inbox/new", {"body": "Hallo"}, form_page="/inbox/new").status_code == 303
    admin = people.staff()
    colleague = people.staff(admin=False)
    page = "/staff/t/1001"
    token = csrf_from(admin.get(page).text)
    execute(
        settings,
        sa.text("UPDATE users SET is_active = :no WHERE id = :id").bindparams(
            no=False, id=colleague.user_id
        ),
    )
    handed = admin.client.post(
        f"{page}/update", data={"csrf_token": token, "assignee": str(colleague.user_id)}
    )
    assert handed.status_code == 400
    assert "aktive" in handed.text  # "Bitte wählen Sie ein aktives Teammitglied."
    assignee = rows(settings, sa.select(conversations.c.assignee_id))[0][0]
    assert assignee != colleague.user_id


def test_only_the_conversation_service_writes_the_summary_columns():
    """One writer: `grep` finds the columns written only in board/conversations."""
    columns = (
        "last_message_at",
        "last_customer_message_at",
        "first_response_at",
        "message_count",
        "last_public_message_id",
        "last_public_author_id",
        "waiting_since",
    )
    pattern = "|".join(rf"{column}\s*=[^=]|[\"']{column}[\"']\s*:" for column in columns)
    found = subprocess.run(
        ["grep", "-rnE", pattern, "board", "--include=*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    writers = {line.split(":", 1)[0] for line in found}
    # The data export names them as keys of what it reads; migrations define the schema.
    outside = {
        path
        for path in writers
        if not path.startswith("board/conversations/")
        and not path.startswith("board/migrations/")
        and path != "board/accounts/export.py"
    }
    assert outside == set(), found
    assert re.search(r"summary\.py", " ".join(writers))


def test_the_queue_counts_follow_every_write(people, settings, client):
    """The counter table the queue's tabs read is kept by triggers in each write's
    transaction: it equals a count over the conversations after opening, answering,
    assigning, closing, spam and a guest's message."""
    from board.db import queue_counts

    erika, staff = people.customer(), people.staff()
    # Counted per request type too (0: none): two of the three name one.
    for text, type_id in (("Erste Frage", "1"), ("Zweite Frage", "2"), ("Dritte Frage", "")):
        written = erika.submit(
            "/inbox/new", {"body": text, "type": type_id}, form_page="/inbox/new"
        )
        assert written.status_code == 303
    page = client.get("/contact").text
    guest = client.post(
        "/contact",
        data={
            "csrf_token": csrf_from(page),
            "name": "Gast",
            "email": "g@example.com",
            "body": "Hi",
        },
    )
    assert guest.status_code == 303
    form = "/staff/t/1001"
    assert staff.submit(f"{form}/reply", {"body": "Antwort"}, form_page=form).status_code == 303
    assert (
        staff.submit(
            "/staff/t/1002/update", {"status": "solved"}, form_page="/staff/t/1002"
        ).status_code
        == 303
    )
    assert (
        staff.submit(
            "/staff/t/1003/update", {"assignee": "none"}, form_page="/staff/t/1003"
        ).status_code
        == 303
    )
    assert (
        staff.submit(
            "/staff/t/1004/update", {"status": "spam"}, form_page="/staff/t/1004"
        ).status_code
        == 303
    )
    assert (
        staff.submit(
            "/staff/announce", {"body": "Neue Öffnungszeiten"}, form_page="/staff/announce"
        ).status_code
        == 303
    )

    kept = {
        (row.status, row.assignee_id, row.type_id): row.n
        for row in rows(settings, sa.select(queue_counts))
    }
    counted = {
        (row.status, row.assignee or 0, row.type_id or 0): row.n
        for row in rows(
            settings,
            sa.select(
                conversations.c.status,
                conversations.c.assignee_id.label("assignee"),
                conversations.c.type_id,
                sa.func.count().label("n"),
            )
            .where(conversations.c.kind == "support")
            .group_by(conversations.c.status, conversations.c.assignee_id, conversations.c.type_id),
        )
    }
    assert {type_id for _status, _assignee, type_id in kept} == {0, 1, 2}
    assert kept == counted
    assert sum(kept.values()) == 4  # the announcement is not a request
    assert 0 not in kept.values()
