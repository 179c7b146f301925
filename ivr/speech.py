"""Numbers, times and working hours as sequences of prompt names (pure; the texts are in the manifest).

Vietnamese reads times on the 24-hour clock ("mười bảy giờ ba mươi"); English on the 12-hour clock
("five thirty p m"). Case and phone numbers are read digit by digit.
"""

from __future__ import annotations

from callcenter.model.schedule import DAY_MINUTES, Interval, Schedule, week_groups
from ivr.prompts.manifest import number

DIGITS = "0123456789"


def digits(text: str) -> list[str]:
    """``"0905"`` -> the prompts for 0, 9, 0, 5 (anything but 0-9 is skipped)."""
    return [number(int(char)) for char in text if char in DIGITS]


def menu_option(label: str, digit: str) -> list[str]:
    """``<label>, press <digit>``."""
    return [label, "press", *digits(digit)]


def _english_time(hour: int, minute: int) -> list[str]:
    spoken = [number(hour % 12 or 12)]
    if minute:
        spoken += ["oh", number(minute)] if minute < 10 else [number(minute)]
    return [*spoken, "pm" if 12 <= hour < 24 else "am"]


def time_of_day(minutes: int, language: str) -> list[str]:
    """Minutes since midnight (0-1440) as spoken in ``language``."""
    hour, minute = divmod(minutes, 60)
    if language == "en":
        return _english_time(hour, minute)
    return [number(hour), "hour", *([number(minute)] if minute else [])]


def interval(opening: Interval, language: str) -> list[str]:
    """``from 7:30 until 11:30``, or ``all day``."""
    if opening == Interval(0, DAY_MINUTES):
        return ["all-day"]
    return ["from", *time_of_day(opening.start, language), "until", *time_of_day(opening.end, language)]


def working_hours(schedule: Schedule | None, language: str) -> list[str]:
    """``Our working hours are: Monday to Friday, from ... until ... and from ... until ...; closed on holidays``."""
    if schedule is None:
        return []
    spoken = ["hours-intro"]
    for first, last, openings in week_groups(schedule.hours):
        spoken += [f"day-{first}", *(["through", f"day-{last}"] if last != first else [])]
        for index, opening in enumerate(openings):
            spoken += [*(["and"] if index else []), *interval(opening, language)]
    if schedule.public_holidays or schedule.days_off:
        spoken.append("holidays-closed")
    return spoken
