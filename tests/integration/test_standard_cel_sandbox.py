"""Call logs from standard CEL: the same scenarios through the project's dialplan (IVR, user events) and through a
PBX's plain dialplan (Answer, Read, MixMonitor, Queue; no user events at all), compared side by side.

The plain context is the sandbox's ``plain-pbx`` (asterisk-conf/sandbox/extensions_sandbox.conf), reached by the
model's ``sandbox.plain_number``. Each scenario runs first on the provincial line, then on the plain number, with
the same caller and freshly registered operators, so both logs must agree on caller, status, operators, wait and
talk; the line is the number each call dialled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.sandbox.baresip import SipAgent
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call
from tests.integration.conftest import (
    MODEL,
    IvrProcess,
    ListenerProcess,
    caller_number,
    cli,
    wait_cel,
    wait_queue,
    wait_until,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
PROJECT, PLAIN = "02621022", MODEL.sandbox.plain_number
NAME = "Lê Thị Thanh Thủy"
TALK = 4.0  # seconds an answering operator talks before hanging up (the length of its microphone file)
GIVE_UP = 4.0  # seconds a caller waits in the queue before hanging up
TRANSFER_TALK = 15.0  # seconds from the citizen meeting op101 to op201 hanging up, the attended transfer included


@dataclass
class Run:
    """One scenario on one line: the agents it started, the caller's number and when it began (the same caller
    calls both lines, so its events are told apart by time)."""

    agents: Callable[..., SipAgent]
    line: str
    number: str
    started: list[SipAgent] = field(default_factory=list)
    since: float = field(default_factory=time.time)

    def cel(self, event: str, count: int = 1, app: str = "", timeout: float = 60) -> dict[str, Any]:
        return wait_cel(self.number, event, count=count, app=app, timeout=timeout, since=self.since)

    def agent(self, user: str, **options: object) -> SipAgent:
        agent = self.agents(user, **options)
        self.started.append(agent)
        return agent

    def citizen(self, citizen: str = "citizen9") -> SipAgent:
        agent = self.agent(citizen, wav_seconds=180, display_name=NAME, caller_number=self.number)
        agent.dial(self.line)
        return agent

    def at_menu(self) -> None:
        """Wait until the caller hears the voice menu (the IVR's topic menu, or the plain dialplan's Read)."""
        if self.line == PROJECT:
            self.cel("IVR_MENU")
        else:
            self.cel("STREAM_BEGIN", app="Read")

    def to_queue(self, citizen: SipAgent) -> None:
        """Get through the voice menu into the queue."""
        self.at_menu()
        citizen.send_digit("2")
        wait_queue(self.number, since=self.since)

    def stop(self) -> None:
        for agent in self.started:
            agent.stop()
        wait_until(lambda: "No objects found" in cli("pjsip show contacts"), 10, "operators to unregister")


def answered(run: Run) -> None:
    operator = run.agent("op101", register=True, wav_seconds=TALK)  # hangs up after TALK s
    citizen = run.citizen()
    run.to_queue(citizen)
    operator.wait_event("CALL_ESTABLISHED", 20)
    citizen.wait_event("CALL_CLOSED", 20)


def abandoned_in_queue(run: Run) -> None:
    run.agent("op102", register=True, auto_answer=False)  # rings, nobody picks up
    citizen = run.citizen()
    run.to_queue(citizen)
    time.sleep(GIVE_UP)  # not a wait for anything: how long this caller is willing to wait
    citizen.hangup()
    citizen.wait_event("CALL_CLOSED", 10)


def missed(run: Run) -> None:
    assert "No objects found" in cli("pjsip show contacts")  # nobody logged in
    citizen = run.citizen()
    run.at_menu()
    citizen.send_digit("2")
    citizen.wait_event("CALL_CLOSED", 30)  # the PBX hangs up: the queue is empty


def hang_up_before_the_queue(run: Run) -> None:
    citizen = run.citizen()
    run.at_menu()
    citizen.hangup()
    citizen.wait_event("CALL_CLOSED", 10)


def blind_transfer(run: Run) -> None:
    first = run.agent("op101", register=True, wav_seconds=120)
    citizen = run.citizen()
    run.to_queue(citizen)
    first.wait_event("CALL_ESTABLISHED", 20)
    # Registered only now: as a queue member it could otherwise have taken the call first.
    second = run.agent("op201", register=True, wav_seconds=TALK)
    run.cel("BRIDGE_ENTER")
    first.command("transfer", "sip:op201@127.0.0.1:5060")  # blind transfer by SIP REFER
    second.wait_event("CALL_ESTABLISHED", 20)
    citizen.wait_event("CALL_CLOSED", 20)  # op201 hangs up after TALK s


def attended_transfer(run: Run) -> None:
    first = run.agent("op101", register=True, wav_seconds=120)
    citizen = run.citizen()
    run.to_queue(citizen)
    first.wait_event("CALL_ESTABLISHED", 20)
    second = run.agent("op201", register=True, wav_seconds=120)  # hung up by the test, below
    bridged = run.cel("BRIDGE_ENTER")  # the citizen meets op101: the talk time starts
    for digit in "*2201":  # the attended-transfer feature code, then op201's extension
        first.send_digit(digit)
    extension = MODEL.operators["op201"].extension  # op201's channel carries its extension as caller number
    # Asterisk's own record that op201 took the consultation call (baresip's CALL_ESTABLISHED once reached the test
    # only with the call's end), then op101 hangs up: the transfer completes and op201 reaches the citizen.
    wait_cel(extension, "BRIDGE_ENTER", timeout=20, since=run.since)
    first.hangup()
    wait_cel(extension, "BRIDGE_ENTER", count=2, timeout=20, since=run.since)
    # op201 hangs up a fixed time after the citizen met op101, on Asterisk's clock: the talk time is then the same on
    # both lines, whatever the phones and the test took on each (not a wait for anything).
    left = float(bridged["eventtime"]) + TRANSFER_TALK - time.time()
    if left <= 0:
        pytest.fail(f"the attended transfer took more than the {TRANSFER_TALK:.0f} s this scenario allows")
    time.sleep(left)
    second.hangup()
    citizen.wait_event("CALL_CLOSED", 20)


SCENARIOS: dict[str, tuple[Callable[[Run], None], str, list[str]]] = {
    "answered": (answered, "answered", ["op101"]),
    "abandoned_in_queue": (abandoned_in_queue, "abandoned_queue", []),
    "missed": (missed, "missed", []),
    "hang_up_before_the_queue": (hang_up_before_the_queue, "abandoned_ivr", []),
    "blind_transfer": (blind_transfer, "answered", ["op101", "op201"]),
    "attended_transfer": (attended_transfer, "answered", ["op101", "op201"]),
}


def _logged(db: Database, number: str, line: str) -> Call:
    def found() -> Call | None:
        with db.session() as session:
            return session.scalar(select(Call).where(CALL.caller_number == number, CALL.line == line))

    call = wait_until(found, 30, f"the call log of {number} on {line}")
    assert isinstance(call, Call)
    return call


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tolerance)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_same_call_gives_the_same_log_with_or_without_the_projects_user_events(
        scenario: str, db: Database, listener: ListenerProcess, ivr: IvrProcess,
        agents: Callable[..., SipAgent]) -> None:
    ivr.start()
    play, status, operators = SCENARIOS[scenario]
    number = caller_number()
    logs = {}
    for line in (PROJECT, PLAIN):
        run = Run(agents, line, number)
        try:
            play(run)
        finally:
            run.stop()
        logs[line] = _logged(db, number, line)
    project, plain = logs[PROJECT], logs[PLAIN]
    for call in (project, plain):
        assert (call.caller_number, call.caller_name, call.status, call.operators) == (number, NAME, status,
                                                                                      operators), call.line
    assert (project.line, plain.line) == (PROJECT, PLAIN)
    assert (project.transfers, project.operator_device) == (plain.transfers, plain.operator_device)
    assert _close(project.wait_seconds, plain.wait_seconds, 1.5), (project.wait_seconds, plain.wait_seconds)
    assert _close(project.talk_seconds, plain.talk_seconds, 1.5), (project.talk_seconds, plain.talk_seconds)
    if status == "answered":
        assert project.talk_seconds is not None and project.talk_seconds >= TALK - 1
    assert project.topic == "environment" or status in ("abandoned_ivr",)  # the project's IVR adds the topic
    assert plain.topic == "" and plain.ivr_path == []  # the plain dialplan raised no user events
