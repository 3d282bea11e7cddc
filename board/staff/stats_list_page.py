"""/staff/stats/conversations: the period's requests as pages, or all of them as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from board.i18n import gettext as _
from board.staff import stats_list
from board.staff.stats_list import PERIOD_COLUMNS
from board.staff.stats_page import PeriodError, parse_period, today_in
from board.staff.team_csv import csv_cell
from board.web import db, render, require_staff, settings_of


def _after(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 12:
        raise PeriodError(_("This page of the list does not exist; start from its first page."))
    return int(text)


async def period_conversations(request: Request) -> Response:
    require_staff(request)
    settings = settings_of(request)
    params = request.query_params
    form = {"from": params.get("from", ""), "to": params.get("to", "")}
    try:
        period = parse_period(
            form["from"], form["to"], today_in(settings.timezone), settings.timezone
        )
        after = _after(params.get("after"))
    except PeriodError as problem:
        return render(
            request,
            "staff/stats_conversations.html",
            status_code=400,
            error=str(problem),
            form=form,
            page=None,
            columns=PERIOD_COLUMNS,
        )
    if params.get("format") == "csv":
        delimiter = ";" if request.state.locale == "de" else ","
        name = f"conversations-{period.first_day}-{period.last_day}.csv"
        return StreamingResponse(
            csv_chunks(
                stats_list.period_batches(db(request), period), delimiter, settings.timezone
            ),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    page = await stats_list.period_page(db(request), period, after)
    form = {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()}
    return render(
        request,
        "staff/stats_conversations.html",
        form=form,
        page=page,
        columns=PERIOD_COLUMNS,
        first_page=after is not None,
    )


def _cell(value, kind: str, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    if kind == "time":
        if isinstance(value, str):  # a subquery's timestamp on SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    # Names and any text a column adds later: a cell starting like a formula (= + - @)
    # would run in a spreadsheet, so it starts with ' instead.
    return csv_cell(str(value))


async def csv_chunks(
    batches: AsyncIterator[list], delimiter: str, timezone: str
) -> AsyncIterator[str]:
    """The CSV, one chunk per batch of rows: UTF-8 with a BOM for Excel, as the team export;
    times in the shop's time zone."""
    zone = ZoneInfo(timezone)
    yield "\ufeff" + _lines([[column.key for column in PERIOD_COLUMNS]], delimiter)
    async for rows in batches:
        yield _lines(
            (
                [_cell(value, column.kind, zone) for value, column in zip(row, PERIOD_COLUMNS)]
                for row in rows
            ),
            delimiter,
        )


def _lines(rows: Iterable[list[str]], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


routes = [
    Route("/staff/stats/conversations", period_conversations, name="staff_stats_conversations")
]
