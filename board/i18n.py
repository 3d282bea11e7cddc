"""Languages: gettext catalogs (Babel), the request's locale, and dates in the reader's style.

Message ids are English; German lives in translations/de/LC_MESSAGES/messages.po, read
straight from the .po file at start-up so there is no compile step to forget.
"""

from __future__ import annotations

import gettext as gettext_module
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.units import format_unit

from board.config import SUPPORTED_LOCALES

TRANSLATIONS_DIR = Path(__file__).parent / "translations"

current_locale: ContextVar[str] = ContextVar("current_locale", default="de")
current_timezone: ContextVar[str] = ContextVar("current_timezone", default="Europe/Berlin")


@cache
def _catalog(locale: str) -> gettext_module.NullTranslations:
    po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return gettext_module.NullTranslations()  # English: the message ids themselves
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def gettext(message: str, **variables) -> str:
    text = _catalog(current_locale.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = _catalog(current_locale.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


@contextmanager
def speaking(locale: str) -> Iterator[None]:
    """Text in another language than the request's: a mail in its recipient's language."""
    token = current_locale.set(locale if locale in SUPPORTED_LOCALES else current_locale.get())
    try:
        yield
    finally:
        current_locale.reset(token)


# Jinja's newstyle gettext formats the %(name)s placeholders itself: it gets the bare lookups.
def template_gettext(message: str) -> str:
    return _catalog(current_locale.get()).gettext(message)


def template_ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(current_locale.get()).ngettext(singular, plural, n)


def negotiate_locale(user_locale: str | None, accept_language: str, default: str) -> str:
    """The user's setting wins, then the browser's Accept-Language, then BOARD_LOCALE."""
    if user_locale in SUPPORTED_LOCALES:
        return user_locale
    wanted = []
    for part in accept_language.split(","):
        tag, _sep, quality = part.strip().partition(";q=")
        if not tag:
            continue
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        wanted.append((weight, tag.strip()))
    preferred = [tag for _weight, tag in sorted(wanted, key=lambda item: -item[0])]
    match = Locale.negotiate(preferred, SUPPORTED_LOCALES, sep="-")
    return str(match) if match else default


# Babel parses a locale string on every call; pages format dozens of dates, so parse once.
_babel_locale = cache(Locale.parse)
_UTC = ZoneInfo("UTC")


def _local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=_UTC).astimezone(ZoneInfo(current_timezone.get()))


def format_datetime(moment: datetime | None) -> str:
    """`08.09.2005, 10:45` in German, `Sep 8, 2005, 10:45 AM` in English."""
    if moment is None:
        return ""
    return _formatted(moment, current_locale.get(), current_timezone.get(), with_time=True)


def format_day(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return _formatted(moment, current_locale.get(), current_timezone.get(), with_time=False)


# Babel takes 15–75 µs a date, and lists show the same dates on every view: the texts are
# kept for the 8,192 most recent (moment, language, zone), about 1 MB.
@lru_cache(maxsize=8192)
def _formatted(moment: datetime, locale_name: str, zone: str, with_time: bool) -> str:
    local = moment.replace(tzinfo=_UTC).astimezone(ZoneInfo(zone))
    locale = _babel_locale(locale_name)
    day = format_date(local, "medium", locale=locale)
    if not with_time:
        return day
    return f"{day}, {format_time(local, 'short', locale=locale)}"


def format_number(number: int) -> str:
    return format_decimal(number, locale=_babel_locale(current_locale.get()))


def format_calendar_day(day: date | None) -> str:
    """A local calendar day (no time zone to convert): `23.11.2026`, `Nov 23, 2026`."""
    if day is None:
        return ""
    return format_date(day, "medium", locale=_babel_locale(current_locale.get()))


def format_hours(hours: float | None) -> str:
    """`3,5 Std.` in German, `3.5 hr` in English; under an hour in whole minutes (`12 Min.`,
    where "0,2 Std." would make the reader calculate); a dash when nothing was measured."""
    if hours is None:
        return "–"
    locale = _babel_locale(current_locale.get())
    minutes = round(hours * 60)
    if minutes < 60:
        return format_unit(minutes, "minute", "short", locale=locale)
    return format_unit(hours, "hour", "short", format="#,##0.0", locale=locale)


def weekday_names(width: str = "wide") -> list[str]:
    """Monday first, as datetime.weekday() counts."""
    names = get_day_names(width, locale=_babel_locale(current_locale.get()))
    return [names[day] for day in range(7)]


def iso(moment: datetime | None) -> str:
    return _local(moment).isoformat(timespec="minutes") if moment else ""


def format_duration(delta: timedelta | float | None) -> str:
    """A rounded span in words: "3 Tage", "5 Stunden" (a float counts hours)."""
    if delta is None:
        return ""
    if not isinstance(delta, timedelta):
        delta = timedelta(hours=delta)
    return _duration(delta, current_locale.get())


@lru_cache(maxsize=4096)  # lists show the same waits on every view within a minute
def _duration(delta: timedelta, locale_name: str) -> str:
    return format_timedelta(delta, threshold=1.5, format="short", locale=_babel_locale(locale_name))
