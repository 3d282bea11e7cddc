"""`python -m board demo` with conversations: every derived column agrees with the messages."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.app import create_app
from board.db import (
    blocked_senders,
    conversation_events,
    conversations,
    messages,
    read_markers,
    sync_engine,
    users,
)
from board.demo import DEMO_PASSWORD, fill_demo
from board.markup import subject_from
from board.setup import initialize
from tests.conftest import csrf_from

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
    conversation_rows, by_conversation, vip, _events, _markers, _blocked = demo
    assert [row.number for row in conversation_rows] == list(range(1001, 1401))
    for row in conversation_rows:
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
