"""Working hours of a line: weekly opening intervals, holidays, a time zone. Pure: the clock is an argument.

An interval is ``"HH:MM-HH:MM"`` in the line's local time, start inclusive, end exclusive; ``24:00`` ends a day.
An interval never crosses midnight: a night shift is two intervals on two days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from itertools import pairwise
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

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


def is_open(hours: Mapping[Weekday, Sequence[Interval]], holidays: frozenset[date], zone: ZoneInfo,
            now: datetime) -> bool:
    """Whether the line takes calls at ``now`` (an aware datetime): not a local holiday and inside an interval."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    local = now.astimezone(zone)
    if local.date() in holidays:
        return False
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
