"""The telephony model: the shipped file, per-line facts, holidays, and clear errors for the mistakes people make."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from callcenter.model.addresses import Address
from callcenter.model.contract import UNKNOWN_TOPIC, DeviceType
from callcenter.model.hotline import HotlineModel, ModelError, load, parse
from callcenter.model.schedule import Interval
from callcenter.model.text import is_digits
from callcenter.settings import Settings

MODEL_FILE = Settings().model_file


def data() -> dict[str, Any]:
    return tomllib.loads(MODEL_FILE.read_text(encoding="utf-8"))


def shipped() -> HotlineModel:
    return load(MODEL_FILE)


def test_shipped_model_covers_both_lines_seven_topics_six_operators() -> None:
    model = shipped()
    assert set(model.lines) == {"02621022", "1900868647"}
    assert model.topic_codes == ["admin", "environment", "urban_order", "construction", "security", "traffic",
                                 "other"]
    assert [t.digit for t in model.topics] == list("1234567")
    assert (model.ivr.menu.retries, model.ivr.menu.case_status_digit, model.ivr.menu.repeat_digit) == (2, "8", "9")
    city = model.lines["1900868647"]
    assert city.schedule is not None and city.schedule.timezone == "Asia/Ho_Chi_Minh"
    assert city.schedule.hours["mon"] == (Interval(450, 690), Interval(810, 1020))
    assert model.lines["02621022"].schedule is None  # around the clock
    assert {op.id: op.device for op in model.operators.values()} == {
        "op101": DeviceType.IP_PHONE, "op102": DeviceType.IP_PHONE, "op103": DeviceType.IP_PHONE,
        "op201": DeviceType.SOFTPHONE, "op202": DeviceType.SOFTPHONE, "op203": DeviceType.SOFTPHONE,
        "op301": DeviceType.BROWSER}
    queue = model.queues["operators"]
    assert queue.members == ("op101", "op102", "op103", "op201", "op202", "op301")
    assert queue.agents == ("op203",) and queue.autopause  # op203 logs in at the desk
    assert queue.admits("op203") and queue.admits("op101") and not queue.admits("op999")
    assert model.pbx.wss_url == "wss://198.51.100.1:8089/ws"  # the sandbox's WebRTC test network
    assert (model.pbx.sip, model.pbx.ami, model.ivr.address) == (
        Address("127.0.0.1", 5060), Address("127.0.0.1", 5038), Address("127.0.0.1", 4573))
    assert model.sandbox.citizen_ids[0] == "citizen1" and len(model.sandbox.citizen_ids) == 13


def test_only_the_free_line_promises_a_free_call_and_both_promise_confidentiality() -> None:
    model = shipped()
    province, city = model.lines["02621022"], model.lines["1900868647"]
    assert (province.free, city.free) == (True, False)
    assert "miễn phí" in province.greeting.vi and "free of charge" in province.greeting.en
    assert "miễn phí" not in city.greeting.vi and "free" not in city.greeting.en
    for line in (province, city):
        assert "bí mật" in line.greeting.vi and "ghi âm" in line.greeting.vi
        assert "confidential" in line.greeting.en and "recorded" in line.greeting.en


@pytest.mark.parametrize(("day", "closed"), [
    (date(2027, 2, 8), True),  # lunar new year 2027: from the library, nobody typed it in
    (date(2026, 9, 2), True),  # national day
    (date(2026, 8, 31), True),  # a substituted day off
    (date(2028, 4, 4), True),  # Hùng Kings' day 2028 (10th day of the 3rd lunar month)
    (date(2026, 11, 30), False),  # an ordinary Monday
])
def test_public_holidays_come_from_the_library_for_any_year(day: date, closed: bool) -> None:
    schedule = shipped().lines["1900868647"].schedule
    assert schedule is not None
    assert schedule.is_holiday(day) is closed
    assert schedule.is_open(datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)) is (not closed)


def test_the_offices_own_days_off_are_added() -> None:
    raw = data()
    raw["lines"]["1900868647"]["schedule"]["days_off"] = [date(2026, 12, 31)]
    schedule = parse(raw).lines["1900868647"].schedule
    assert schedule is not None and schedule.is_holiday(date(2026, 12, 31))
    assert schedule.holiday_name(date(2026, 12, 31)) == "office day off"


def test_defaults_when_sections_are_left_out() -> None:
    raw = data()
    del raw["ivr"], raw["pbx"], raw["sandbox"]
    model = parse(raw)
    assert model.ivr.menu.retries == 2 and model.ivr.prompts == "callcenter"
    assert model.ivr.case_number.min_length <= model.ivr.case_number.max_length
    assert model.pbx.sip == Address("127.0.0.1", 5060)


def problems(change: Any) -> str:
    raw = data()
    change(raw)
    with pytest.raises(ModelError) as caught:
        parse(raw, "hotline.toml")
    return str(caught.value)


def _set(path: str, value: Any) -> Any:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() and isinstance(node, list) else node[part]
        node[last] = value
    return change


@pytest.mark.parametrize(("change", "expected"), [
    (_set("topics.1.digit", "1"), "duplicate digits ['1']"),
    (_set("topics.1.code", "admin"), "duplicate codes ['admin']"),
    (_set("topics.0.code", UNKNOWN_TOPIC), "reserved"),
    (_set("topics.0.code", "Admin Procedures"), "topics.0.code"),
    (_set("topics.0.digit", "*"), "topics.0.digit"),
    (_set("topics.0.digit", "8"), "digit 8 is also ivr.menu.case_status_digit"),
    (_set("ivr.menu.repeat_digit", "8"), "case_status_digit and repeat_digit are the same key"),
    (_set("ivr.after_hours.callback_digit", "1"), "message, callback and case status keys must differ"),
    (_set("lines.02621022.topics", ["admin", "weather"]), "unknown topic codes ['weather']"),
    (_set("lines.02621022.topics", ["admin", "admin"]), "listed twice: ['admin']"),
    (_set("lines.02621022.topics", []), "lines.02621022.topics"),
    (_set("lines.02621022.language", "fr"), "lines.02621022.language"),
    (_set("lines.02621022.number", "999"), "differs from its table name"),
    (_set("lines.02621022.queue", "nobody"), "no queue 'nobody'"),
    (lambda raw: raw["lines"]["02621022"].pop("free"), "lines.02621022.free"),  # must be said, never assumed
    (_set("lines.1900868647.schedule.hours.mon", ["25:00-26:00"]), "bad time in '25:00-26:00'"),
    (_set("lines.1900868647.schedule.hours.mon", ["17:00-07:30"]), "must end after it starts"),
    (_set("lines.1900868647.schedule.hours.mon", ["07:00-12:00", "11:00-17:00"]), "overlap"),
    (_set("lines.1900868647.schedule.hours.monday", ["07:00-12:00"]), "hours.monday"),
    (_set("lines.1900868647.schedule.timezone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (_set("lines.1900868647.schedule.public_holidays", "XX"), "no public holiday calendar for country 'XX'"),
    (_set("lines.1900868647.schedule.days_off", ["2026-02-30"]), "days_off"),
    (_set("lines.1900868647.schedule.holidays", []), "holidays"),  # the old key: an error, not ignored
    (_set("operators.op102.extension", "101"), "extensions used twice: ['101']"),
    (_set("operators.op102.extension", "02621022"), "extension"),
    (_set("operators.op102.device", "tin-can"), "operators.op102.device"),
    (_set("operators.op102.device", "unknown"), "device must be ip_phone, softphone or browser"),
    (_set("operators.op102.id", "op999"), "differs from its table name"),
    (_set("queues.operators.members", ["op101", "op999"]), "not operators: ['op999']"),
    (_set("queues.operators.members", ["op101", "op101"]), "listed twice: ['op101']"),
    (_set("queues.operators.agents", ["op999"]), "agents: not operators: ['op999']"),
    (_set("departments.urban.phone", "101"), "departments.urban.phone 101 is a hotline number or an operator's"),
    (_set("departments.urban.phone", "02633555101"), "departments: phones listed twice: ['02633555101']"),
    (_set("departments.urban.phone", "12"), "departments.urban.phone"),
    (_set("departments.urban.email", "not-an-address"), "departments.urban.email"),
    (_set("departments.urban.webhook", "ftp://example.vn/hook"), "departments.urban.webhook"),
    (_set("topics.0.department", "nowhere"), "topics.admin.department: no department 'nowhere'"),
    (_set("topics.0.target_hours", 0), "topics.0.target_hours"),
    (_set("queues.operators.agents", ["op101"]), "['op101'] both always in the queue (members) and logging in"),
    (_set("queues.operators.ring_seconds", 1), "queues.operators.ring_seconds"),
    (_set("queues.Bad Name", {}), "a queue name is lower-case"),
    (_set("pbx.sip", "localhost"), "bad address 'localhost'"),
    (_set("pbx.ami", "127.0.0.1:99999"), "bad address"),
    (_set("pbx.ami", "127.0.0.1:²"), "bad address"),  # a digit to str.isdigit, not to int()
    (_set("sandbox.plain_number", "02621022"), "is also a line"),
    (_set("ivr.case_number.min_length", 20), "min_length 20 is more than max_length 12"),
    (_set("ivr.menu.retries", -1), "ivr.menu.retries"),
    (_set("ivr.menu.retires", 3), "ivr.menu.retires"),  # a typo is an error, not a silent default
    (_set("ivr.prompts", "../etc"), "ivr.prompts"),
    # Names written into Asterisk's files: a line break would add configuration, a quote end the callerid's.
    (_set("operators.op102.name", "A\nexten => 999,1,System(x)"),
     "operators.op102.name: must be one line without control characters (found '\\n')"),
    (_set("operators.op102.name", "A\r"), "operators.op102.name: must be one line"),
    (_set("operators.op102.name", "A\u2028B"), "operators.op102.name: must be one line"),
    (_set("operators.op102.name", "A\x85B"), "operators.op102.name: must be one line"),  # NEL, a C1 control
    (_set("operators.op102.name", 'x"y'), "operators.op102.name: a name shown as caller ID must not contain"),
    (_set("operators.op102.name", "x\\z"), "operators.op102.name: a name shown as caller ID must not contain"),
    (_set("operators.op102.name", "x;y"), "operators.op102.name: a name shown as caller ID must not contain"),
    (_set("lines.02621022.name", "A\nB"), "lines.02621022.name: must be one line"),
    (_set("departments.urban.name", "A\u2029B"), "departments.urban.name: must be one line"),
    (_set("departments.urban.name", "A\tB"), "departments.urban.name: must be one line"),
])
def test_mistakes_are_reported_clearly(change: Any, expected: str) -> None:
    message = problems(change)
    assert message.startswith("hotline.toml: invalid telephony model:")
    assert expected in message, message


def test_vietnamese_names_and_punctuation_outside_a_callerid_are_accepted() -> None:
    raw = data()
    raw["operators"]["op102"]["name"] = "Nguyễn Thị Hoa (ca đêm) - 'Hoa'"
    raw["lines"]["02621022"]["name"] = "Đường dây nóng; tỉnh \"Lâm Đồng\" \\ 24/7"  # only a dialplan comment
    raw["departments"]["urban"]["name"] = "Phòng Quản lý đô thị; Đội \"trật tự\""
    model = parse(raw)
    assert model.operators["op102"].name == "Nguyễn Thị Hoa (ca đêm) - 'Hoa'"
    assert model.lines["02621022"].name.startswith("Đường dây nóng; tỉnh")
    assert model.departments["urban"].name == 'Phòng Quản lý đô thị; Đội "trật tự"'


def test_every_problem_is_listed_at_once() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["topics"][1]["digit"] = "1"
        raw["lines"]["02621022"]["topics"] = ["nope"]
        raw["queues"]["operators"]["members"] = ["ghost"]
    message = problems(change)
    assert "duplicate digits" in message and "unknown topic codes ['nope']" in message
    assert "not operators: ['ghost']" in message


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[ivr\nretries = 2\n", encoding="utf-8")
    with pytest.raises(ModelError, match="not valid TOML"):
        load(broken)


@pytest.mark.parametrize(("text", "digits"), [
    ("0", True), ("02621022", True), ("", False), ("²", False), ("١٠", False), ("１０", False), ("12 ", False),
    ("-1", False), ("+84", False), ("1_000", False),
])
def test_numbers_are_ascii_digits_only(text: str, digits: bool) -> None:
    assert is_digits(text) is digits
