"""Business hours: how long a customer has waited while the shop was open.

A request that arrives on Friday evening has not waited all weekend: the wait alert counts
only the hours of the working week (BOARD_BUSINESS_DAYS, BOARD_BUSINESS_HOURS) in the
shop's time zone, daylight saving time included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = "Europe/Berlin"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0, as datetime.weekday()
    opens: time = time(9, 0)
    closes: time = time(17, 0)

    def hours_between(self, start: datetime, end: datetime) -> float:
        """Business hours between two naive UTC times (0 when end is not after start)."""
        if end <= start:
            return 0.0
        zone = ZoneInfo(self.timezone)
        local_start = start.replace(tzinfo=UTC).astimezone(zone)
        local_end = end.replace(tzinfo=UTC).astimezone(zone)
        seconds = 0.0
        day, last_day = local_start.date(), local_end.date()
        while day <= last_day:
            if day > local_start.date() and (last_day - day).days > 7:
                # Whole weeks in between: the same hours every week (DST moves the clock at
                # night, never inside opening hours). Long waits cost no day-by-day walk.
                weeks = (last_day - day).days // 7 - 1
                seconds += weeks * self._seconds_per_week()
                day += timedelta(weeks=weeks)
            if day.weekday() in self.days:
                opens, closes = self._window(day, zone)
                overlap = min(closes, local_end) - max(opens, local_start)
                seconds += max(overlap.total_seconds(), 0.0)
            day += timedelta(days=1)
        return seconds / 3600

    def moment_before(self, end: datetime, hours: float) -> datetime:
        """The naive UTC moment from which `hours` business hours pass until `end`.

        The queue asks "waiting since before this moment?" in SQL instead of computing every
        open conversation's business-hour wait in Python.
        """
        zone = ZoneInfo(self.timezone)
        local_end = end.replace(tzinfo=UTC).astimezone(zone)
        remaining = hours * 3600
        week = self._seconds_per_week()
        day = local_end.date()
        while True:
            # Whole weeks of full days (never the partial last day) in one step.
            if day < local_end.date() and remaining > week + 24 * 3600 and week > 0:
                weeks = int(remaining // week) - 1
                remaining -= weeks * week
                day -= timedelta(weeks=weeks)
            if day.weekday() in self.days:
                opens, closes = self._window(day, zone)
                closes = min(closes, local_end)
                available = max((closes - opens).total_seconds(), 0.0)
                if remaining <= available:
                    moment = closes - timedelta(seconds=remaining)
                    return moment.astimezone(UTC).replace(tzinfo=None)
                remaining -= available
            day -= timedelta(days=1)

    def hours_per_day(self) -> float:
        opens = datetime.combine(date.min, self.opens)
        closes = datetime.combine(date.min, self.closes)
        return (closes - opens).total_seconds() / 3600

    def is_open(self, moment: datetime) -> bool:
        """Whether the shop is open at `moment` (naive UTC)."""
        zone = ZoneInfo(self.timezone)
        local = moment.replace(tzinfo=UTC).astimezone(zone)
        if local.weekday() not in self.days:
            return False
        opens, closes = self._window(local.date(), zone)
        return opens <= local < closes

    def next_opening(self, moment: datetime) -> datetime | None:
        """When the shop opens next after `moment` (naive UTC), in its time zone; None
        without any business day."""
        zone = ZoneInfo(self.timezone)
        local = moment.replace(tzinfo=UTC).astimezone(zone)
        day = local.date()
        for _ in range(8):
            if day.weekday() in self.days:
                opens, _closes = self._window(day, zone)
                if opens > local:
                    return opens
            day += timedelta(days=1)
        return None

    def _seconds_per_week(self) -> float:
        return len(self.days) * self.hours_per_day() * 3600

    def _window(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.opens, tzinfo=zone),
            datetime.combine(day, self.closes, tzinfo=zone),
        )


def parse_days(text: str) -> tuple[int, ...]:
    """ "1-5" or "1,2,3,4,5,6" (ISO: Monday 1 … Sunday 7) → weekday numbers from 0."""
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high <= 7:
            raise ValueError(f"business days must lie in 1-7 (Monday-Sunday): {part!r}")
        days.update(range(low - 1, high))
    return tuple(sorted(days))


def parse_hours(text: str) -> tuple[time, time]:
    """ "9-17" or "08:30-17:00" → (opens, closes)."""
    first, _, last = text.replace(" ", "").partition("-")
    opens, closes = _clock(first), _clock(last)
    if closes <= opens:
        raise ValueError(f"business hours must close after they open: {text!r}")
    return opens, closes


def _clock(text: str) -> time:
    hour, _, minute = text.partition(":")
    return time(int(hour), int(minute or 0))
