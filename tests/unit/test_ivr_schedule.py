"""Working hours across time zones, DST and holidays, and how they are read to the caller."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from callcenter.model.schedule import Interval, Schedule, Weekday, parse_interval, week_groups
from ivr.speech import digits, time_of_day, working_hours

OFFICE = Schedule.model_validate({
    "hours": {day: ["07:30-11:30", "13:30-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": ["07:30-11:30"]},
    "public_holidays": None,
    "days_off": ["2026-01-01", "2026-09-02"],
})
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(("local", "open_"), [
    ("2026-11-30 07:29", False), ("2026-11-30 07:30", True), ("2026-11-30 11:29", True),
    ("2026-11-30 11:30", False), ("2026-11-30 13:30", True), ("2026-11-30 16:59", True), ("2026-11-30 17:00", False),
    ("2026-11-28 09:00", True), ("2026-11-28 14:00", False),  # Saturday morning only
    ("2026-11-29 09:00", False),  # Sunday
    ("2026-09-02 09:00", False),  # a holiday on a Wednesday
    ("2026-01-01 08:00", False),
])
def test_office_hours_in_local_time(local: str, open_: bool) -> None:
    now = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=HCM)
    assert OFFICE.is_open(now) is open_
    assert OFFICE.is_open(now.astimezone(UTC)) is open_  # the same instant, however it is expressed
    assert OFFICE.is_open(now.astimezone(ZoneInfo("America/New_York"))) is open_


def test_the_holiday_is_the_local_date_not_the_utc_date() -> None:
    # 2026-01-01 08:00 in Ho Chi Minh City is still 2025-12-31 in UTC (a normal Wednesday at 01:00).
    assert not OFFICE.is_open(datetime(2026, 1, 1, 1, 0, tzinfo=UTC))
    # 2025-12-31 16:00 local (a Wednesday) is 09:00 UTC: open, though UTC's "today" is no holiday either.
    assert OFFICE.is_open(datetime(2025, 12, 31, 9, 0, tzinfo=UTC))


def test_a_schedule_in_another_zone_follows_its_dst() -> None:
    paris = Schedule.model_validate({"timezone": "Europe/Paris", "hours": {"mon": ["09:00-10:00"]}})
    winter = datetime(2026, 3, 23, 8, 30, tzinfo=UTC)  # a Monday, 09:30 CET (UTC+1)
    summer = datetime(2026, 3, 30, 8, 30, tzinfo=UTC)  # a Monday, 10:30 CEST (UTC+2)
    assert paris.is_open(winter) and not paris.is_open(summer)
    assert paris.is_open(summer - timedelta(hours=1))


def test_a_fixed_offset_clock_works_too() -> None:
    assert OFFICE.is_open(datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=7))))


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        OFFICE.is_open(datetime(2026, 11, 30, 9, 0))


def test_interval_edges() -> None:
    assert parse_interval("0:00-24:00") == Interval(0, 1440)
    assert parse_interval(" 07:30 - 11:30 ") == Interval(450, 690)
    assert str(Interval(450, 690)) == "07:30-11:30"
    for bad in ("24:00-24:01", "12:00-12:00", "", "07:30", 730, None):
        with pytest.raises(ValueError):
            parse_interval(bad)


def test_around_the_clock_day_and_midnight() -> None:
    always = Schedule.model_validate({"hours": {"sun": ["00:00-24:00"]}})
    assert always.is_open(datetime(2026, 11, 29, 23, 59, tzinfo=HCM))
    assert always.is_open(datetime(2026, 11, 29, 0, 0, tzinfo=HCM))
    assert not always.is_open(datetime(2026, 11, 30, 0, 0, tzinfo=HCM))


def test_week_groups_join_consecutive_equal_days() -> None:
    groups = list(week_groups(OFFICE.hours))
    assert [(first, last) for first, last, _ in groups] == [("mon", "fri"), ("sat", "sat")]
    split: dict[Weekday, tuple[Interval, ...]] = {"mon": (Interval(1, 2),), "wed": (Interval(1, 2),),
                                                  "sun": (Interval(1, 2),)}
    assert [(first, last) for first, last, _ in week_groups(split)] == [("mon", "mon"), ("wed", "wed"),
                                                                         ("sun", "sun")]


@pytest.mark.parametrize(("minutes", "vi", "en"), [
    (450, ["num-7", "hour", "num-30"], ["num-7", "num-30", "am"]),
    (1020, ["num-17", "hour"], ["num-5", "pm"]),
    (725, ["num-12", "hour", "num-5"], ["num-12", "oh", "num-5", "pm"]),
    (0, ["num-0", "hour"], ["num-12", "am"]),
    (1440, ["num-24", "hour"], ["num-12", "am"]),
])
def test_times_are_spoken_per_language(minutes: int, vi: list[str], en: list[str]) -> None:
    assert time_of_day(minutes, "vi") == vi
    assert time_of_day(minutes, "en") == en


def test_working_hours_readout() -> None:
    spoken = working_hours(Schedule.model_validate({"hours": {"sun": ["00:00-24:00"]}, "days_off": [date(2026, 1, 1)]}),
                           "en")
    assert spoken == ["hours-intro", "day-sun", "all-day", "holidays-closed"]
    assert working_hours(None, "vi") == []


def test_digits_skip_anything_else() -> None:
    assert digits("09*5#") == ["num-0", "num-9", "num-5"]
