"""/staff/stats: the figures for a period as a page with a chart, or as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.i18n import gettext as _
from board.i18n import weekday_names
from board.staff import stats, stats_days
from board.staff.team_csv import csv_cell
from board.web import db, render, require_staff, settings_of, take_heavy_slot

DEFAULT_DAYS = 30


class PeriodError(ValueError):
    """A period the page cannot show; the message is for the reader."""


FIRST_YEAR, LAST_YEAR = 2000, 2099


def _day(text: str, label: str) -> date:
    try:
        day = date.fromisoformat(text.strip())
        if not FIRST_YEAR <= day.year <= LAST_YEAR:  # a typo, and beyond time zone arithmetic
            raise ValueError(day)
        return day
    except ValueError:
        raise PeriodError(
            _("%(field)s: please give a date as YYYY-MM-DD, e.g. 2026-11-01.", field=label)
        ) from None


def parse_period(
    from_text: str | None, to_text: str | None, today: date, timezone: str
) -> stats.Period:
    """The local days from `from` to `to`, both included; the last 30 days by default."""
    last_day = _day(to_text, _("To")) if to_text else today
    first_day = (
        _day(from_text, _("From")) if from_text else last_day - timedelta(days=DEFAULT_DAYS - 1)
    )
    if first_day > last_day:
        raise PeriodError(_("The period must not end before it starts."))
    zone = ZoneInfo(timezone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    return stats.Period(first_day, last_day, midnight(first_day), midnight(last_day + timedelta(1)))


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


async def stats_page(request: Request) -> Response:
    require_staff(request)
    settings = settings_of(request)
    params = request.query_params
    today = today_in(settings.timezone)
    first_day = await stats_days.first_day(db(request), settings)
    form = {"from": params.get("from", ""), "to": params.get("to", "")}
    try:
        period = parse_period(form["from"], form["to"], today, settings.timezone)
    except PeriodError as problem:
        return render(
            request,
            "staff/stats.html",
            status_code=400,
            error=str(problem),
            form=form,
            shortcuts=_shortcuts(today, first_day),
            figures=None,
        )
    release = await take_heavy_slot(request)
    try:
        figures = await stats_days.compute(db(request), settings, period)
    finally:
        release()
    if params.get("format") == "csv":
        delimiter = ";" if request.state.locale == "de" else ","
        name = f"statistics-{period.first_day}-{period.last_day}.csv"
        return Response(
            stats_csv(figures, delimiter),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    form = {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()}
    return render(
        request,
        "staff/stats.html",
        figures=figures,
        form=form,
        shortcuts=_shortcuts(today, first_day),
        chart=day_chart(figures.per_day),
        weekdays=weekday_names(),
    )


def _shortcuts(today: date, first_day: date | None) -> list[tuple[str, date, date]]:
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    all_time = [(_("All time"), first_day, today)] if first_day and first_day <= today else []
    return all_time + [
        (_("Last 7 days"), today - timedelta(days=6), today),
        (_("Last 30 days"), today - timedelta(days=29), today),
        (_("This month"), first_of_month, today),
        (_("Last month"), last_month_end.replace(day=1), last_month_end),
        (_("Last 12 months"), today - timedelta(days=364), today),
    ]


# --- the chart -----------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 720, 180
PLOT_LEFT, PLOT_BOTTOM = 40, 160  # room for the counts on the left, days below


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    top: int  # the count at the top of the scale
    ticks: list[Bar]  # the bars whose day is written under the axis
    total: int
    busiest: Bar | None


def day_chart(per_day: list[tuple[date, int]]) -> Chart:
    """Bar geometry for conversations per day; the template draws it as SVG."""
    top = max([count for _day, count in per_day] + [1])
    plot_width = CHART_WIDTH - PLOT_LEFT
    step = plot_width / max(len(per_day), 1)
    bars = []
    for index, (day, count) in enumerate(per_day):
        height = PLOT_BOTTOM * count / top
        bars.append(
            Bar(
                day=day,
                count=count,
                x=round(PLOT_LEFT + index * step + step * 0.1, 2),
                y=round(PLOT_BOTTOM - height, 2),
                width=round(max(step * 0.8, 0.5), 2),
                height=round(height, 2),
            )
        )
    every = max(1, round(len(bars) / 6))
    busiest = max(bars, key=lambda bar: bar.count, default=None)
    return Chart(
        bars=bars,
        top=top,
        ticks=bars[::every],
        total=sum(bar.count for bar in bars),
        busiest=busiest if busiest and busiest.count else None,
    )


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "key", "metric", "value")
DURATION_METRICS = (
    "count",
    "calendar_median_hours",
    "calendar_p90_hours",
    "business_median_hours",
    "business_p90_hours",
)
SUMMARY_METRICS = (
    "received",
    "answered",
    "solved",
    "reopened",
    "unanswered",
    "spam",
    "messages_from_customers",
    "messages_from_staff",
    "internal_notes",
    "topics",
    "posts",
    "registrations",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _durations(durations: stats.Durations) -> list:
    return [
        durations.count,
        durations.calendar_median,
        durations.calendar_p90,
        durations.business_median,
        durations.business_p90,
    ]


def stats_csv(figures: stats.Stats, delimiter: str) -> str:
    """The page's figures, one per line: section, key (a day, a person…), metric, value.

    Like the team export: UTF-8 with a BOM and ";" with a decimal comma for German Excel,
    formula-like names defused.
    """
    decimal_comma = delimiter == ";"

    def value(number) -> str:
        if number is None:
            return ""
        if isinstance(number, float):
            text = f"{number:.2f}"
            return text.replace(".", ",") if decimal_comma else text
        return str(number)

    rows: list[tuple[str, str, str, object]] = [
        ("period", "", "from", figures.first_day.isoformat()),
        ("period", "", "to", figures.last_day.isoformat()),
    ]
    rows += [("summary", "", metric, getattr(figures, metric)) for metric in SUMMARY_METRICS]
    for section, durations in (
        ("first_response", figures.first_response),
        ("time_to_solve", figures.time_to_solve),
    ):
        rows += [
            (section, "", metric, number)
            for metric, number in zip(DURATION_METRICS, _durations(durations), strict=True)
        ]
    for member in figures.staff:
        rows += [
            ("staff", member.name, "replies", member.replies),
            ("staff", member.name, "internal_notes", member.internal_notes),
            ("staff", member.name, "answered", member.answered),
            ("staff", member.name, "solved", member.solved),
        ]
        rows += [
            ("staff", member.name, f"first_response_{metric}", number)
            for metric, number in zip(
                DURATION_METRICS, _durations(member.first_responses), strict=True
            )
        ]
    for of_type in figures.per_type:
        rows += [
            ("type", of_type.name or "", "received", of_type.received),
            ("type", of_type.name or "", "with_order_number", of_type.with_order_number),
        ]
    rows += [("day", day.isoformat(), "received", count) for day, count in figures.per_day]
    rows += [("busiest_day", day.isoformat(), "received", n) for day, n in figures.busiest_days]
    rows += [
        ("weekday", WEEKDAYS[weekday], "received", count)
        for weekday, count in enumerate(figures.by_weekday)
    ]
    rows += [
        ("hour", f"{hour:02d}", "received", count) for hour, count in enumerate(figures.by_hour)
    ]
    rows += [
        ("weekday_hour", f"{WEEKDAYS[weekday]} {hour:02d}", "received", count)
        for (weekday, hour), count in sorted(figures.weekday_hour.items())
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for section, key, metric, number in rows:
        writer.writerow([section, csv_cell(key), metric, value(number)])
    return "\ufeff" + buffer.getvalue()


routes = [Route("/staff/stats", stats_page, name="staff_stats")]
