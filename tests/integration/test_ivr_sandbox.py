"""The IVR with real calls: baresip callers key RFC 4733 DTMF through every branch; the call log shows the path.

Scenarios run side by side (one citizen each) to keep the suite short; the database is SQLite only here, as the
IVR logic does not depend on it (the store itself is tested on both backends elsewhere).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import tomlkit
from sqlalchemy import select

from callcenter.model.contract import Role
from callcenter.model.hotline import load
from callcenter.sandbox.baresip import SipAgent
from callcenter.store import cases
from callcenter.store.db import Database
from callcenter.store.models import CALL, Recording
from tests.integration.conftest import (
    MODEL,
    SETTINGS,
    IvrProcess,
    ListenerProcess,
    caller_number,
    wait_cel,
    wait_for_calls,
    wait_queue,
    wait_until,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
PROVINCE, CITY = "02621022", "1900868647"


def _model_copy(tmp_path: Path, name: str, change: Callable[[tomlkit.TOMLDocument], None]) -> Path:
    document = tomlkit.parse(SETTINGS.model_file.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / name
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    load(path)  # still a valid model
    return path


def _shorter(document: tomlkit.TOMLDocument) -> None:
    """Shorter menus and waits; the city line closed today and tomorrow (office days off).

    The provincial line offers one topic here (urban order, key 3), so a caller who keys nothing hears its menu
    twice in about 35 s instead of a minute and a half with all seven; every topic's key is tried on the city line
    (``open_config``)."""
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    document["ivr"]["menu"]["retries"] = 1  # type: ignore[index]
    document["ivr"]["menu"]["timeout"] = 3.0  # type: ignore[index]
    document["lines"][PROVINCE]["topics"] = ["urban_order"]  # type: ignore[index]
    document["lines"][CITY]["schedule"]["days_off"] = [today, today + timedelta(days=1)]  # type: ignore[index]


def _open(document: tomlkit.TOMLDocument) -> None:
    """As ``_shorter``, but the city line is open around the clock with its seven topics."""
    _shorter(document)
    del document["lines"][CITY]["schedule"]  # type: ignore[union-attr]


@pytest.fixture
def closed_config(tmp_path: Path) -> Path:
    """The shipped model with shorter menus and waits, and the city line closed today (an office day off)."""
    return _model_copy(tmp_path, "hotline.toml", _shorter)


@pytest.fixture
def open_config(tmp_path: Path) -> Path:
    """As ``closed_config``, but the city line is open around the clock with its seven topics."""
    return _model_copy(tmp_path, "open.toml", _open)


Script = Callable[[SipAgent, str], None]


@dataclass
class Scenarios:
    """Scenarios under way, each played by its own citizen in a thread of its own."""

    numbers: dict[str, str]  # scenario -> caller number
    threads: list[threading.Thread]
    errors: list[BaseException] = field(default_factory=list)

    def join(self) -> dict[str, str]:
        """Wait for every script to end; fail with each scenario's error; return scenario -> caller number."""
        for thread in self.threads:
            thread.join(240)
        assert not self.errors, self.errors
        return self.numbers


def _start(agents: Callable[..., SipAgent], scripts: dict[str, tuple[str, Script]], first: int = 1) -> Scenarios:
    """Start each scenario's script at once, on citizens ``citizen<first>``, ``citizen<first + 1>``..."""
    numbers = {name: caller_number() for name in scripts}
    citizens = {name: agents(f"citizen{first + n}", wav_seconds=180, caller_number=numbers[name])
                for n, name in enumerate(scripts)}
    scenarios = Scenarios(numbers, [])

    def play(name: str) -> None:
        line, script = scripts[name]
        try:
            citizens[name].dial(line)
            script(citizens[name], numbers[name])
        except BaseException as exc:  # reported by join, with the scenario's name
            scenarios.errors.append(RuntimeError(f"scenario {name}: {exc!r}"))

    scenarios.threads += [threading.Thread(target=play, args=(name,)) for name in scripts]
    for thread in scenarios.threads:
        thread.start()
    return scenarios


def _run(agents: Callable[..., SipAgent], scripts: dict[str, tuple[str, Script]]) -> dict[str, str]:
    """Run each scenario's script on its own citizen at once; return scenario -> caller number."""
    return _start(agents, scripts).join()


def _topic(digit: str) -> Script:
    def script(citizen: SipAgent, number: str) -> None:
        wait_cel(number, "IVR_MENU")
        citizen.send_digit(digit)
        wait_cel(number, "IVR_EXIT")
        citizen.hangup()
    return script


def _invalid_then_valid(citizen: SipAgent, number: str) -> None:
    wait_cel(number, "IVR_MENU")
    citizen.send_digit("0")
    wait_cel(number, "IVR_MENU", "attempt=2")
    citizen.send_digit("3")
    wait_cel(number, "IVR_EXIT")
    citizen.hangup()


def _silence(citizen: SipAgent, number: str) -> None:
    wait_cel(number, "IVR_TOPIC", "topic=unknown", timeout=150)
    wait_queue(number, timeout=30)  # the caller is not dropped: the queue takes the call
    wait_cel(number, "BRIDGE_ENTER", timeout=30)  # and an operator answers
    citizen.hangup()


def _case(entry: str) -> Script:
    def script(citizen: SipAgent, number: str) -> None:
        wait_cel(number, "IVR_MENU")
        citizen.send_digit("8")
        wait_cel(number, "IVR_MENU", "menu=case")
        for key in entry:
            citizen.send_digit(key)
        wait_cel(number, "IVR_CASE_LOOKUP" if len(entry) > 4 else "IVR_INVALID", timeout=30)
        citizen.hangup()
    return script


def _hang_up_in_menu(citizen: SipAgent, number: str) -> None:
    wait_cel(number, "IVR_MENU")
    citizen.hangup()


def _message(citizen: SipAgent, number: str) -> None:
    wait_cel(number, "IVR_MENU", "menu=after_hours", timeout=120)
    citizen.send_digit("1")
    wait_cel(number, "IVR_MESSAGE")
    time.sleep(6)  # not a wait for anything: the caller speaks (plays its tone) for 6 s, the message's length
    citizen.send_digit("#")
    citizen.wait_event("CALL_CLOSED", 30)  # the IVR thanks the caller and the dialplan hangs up


def _callback(citizen: SipAgent, number: str) -> None:
    wait_cel(number, "IVR_MENU", "menu=after_hours", timeout=120)
    citizen.send_digit("2")
    wait_cel(number, "IVR_MENU", "menu=callback")
    for key in "0987654321#":
        citizen.send_digit(key)
    citizen.wait_event("CALL_CLOSED", 60)


TOPIC_KEYS = {"admin": "1", "environment": "2", "urban_order": "3", "construction": "4", "security": "5",
              "traffic": "6", "other": "7"}


def test_ivr_branches_in_and_after_working_hours(db: Database, listener: ListenerProcess, ivr: IvrProcess,
                                                 closed_config: Path, open_config: Path,
                                                 agents: Callable[..., SipAgent]) -> None:
    """Every branch in one round of calls. The city line is closed when its two after-hours callers arrive and
    open, with its seven topics, when the others do: the IVR takes the model as it is when a call arrives, so the
    after-hours calls (a minute of greeting and working hours) run beside the rest instead of after them."""
    ivr.start(closed_config)
    agents("op103", register=True, wav_seconds=300)  # takes the caller who keyed nothing
    after_hours = _start(agents, {"message": (CITY, _message), "callback": (CITY, _callback)})
    for number in after_hours.numbers.values():
        wait_cel(number, "IVR_START", timeout=30)  # its call took the model with the city line closed
    os.replace(open_config, closed_config)  # at once (a rename), for the calls from now on
    topics = {topic: (CITY, _topic(key)) for topic, key in TOPIC_KEYS.items() if topic != "urban_order"}
    in_hours = _start(agents, {
        **topics, "invalid": (PROVINCE, _invalid_then_valid), "silence": (PROVINCE, _silence),
        "case_ok": (PROVINCE, _case("123456#")), "case_short": (PROVINCE, _case("12#")),
        "hangup": (PROVINCE, _hang_up_in_menu),
    }, first=1 + len(after_hours.numbers))
    numbers = {**after_hours.join(), **in_hours.join()}
    calls = wait_for_calls(db, list(numbers.values()))
    by = {name: calls[number] for name, number in numbers.items()}
    assert {topic: by[topic].topic for topic in topics} == {topic: topic for topic in topics}
    assert by["invalid"].topic == "urban_order"
    assert any(step.startswith("IVR_INVALID:menu=main&input=0") for step in by["invalid"].ivr_path)
    assert by["silence"].topic == "unknown" and by["silence"].status == "answered"
    assert "IVR_TIMEOUT:menu=main&attempt=2" in by["silence"].ivr_path
    assert "IVR_CASE_LOOKUP:number=123456&result=not_found" in by["case_ok"].ivr_path
    assert any("problem=too_short" in step for step in by["case_short"].ivr_path)
    assert by["hangup"].status == "abandoned_ivr" and by["hangup"].ivr_path[-1].startswith("IVR_MENU:menu=main")
    for name in (*topics, "invalid", "case_ok", "case_short"):
        assert by[name].status in ("abandoned_ivr", "abandoned_queue"), (name, by[name].status)

    message, callback = by["message"], by["callback"]
    assert (message.status, message.after_hours) == ("voice_message", True)
    assert (callback.status, callback.callback_number) == ("callback_requested", "0987654321")

    def stored_message() -> Recording | None:
        with db.session() as session:
            return session.scalar(select(Recording).where(Recording.linkedid == message.linkedid,
                                                          Recording.status == "stored"))

    recording = wait_until(stored_message, 30, "the voice message recording")
    assert isinstance(recording, Recording) and recording.kind == "message"
    assert 4 < (recording.duration_seconds or 0) < 9, recording.duration_seconds


def _talk_to_operator(citizen: SipAgent, number: str) -> None:
    wait_queue(number)
    wait_cel(number, "BRIDGE_ENTER", timeout=30)
    citizen.hangup()


def test_ivr_down_still_reaches_an_operator_even_with_no_prompts(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    agents("op102", register=True, wav_seconds=120)
    numbers = _run(agents, {"down": (CITY, _talk_to_operator)})
    call = wait_for_calls(db, list(numbers.values()))[numbers["down"]]
    assert call.status == "answered" and call.ivr_path == [] and call.topic == ""
    with db.session() as session:
        assert session.scalar(select(CALL.queue).where(CALL.id == call.id)) == "operators"


def test_a_caller_hears_the_real_status_of_their_case(db: Database, db_url: str, listener: ListenerProcess,
                                                      ivr: IvrProcess, open_config: Path,
                                                      agents: Callable[..., SipAgent]) -> None:
    """A case forwarded to a department; its citizen calls, keys the case-status option and the case number, and
    the call log shows the lookup found it forwarded (the IVR reads the status and the day of the last update)."""
    with db.session() as session:
        case = cases.open_case(session, MODEL, cases.NewCase(topic="environment", description="Cống nghẹt"),
                               cases.Actor("op101", Role.OPERATOR))
        number = case.number
    ivr.start(open_config, db_url=db_url)
    numbers = _run(agents, {"mine": (PROVINCE, _case(number + "#")),
                            "typo": (PROVINCE, _case(number[:-1] + str((int(number[-1]) + 1) % 10) + "#"))})
    calls = wait_for_calls(db, list(numbers.values()))
    assert f"IVR_CASE_LOOKUP:number={number}&result=found&status=forwarded" in calls[numbers["mine"]].ivr_path
    assert any(step.startswith("IVR_CASE_LOOKUP:") and "result=not_found" in step
               for step in calls[numbers["typo"]].ivr_path)
