"""Times across midnight and across a daylight-saving change in Asterisk's zone: the call log stays in UTC and
its durations stay right, whatever the wall clock did."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callcenter.ami.events import CelEvent, from_ami
from callcenter.calls.builder import build_call
from callcenter.model.contract import Status
from tests.factories import DIRECTORY, ami_headers, answered_stream

PARIS = ZoneInfo("Europe/Paris")
# 2026-10-25: clocks in Paris go back from 03:00 CEST to 02:00 CET; 02:00-03:00 local happens twice.
FALL_BACK_UTC = datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()


def _over_ami(event: CelEvent, zone: ZoneInfo, with_timestamp: bool = True) -> CelEvent:
    """The event as Asterisk in ``zone`` sends it over AMI (EventTime in local wall time, Timestamp in UTC)."""
    wall = datetime.fromtimestamp(event.second, zone).strftime("%Y-%m-%d %H:%M:%S")
    headers = ami_headers(event, wall)
    if with_timestamp:
        headers["Timestamp"] = f"{event.time:.6f}"
    return from_ami(headers, zone)


def _shifted(start: float, talk: float) -> list[CelEvent]:
    events = answered_stream(talk=talk)
    offset = start - events[0].time
    return [replace(e, time=e.time + offset, second=int(e.time + offset)) for e in events]


@pytest.mark.parametrize("start", [FALL_BACK_UTC - 1800, FALL_BACK_UTC - 60, FALL_BACK_UTC + 1800])
def test_a_call_over_the_fall_back_hour_keeps_its_real_duration(start: float) -> None:
    """The same local hour twice: the UTC Timestamp Asterisk sends with every event tells them apart."""
    events = [_over_ami(event, PARIS) for event in _shifted(start, talk=1800.0)]
    record = build_call(events, DIRECTORY)
    assert record.status is Status.ANSWERED
    assert record.talk_seconds == pytest.approx(1800.0, abs=1.0)
    assert record.started_at == datetime.fromtimestamp(int(start), UTC)


def test_without_timestamps_the_configured_zone_decides_and_the_fold_is_its_first_reading() -> None:
    """Asterisk without ``timestampevents``: an ambiguous wall time reads as the earlier (summer) instant, so an
    event in the repeated hour may be an hour early; README says to keep timestampevents on."""
    event = _shifted(FALL_BACK_UTC + 1800, talk=10.0)[0]  # 02:30 CET, the second 02:30 of the night
    parsed = _over_ami(event, PARIS, with_timestamp=False)
    assert parsed.second == event.second - 3600


def test_a_call_across_midnight_in_ho_chi_minh_city_is_one_call_on_the_day_it_started() -> None:
    saigon = ZoneInfo("Asia/Ho_Chi_Minh")
    midnight = datetime(2026, 11, 30, tzinfo=saigon).timestamp()
    events = [_over_ami(event, saigon) for event in _shifted(midnight - 120, talk=600.0)]
    record = build_call(events, DIRECTORY)
    assert record.started_at.astimezone(saigon).date().isoformat() == "2026-11-29"
    assert record.ended_at.astimezone(saigon).date().isoformat() == "2026-11-30"
    assert record.talk_seconds == pytest.approx(600.0, abs=1.0)
