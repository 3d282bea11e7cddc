"""Statistics on a history built by hand, whose right answers are worked out below.

The shop is in Europe/Berlin, open Monday to Friday 9-17. The period is the week from
Monday 2 March to Sunday 8 March 2026 (CET, UTC+1); every time below is Berlin time.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from board.db import (
    conversation_events,
    conversations,
    messages,
    posts,
    stats_hours,
    sync_engine,
    topics,
    users,
)
from board.hours import BusinessHours
from board.staff.calendar import AHEAD, calendar_rows, ensure_calendar
from board.staff.stats_page import PeriodError, parse_period

# Runs on PostgreSQL too: the statistics' SQL is spelled per database (hours between times,
# LEAST/GREATEST).
pytestmark = pytest.mark.postgresql

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = {"from": "2026-03-02", "to": "2026-03-08"}


def local(text: str) -> datetime:
    """'2026-03-02 10:00' in Berlin → the naive UTC time the database stores."""
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BERLIN)
    return moment.astimezone(UTC).replace(tzinfo=None)


class History:
    """Writes rows as the app does: messages keep first_response_at, status changes go to
    the status history."""

    def __init__(self, connection):
        self.connection = connection
        self.next_number = 9000
        self.customers = 0

    def person(self, name: str, role: str, created: str) -> int:
        number = None
        if role == "customer":
            self.customers += 1
            number = 50_000 + self.customers
        return self.connection.execute(
            users.insert().values(
                name=name,
                email=f"{name.lower().replace(' ', '.')}@example.com",
                role=role,
                customer_number=number,
                password_hash="x",
                created_at=local(created),
            )
        ).inserted_primary_key[0]

    def conversation(self, created: str, customer: int | None, kind="support", status="open"):
        self.next_number += 1
        conversation_id = self.connection.execute(
            conversations.insert().values(
                number=self.next_number,
                kind=kind,
                subject="Frage",
                status=status,
                customer_id=customer,
                guest_email=None if customer else f"gast{self.next_number}@example.com",
                created_at=local(created),
                last_message_at=local(created),
            )
        ).inserted_primary_key[0]
        author = customer if kind == "support" else None
        self.message(conversation_id, created, author, staff=kind != "support")
        return conversation_id

    def message(self, conversation_id, at: str, author, staff=False, internal=False):
        self.connection.execute(
            messages.insert().values(
                conversation_id=conversation_id,
                author_id=author,
                body="…",
                body_html="<p>…</p>",
                internal=internal,
                created_at=local(at),
            )
        )
        if staff and not internal:
            self.connection.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id)
                .values(
                    first_response_at=sa.func.coalesce(conversations.c.first_response_at, local(at))
                )
            )

    def status(self, conversation_id, at: str, old: str, new: str, actor=None):
        self.connection.execute(
            conversation_events.insert().values(
                conversation_id=conversation_id,
                actor_id=actor,
                action="status",
                old_value=old,
                new_value=new,
                created_at=local(at),
            )
        )
        self.connection.execute(
            conversations.update().where(conversations.c.id == conversation_id).values(status=new)
        )

    def topic(self, created: str, author: int) -> int:
        topic_id = self.connection.execute(
            topics.insert().values(
                category_id=1,
                title="Thema",
                author_id=author,
                created_at=local(created),
                last_post_at=local(created),
            )
        ).inserted_primary_key[0]
        self.post(topic_id, created, author)
        return topic_id

    def post(self, topic_id: int, at: str, author: int, deleted=False):
        self.connection.execute(
            posts.insert().values(
                topic_id=topic_id,
                author_id=author,
                body="…",
                body_html="<p>…</p>",
                created_at=local(at),
                deleted_at=local(at) if deleted else None,
            )
        )


@pytest.fixture
def week(app, settings):
    """The hand-built week. Comments give each conversation's part in the figures."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        h = History(connection)
        anna = h.person("Anna Antwort", "staff", "2026-01-05 09:00")
        bob = h.person("Bob Bescheid", "admin", "2026-01-05 09:00")
        erika = h.person("Erika Kundin", "customer", "2026-03-03 08:00")  # registered in it
        h.person("Otto Frueher", "customer", "2026-01-01 12:00")  # registered before

        # A, Monday 10:00. Anna answers at 12:00 (first response 2 h, 2 business hours),
        # Bob leaves an internal note, the customer writes again, Anna answers and solves
        # at 14:00 (time to solve 4 h, 4 business hours).
        a = h.conversation("2026-03-02 10:00", erika)
        h.message(a, "2026-03-02 12:00", anna, staff=True)
        h.status(a, "2026-03-02 12:00", "open", "pending", anna)
        h.message(a, "2026-03-02 12:30", bob, staff=True, internal=True)
        h.message(a, "2026-03-02 13:00", erika)
        h.status(a, "2026-03-02 13:00", "pending", "open")
        h.message(a, "2026-03-02 14:00", anna, staff=True)
        h.status(a, "2026-03-02 14:00", "open", "solved", anna)

        # B, Friday 16:00, answered by Bob on Monday 10:00 after the period: in the first
        # responses (66 h, but only 2 business hours), not answered within the period.
        b = h.conversation("2026-03-06 16:00", erika)
        h.message(b, "2026-03-09 10:00", bob, staff=True)

        # C, Saturday 11:00, answered by Anna at 12:00: 1 h, 0 business hours.
        c = h.conversation("2026-03-07 11:00", erika)
        h.message(c, "2026-03-07 12:00", anna, staff=True)

        # D started before the period (Thursday 26 February 10:00) and was answered then.
        # In the period: the customer writes, Bob answers and solves on Tuesday 10:00, the
        # customer reopens it at 15:00, Bob answers and solves again on Wednesday 9:00.
        # Solved once, reopened once; time to solve 143 h, 31 business hours.
        d = h.conversation("2026-02-26 10:00", erika)
        h.message(d, "2026-02-26 11:00", anna, staff=True)
        h.status(d, "2026-02-26 11:00", "open", "pending", anna)
        h.message(d, "2026-03-02 09:30", erika)
        h.status(d, "2026-03-02 09:30", "pending", "open")
        h.message(d, "2026-03-03 10:00", bob, staff=True)
        h.status(d, "2026-03-03 10:00", "open", "solved", bob)
        h.message(d, "2026-03-03 15:00", erika)
        h.status(d, "2026-03-03 15:00", "solved", "open")
        h.message(d, "2026-03-04 09:00", bob, staff=True)
        h.status(d, "2026-03-04 09:00", "open", "solved", bob)

        # E, Tuesday, spam: only in the spam count.
        e = h.conversation("2026-03-03 09:00", erika)
        h.status(e, "2026-03-03 09:05", "open", "spam", bob)

        # F, Sunday 23:30 (22:30 UTC): the period's last hour; never answered.
        h.conversation("2026-03-08 23:30", erika)
        # G, Monday 9 March 0:30, still Sunday in UTC: after the period.
        h.conversation("2026-03-09 00:30", erika)
        # H, Sunday 1 March 23:59, before the period; Anna answers it on Monday 9:15.
        hh = h.conversation("2026-03-01 23:59", erika)
        h.message(hh, "2026-03-02 09:15", anna, staff=True)

        # K, a guest, Wednesday 10:00; Bob answers at 10:30 (0.5 h, 0.5 business hours)
        # and solves it on Thursday 9:00 (23 h, 7 business hours).
        k = h.conversation("2026-03-04 10:00", None)
        h.message(k, "2026-03-04 10:30", bob, staff=True)
        h.status(k, "2026-03-04 10:30", "open", "pending", bob)
        h.status(k, "2026-03-05 09:00", "pending", "solved", bob)

        # L, Wednesday 15:00, not answered yet: Wednesday becomes the busiest day.
        h.conversation("2026-03-04 15:00", erika)

        # An announcement is no request: it counts nowhere.
        h.conversation("2026-03-03 11:00", erika, kind="announcement", status="pending")

        # The forum: one topic in the period with its first post and a reply, a deleted
        # reply, a reply to an older topic, and a reply just after the period.
        topic = h.topic("2026-03-02 10:00", erika)
        h.post(topic, "2026-03-02 11:00", anna)
        h.post(topic, "2026-03-03 12:00", erika, deleted=True)
        h.post(topic, "2026-03-09 08:00", erika)
        older = h.topic("2026-02-20 10:00", erika)
        h.post(older, "2026-03-04 12:00", anna)
    engine.dispose()
    return {"anna": anna, "bob": bob}


def figures_of(page: str) -> dict[str, str]:
    """The figures shown inside the #stats section, by their id without "stat-"."""
    section = page.split('id="stats"', 1)[1]
    return dict(re.findall(r'<strong class="figure" id="stat-([a-z-]+)">([^<]*)<', section))


def test_the_week_in_figures(people, week):
    staff = people.staff()
    response = staff.get("/staff/stats", params=WEEK)
    assert response.status_code == 200
    shown = figures_of(response.text)
    assert shown == {
        "received": "6",  # A, B, C, F, K, L
        "answered": "5",  # A, C, D, H, K
        "solved": "3",  # A, D (twice, counted once), K
        "reopened": "1",  # D
        "unanswered": "2",  # F, L
        "spam": "1",  # E
        "customer-messages": "9",  # A 2, B, C, D 2, F, K, L
        "staff-messages": "7",  # A 2, C, D 2, H, K
        "internal-notes": "1",
        "topics": "1",
        "posts": "3",
        "registrations": "1",
    }


def test_durations_are_medians_and_90th_percentiles_in_both_kinds_of_hours(
    app, client, people, week
):
    from board.staff import stats

    settings = app.state.settings
    period = parse_period(WEEK["from"], WEEK["to"], date(2026, 11, 23), settings.timezone)
    figures = client.portal.call(stats.compute, app.state.db, settings, period)
    # First responses of A (2 h, 2 bh), B (66 h, 2 bh), C (1 h, 0 bh), K (0.5 h, 0.5 bh):
    # calendar 0.5, 1, 2, 66 → median 1.5, 90 % at rank 2.7 → 2 + 0.7 × 64 = 46.8;
    # business 0, 0.5, 2, 2 → median 1.25, 90 % 2.
    first = figures.first_response
    assert first.count == 4
    assert first.calendar_median == pytest.approx(1.5)
    assert first.calendar_p90 == pytest.approx(46.8)
    assert first.business_median == pytest.approx(1.25)
    assert first.business_p90 == pytest.approx(2.0)
    # Solved: A (4 h, 4 bh), D (143 h, 31 bh), K (23 h, 7 bh):
    # calendar 4, 23, 143 → median 23, 90 % at rank 1.8 → 23 + 0.8 × 120 = 119;
    # business 4, 7, 31 → median 7, 90 % 7 + 0.8 × 24 = 26.2.
    solve = figures.time_to_solve
    assert solve.count == 3
    assert solve.calendar_median == pytest.approx(23)
    assert solve.calendar_p90 == pytest.approx(119)
    assert solve.business_median == pytest.approx(7)
    assert solve.business_p90 == pytest.approx(26.2)

    anna, bob = figures.staff
    assert (anna.user_id, anna.replies, anna.answered, anna.solved, anna.internal_notes) == (
        week["anna"],
        4,  # A twice, C, H
        3,
        1,
        0,
    )
    assert (bob.user_id, bob.replies, bob.answered, bob.solved, bob.internal_notes) == (
        week["bob"],
        3,  # D twice, K
        2,
        2,  # D, K
        1,
    )
    # Anna gave the first answer to A and C, Bob to B and K.
    assert anna.first_responses.count == 2
    assert anna.first_responses.calendar_median == pytest.approx(1.5)
    assert anna.first_responses.business_median == pytest.approx(1.0)
    assert bob.first_responses.count == 2
    assert bob.first_responses.calendar_median == pytest.approx(33.25)
    assert bob.first_responses.business_median == pytest.approx(1.25)

    assert figures.per_day == [
        (date(2026, 3, 2), 1),
        (date(2026, 3, 3), 0),  # only spam
        (date(2026, 3, 4), 2),
        (date(2026, 3, 5), 0),
        (date(2026, 3, 6), 1),
        (date(2026, 3, 7), 1),
        (date(2026, 3, 8), 1),  # F; G is Monday in Berlin though Sunday in UTC
    ]
    assert figures.busiest_days[0] == (date(2026, 3, 4), 2)
    assert [day for day, _count in figures.busiest_days[1:]] == [
        date(2026, 3, 2),
        date(2026, 3, 6),
        date(2026, 3, 7),
        date(2026, 3, 8),
    ]
    assert figures.weekday_hour == {
        (0, 10): 1,
        (2, 10): 1,
        (2, 15): 1,
        (4, 16): 1,
        (5, 11): 1,
        (6, 23): 1,
    }
    assert figures.by_weekday == [1, 0, 2, 0, 1, 1, 1]


def test_the_page_shows_per_staff_rows_busiest_days_and_the_chart(people, week):
    staff = people.staff()
    page = staff.get("/staff/stats", params={**WEEK}).text
    section = page.split('id="stats"', 1)[1]
    staff_table = section.split('id="stat-staff"', 1)[1].split("</table>", 1)[0]
    assert staff_table.index("Anna Antwort") < staff_table.index("Bob Bescheid")
    assert "Administrator" not in staff_table  # wrote nothing in that week
    busiest = section.split('id="stat-busiest"', 1)[1].split("</ol>", 1)[0]
    assert "04.03.2026" in busiest.split("</li>", 1)[0]  # German dates by default
    # The chart: one bar per day, a title and a description, and the numbers as a table.
    chart = section.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert chart.count("<rect") == 7
    assert 'role="img"' in chart and 'aria-labelledby="chart-title chart-desc"' in chart
    assert "04.03.2026" in chart.split("<desc", 1)[1].split("</desc>", 1)[0]
    days_table = section.split('id="stat-days"', 1)[1].split("</table>", 1)[0]
    assert days_table.count("<tr>") == 8  # the header and seven days


def test_csv_holds_the_same_figures(people, week):
    staff = people.staff()
    response = staff.get("/staff/stats", params={**WEEK, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "statistics-2026-03-02-2026-03-08.csv" in response.headers["content-disposition"]
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))  # German: Excel's separator
    assert rows[0] == ["section", "key", "metric", "value"]
    values = {(section, key, metric): value for section, key, metric, value in rows[1:]}
    assert values[("summary", "", "received")] == "6"
    assert values[("summary", "", "answered")] == "5"
    assert values[("summary", "", "solved")] == "3"
    assert values[("first_response", "", "calendar_p90_hours")] == "46,80"
    assert values[("time_to_solve", "", "business_median_hours")] == "7,00"
    assert values[("staff", "Bob Bescheid", "solved")] == "2"
    assert values[("day", "2026-03-04", "received")] == "2"
    assert values[("weekday", "wednesday", "received")] == "2"
    assert values[("hour", "10", "received")] == "2"

    staff.client.cookies.set("lang", "en")
    english = staff.get(
        "/staff/stats", params={**WEEK, "format": "csv"}, headers={"accept-language": "en"}
    )
    rows = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig"))))
    values = {(section, key, metric): value for section, key, metric, value in rows[1:]}
    assert values[("first_response", "", "calendar_p90_hours")] in ("46.80", "46,80")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01", "to": "2026-03-08"}, "YYYY-MM-DD"),
        ({"from": "gestern", "to": "2026-03-08"}, "YYYY-MM-DD"),
        ({"from": "0001-01-01", "to": "2026-03-08"}, "YYYY-MM-DD"),
        ({"from": "2026-03-08", "to": "2026-03-01"}, "must not end before it starts"),
    ],
)
def test_a_bad_period_gets_a_clear_message_and_keeps_the_input(people, params, message):
    staff = people.staff()
    response = staff.get("/staff/stats", params={**params}, headers={"accept-language": "en"})
    assert response.status_code == 400
    assert message in response.text
    assert 'role="alert"' in response.text
    assert f'value="{params["from"]}"' in response.text  # kept for correcting
    assert 'id="stats"' not in response.text
    csv_response = staff.get("/staff/stats", params={**params, "format": "csv"})
    assert csv_response.status_code == 400


def test_statistics_are_for_staff_only(client, people):
    guest = client.get("/staff/stats")
    assert guest.status_code == 303 and "/login" in guest.headers["location"]
    erika = people.customer()
    assert erika.get("/staff/stats").status_code == 403
    assert erika.get("/staff/stats", params={"format": "csv"}).status_code == 403


def test_the_last_30_days_by_default_with_a_conversation_written_through_the_site(people):
    """The hand-built rows above have the shape the site writes: the same figures from a
    conversation that went through the real forms."""
    erika, staff = people.customer(), people.staff()
    response = erika.submit(
        "/inbox/new", {"body": "Wo bleibt meine Bestellung 4711?"}, form_page="/inbox/new"
    )
    assert response.status_code == 303, response.text[:500]
    number = int(response.headers["location"].rsplit("/", 1)[1])
    staff.submit(f"/staff/t/{number}/reply", {"body": "Ist unterwegs.", "status": "solved"})
    page = staff.get("/staff/stats")
    assert page.status_code == 200
    shown = figures_of(page.text)
    assert shown["received"] == shown["answered"] == shown["solved"] == "1"
    assert shown["customer-messages"] == shown["staff-messages"] == "1"
    assert shown["registrations"] == "1"
    assert page.text.count("<rect") == 30


def test_hours_follow_daylight_saving_time(app, client, people, settings):
    """Summer time starts on Sunday 29 March 2026: Friday 16:00 to Monday 10:00 is then
    65 hours, and still 2 business hours; Monday 10:00 is hour 10 in the summer too."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        h = History(connection)
        anna = h.person("Anna Antwort", "staff", "2026-01-05 09:00")
        erika = h.person("Erika Kundin", "customer", "2026-01-05 09:00")
        friday = h.conversation("2026-03-27 16:00", erika)
        h.message(friday, "2026-03-30 10:00", anna, staff=True)
        h.conversation("2026-03-30 10:00", erika)
    engine.dispose()
    from board.staff import stats

    period = parse_period("2026-03-23", "2026-03-31", date(2026, 11, 23), settings.timezone)
    figures = client.portal.call(stats.compute, app.state.db, settings, period)
    assert figures.first_response.calendar_median == pytest.approx(65)
    assert figures.first_response.business_median == pytest.approx(2)
    assert figures.weekday_hour == {(4, 16): 1, (0, 10): 1}


def test_the_calendar_counts_open_seconds_and_follows_a_change_of_hours(app, client, settings):
    """The calendar agrees with BusinessHours.hours_between, the wait alert's Python walk,
    and is rebuilt when the opening hours change."""
    office = BusinessHours(
        "Europe/Berlin",
        (0, 1, 2, 3, 4),
        *[t for t in (datetime(2026, 1, 1, 8, 30).time(), datetime(2026, 1, 1, 16, 45).time())],
    )
    rows = list(calendar_rows(office, local("2026-03-20 00:00"), local("2026-04-06 00:00")))
    before = {row["hour"]: row for row in rows}

    def open_seconds(moment: datetime) -> int:
        row = before[f"{moment:%Y-%m-%d %H}"]
        into = moment.minute * 60 + moment.second
        return (
            row["business_before"]
            + min(max(into, row["open_from"]), row["open_until"])
            - row["open_from"]
        )

    for start, end in [
        ("2026-03-20 08:00", "2026-03-23 09:00"),
        ("2026-03-27 16:40", "2026-03-30 08:31"),  # across the change to summer time
        ("2026-03-21 12:00", "2026-03-22 12:00"),  # a weekend
        ("2026-03-24 08:29", "2026-04-03 17:00"),
    ]:
        a, b = local(start), local(end)
        assert (open_seconds(b) - open_seconds(a)) / 3600 == pytest.approx(
            office.hours_between(a, b)
        ), (start, end)

    first, last = local("2026-03-01 00:00"), local("2026-03-10 00:00")
    client.portal.call(ensure_calendar, app.state.db, settings.office, first, last)
    client.portal.call(ensure_calendar, app.state.db, office, first, last)
    engine = sync_engine(settings)
    with engine.connect() as connection:
        schedules = connection.execute(sa.select(stats_hours.c.schedule).distinct()).scalars()
        assert list(schedules) == ["Europe/Berlin|0,1,2,3,4|08:30-16:45"]
    engine.dispose()


def precise(text: str) -> datetime:
    """'2026-03-02 10:00:30.700000' in Berlin → naive UTC, seconds and fractions kept."""
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=BERLIN)
    return moment.astimezone(UTC).replace(tzinfo=None)


def test_business_hours_count_whole_seconds(app, client, people, settings):
    """Business hours count the whole seconds into the hour (a fraction of a second is
    left out); calendar hours are exact. Monday 2 March 2026, Berlin, open 9-17."""
    engine = sync_engine(settings)
    with engine.begin() as connection:
        h = History(connection)
        anna = h.person("Anna Antwort", "staff", "2026-01-05 09:00")
        erika = h.person("Erika Kundin", "customer", "2026-01-05 09:00")
        started, answered, solved = (
            precise("2026-03-02 10:00:30.700000"),
            precise("2026-03-02 10:20:15.900000"),
            precise("2026-03-02 17:00:00.250000"),  # just after closing
        )
        conversation = h.conversation("2026-03-02 10:00", erika)
        connection.execute(
            conversations.update()
            .where(conversations.c.id == conversation)
            .values(created_at=started, first_response_at=answered)
        )
        connection.execute(
            messages.update()
            .where(messages.c.conversation_id == conversation)
            .values(created_at=started)
        )
        connection.execute(
            messages.insert().values(
                conversation_id=conversation,
                author_id=anna,
                body="…",
                body_html="<p>…</p>",
                created_at=answered,
            )
        )
        connection.execute(
            conversation_events.insert().values(
                conversation_id=conversation,
                actor_id=anna,
                action="status",
                old_value="open",
                new_value="solved",
                created_at=solved,
            )
        )
    engine.dispose()
    from board.staff import stats

    period = parse_period("2026-03-02", "2026-03-02", date(2026, 11, 23), settings.timezone)
    figures = client.portal.call(stats.compute, app.state.db, settings, period)
    first, solve = figures.first_response, figures.time_to_solve
    assert (first.count, solve.count) == (1, 1)
    # 10:00:30 to 10:20:15: 1,185 open seconds; 1,185.2 seconds in all. Calendar hours
    # to a millisecond: SQLite's julianday() keeps the moment in days, as a double.
    assert first.business_median == pytest.approx(1185 / 3600, abs=1e-12)
    assert first.calendar_median == pytest.approx(1185.2 / 3600, abs=1e-3 / 3600)
    # 10:00:30 to closing at 17:00: 7 hours less 30 seconds; 7 hours less 30.45 in all.
    assert solve.business_median == pytest.approx((7 * 3600 - 30) / 3600, abs=1e-12)
    assert solve.calendar_median == pytest.approx((7 * 3600 - 30.45) / 3600, abs=1e-3 / 3600)
    # Hours come as floats on every database (PostgreSQL's numeric would be Decimal).
    for durations in (first, solve):
        for hours in (durations.calendar_median, durations.business_p90):
            assert type(hours) is float
    assert figures.first_response.count == 1
    assert [(s.user_id, s.replies, s.solved) for s in figures.staff] == [(anna, 1, 1)]


def test_two_requests_build_the_calendar_at_once(app, client, settings):
    """Two builders at the same moment (two workers, or two machines on PostgreSQL): one
    builds, the other finds the rows and leaves them."""
    first, last = local("2026-01-01 00:00"), local("2026-03-10 00:00")

    async def both() -> None:
        await asyncio.gather(
            *(ensure_calendar(app.state.db, settings.office, first, last) for _ in range(2))
        )

    client.portal.call(both)
    expected = [row["hour"] for row in calendar_rows(settings.office, first, last + AHEAD)]
    engine = sync_engine(settings)
    with engine.connect() as connection:
        hours = connection.execute(sa.select(stats_hours.c.hour).order_by("hour")).scalars()
        assert list(hours) == expected
    engine.dispose()


def test_parse_period_defaults_and_borders():
    today = date(2026, 11, 23)
    period = parse_period(None, None, today, "Europe/Berlin")
    assert (period.first_day, period.last_day) == (date(2026, 10, 25), today)
    # Local midnights: 25 October is still summer time (UTC+2), 24 November is not.
    assert period.start == datetime(2026, 10, 24, 22, 0)
    assert period.end == datetime(2026, 11, 23, 23, 0)
    with pytest.raises(PeriodError):
        parse_period("2026-02-30", None, today, "Europe/Berlin")
