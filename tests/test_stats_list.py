"""The requests of a statistics period: keyset pages and the streamed CSV export."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from board.db import conversations, request_types, sync_engine, users
from board.staff import stats_list
from tests.conftest import count_statements
from tests.test_stats import WEEK, History, local, week  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgresql

LIST = "/staff/stats/conversations"


def tickets_on(page: str) -> list[int]:
    table = page.split('id="period-conversations"', 1)[1].split("</table>", 1)[0]
    return [int(number) for number in re.findall(r'data-ticket="(\d+)"', table)]


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


def test_the_period_lists_its_requests_in_order_of_arrival(people, week):  # noqa: F811
    staff = people.staff()
    page = staff.get(LIST, params=WEEK)
    assert page.status_code == 200
    # A, E (spam), K, L, B, C, F: received in the week; G after it, D and H before it, the
    # announcement is no request.
    assert tickets_on(page.text) == [9001, 9005, 9009, 9010, 9002, 9003, 9006]
    row = page.text.split('data-ticket="9005"', 1)[1].split("</tr>", 1)[0]
    assert "Spam" in row
    assert 'href="/staff/t/9001"' in page.text
    stats_page = staff.get("/staff/stats", params=WEEK).text
    assert 'href="/staff/stats/conversations?from=2026-03-02&amp;to=2026-03-08"' in stats_page


def test_keyset_pages_follow_each_other_without_gaps(people, settings, monkeypatch):
    monkeypatch.setattr(stats_list, "PAGE_SIZE", 3)
    engine = sync_engine(settings)
    with engine.begin() as connection:
        history = History(connection)
        erika = history.person("Erika Kundin", "customer", "2026-01-05 09:00")
        # Seven requests, two of them at the same moment: the id breaks the tie.
        for at in ["10:00", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]:
            history.conversation(f"2026-03-03 {at}", erika)
    engine.dispose()
    staff = people.staff()
    seen, after, pages = [], None, 0
    while True:
        params = {"from": "2026-03-03", "to": "2026-03-03"}
        if after:
            params["after"] = after
        page = staff.get(LIST, params=params).text
        seen += tickets_on(page)
        pages += 1
        found = re.search(r'rel="next" href="[^"]*after=(\d+)"', page)
        if not found:
            break
        after = found.group(1)
    assert pages == 3
    assert seen == list(range(9001, 9008))


def test_a_page_takes_one_query_for_its_rows(app, client, people, week):  # noqa: F811
    staff = people.staff()
    statements: list[str] = []
    count_statements(app, client, statements)
    staff.get(LIST, params={**WEEK, "after": "9001"})
    listing = [sql for sql in statements if "FROM conversations LEFT OUTER JOIN users" in sql]
    assert len(listing) == 1  # the page's rows and their assignees together


def test_bad_input_gets_a_message_and_keeps_the_period(people):
    staff = people.staff()
    english = {"accept-language": "en"}
    wrong = staff.get(LIST, params={"from": "2026-13-01", "to": "2026-03-08"}, headers=english)
    assert wrong.status_code == 400
    assert "YYYY-MM-DD" in wrong.text and 'value="2026-13-01"' in wrong.text
    bad_page = staff.get(LIST, params={**WEEK, "after": "x'--"}, headers=english)
    assert bad_page.status_code == 400 and "first page" in bad_page.text
    assert staff.get(LIST, params={**WEEK, "after": "999999"}).status_code == 200
    csv_response = staff.get(LIST, params={"from": "x", "format": "csv"})
    assert csv_response.status_code == 400


def test_only_staff_see_the_list_and_its_export(client, people):
    assert client.get(LIST).status_code == 303
    erika = people.customer()
    assert erika.get(LIST).status_code == 403
    assert erika.get(LIST, params={"format": "csv"}).status_code == 403


def test_the_csv_holds_every_request_with_its_times_and_defuses_formulas(
    people,
    settings,
    week,  # noqa: F811
):
    engine = sync_engine(settings)
    with engine.begin() as connection:
        # A staff member whose name a spreadsheet would take for a formula, assigned to A.
        evil = History(connection).person("=HYPERLINK(1)", "staff", "2026-01-05 09:00")
        invoice = connection.execute(
            sa.select(request_types.c.id).where(request_types.c.name == "Rechnung")
        ).scalar_one()
        connection.execute(
            conversations.update()
            .where(conversations.c.number == 9001)
            .values(assignee_id=evil, type_id=invoice, order_number="-4711")
        )
        connection.execute(users.update().where(users.c.id == evil).values(name="@SUM(A1)"))
    engine.dispose()
    staff = people.staff()
    response = staff.get(LIST, params={**WEEK, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "conversations-2026-03-02-2026-03-08.csv" in response.headers["content-disposition"]
    rows = read_csv(response)
    assert rows[0] == [column.key for column in stats_list.PERIOD_COLUMNS]
    by_ticket = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert list(by_ticket) == ["9001", "9005", "9009", "9010", "9002", "9003", "9006"]
    a = by_ticket["9001"]
    assert a["status"] == "solved"
    assert a["created_at"] == "2026-03-02 10:00"  # Berlin time
    assert a["first_response_at"] == "2026-03-02 12:00"
    assert a["solved_at"] == "2026-03-02 14:00"
    assert a["assignee"] == "'@SUM(A1)"  # starts with ', no formula
    assert a["type"] == "Rechnung" and a["order_number"] == "'-4711"
    assert by_ticket["9005"]["type"] == by_ticket["9005"]["order_number"] == ""
    assert by_ticket["9006"]["first_response_at"] == ""  # F: never answered


def test_the_export_streams_in_batches(app, client, people, settings, monkeypatch):
    """More rows than a batch: every one arrives, each once, in order."""
    monkeypatch.setattr(stats_list, "EXPORT_BATCH", 4)
    engine = sync_engine(settings)
    with engine.begin() as connection:
        history = History(connection)
        erika = history.person("Erika Kundin", "customer", "2026-01-05 09:00")
        for minute in range(10):
            history.conversation(f"2026-03-03 10:{minute:02d}", erika)
        count = connection.execute(sa.select(sa.func.count()).select_from(conversations))
        assert count.scalar() == 10
    engine.dispose()
    staff = people.staff()
    rows = read_csv(
        staff.get(LIST, params={"from": "2026-03-01", "to": "2026-03-31", "format": "csv"})
    )
    assert [row[0] for row in rows[1:]] == [str(n) for n in range(9001, 9011)]
    received = rows[0].index("created_at")
    assert rows[1][received] == local("2026-03-03 10:00").strftime("2026-03-03 10:00")


def test_statistics_beyond_the_workers_slots_get_a_503_with_retry_after(app, people, monkeypatch):
    """The figures are computed one per core at a time; a request that finds every slot
    taken for HEAVY_WAIT seconds is told to come back, in the reader's language."""
    import asyncio

    from board import web

    staff = people.staff()
    assert staff.get("/staff/stats").status_code == 200
    monkeypatch.setattr(web, "HEAVY_WAIT", 0.05)
    app.state.heavy_slots = asyncio.Semaphore(0)  # every slot busy
    busy = staff.get("/staff/stats", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == web.HEAVY_RETRY_AFTER
    assert "Gerade werden viele Auswertungen berechnet" in busy.text
    app.state.heavy_slots = asyncio.Semaphore(1)
    assert staff.get("/staff/stats").status_code == 200
