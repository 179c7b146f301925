"""Working hours of a line: weekly opening intervals, public holidays, days off, a time zone. Pure: the clock is an
argument.

An interval is ``"HH:MM-HH:MM"`` in the line's local time, start inclusive, end exclusive; ``24:00`` ends a day.
An interval never crosses midnight: a night shift is two intervals on two days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from functools import cache
from itertools import pairwise
from typing import Annotated, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
DAY_MINUTES = 24 * 60
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Interval(NamedTuple):
    """Opening time within one day, in minutes since local midnight: ``start <= minute < end``."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{clock(self.start)}-{clock(self.end)}"


def clock(minutes: int) -> str:
    """450 -> ``07:30``."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(hours: str, minutes: str, text: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > DAY_MINUTES:
        raise ValueError(f"bad time in {text!r}: use HH:MM between 00:00 and 24:00")
    return value


def parse_interval(text: object) -> Interval:
    """``"07:30-11:30"`` -> Interval(450, 690); a clear ValueError for anything else."""
    if isinstance(text, Interval):
        return text
    found = _RANGE.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"bad opening interval {text!r}: expected \"HH:MM-HH:MM\", e.g. \"07:30-11:30\"")
    start = _minutes(found[1], found[2], str(text))
    end = _minutes(found[3], found[4], str(text))
    if start >= end:
        raise ValueError(f"bad opening interval {text!r}: it must end after it starts, within one day")
    return Interval(start, end)


def check_day(intervals: Sequence[Interval]) -> tuple[Interval, ...]:
    """The intervals of one day sorted; ValueError when two overlap."""
    ordered = tuple(sorted(intervals))
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise ValueError(f"opening intervals {before} and {after} overlap")
    return ordered


def is_open(hours: Mapping[Weekday, Sequence[Interval]], local: datetime) -> bool:
    """Whether the local time ``local`` falls inside one of the day's opening intervals (holidays aside)."""
    minute = local.hour * 60 + local.minute
    return any(i.start <= minute < i.end for i in hours.get(WEEKDAYS[local.weekday()], ()))


def week_groups(hours: Mapping[Weekday, Sequence[Interval]]) -> Iterator[tuple[Weekday, Weekday, tuple[Interval, ...]]]:
    """Consecutive weekdays with the same intervals, for reading the hours out: (first, last, intervals).

    Closed days are skipped: ``mon..fri 07:30-17:00, sat 07:30-11:30``.
    """
    index = 0
    while index < len(WEEKDAYS):
        same = tuple(hours.get(WEEKDAYS[index], ()))
        last = index
        while last + 1 < len(WEEKDAYS) and tuple(hours.get(WEEKDAYS[last + 1], ())) == same:
            last += 1
        if same:
            yield WEEKDAYS[index], WEEKDAYS[last], same
        index = last + 1


def parse_zone(name: str) -> str:
    """An IANA zone name, checked to exist."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Ho_Chi_Minh)") from None
    return name


def parse_country(code: str | None) -> str | None:
    """A country code the ``holidays`` library knows (``VN``), or None for no public holidays."""
    if code is None or code == "":
        return None
    if code.upper() not in holidays.list_supported_countries():
        raise ValueError(f"no public holiday calendar for country {code!r} (use an ISO code such as VN)")
    return code.upper()


OpeningInterval = Annotated[Interval, BeforeValidator(parse_interval)]


class Schedule(BaseModel):
    """Working hours in local time; outside them, on public holidays and on the office's own days off the
    after-hours branch runs.

    Public holidays come from the ``holidays`` library (Vietnam's lunar new year, Hùng Kings' day and the
    Government's substituted days off, for any year), so nobody has to type next year's dates; ``days_off``
    adds the office's own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: Annotated[str, AfterValidator(parse_zone)] = "Asia/Ho_Chi_Minh"
    hours: dict[Weekday, tuple[OpeningInterval, ...]] = Field(default_factory=dict)
    public_holidays: Annotated[str | None, AfterValidator(parse_country)] = "VN"
    days_off: frozenset[date] = frozenset()

    @field_validator("hours")
    @classmethod
    def _no_overlap(cls, hours: dict[Weekday, tuple[Interval, ...]]) -> dict[Weekday, tuple[Interval, ...]]:
        return {day: check_day(intervals) for day, intervals in hours.items()}

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` (local) is a public holiday or one of the office's days off."""
        if day in self.days_off:
            return True
        return self.public_holidays is not None and day in _calendar(self.public_holidays, day.year)

    def holiday_name(self, day: date) -> str:
        """What the day off is called (for people reading the schedule), or ``""``."""
        if day in self.days_off:
            return "office day off"
        return str(_calendar(self.public_holidays, day.year).get(day, "")) if self.public_holidays else ""

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (aware) is inside working hours."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        local = now.astimezone(ZoneInfo(self.timezone))
        if self.is_holiday(local.date()):
            return False
        return is_open(self.hours, local)


@cache
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)
