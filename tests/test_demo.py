"""`python -m board demo`: every derived column agrees with the messages; titles, canned
replies, the example customer's inbox, the command's help and its progress output."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.__main__ import build_parser
from board.app import create_app
from board.db import (
    blocked_senders,
    canned_replies,
    conversation_events,
    conversations,
    messages,
    notifications,
    read_markers,
    sync_engine,
    topics,
    users,
)
from board.demo import DEMO_PASSWORD, fill_demo
from board.markup import subject_from
from board.setup import initialize
from board.staff import canned
from tests.conftest import csrf_from, database_env, login

ROOT = Path(__file__).resolve().parent.parent

STAFF_ROLES = ("staff", "admin")


def read_demo(settings):
    engine = sync_engine(settings)
    with engine.connect() as connection:
        conversation_rows = connection.execute(
            sa.select(conversations).order_by(conversations.c.number)
        ).all()
        message_rows = connection.execute(
            sa.select(messages, users.c.role.label("author_role"))
            .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
            .order_by(messages.c.id)
        ).all()
        vip = dict(connection.execute(sa.select(users.c.id, users.c.vip)).all())
        events = connection.execute(sa.select(conversation_events)).all()
        markers = connection.execute(sa.select(read_markers)).all()
        blocked = connection.execute(sa.select(blocked_senders)).all()
    engine.dispose()
    by_conversation = defaultdict(list)
    for message in message_rows:
        by_conversation[message.conversation_id].append(message)
    return conversation_rows, by_conversation, vip, events, markers, blocked


@pytest.fixture
def demo(settings):
    initialize(settings)
    fill_demo(settings, customers=40, topics=10, posts=30, conversations=400, seed=3)
    return read_demo(settings)


def test_demo_conversations_have_consistent_derived_columns(demo):
    conversation_rows, by_conversation, vip, _events, markers, _blocked = demo
    assert [row.number for row in conversation_rows] == list(range(1001, 1401))
    read_up_to = {(m.user_id, m.conversation_id): m.last_read_message_id for m in markers}
    for row in conversation_rows:
        # The unread badge counts from the mirror of the customer's own marker.
        assert row.customer_read_message_id == read_up_to.get((row.customer_id, row.id))
        thread = by_conversation[row.id]
        assert 1 <= len([m for m in thread if not m.internal]) <= 8, row.number
        assert [m.created_at for m in thread] == sorted(m.created_at for m in thread)
        public = [m for m in thread if not m.internal]
        from_staff = [m for m in public if m.author_role in STAFF_ROLES]
        from_customer = [m for m in thread if m.author_role not in STAFF_ROLES]
        assert all(m.author_role in STAFF_ROLES for m in thread if m.internal)
        assert row.message_count == len(public)
        assert row.last_public_message_id == max(m.id for m in public)
        assert row.last_public_author_id == public[-1].author_id
        assert row.created_at == thread[0].created_at
        assert row.last_message_at == public[-1].created_at  # a note is no activity
        assert row.last_customer_message_at == (
            from_customer[-1].created_at if from_customer else None
        )
        assert row.first_response_at == (from_staff[0].created_at if from_staff else None)
        assert (row.subject, row.subject_cut) == subject_from(public[0].body)
        assert row.vip == (vip[row.customer_id] if row.customer_id else False)
        if row.status == "open":
            assert from_customer[-1].id == public[-1].id  # the customer waits for an answer
            answered_at = from_staff[-1].created_at if from_staff else None
            assert row.waiting_since == next(
                m.created_at
                for m in from_customer
                if answered_at is None or m.created_at > answered_at
            )
        else:
            assert row.waiting_since is None
        if row.status == "pending":
            assert public[-1].author_role in STAFF_ROLES
        if row.customer_id is None:
            assert row.kind == "support" and row.guest_name and "@" in row.guest_email
            assert len(row.guest_token_hash) == 64 and all(
                m.author_id is None for m in from_customer
            )
        else:
            assert row.guest_name is None and row.guest_token_hash is None
            assert all(m.author_id == row.customer_id for m in from_customer)
        if row.kind == "invoice":
            assert row.status == "solved" and public[0].author_role in STAFF_ROLES
        if from_staff or row.status != "open":
            assert row.assignee_id is not None


def test_demo_conversations_are_a_realistic_mix(demo):
    conversation_rows, by_conversation, _vip, events, markers, blocked = demo
    statuses = defaultdict(int)
    for row in conversation_rows:
        statuses[row.status] += 1
    assert set(statuses) == {"open", "pending", "solved", "spam"}
    assert statuses["solved"] > statuses["pending"] > statuses["open"] > statuses["spam"]
    assert {row.kind for row in conversation_rows} == {"support", "invoice"}
    assert any(row.customer_id is None for row in conversation_rows)  # guests
    assert any(row.status == "open" and row.assignee_id is None for row in conversation_rows)
    assert any(m.internal for thread in by_conversation.values() for m in thread)
    assert max(row.message_count for row in conversation_rows) > 4
    ages = sorted(row.created_at for row in conversation_rows)
    assert (ages[-1] - ages[0]).days > 200  # spread over the year, up to the last days
    assert any(e.action == "status" and e.new_value == "solved" for e in events)
    assert any(e.action == "assignee" for e in events)
    spam_guests = {r.guest_email for r in conversation_rows if r.status == "spam" and r.guest_email}
    assert {row.email for row in blocked} == spam_guests
    ids = {row.id: row for row in conversation_rows}
    assert all(
        m.last_read_message_id <= ids[m.conversation_id].last_public_message_id for m in markers
    )


def test_demo_runs_again_with_ticket_numbers_after_the_highest(settings):
    initialize(settings)
    fill_demo(settings, customers=10, topics=0, posts=0, conversations=30)
    fill_demo(settings, customers=0, topics=0, posts=0, conversations=20)
    conversation_rows = read_demo(settings)[0]
    assert [row.number for row in conversation_rows] == list(range(1001, 1051))


def test_a_demo_customer_sees_their_conversations(settings):
    initialize(settings)
    fill_demo(settings, customers=5, topics=0, posts=0, conversations=60)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        customer_id, email, number = connection.execute(
            sa.select(users.c.id, users.c.email, sa.func.max(conversations.c.number))
            .join(conversations, conversations.c.customer_id == users.c.id)
            .group_by(users.c.id)
            .limit(1)
        ).one()
    engine.dispose()
    with TestClient(create_app(settings), follow_redirects=False) as visitor:
        token = csrf_from(visitor.get("/login").text)
        login = {"login": email, "password": DEMO_PASSWORD, "csrf_token": token}
        assert visitor.post("/login", data=login).status_code == 303
        assert f"#{number}" in visitor.get("/inbox").text
        assert visitor.get(f"/inbox/{number}").status_code == 200
    assert customer_id


def test_demo_staff_answer_in_opening_hours(demo, settings):
    """The team writes while the shop is open (weekdays 9–17 in Berlin by default), so the
    statistics' first response in business hours is no zero on demo data. Only answers
    that would have to wait for an opening after now stay where they are."""
    _rows, by_conversation, *_ = demo
    office = settings.office
    answers = [
        message
        for thread in by_conversation.values()
        for message in thread
        if message.author_role in STAFF_ROLES
    ]
    in_hours = [
        message
        for message in answers
        # Open at that moment: one second onward is one business second.
        if office.hours_between(message.created_at, message.created_at + timedelta(seconds=1))
    ]
    assert len(in_hours) / len(answers) > 0.8  # was a fifth, around the clock
    first_waits = sorted(
        office.hours_between(row.created_at, row.first_response_at)
        for row in _rows
        if row.kind == "support" and row.first_response_at is not None
    )
    assert first_waits[len(first_waits) // 2] > 0.1  # the median: minutes, not zero


# --- titles, canned replies, the example customer ------------------------------------------


def topic_titles(settings) -> list[str]:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        titles = list(connection.execute(sa.select(topics.c.title)).scalars())
    engine.dispose()
    return titles


def test_demo_topic_titles_are_unique_at_five_thousand_topics_and_after_a_second_run(settings):
    """93 titles in the pools: the 94th topic and later name a product, carrier or payment
    after the title, never a counter such as "(2)"."""
    initialize(settings)
    fill_demo(settings, customers=60, topics=5000, posts=5000, conversations=0)
    fill_demo(settings, customers=0, topics=400, posts=400, conversations=0)
    titles = [title.removeprefix("[Gelöst] ") for title in topic_titles(settings)]
    assert len(titles) == 5401  # the welcome topic too
    assert len(set(titles)) == len(titles)
    assert not [title for title in titles if re.search(r"\(\d+\)$", title)]
    with_detail = [title for title in titles if title.endswith(")")]
    assert len(with_detail) > 4000 and any(" und " in title for title in with_detail)


def test_demo_canned_replies_are_valid_and_written_once(settings, capsys):
    initialize(settings)
    fill_demo(settings, customers=5, topics=0, posts=0, conversations=0)
    assert "9 canned replies" in capsys.readouterr().out
    fill_demo(settings, customers=5, topics=0, posts=0, conversations=0)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        replies = connection.execute(
            sa.select(canned_replies, users.c.email)
            .join(users, users.c.id == canned_replies.c.created_by)
            .order_by(canned_replies.c.shortcut)
        ).all()
    engine.dispose()
    assert 6 <= len(replies) <= 10  # a second run added none
    shortcuts = {reply.shortcut for reply in replies}
    assert {"versand", "retoure"} <= shortcuts
    used = set()
    for reply in replies:
        assert canned.is_valid_shortcut(reply.shortcut), reply.shortcut
        assert reply.title and reply.email.endswith("@shop.example")
        assert canned.unknown_placeholders(reply.body) == [], reply.shortcut
        used.update(re.findall(r"\{(\w+)\}", reply.body))
        assert "{agent}" in reply.body, reply.shortcut  # signed by whoever sends it
    assert used == {"vorname", "name", "ticket", "agent", "order"}


def example_customer(capsys) -> tuple[str, int]:
    printed = capsys.readouterr().out
    match = re.search(r"Example customer login: (\S+) or customer number (\d+)", printed)
    assert match, printed
    return match[1], int(match[2])


@pytest.mark.postgresql  # the demo writes ids itself: the site's next ones follow
def test_the_example_customer_meets_every_state_an_unread_answer_and_notifications(
    settings, capsys
):
    initialize(settings)
    fill_demo(settings, customers=40, topics=10, posts=30, conversations=80, seed=7)
    email, number = example_customer(capsys)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        customer_id = connection.execute(
            sa.select(users.c.id).where(users.c.customer_number == number, users.c.email == email)
        ).scalar_one()
        marker = sa.func.coalesce(
            sa.select(read_markers.c.last_read_message_id)
            .where(
                read_markers.c.conversation_id == conversations.c.id,
                read_markers.c.user_id == customer_id,
            )
            .scalar_subquery(),
            0,
        )
        inbox = connection.execute(
            sa.select(
                conversations, (conversations.c.last_public_message_id > marker).label("unread")
            ).where(conversations.c.customer_id == customer_id)
        ).all()
        bell = connection.execute(
            sa.select(notifications.c.kind, notifications.c.read_at).where(
                notifications.c.user_id == customer_id
            )
        ).all()
    engine.dispose()
    support = [row for row in inbox if row.kind == "support"]
    states = {row.status for row in support}
    assert {"open", "pending", "solved"} <= states
    waiting = [row for row in support if row.status == "open"]
    assert any(row.first_response_at is None for row in waiting)  # nobody answered yet
    assert any(row.first_response_at is not None for row in waiting)  # answered, asked again
    assert any(row.kind == "invoice" for row in inbox)
    unread = [row for row in inbox if row.unread]
    assert any(row.status == "pending" for row in unread)
    assert any(read_at is None for _kind, read_at in bell)  # the bell rings
    assert any(read_at is not None for _kind, read_at in bell)  # and has history
    assert {"answer", "invoice"} <= {kind for kind, _read_at in bell}

    # What the customer sees after logging in with the printed customer number.
    with TestClient(create_app(settings), follow_redirects=False) as visitor:
        assert login(visitor, str(number), DEMO_PASSWORD).status_code == 303
        page = visitor.get("/notifications").text
        badge = int(re.search(r'id="unread-count"[^>]*>(\d+)<', page)[1])
        assert badge == len(unread)
        pending = next(row for row in unread if row.status == "pending")
        shown = visitor.get(f"/inbox/{pending.number}")
        assert shown.status_code == 200 and "Antwort liegt vor" in shown.text
        for status, label in (("open", "Wartet auf unsere Antwort"), ("done", "Erledigt")):
            assert label in visitor.get(f"/inbox?kind=support&status={status}").text


@pytest.mark.postgresql  # the demo writes ids itself: the site's next ones follow
def test_demo_staff_answer_the_example_customer_with_a_canned_reply(settings, capsys):
    initialize(settings)
    fill_demo(settings, customers=10, topics=0, posts=0, conversations=20, seed=2)
    email, _number = example_customer(capsys)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        customer = connection.execute(sa.select(users).where(users.c.email == email)).one()
        ticket = connection.execute(
            sa.select(sa.func.max(conversations.c.number)).where(
                conversations.c.customer_id == customer.id, conversations.c.status == "open"
            )
        ).scalar_one()
    engine.dispose()
    staff_email = "tobias.keller@shop.example"
    with TestClient(create_app(settings), follow_redirects=False) as staff:
        assert login(staff, staff_email, DEMO_PASSWORD).status_code == 303
        page = staff.get(f"/staff/t/{ticket}").text
        sent = staff.post(
            f"/staff/t/{ticket}/reply",
            data={"csrf_token": csrf_from(page), "body": "#danke", "status": "solved"},
        )
        assert sent.status_code == 303, sent.text
    engine = sync_engine(settings)
    with engine.connect() as connection:
        body = connection.execute(
            sa.select(messages.c.body).order_by(messages.c.id.desc()).limit(1)
        ).scalar_one()
    engine.dispose()
    first_name = customer.name.split()[0]
    assert body.startswith(f"Hallo {first_name},") and f"Anfrage #{ticket}." in body
    assert body.endswith("Tobias Keller") and "{" not in body


# --- the command ---------------------------------------------------------------------------


def test_every_demo_option_explains_itself():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    demo = commands.choices["demo"]
    options = [action for action in demo._actions if action.dest != "help"]
    assert {action.dest for action in options} >= {"customers", "topics", "posts", "conversations"}
    for action in options:
        assert action.help and len(action.help) > 15, action.dest
    assert demo.description


def test_demo_progress_through_a_pipe_is_one_line_per_phase(tmp_path):
    """In a CI log every redraw of a progress bar is a line of its own; through a pipe the
    command says once per phase what it did."""
    env = {"PATH": "/usr/bin:/bin", "BOARD_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    env.update(database_env())
    result = subprocess.run(
        [sys.executable, "-m", "board", "demo", "--customers", "30", "--topics", "40"]
        + ["--posts", "400", "--conversations", "200"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in re.split(r"[\r\n]+", result.stderr) if line.strip()]
    phases = ("Demo posts", "Demo conversations", "Search index")
    for phase in phases:
        assert len([line for line in lines if line.startswith(phase)]) == 1, lines
    assert "Demo posts: 400 posts in" in result.stderr
    assert "%|" not in result.stderr  # no bar drawn into the log
    assert "Example customer login" in result.stdout


def test_the_readme_shows_screenshots_that_exist_and_stay_small():
    """scripts/screenshots.py writes them; the README shows three near the top."""
    from PIL import Image

    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"!\[([^\]]+)\]\((docs/screenshots/[\w-]+\.png)\)", readme)
    assert len(shown) >= 3 and all(len(alt) > 20 for alt, _path in shown)
    assert readme.index("docs/screenshots/") < readme.index("## Start it")
    assert "python scripts/screenshots.py" in readme
    folder = ROOT / "docs" / "screenshots"
    sizes = {"desktop": (1366, 900), "phone": (390, 844)}
    pages = ("forum", "topic", "search", "inbox", "inbox-conversation", "inbox-new")
    pages += ("staff-queue", "staff-conversation", "staff-stats")
    for page in pages:
        for device, size in sizes.items():
            with Image.open(folder / f"{page}-{device}.png") as image:
                assert image.size == size, (page, device)
    for _alt, path in shown:
        assert (ROOT / path).is_file(), path
    assert sum(path.stat().st_size for path in folder.glob("*.png")) < 4 * 1024 * 1024
