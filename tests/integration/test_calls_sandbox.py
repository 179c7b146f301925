"""Real calls through the sandbox Asterisk: baresip citizens call, baresip operators answer, the listener logs.

Every test here runs once on SQLite and once on PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import func, select

from callcenter.sandbox.baresip import SipAgent
from callcenter.store.db import Database
from callcenter.store.models import CelJournal, Recording
from tests.integration.conftest import (
    CEL,
    MODEL,
    SETTINGS,
    IvrProcess,
    ListenerProcess,
    asterisk_udp_sockets,
    caller_number,
    cli,
    wait_cel,
    wait_for_calls,
    wait_queue,
    wait_until,
)

pytestmark = pytest.mark.sandbox
NAME = "Nguyễn Thị Quỳnh Mai"


@pytest.mark.parametrize(("line", "operator", "transport", "device", "ivr_up"),
                         [("02621022", "op101", "udp", "ip_phone", True),
                          ("1900868647", "op201", "tcp", "softphone", False)])
def test_answered_call_is_logged_with_caller_line_operator_and_talk_time(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent], ivr: IvrProcess,
        line: str, operator: str, transport: str, device: str, ivr_up: bool) -> None:
    if ivr_up:
        ivr.start()  # otherwise the IVR server is down: the call must still reach an operator
    idle = asterisk_udp_sockets()
    answering = agents(operator, register=True, wav_seconds=5, transport=transport)  # hangs up after 5 s
    number = caller_number()
    citizen = agents("citizen1", wav_seconds=120, display_name=NAME, caller_number=number)
    citizen.dial(line)
    if ivr_up:
        wait_cel(number, "IVR_MENU")
        citizen.send_digit("1")  # administrative procedures
    answering.wait_event("CALL_ESTABLISHED", 30)
    talk_started = time.monotonic()
    rtp = asterisk_udp_sockets() - idle
    assert rtp and all(address.startswith("127.0.0.1:") for address in rtp), rtp  # RTP on the model's SIP address
    citizen.wait_event("CALL_CLOSED", 20)
    real_talk = time.monotonic() - talk_started
    call = wait_for_calls(db, [number])[number]
    assert (call.status, call.line, call.operator, call.operator_device) == ("answered", line, operator, device)
    assert call.caller_name == NAME  # UTF-8 intact, end to end
    assert call.queue == "operators"
    assert abs((call.talk_seconds or 0) - real_talk) < 1.0, (call.talk_seconds, real_talk)
    assert call.answered_at is not None and call.started_at <= call.answered_at <= call.ended_at
    assert call.wait_seconds is not None and call.wait_seconds < 10
    assert call.hangup_cause == 16  # normal clearing
    if ivr_up:
        assert call.topic == "admin"
        assert call.ivr_path[0] == f"IVR_START:line={line}&lang=vi"
        assert call.ivr_path[-1] == "IVR_EXIT:outcome=queue&reason=key"
    else:
        assert (call.topic, call.ivr_path) == ("", [])


def test_caller_hanging_up_in_queue_is_abandoned_with_wait_time(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    agents("op102", register=True, auto_answer=False)  # rings, nobody picks up
    number = caller_number()
    citizen = agents("citizen2", wav_seconds=5, caller_number=number)
    citizen.dial("02621022")
    citizen.wait_event("CALL_ESTABLISHED", 15)
    started = time.monotonic()
    citizen.wait_event("CALL_CLOSED", 30)
    waited = time.monotonic() - started
    call = wait_for_calls(db, [number])[number]
    assert call.status == "abandoned_queue"
    assert call.operator == "" and call.talk_seconds is None
    assert call.wait_seconds is not None and abs(call.wait_seconds - waited) < 1.0


def test_no_operator_logged_in_is_missed(db: Database, listener: ListenerProcess,
                                         agents: Callable[..., SipAgent]) -> None:
    assert "No objects found" in cli("pjsip show contacts")
    number = caller_number()
    citizen = agents("citizen3", wav_seconds=20, caller_number=number)
    citizen.dial("1900868647")
    citizen.wait_event("CALL_CLOSED", 30)
    call = wait_for_calls(db, [number])[number]
    assert (call.status, call.queue_result) == ("missed", "JOINEMPTY")


@pytest.fixture
def short_queue_timeout() -> Iterator[int]:
    """Callers wait 4 s instead of the model's wait_seconds."""
    cli("dialplan set global QUEUE_WAIT_operators 4")
    yield 4
    cli(f"dialplan set global QUEUE_WAIT_operators {MODEL.queues['operators'].wait_seconds}")


def test_nobody_answering_in_time_is_missed(db: Database, listener: ListenerProcess, short_queue_timeout: int,
                                            agents: Callable[..., SipAgent]) -> None:
    agents("op103", register=True, auto_answer=False)
    number = caller_number()
    citizen = agents("citizen4", wav_seconds=30, caller_number=number)
    citizen.dial("02621022")
    citizen.wait_event("CALL_CLOSED", 30)  # the dialplan hangs up after the queue gives up
    call = wait_for_calls(db, [number])[number]
    assert (call.status, call.queue_result) == ("missed", "TIMEOUT")
    assert call.wait_seconds is not None and abs(call.wait_seconds - short_queue_timeout) < 1.5


def _place_calls(agents: Callable[..., SipAgent], count: int, seconds: float) -> tuple[list[str], list[SipAgent]]:
    operators = ["op101", "op102", "op103", "op201", "op202"][:count]
    ops = [agents(op, register=True, wav_seconds=300) for op in operators]
    numbers = [caller_number() for _ in range(count)]
    citizens = [agents(f"citizen{n + 5}", wav_seconds=seconds, display_name=NAME, caller_number=number)
                for n, number in enumerate(numbers)]
    for citizen in citizens:
        citizen.dial("02621022")
    for op in ops:
        op.wait_event("CALL_ESTABLISHED", 20)
    return numbers, citizens


def _journal_matches_cel_file(db: Database, linkedids: list[str]) -> None:
    """Each event Asterisk wrote for these calls is journaled exactly once."""
    cel_file = SETTINGS.ami.cel_file.read_text(encoding="utf-8").splitlines()
    for linkedid in linkedids:
        in_file = sum(1 for line in cel_file if json.loads(line)["linkedid"] == linkedid)
        with db.session() as session:
            journaled = session.scalar(select(func.count()).where(CelJournal.linkedid == linkedid))
        assert journaled == in_file, (linkedid, journaled, in_file)


def test_listener_killed_mid_calls_loses_and_duplicates_nothing(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    numbers, citizens = _place_calls(agents, 5, seconds=8)
    listener.kill()  # SIGKILL while all 5 calls are in progress (every operator has answered)
    for citizen in citizens:
        citizen.wait_event("CALL_CLOSED", 30)
    listener.start()
    calls = wait_for_calls(db, numbers)
    assert {call.status for call in calls.values()} == {"answered"}
    for call in calls.values():
        assert call.caller_name == NAME
        # Each caller's WAV lasts 8 s from the moment Asterisk answers: waiting plus talking fill it.
        assert abs((call.wait_seconds or 0) + (call.talk_seconds or 0) - 8) < 1, (call.wait_seconds, call.talk_seconds)
    _journal_matches_cel_file(db, [call.linkedid for call in calls.values()])


def _listener_session() -> str:
    rows = [line for line in cli("manager show connected").splitlines() if line.strip().startswith("callcenter ")]
    assert rows, "the listener is not connected to AMI"
    return rows[0]


def test_ami_dropped_while_calls_finish_loses_nothing(
        db: Database, listener_factory: Callable[..., ListenerProcess], agents: Callable[..., SipAgent]) -> None:
    # Reconnect slowly and never backfill on a timer: only the backfill on reconnect can save these calls.
    listener = listener_factory(CALLCENTER_AMI__RECONNECT_MIN="6", CALLCENTER_AMI__BACKFILL_INTERVAL="3600").start()
    numbers, citizens = _place_calls(agents, 3, seconds=4)
    session_fd = re.split(r"\s+", _listener_session().strip())
    cli(f"manager kick session {session_fd[-4]}")  # the FileDes column
    listener.wait_log("AMI: connection lost")
    for citizen in citizens:
        citizen.wait_event("CALL_CLOSED", 30)
    listener.wait_log("AMI: logged in", count=2, timeout=30)
    calls = wait_for_calls(db, numbers)
    assert {call.status for call in calls.values()} == {"answered"}
    _journal_matches_cel_file(db, [call.linkedid for call in calls.values()])


def test_answered_call_has_a_recording_of_the_conversation(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    operator = agents("op102", register=True, wav_seconds=120)
    number = caller_number()
    citizen = agents("citizen6", wav_seconds=7, caller_number=number)
    citizen.dial("02621022")
    operator.wait_event("CALL_ESTABLISHED", 15)
    citizen.wait_event("CALL_CLOSED", 30)
    call = wait_for_calls(db, [number])[number]

    def stored() -> Recording | None:
        with db.session() as session:
            return session.scalar(select(Recording).where(Recording.linkedid == call.linkedid,
                                                          Recording.status == "stored"))

    row = wait_until(stored, 30, "the recording to be stored")
    assert isinstance(row, Recording)
    assert row.kind == "conversation" and row.format == "opus"
    assert abs((row.duration_seconds or 0) - (call.talk_seconds or 0)) < 1.0, (row.duration_seconds, call.talk_seconds)
    audio = AudioSegment.from_file(tmp_path / "recordings" / (row.path or ""))
    assert audio.rms > 200, f"the recording is silent (RMS {audio.rms})"  # both agents play a tone
    assert not (SETTINGS.recordings.spool / call.linkedid).exists()  # the WAV went once the copy verified


def bridged_with_op101(agents: Callable[..., SipAgent], user: str,
                       wav_seconds: float) -> tuple[SipAgent, SipAgent, str]:
    """op101 logged in and a citizen (``user``) calling the hotline, bridged with op101: (op101, citizen, number).
    Colleagues to transfer to log in only afterwards: as queue members they could otherwise take the call first."""
    first = agents("op101", register=True, wav_seconds=120)
    number = caller_number()
    citizen = agents(user, wav_seconds=wav_seconds, caller_number=number)
    citizen.dial("02621022")
    first.wait_event("CALL_ESTABLISHED", 15)
    wait_cel(number, "BRIDGE_ENTER")
    return first, citizen, number


def test_blind_transfer_keeps_one_call_with_both_operators_and_its_recording(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    first, citizen, number = bridged_with_op101(agents, "citizen7", wav_seconds=12)
    second = agents("op201", register=True, wav_seconds=120)
    first.command("transfer", "sip:op201@127.0.0.1:5060")  # blind transfer by REFER
    second.wait_event("CALL_ESTABLISHED", 15)
    citizen.wait_event("CALL_CLOSED", 30)
    call = wait_for_calls(db, [number])[number]
    assert (call.status, call.transfers, call.operators) == ("answered", 1, ["op101", "op201"])
    assert call.operator == "op101"

    def stored() -> list[Recording]:
        with db.session() as session:
            return list(session.scalars(select(Recording).where(Recording.linkedid == call.linkedid,
                                                                Recording.status == "stored")))

    rows = wait_until(stored, 30, "the transferred call's recording")
    assert isinstance(rows, list)
    total = sum(row.duration_seconds or 0 for row in rows)
    assert abs(total - (call.talk_seconds or 0)) < 1.5, (total, call.talk_seconds)  # both legs are recorded


def test_transfer_to_an_absent_operator_sends_the_citizen_back_to_the_queue(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    first, citizen, number = bridged_with_op101(agents, "citizen8", wav_seconds=120)
    first.command("transfer", "sip:op202@127.0.0.1:5060")  # op202 is not logged in
    wait_queue(number, count=2, timeout=20)  # back in the queue: the citizen was not dropped
    first.wait_event("CALL_ESTABLISHED", 30)  # and op101, free again, takes the call
    wait_cel(number, "BRIDGE_ENTER", count=2)
    citizen.hangup()
    call = wait_for_calls(db, [number])[number]
    assert (call.status, call.transfers, call.operators) == ("answered", 1, ["op101"])
    assert len(CEL.events(number, "APP_START", app="Queue")) == 2


def test_a_citizen_transferred_to_an_operator_cannot_transfer_with_the_feature_codes(
        agents: Callable[..., SipAgent]) -> None:
    first, citizen, number = bridged_with_op101(agents, "citizen9", wav_seconds=120)
    second = agents("op201", register=True, wav_seconds=120)
    first.command("transfer", "sip:op201@127.0.0.1:5060")  # the citizen now dials op201 from [dial-operator]
    second.wait_event("CALL_ESTABLISHED", 15)
    wait_cel(number, "BRIDGE_ENTER", count=2)
    # A feature code only fires when its digits come within featuredigittimeout (1 s) of each other: sent in a row.
    for digit in "#1202":  # the blind-transfer code, then op202's extension
        citizen.send_digit(digit)
    assert [second.wait_event("CALL_DTMF_START", 10)["param"] for _ in "#1202"] == list("#1202")  # plain digits
    # The operator still has the codes: op201 keys the same and op202 takes the citizen.
    third = agents("op202", register=True, wav_seconds=120)
    for digit in "#1202":
        second.send_digit(digit)
    third.wait_event("CALL_ESTABLISHED", 15)
    wait_cel(number, "BRIDGE_ENTER", count=3)
