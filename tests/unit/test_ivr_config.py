"""The IVR configuration: the shipped file, and clear errors for the mistakes people make."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ivr.config import DEFAULT_PATH, UNKNOWN_TOPIC, ConfigError, load, parse
from ivr.schedule import Interval


def data() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def test_default_config_covers_both_model_lines_and_seven_topics() -> None:
    config = load()
    assert set(config.lines) == {"02621022", "1900868647"}
    assert config.topic_codes == ["admin", "environment", "urban_order", "construction", "security", "traffic",
                                  "other"]
    assert [t.digit for t in config.topics] == list("1234567")
    assert (config.menu.retries, config.menu.case_status_digit, config.menu.repeat_digit) == (2, "8", "9")
    city = config.lines["1900868647"]
    assert city.schedule is not None and city.schedule.timezone == "Asia/Ho_Chi_Minh"
    assert city.schedule.hours["mon"] == (Interval(450, 690), Interval(810, 1020))
    assert config.lines["02621022"].schedule is None  # around the clock
    assert all(line.language == "vi" for line in config.lines.values())


def test_defaults_when_sections_are_left_out() -> None:
    raw = data()
    for section in ("menu", "after_hours", "message", "case_number", "callback", "prompts"):
        del raw[section]
    config = parse(raw)
    assert config.menu.retries == 2 and config.prompts.root == "callcenter"
    assert config.case_number.min_length <= config.case_number.max_length


def problems(change: Any) -> str:
    raw = data()
    change(raw)
    with pytest.raises(ConfigError) as caught:
        parse(raw, "ivr/config.toml")
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
    (_set("topics.0.digit", "10"), "topics.0.digit"),
    (_set("topics.0.digit", "8"), "digit 8 is also menu.case_status_digit"),
    (_set("menu.repeat_digit", "8"), "case_status_digit and repeat_digit are the same key"),
    (_set("after_hours.callback_digit", "1"), "message, callback and case status keys must differ"),
    (_set("lines.02621022.topics", ["admin", "weather"]), "unknown topic codes ['weather']"),
    (_set("lines.02621022.topics", ["admin", "admin"]), "listed twice: ['admin']"),
    (_set("lines.02621022.topics", []), "lines.02621022.topics"),
    (_set("lines.02621022.language", "fr"), "lines.02621022.language"),
    (_set("lines.02621022.number", "999"), "differs from its table name"),
    (_set("lines.1900868647.schedule.hours.mon", ["25:00-26:00"]), "bad time in '25:00-26:00'"),
    (_set("lines.1900868647.schedule.hours.mon", ["17:00-07:30"]), "must end after it starts"),
    (_set("lines.1900868647.schedule.hours.mon", ["7h30"]), "expected \"HH:MM-HH:MM\""),
    (_set("lines.1900868647.schedule.hours.mon", ["07:61-08:00"]), "bad time"),
    (_set("lines.1900868647.schedule.hours.mon", ["07:00-12:00", "11:00-17:00"]), "overlap"),
    (_set("lines.1900868647.schedule.hours.monday", ["07:00-12:00"]), "hours.monday"),
    (_set("lines.1900868647.schedule.timezone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (_set("lines.1900868647.schedule.holidays", ["2026-02-30"]), "holidays"),
    (_set("case_number.min_length", 20), "min_length 20 is more than max_length 12"),
    (_set("menu.retries", -1), "menu.retries"),
    (_set("menu.timeout", 0), "menu.timeout"),
    (_set("menu.retires", 3), "menu.retires"),  # a typo is an error, not a silent default
    (_set("prompts.root", "../etc"), "prompts.root"),
])
def test_mistakes_are_reported_clearly(change: Any, expected: str) -> None:
    message = problems(change)
    assert message.startswith("ivr/config.toml: invalid IVR configuration:")
    assert expected in message, message


def test_every_problem_is_listed_at_once() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["topics"][1]["digit"] = "1"
        raw["lines"]["02621022"]["topics"] = ["nope"]
    message = problems(change)
    assert "duplicate digits" in message and "unknown topic codes ['nope']" in message


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[menu\nretries = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(broken)
