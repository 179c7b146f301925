"""The hotline flows against a scripted caller: every branch, odd keys, hang-ups, and what each reports."""

from __future__ import annotations

import random
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from callcenter.model.contract import IvrOutcome
from callcenter.model.hotline import HotlineModel, load, parse
from callcenter.settings import Settings
from ivr.flows import hotline, passthrough, run
from ivr.steps import MAX_ROUNDS, Call, Services
from ivr.testing import HANG, FixedCases, ScriptedChannel, random_script

MODEL_FILE = Settings().model_file
CONFIG = load(MODEL_FILE)
PROVINCE, CITY = "02621022", "1900868647"  # always open; office hours with holidays
MONDAY_9 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City
MONDAY_LUNCH = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 12:00
SUNDAY = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
HOLIDAY_9 = datetime(2026, 9, 2, 2, 0, tzinfo=UTC)  # a Wednesday, National Day
MESSAGE = "/var/spool/asterisk/monitor/1.2/msg-1.2.wav"


def config_data() -> dict[str, Any]:
    return tomllib.loads(MODEL_FILE.read_text(encoding="utf-8"))


def call(script: list[str], line: str = PROVINCE, now: datetime = MONDAY_9, caller: str = "0905123456",
         services: Services | None = None, **channel: Any) -> tuple[IvrOutcome, ScriptedChannel]:
    fake = ScriptedChannel(script, **channel)
    outcome = run(hotline, fake, Call(line=line, now=now, caller=caller), services or Services(CONFIG))
    return outcome, fake


def names(fake: ScriptedChannel) -> list[str]:
    return [name for name, _ in fake.events]


@pytest.mark.parametrize("topic", CONFIG.topics, ids=lambda t: t.code)
def test_each_topic_goes_to_the_queue_with_its_code(topic: Any) -> None:
    outcome, fake = call([topic.digit])
    assert outcome is IvrOutcome.QUEUE
    assert fake.events == [("START", {"line": PROVINCE, "lang": "vi"}), ("MENU", {"menu": "main", "attempt": "1"}),
                           ("KEY", {"menu": "main", "digit": topic.digit}),
                           ("TOPIC", {"topic": topic.code, "reason": "key"}),
                           ("EXIT", {"outcome": "queue", "reason": "key"})]
    assert fake.variables == {"IVR_LANG": "vi", "IVR_TOPIC": topic.code, "IVR_OUTCOME": "queue"}
    assert fake.played[0] == f"greeting-{PROVINCE}" and fake.played[-1] == "to-operator"


def test_menu_announces_every_topic_with_its_key_then_waits() -> None:
    _, fake = call(["1"])
    menu = fake.played[1:fake.played.index("to-operator")]
    assert menu[:4] == ["menu-intro", "topic-admin", "press", "num-1"]
    assert menu[-6:] == ["menu-case-status", "press", "num-8", "menu-repeat", "press", "num-9"]
    assert ("wait", CONFIG.ivr.menu.timeout) in fake.trace


def test_a_key_during_the_menu_cuts_it_short() -> None:
    _, fake = call(["!3"])
    assert fake.variables["IVR_TOPIC"] == "urban_order"
    assert not [step for step in fake.trace if step[0] == "wait"]
    assert "topic-other" not in fake.played


def test_invalid_key_then_valid_one() -> None:
    _, fake = call(["*", "2"])
    assert fake.events[1:5] == [("MENU", {"menu": "main", "attempt": "1"}), ("INVALID", {"menu": "main", "input": "*"}),
                                ("MENU", {"menu": "main", "attempt": "2"}), ("KEY", {"menu": "main", "digit": "2"})]
    assert "invalid" in fake.played and fake.variables["IVR_TOPIC"] == "environment"


def test_silence_repeats_the_menu_twice_then_an_operator_with_unknown_topic() -> None:
    outcome, fake = call([])
    assert outcome is IvrOutcome.QUEUE
    assert names(fake) == ["START", "MENU", "TIMEOUT", "MENU", "TIMEOUT", "MENU", "TIMEOUT", "TOPIC", "EXIT"]
    assert fake.events[-2:] == [("TOPIC", {"topic": "unknown", "reason": "no_choice"}),
                                ("EXIT", {"outcome": "queue", "reason": "no_choice"})]
    assert fake.played.count("menu-intro") == 3 and fake.played.count("no-input") == 3
    assert fake.variables["IVR_TOPIC"] == "unknown"


@pytest.mark.parametrize("retries", [0, 4])
def test_retries_are_configurable(retries: int) -> None:
    data = config_data()
    data["ivr"]["menu"]["retries"] = retries
    _, fake = call([], services=Services(parse(data)))
    assert names(fake).count("TIMEOUT") == retries + 1


@pytest.mark.parametrize("garbage", ["#", "*", "a", "D", "12", "0", "٣", " ", "1" * 5000, "\x00", "%26topic%3Dx"])
def test_odd_keys_are_invalid_and_never_raise(garbage: str) -> None:
    outcome, fake = call([garbage] * 3)
    assert outcome is IvrOutcome.QUEUE and fake.variables["IVR_TOPIC"] == "unknown"
    invalid = [fields for name, fields in fake.events if name == "INVALID"]
    assert len(invalid) == 3 and all(len(fields["input"]) <= 20 for fields in invalid)


def test_repeat_key_replays_the_menu_without_using_a_retry() -> None:
    _, fake = call(["9", "9", "", "", "1"])
    assert names(fake).count("MENU") == 5 and fake.variables["IVR_TOPIC"] == "admin"


def test_a_caller_who_only_presses_repeat_still_reaches_an_operator() -> None:
    outcome, fake = call(["9"] * 50)
    assert outcome is IvrOutcome.QUEUE and names(fake).count("MENU") == MAX_ROUNDS
    assert fake.variables["IVR_TOPIC"] == "unknown"


def test_case_status_not_found_then_back_to_the_menu() -> None:
    outcome, fake = call(["8", "12345", "1"])
    assert outcome is IvrOutcome.QUEUE and fake.variables["IVR_TOPIC"] == "admin"
    assert ("CASE_LOOKUP", {"number": "12345", "result": "not_found"}) in fake.events
    rules = CONFIG.ivr.case_number
    assert ("collect", "case-enter", rules.max_length + 1, rules.timeout) in fake.trace
    start = fake.played.index("case-number")
    assert fake.played[start:start + 7] == ["case-number", "num-1", "num-2", "num-3", "num-4", "num-5",
                                           "case-not-found"]


@pytest.mark.parametrize(("status", "prompt"), [("in_progress", "case-status-in_progress"),
                                                ("something_new", "case-status-other")])
def test_case_status_found_is_read_back(status: str, prompt: str) -> None:
    cases = FixedCases({"20260042": status})
    _, fake = call(["8", "20260042"], services=Services(CONFIG, cases))
    assert ("CASE_LOOKUP", {"number": "20260042", "result": "found", "status": status}) in fake.events
    start = fake.played.index("case-number")
    assert fake.played[start + 9:start + 15] == ["case-status-is", prompt, "case-updated", "num-28", "month", "num-11"]


def test_malformed_case_numbers_are_refused_without_a_lookup() -> None:
    cases = FixedCases()
    _, fake = call(["8", "12", "12*4", "1" * 13, "7"], services=Services(CONFIG, cases))
    assert cases.asked == []
    refused = [fields["problem"] for name, fields in fake.events if name == "INVALID"]
    assert refused == ["too_short", "not_digits", "too_long"]
    assert fake.played.count("case-invalid") == 3 and fake.variables["IVR_TOPIC"] == "other"


def test_silent_case_entry_times_out_then_returns_to_the_menu() -> None:
    _, fake = call(["8", "", "", "", "4"])
    assert [f for n, f in fake.events if n == "TIMEOUT"] == [{"menu": "case", "attempt": str(i)} for i in (1, 2, 3)]
    assert fake.variables["IVR_TOPIC"] == "construction"


def test_a_failing_case_lookup_is_reported_and_the_call_goes_on() -> None:
    cases = FixedCases(error=RuntimeError("database down"))
    outcome, fake = call(["8", "12345", "5"], services=Services(CONFIG, cases))
    assert ("CASE_LOOKUP", {"number": "12345", "result": "error"}) in fake.events
    assert "case-unavailable" in fake.played and outcome is IvrOutcome.QUEUE


def test_hang_up_mid_menu_stops_quietly() -> None:
    outcome, fake = call(["", HANG])
    assert outcome is IvrOutcome.HANGUP
    assert names(fake) == ["START", "MENU", "TIMEOUT", "MENU"]
    assert "IVR_OUTCOME" not in fake.variables and fake.trace[-1] == ("hangup",)


def test_hang_up_during_the_greeting() -> None:
    outcome, fake = call(["1"], hang_on=f"greeting-{PROVINCE}")
    assert outcome is IvrOutcome.HANGUP and names(fake) == ["START"]


def test_unknown_line_goes_straight_to_an_operator() -> None:
    outcome, fake = call(["1"], line="5555")
    assert outcome is IvrOutcome.QUEUE
    assert fake.events[-2:] == [("TOPIC", {"topic": "unknown", "reason": "unknown_line"}),
                                ("EXIT", {"outcome": "queue", "reason": "unknown_line"})]
    assert fake.played == ["to-operator"]


def test_english_line() -> None:
    data = config_data()
    data["lines"][PROVINCE]["language"] = "en"
    _, fake = call(["6"], services=Services(parse(data)))
    assert fake.language == "en" and fake.variables["IVR_LANG"] == "en"
    assert fake.events[0] == ("START", {"line": PROVINCE, "lang": "en"})


def test_city_line_in_office_hours_offers_the_menu() -> None:
    _, fake = call(["1"], line=CITY)
    assert "AFTER_HOURS" not in names(fake) and fake.variables["IVR_TOPIC"] == "admin"


@pytest.mark.parametrize("now", [MONDAY_LUNCH, SUNDAY, HOLIDAY_9], ids=["lunch", "sunday", "holiday"])
def test_after_hours_message(now: datetime) -> None:
    outcome, fake = call(["1"], line=CITY, now=now)
    assert outcome is IvrOutcome.MESSAGE
    assert names(fake) == ["START", "AFTER_HOURS", "MENU", "KEY", "MESSAGE", "EXIT"]
    assert fake.events[4:] == [("MESSAGE", {"path": MESSAGE}), ("EXIT", {"outcome": "message", "reason": "message"})]
    assert fake.variables == {"IVR_LANG": "vi", "IVR_MESSAGE": MESSAGE, "IVR_OUTCOME": "message"}
    assert ("record", MESSAGE, CONFIG.ivr.message.max_seconds, CONFIG.ivr.message.silence_seconds) in fake.trace
    assert fake.played[-2:] == ["message-instructions", "message-thanks"]


def test_after_hours_reads_the_working_hours() -> None:
    _, fake = call(["1"], line=CITY, now=SUNDAY)
    hours = fake.played[fake.played.index("after-hours") + 1:fake.played.index("ah-message")]
    assert hours == ["hours-intro",
                     "day-mon", "through", "day-fri",
                     "from", "num-7", "hour", "num-30", "until", "num-11", "hour", "num-30",
                     "and", "from", "num-13", "hour", "num-30", "until", "num-17", "hour",
                     "day-sat", "from", "num-7", "hour", "num-30", "until", "num-11", "hour", "num-30",
                     "holidays-closed"]


def test_after_hours_silence_asks_for_a_message() -> None:
    outcome, fake = call([], line=CITY, now=SUNDAY)
    assert outcome is IvrOutcome.MESSAGE
    assert names(fake)[2:] == ["MENU", "TIMEOUT"] * 3 + ["MESSAGE", "EXIT"]


def test_after_hours_callback_on_the_callers_own_number() -> None:
    outcome, fake = call(["2", ""], line=CITY, now=SUNDAY)
    assert outcome is IvrOutcome.CALLBACK
    assert fake.events[-2:] == [("CALLBACK", {"number": "0905123456", "source": "callerid"}),
                                ("EXIT", {"outcome": "callback", "reason": "callback"})]
    assert fake.variables["IVR_CALLBACK_NUMBER"] == "0905123456" and fake.variables["IVR_OUTCOME"] == "callback"
    assert fake.played[-12:] == ["callback-confirm", "num-0", "num-9", "num-0", "num-5", "num-1", "num-2", "num-3",
                                 "num-4", "num-5", "num-6", "callback-thanks"]


def test_after_hours_callback_on_a_keyed_number_after_a_bad_one() -> None:
    _, fake = call(["2", "123", "02623811234"], line=CITY, now=SUNDAY, caller="anonymous")
    assert ("INVALID", {"menu": "callback", "input": "123", "problem": "too_short"}) in fake.events
    assert ("CALLBACK", {"number": "02623811234", "source": "entered"}) in fake.events


def test_callback_without_a_usable_number_falls_back_to_a_message() -> None:
    outcome, fake = call(["2", "", "", ""], line=CITY, now=SUNDAY, caller="citizen1")
    assert outcome is IvrOutcome.MESSAGE
    assert names(fake)[-5:] == ["TIMEOUT", "MENU", "TIMEOUT", "MESSAGE", "EXIT"]


def test_after_hours_case_status_then_callback() -> None:
    outcome, fake = call(["8", "4321", "2", ""], line=CITY, now=SUNDAY)
    assert ("CASE_LOOKUP", {"number": "4321", "result": "not_found"}) in fake.events
    assert outcome is IvrOutcome.CALLBACK


def test_no_message_path_sends_the_caller_to_the_queue() -> None:
    outcome, fake = call(["1"], line=CITY, now=SUNDAY, path="")
    assert outcome is IvrOutcome.QUEUE
    assert fake.events[-1] == ("EXIT", {"outcome": "queue", "reason": "message_unavailable"})


def test_failed_recording_sends_the_caller_to_the_queue() -> None:
    outcome, fake = call(["1"], line=CITY, now=SUNDAY, record_ok=False)
    assert outcome is IvrOutcome.QUEUE and fake.variables["IVR_OUTCOME"] == "queue"
    assert names(fake)[-3:] == ["MESSAGE", "TOPIC", "EXIT"]


def test_hang_up_while_recording_keeps_the_message_reported() -> None:
    outcome, fake = call(["1", HANG], line=CITY, now=SUNDAY)
    assert outcome is IvrOutcome.HANGUP
    assert names(fake)[-1] == "MESSAGE" and fake.variables["IVR_OUTCOME"] == "message"


def test_passthrough() -> None:
    fake = ScriptedChannel()
    assert passthrough(fake, Call(line=CITY, now=MONDAY_9), Services(CONFIG)) is IvrOutcome.QUEUE
    assert fake.events == [("START", {"line": CITY})] and fake.variables == {"IVR_OUTCOME": "queue"}


@pytest.mark.parametrize("language", ["vi", "en"])
def test_random_callers_always_end_in_a_handoff_and_hear_only_known_prompts(language: str) -> None:
    from ivr.prompts.manifest import manifest

    data = config_data()
    for line in data["lines"].values():
        line["language"] = language
    config: HotlineModel = parse(data)
    known = set(manifest(config))
    rng = random.Random(1022)
    for _ in range(400):
        line, now = rng.choice([PROVINCE, CITY]), rng.choice([MONDAY_9, MONDAY_LUNCH, SUNDAY, HOLIDAY_9])
        outcome, fake = call(random_script(rng), line=line, now=now, caller=rng.choice(["", "0905123456"]),
                             services=Services(config, FixedCases({"1234": "resolved"})))
        assert outcome in (IvrOutcome.QUEUE, IvrOutcome.MESSAGE, IvrOutcome.CALLBACK)
        assert fake.variables["IVR_OUTCOME"] == outcome
        assert fake.events[-1][0] == "EXIT"
        assert set(fake.played) <= known, set(fake.played) - known
