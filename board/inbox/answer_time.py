"""When a customer may expect an answer, from the shop's business hours: what the
confirmation after sending a request says."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from board.hours import BusinessHours
from board.i18n import current_locale, gettext, ngettext


def expected_answer(office: BusinessHours, sent_at: datetime, answer_hours: float) -> str:
    """The promise for a request sent at `sent_at` (naive UTC), in the current language:
    within `answer_hours` while the shop is open, else from when it opens again."""
    if office.is_open(sent_at):
        hours = max(1, round(answer_hours))
        return ngettext(
            "We usually answer on working days within %(num)s hour.",
            "We usually answer on working days within %(num)s hours.",
            hours,
        )
    opening = office.next_opening(sent_at)
    if opening is None:
        return gettext("We answer as soon as we can.")
    locale = current_locale.get()
    when = format_time(opening, "short", locale=locale)
    sent_day = sent_at.replace(tzinfo=UTC).astimezone(ZoneInfo(office.timezone)).date()
    if opening.date() == sent_day:
        return gettext("Our office is closed now: we answer today from %(time)s.", time=when)
    return gettext(
        "Our office is closed now: we answer on the next working day, %(day)s, from %(time)s.",
        day=format_date(opening, "EEEE", locale=locale),
        time=when,
    )
