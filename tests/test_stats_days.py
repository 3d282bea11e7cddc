"""Statistics from daily aggregates: the same figures as the exact computation, for any
period, kept right by every change (board/staff/stats_days.py)."""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from board.db import stats_days as stats_days_table
from board.db import stats_dirty, sync_engine
from board.staff import stats, stats_days
from board.staff.stats_page import parse_period, today_in
from tests.conftest import csrf_from
from tests.test_stats import WEEK, figures_of, week  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgresql

TODAY = date(2026, 11, 23)


@pytest.fixture
def quiet_stats_task(monkeypatch):
    """Asked for before the app starts: its stats task waits an hour before its first round,
    so that a test sees stale days until it recomputes them itself."""
    monkeypatch.setattr(stats_days, "INTERVAL_SECONDS", 3600)


def both(app, client, first: str, last: str):
    settings = app.state.settings
    period = parse_period(first, last, TODAY, settings.timezone)
    aggregated = client.portal.call(stats_days.compute, app.state.db, settings, period)
    exact = client.portal.call(stats.compute, app.state.db, settings, period)
    return aggregated, exact


def refresh(app, client) -> int:
    return client.portal.call(stats_days.refresh_all, app.state.db, app.state.settings)


def stale_hours(settings) -> int:
    engine = sync_engine(settings)
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(stats_dirty)).scalar()
    engine.dispose()
    return count


PERIODS = [
    (WEEK["from"], WEEK["to"]),
    ("2026-03-03", "2026-03-03"),  # D solved, then reopened the same day
    ("2026-03-03", "2026-03-04"),  # D answered and solved on both days: counted once
    ("2026-03-04", "2026-03-05"),
    ("2026-03-02", "2026-03-02"),
    ("2026-02-01", "2026-03-31"),
    ("2020-01-01", "2026-11-23"),  # all time: longer than the three years refused before
]


@pytest.mark.parametrize("stored", [False, True], ids=["stale days", "stored days"])
def test_every_period_equals_the_exact_computation(quiet_stats_task, app, client, week, stored):  # noqa: F811
    """Before the stats task ran the page computes the stale days itself; after, it sums the
    stored ones: the figures are the same either way, and the same as the slow way."""
    assert stale_hours(app.state.settings) > 0  # the triggers marked the hand-written rows
    if stored:
        assert refresh(app, client) > 0
        assert stale_hours(app.state.settings) == 0
    for first, last in PERIODS:
        aggregated, exact = both(app, client, first, last)
        assert asdict(aggregated) == asdict(exact), (first, last)
    aggregated, _exact = both(app, client, *PERIODS[2])
    assert (aggregated.answered, aggregated.solved, aggregated.reopened) == (2, 1, 1)


def test_histograms_give_percentiles_within_a_bucket(app, client, week, monkeypatch):  # noqa: F811
    """Above EXACT_DURATIONS the durations come from the histograms: counts stay exact,
    percentiles within one bucket's width (3.2 %, or 4 seconds under a minute)."""
    refresh(app, client)
    monkeypatch.setattr(stats_days, "EXACT_DURATIONS", 0)
    for first, last in PERIODS:
        aggregated, exact = both(app, client, first, last)
        for kind in ("first_response", "time_to_solve"):
            mine, slow = getattr(aggregated, kind), getattr(exact, kind)
            assert mine.count == slow.count
            for figure in ("calendar_median", "calendar_p90", "business_median", "business_p90"):
                if getattr(slow, figure) is None:
                    assert getattr(mine, figure) is None
                else:
                    assert getattr(mine, figure) == pytest.approx(
                        getattr(slow, figure), rel=0.033, abs=4 / 3600
                    ), (first, last, kind, figure)
        assert [m.user_id for m in aggregated.staff] == [m.user_id for m in exact.staff]
        assert aggregated.received == exact.received and aggregated.answered == exact.answered


def test_buckets_are_narrow_and_hold_their_values():
    generator = random.Random(7)
    values = [0.0, 1 / 3600, 59 / 3600, 1 / 60, 1.0, 66.0, 143.0, 24 * 365.0]
    values += [generator.lognormvariate(0, 2.5) for _ in range(2_000)]
    for hours in values:
        low, high = stats_days.bucket_bounds(stats_days.bucket_of(hours))
        assert low <= hours <= high or hours == pytest.approx(high)
        assert high - low <= max(low * 0.032, 4 / 3600 + 1e-12)
    histogram = {}
    for hours in values:
        bucket = stats_days.bucket_of(hours)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    ordered = sorted(values)
    exact_median = stats._percentile(ordered, 0.5)
    assert stats_days.histogram_percentile(histogram, 0.5) == pytest.approx(exact_median, rel=0.033)


def week_figures(staff) -> dict[str, str]:
    return figures_of(staff.get("/staff/stats", params=WEEK).text)


def test_aggregates_follow_replies_solves_reopens_spam_and_erasure(app, client, people):
    """A conversation through the real forms: after each change the stored days, once the
    stats task ran, give what the exact computation gives."""
    erika, staff = people.customer(), people.staff()
    settings = app.state.settings
    today = today_in(settings.timezone).isoformat()

    def check() -> dict:
        refresh(app, client)
        assert stale_hours(settings) == 0
        aggregated, exact = both(app, client, today, today)
        assert asdict(aggregated) == asdict(exact)
        return figures_of(staff.get("/staff/stats", params={"from": today, "to": today}).text)

    response = erika.submit("/inbox/new", {"body": "Wo bleibt 4711?"}, form_page="/inbox/new")
    number = int(response.headers["location"].rsplit("/", 1)[1])
    assert check()["received"] == "1"
    staff.submit(f"/staff/t/{number}/reply", {"body": "Unterwegs.", "status": "solved"})
    shown = check()
    assert (shown["answered"], shown["solved"], shown["unanswered"]) == ("1", "1", "0")
    erika.submit(f"/inbox/{number}/reply", {"body": "Noch nicht da."}, form_page=f"/inbox/{number}")
    assert check()["reopened"] == "1"
    staff.submit(f"/staff/t/{number}/reply", {"body": "Jetzt aber.", "status": "solved"})
    shown = check()
    assert (shown["answered"], shown["solved"], shown["staff-messages"]) == ("1", "1", "2")

    other = erika.submit("/inbox/new", {"body": "Werbung"}, form_page="/inbox/new")
    spam_number = int(other.headers["location"].rsplit("/", 1)[1])
    assert check()["received"] == "2"
    staff.submit(f"/staff/t/{spam_number}/update", {"status": "spam"})
    shown = check()
    assert (shown["received"], shown["spam"]) == ("1", "1")

    before = check()
    page = staff.get(f"/staff/customers/{erika.user_id}/erase").text
    erased = staff.client.post(
        f"/staff/customers/{erika.user_id}/erase",
        data={"csrf_token": csrf_from(page), "confirm": str(erika.customer_number)},
    )
    assert erased.status_code == 303
    assert check() == before  # erasure keeps the conversations and their figures


def test_long_periods_are_answered_and_the_all_time_link(app, client, people):
    staff = people.staff()
    erika = people.customer()
    erika.submit("/inbox/new", {"body": "Eine Frage"}, form_page="/inbox/new")
    response = staff.get(
        "/staff/stats", params={"from": "2001-01-01", "to": "2026-03-01"},
        headers={"accept-language": "en"},
    )  # fmt: skip
    assert response.status_code == 200
    today = today_in(app.state.settings.timezone)
    page = staff.get("/staff/stats", headers={"accept-language": "en"}).text
    assert f"from={today.isoformat()}&amp;to={today.isoformat()}" in page  # starts today
    assert "All time" in page


def test_a_stale_day_is_recomputed_once_and_the_stale_hours_go(
    quiet_stats_task, app, client, people
):
    erika, staff = people.customer(), people.staff()
    erika.submit("/inbox/new", {"body": "Hallo"}, form_page="/inbox/new")
    stale = stale_hours(app.state.settings)
    assert stale > 0
    # The page shows the stale day, computed for the view: a GET stores nothing.
    assert figures_of(staff.get("/staff/stats").text)["received"] == "1"
    assert stale_hours(app.state.settings) == stale
    assert refresh(app, client) >= 1
    assert stale_hours(app.state.settings) == 0
    assert refresh(app, client) == 0  # nothing left
    engine = sync_engine(app.state.settings)
    with engine.connect() as connection:
        received = connection.execute(
            sa.select(sa.func.sum(stats_days_table.c.n)).where(
                stats_days_table.c.metric == "received"
            )
        ).scalar()
    engine.dispose()
    assert received == 1
    assert staff.get("/staff/stats").status_code == 200


def test_a_bulk_write_is_recomputed_by_hour_oldest_days_first(quiet_stats_task, app, client):
    """A demo or an import leaves a stale-hour row per change: a round takes the oldest
    days, and every row of the hours it covered goes, however many there are."""
    hours = ["2026-03-02 10", "2026-03-03 10", "2026-03-05 10"]
    engine = sync_engine(app.state.settings)
    with engine.begin() as connection:
        connection.execute(sa.delete(stats_dirty))
        connection.execute(
            sa.insert(stats_dirty), [{"hour": hour} for hour in hours for _ in range(1_000)]
        )
    engine.dispose()
    settings = app.state.settings
    assert client.portal.call(stats_days.refresh, app.state.db, settings, 2) == 2
    assert stale_hours(settings) == 1_000  # the newest hour's rows wait for the next round
    assert client.portal.call(stats_days.refresh, app.state.db, settings, 2) == 1
    assert stale_hours(settings) == 0
    assert client.portal.call(stats_days.refresh, app.state.db, settings, 2) == 0


def test_the_stats_task_recomputes_in_the_background(app, client, people, monkeypatch):
    """The task the app starts: a new request lands in stats_days without anyone asking."""
    import time

    erika = people.customer()
    erika.submit("/inbox/new", {"body": "Hallo"}, form_page="/inbox/new")
    deadline = time.monotonic() + stats_days.INTERVAL_SECONDS * 4
    while stale_hours(app.state.settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stale_hours(app.state.settings) == 0


def test_the_period_ends_follow_local_midnight(app, client, week):  # noqa: F811
    """F (Sunday 23:30 Berlin) is in Sunday, G (Monday 0:30, still Sunday in UTC) is not."""
    refresh(app, client)
    sunday, _exact = both(app, client, "2026-03-08", "2026-03-08")
    monday, _exact = both(app, client, "2026-03-09", "2026-03-09")
    assert sunday.received == 1 and sunday.per_day == [(date(2026, 3, 8), 1)]
    assert monday.received == 1 and monday.weekday_hour == {(0, 0): 1}
    days = [
        both(app, client, day.isoformat(), day.isoformat())[0].received
        for day in (date(2026, 3, 2) + timedelta(n) for n in range(7))
    ]
    assert sum(days) == both(app, client, WEEK["from"], WEEK["to"])[0].received == 6
