"""The pure builder: real CEL captured from the sandbox (a plain dialplan with no user events) and factory-made
streams in, call-log records out."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from callcenter.ami.events import CelEvent
from callcenter.calls.builder import build_call
from callcenter.calls.channels import Directory, endpoint_of, is_person
from callcenter.calls.record import CallRecord
from callcenter.model.contract import DeviceType, Direction, EndedBy, Status
from tests.factories import BRIDGE, CALLER, DIRECTORY, OP, T0, answered_stream, cel, hangup, load_jsonl, user

PLAIN = "02621099"  # the sandbox's plain dialplan number the captures called


def calls(name: str) -> list[CallRecord]:
    """Every call (linkedid) of a capture, built."""
    by_linkedid: dict[str, list[CelEvent]] = defaultdict(list)
    for event in load_jsonl(f"cel/{name}.jsonl"):
        by_linkedid[event.linkedid].append(event)
    return [build_call(events, DIRECTORY) for events in by_linkedid.values()]


def call(name: str) -> CallRecord:
    [record] = calls(name)
    return record


@pytest.mark.parametrize("prefix", ["", "apps_"])
def test_answered_from_standard_cel(prefix: str) -> None:
    record = call(f"{prefix}answered")
    assert (record.status, record.line, record.queue) == (Status.ANSWERED, PLAIN, "operators")
    assert (record.operator, record.operator_device, record.operators) == ("op101", DeviceType.IP_PHONE, ["op101"])
    assert record.talk_seconds == pytest.approx(4.0, abs=0.05)
    assert record.wait_seconds is not None and record.wait_seconds < 0.1  # an operator was free
    assert record.ring_seconds is not None and record.hangup_cause == 16
    assert record.direction is Direction.INBOUND


def test_operator_hanging_up_first_is_still_answered() -> None:
    record = call("answered_operator_hangs_up")
    assert (record.status, record.operator) == (Status.ANSWERED, "op102")


@pytest.mark.parametrize("name", ["abandoned_queue", "apps_abandoned"])
def test_caller_leaving_the_queue_is_abandoned_in_queue(name: str) -> None:
    record = call(name)
    assert (record.status, record.queue, record.operator, record.talk_seconds) == (
        Status.ABANDONED_QUEUE, "operators", "", None)
    assert record.wait_seconds == pytest.approx(4.8, abs=0.1)


@pytest.mark.parametrize("name", ["missed_timeout", "apps_missed_queue_timeout"])
def test_queue_giving_up_is_missed(name: str) -> None:
    record = call(name)
    assert (record.status, record.queue) == (Status.MISSED, "operators")
    assert record.wait_seconds == pytest.approx(4.0, abs=0.1)


def test_nobody_logged_in_is_missed() -> None:
    plain, apps = call("missed_joinempty"), call("apps_missed_joinempty")
    assert plain.status is apps.status is Status.MISSED  # the PBX, not the caller, ended the call
    assert (apps.queue, plain.queue) == ("operators", "")  # only APP_START shows a queue left at once


@pytest.mark.parametrize("name", ["hangup_in_read", "apps_hangup_during_read"])
def test_hanging_up_in_a_plain_menu_is_abandoned_in_ivr(name: str) -> None:
    record = call(name)
    assert (record.status, record.queue, record.wait_seconds) == (Status.ABANDONED_IVR, "", None)


@pytest.mark.parametrize("name", ["blind_transfer", "apps_blind_transfer", "attended_transfer_dtmf",
                                  "apps_attended_transfer"])
def test_transfers_list_every_operator_in_order(name: str) -> None:
    record = call(name)
    assert (record.status, record.transfers) == (Status.ANSWERED, 1)
    assert (record.operators, record.operator, record.operator_device) == (
        ["op101", "op201"], "op101", DeviceType.IP_PHONE)
    assert record.talk_seconds is not None and record.talk_seconds > 6


def test_attended_transfer_by_refer_keeps_the_citizen_call_and_logs_the_consult_call() -> None:
    citizen, consult = sorted(calls("attended_transfer_refer"), key=lambda r: r.started_at)
    assert (citizen.status, citizen.operators, citizen.transfers, citizen.line) == (
        Status.ANSWERED, ["op101", "op201"], 1, PLAIN)
    assert (consult.direction, consult.line, consult.operators) == (Direction.INTERNAL, "", ["op201"])


def test_order_of_arrival_does_not_matter() -> None:
    events = answered_stream()
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert build_call(shuffled, DIRECTORY) == build_call(events, DIRECTORY)


def test_factory_answered_call_fields() -> None:
    record = build_call(answered_stream(talk=42.0), DIRECTORY)
    assert record.status is Status.ANSWERED
    assert (record.operator, record.operator_device) == ("op101", DeviceType.IP_PHONE)
    assert record.talk_seconds == pytest.approx(42.0, abs=0.01)
    assert record.wait_seconds == pytest.approx(5.03, abs=0.01)
    assert record.ring_seconds == pytest.approx(4.9, abs=0.01)
    assert record.answered_at == datetime.fromtimestamp(T0 + 6.03, UTC)
    assert (record.queue, record.line) == ("operators", "02621022")


def test_an_operator_the_model_does_not_list_is_still_an_operator() -> None:
    record = build_call(answered_stream(), Directory())
    assert (record.operator, record.operator_device) == ("op101", DeviceType.UNKNOWN)


def test_the_queue_result_user_event_wins() -> None:
    events = [cel("CHAN_START", 0, exten="02621022"), cel("ANSWER", 0.02), cel("STREAM_BEGIN", 1, app="Queue",
              appdata="operators"), user("QUEUE_RESULT", 31, "status=TIMEOUT"),
              hangup(31.1, source="dialplan/builtin"), cel("LINKEDID_END", 31.2)]
    record = build_call(events, DIRECTORY)
    assert (record.status, record.queue_result) == (Status.MISSED, "TIMEOUT")
    assert record.wait_seconds == pytest.approx(30.2, abs=0.01)


def test_hanging_up_in_the_greeting_is_abandoned_before_queue() -> None:
    events = [cel("CHAN_START", 0), cel("ANSWER", 0.02), hangup(4), cel("LINKEDID_END", 4.1)]
    assert build_call(events, DIRECTORY).status is Status.ABANDONED_BEFORE_QUEUE


def test_the_pbx_ending_an_answered_call_without_an_operator_is_missed() -> None:
    events = [cel("CHAN_START", 0), cel("ANSWER", 0.02), hangup(4, source="dialplan/builtin"),
              cel("LINKEDID_END", 4.1)]
    assert build_call(events, DIRECTORY).status is Status.MISSED


def test_never_answered_is_failed() -> None:
    events = [cel("CHAN_START", 0), hangup(0.5, cause=34), cel("LINKEDID_END", 0.6)]
    record = build_call(events, DIRECTORY)
    assert (record.status, record.hangup_cause) == (Status.FAILED, 34)


def test_digits_other_than_ascii_are_no_line_and_no_hangup_cause() -> None:
    for cause in ("²", "1" * 5000):  # str.isdigit admits both; int() refuses them
        events = [cel("CHAN_START", 0, exten="²²²"), cel("HANGUP", 0.5, extra={"hangupcause": cause}),
                  cel("LINKEDID_END", 0.6)]
        record = build_call(events, DIRECTORY)
        assert (record.status, record.line, record.hangup_cause) == (Status.FAILED, "", None)


def test_an_operators_own_call_is_internal_with_no_line() -> None:
    op: dict[str, Any] = {"channel": "PJSIP/op101-9", "uniqueid": "100.1"}
    events = [cel("CHAN_START", 0, exten="201", **op), hangup(3, source="PJSIP/op101-9", **op),
              cel("LINKEDID_END", 3.1, **op)]
    record = build_call(events, DIRECTORY)
    assert (record.direction, record.line) == (Direction.INTERNAL, "")


def test_unknown_and_ivr_events() -> None:
    events = [*answered_stream(), cel("SOMETHING_NEW", 3), user("IVR_TOPIC", 0.5, "topic=environment")]
    record = build_call(events, DIRECTORY)
    assert record.topic == "environment"
    assert record.ivr_path == ["IVR_TOPIC:topic=environment"]


def test_empty_stream_is_an_error() -> None:
    with pytest.raises(ValueError):
        build_call([], DIRECTORY)


@pytest.mark.parametrize(("channel", "endpoint"), [("PJSIP/op101-0000002a", "op101"), ("PJSIP/op-x-1", "op-x"),
                                                   ("Local/foo", "foo")])
def test_endpoint_of(channel: str, endpoint: str) -> None:
    assert endpoint_of(channel) == endpoint


def test_local_channels_are_not_people() -> None:
    assert is_person("PJSIP/op101-1") and is_person(CALLER)
    assert not is_person("Local/201@operators-00000000;1") and not is_person("")


def _ivr_call(*steps: tuple[str, float, str], source: str = CALLER) -> list[CelEvent]:
    base = [cel("CHAN_START", 0, exten="1900868647"), cel("ANSWER", 0.02),
            user("IVR_START", 0.1, "line=1900868647&lang=vi")]
    return base + [user(name, at, payload) for name, at, payload in steps] + [hangup(60, source=source),
                                                                              cel("LINKEDID_END", 60.1)]


def test_voice_message_after_hours() -> None:
    record = build_call(_ivr_call(("IVR_AFTER_HOURS", 14, "line=1900868647"),
                                  ("IVR_MESSAGE", 30, "path=/var/spool/asterisk/monitor/100.1/msg-100.1.wav"),
                                  ("IVR_EXIT", 30.1, "outcome=message&reason=key"), source="dialplan/builtin"),
                        DIRECTORY)
    assert (record.status, record.after_hours) == (Status.VOICE_MESSAGE, True)


def test_callback_request_keeps_the_number() -> None:
    record = build_call(_ivr_call(("IVR_AFTER_HOURS", 14, "line=1900868647"),
                                  ("IVR_CALLBACK", 40, "number=0987654321&source=entered")), DIRECTORY)
    assert (record.status, record.callback_number) == (Status.CALLBACK_REQUESTED, "0987654321")


def test_hanging_up_in_the_menu_is_abandoned_in_ivr_with_the_path() -> None:
    record = build_call(_ivr_call(("IVR_MENU", 14, "menu=main&attempt=1")), DIRECTORY)
    assert record.status is Status.ABANDONED_IVR
    assert record.ivr_path == ["IVR_START:line=1900868647&lang=vi", "IVR_MENU:menu=main&attempt=1"]


def test_a_message_that_failed_to_record_is_not_a_voice_message() -> None:
    record = build_call(_ivr_call(("IVR_AFTER_HOURS", 14, "line=1900868647"),
                                  ("IVR_MESSAGE", 30, "path=/var/spool/asterisk/monitor/100.1/msg-100.1.wav"),
                                  ("IVR_EXIT", 30.1, "outcome=message&reason=key"),
                                  ("IVR_TOPIC", 31, "topic=unknown&reason=message_failed"),
                                  ("IVR_EXIT", 31.1, "outcome=queue&reason=message_failed")), DIRECTORY)
    assert record.status is Status.ABANDONED_IVR


def test_operator_from_the_model_gets_its_device() -> None:
    events = [e if e.uniqueid != OP["uniqueid"] else e.__class__(**{**e.__dict__, "channel": "PJSIP/op201-2"})
              for e in answered_stream()]
    assert build_call(events, DIRECTORY).operator_device is DeviceType.SOFTPHONE


def test_an_attended_transfer_through_an_unoptimised_local_pair_reaches_the_second_operator() -> None:
    """Captured from the sandbox: the feature-code transfer through [operators] leaves the citizen bridged with
    Local;1 and op201 with Local;2 (Asterisk keeps the pair: Dial's transfer options need it). Both the project's
    dialplan and the plain one."""
    project, plain = sorted(calls("attended_transfer_local_pair"), key=lambda r: r.started_at)
    for record in (project, plain):
        assert (record.status, record.operators, record.transfers) == (Status.ANSWERED, ["op101", "op201"], 1)
    assert (project.line, plain.line, project.topic) == ("02621022", PLAIN, "environment")


def test_an_operator_consulted_but_never_connected_is_not_listed() -> None:
    """op101 consults op201 through a Local pair, then takes the citizen back: op201 never talked to the citizen."""
    local1, local2 = "Local/201@operators-00000009;1", "Local/201@operators-00000009;2"
    op2: dict[str, Any] = {"uniqueid": "100.5", "channel": "PJSIP/op201-5"}

    def bridge(event: str, at: float, bridge_id: str, **kw: Any) -> CelEvent:
        return cel(event, at, extra={"bridge_id": bridge_id}, **kw)

    events = [*answered_stream(talk=30.0)[:8],
              bridge("BRIDGE_EXIT", 10, "b-1", **OP), bridge("BRIDGE_ENTER", 10.1, "b-2", **OP),
              bridge("BRIDGE_ENTER", 10.2, "b-2", uniqueid="100.3", channel=local1),
              cel("CHAN_START", 10.3, **op2), bridge("BRIDGE_ENTER", 11, "b-3", **op2),
              bridge("BRIDGE_ENTER", 11.1, "b-3", uniqueid="100.4", channel=local2),
              bridge("BRIDGE_EXIT", 15, "b-3", **op2), bridge("BRIDGE_EXIT", 15.1, "b-2", **OP),
              bridge("BRIDGE_ENTER", 15.2, "b-1", **OP), bridge("BRIDGE_EXIT", 30, "b-1"),
              bridge("BRIDGE_EXIT", 30.1, "b-1", **OP), hangup(30.2), cel("LINKEDID_END", 30.3, **OP)]
    record = build_call(events, DIRECTORY)
    assert (record.status, record.operators) == (Status.ANSWERED, ["op101"])
    assert record.talk_seconds == pytest.approx(30 - 6.03, abs=0.01)


@pytest.mark.parametrize(("name", "ended_by"), [
    ("answered", EndedBy.CALLER), ("answered_operator_hangs_up", EndedBy.OPERATOR),
    ("abandoned_queue", EndedBy.CALLER), ("missed_timeout", EndedBy.PBX), ("missed_joinempty", EndedBy.PBX),
    ("hangup_in_read", EndedBy.CALLER)])
def test_who_ended_the_call(name: str, ended_by: EndedBy) -> None:
    assert call(name).ended_by is ended_by


def test_a_call_cut_by_an_asterisk_shutdown_is_failed_with_its_cause() -> None:
    """Captured: `core stop now` while a citizen talks to op101; Asterisk hangs up every channel itself."""
    record = call("cut_by_shutdown")
    assert (record.status, record.ended_by, record.hangup_cause) == (Status.FAILED, EndedBy.SYSTEM, 16)
    assert (record.operator, record.answered_at is not None) == ("op101", True)  # how far it got
    assert record.talk_seconds is not None and record.talk_seconds > 1


def test_a_call_whose_end_never_came_is_built_cut_when_asterisk_restarted() -> None:
    """Asterisk crashed mid-call: no HANGUP, no LINKEDID_END; the listener builds it as cut."""
    events = [e for e in answered_stream(talk=20.0) if e.event not in ("BRIDGE_EXIT", "HANGUP", "CHAN_END",
                                                                      "APP_END", "LINKEDID_END")]
    record = build_call(events, DIRECTORY, cut=True)
    assert (record.status, record.ended_by, record.hangup_cause, record.operator) == (
        Status.FAILED, EndedBy.SYSTEM, None, "op101")
    assert record.ended_at == datetime.fromtimestamp(events[-1].time, UTC)
    assert build_call(events, DIRECTORY).ended_by is EndedBy.UNKNOWN  # not cut: an incomplete call says so


def callback_stream(citizen_answers: bool) -> list[CelEvent]:
    """A call-back from the operator desk as Asterisk 22 logged it in the sandbox: Originate rings op101's phone
    (the first channel), the [callback] context records and dials the citizen through [outbound]."""
    op: dict[str, Any] = {"uniqueid": "cb-1", "linkedid": "cb-1", "channel": "PJSIP/op101-9", "cid_num": "101"}
    citizen: dict[str, Any] = {"uniqueid": "cb-2", "linkedid": "cb-1", "channel": "PJSIP/citizen5-10", "cid_num": ""}
    dial = {"app": "Dial", "context": "outbound", "exten": "0944826467"}
    events = [cel("CHAN_START", 0, **op), cel("ANSWER", 3.0, app="AppDial2", **op),
              cel("APP_START", 3.1, **{**op, **dial}), cel("CHAN_START", 3.2, **citizen)]
    if citizen_answers:
        events += [cel("ANSWER", 8.0, app="AppDial", **citizen),
                   cel("BRIDGE_ENTER", 8.01, extra=BRIDGE, app="AppDial", **citizen),
                   cel("BRIDGE_ENTER", 8.02, extra=BRIDGE, **{**op, **dial}),
                   cel("BRIDGE_EXIT", 68.0, extra=BRIDGE, app="AppDial", **citizen),
                   cel("BRIDGE_EXIT", 68.01, extra=BRIDGE, **{**op, **dial})]
    return [*events, hangup(68.02, source="PJSIP/citizen5-10", **citizen), cel("CHAN_END", 68.03, **citizen),
            hangup(68.04, source="PJSIP/citizen5-10", **op), cel("CHAN_END", 68.05, **op),
            cel("LINKEDID_END", 68.06, **op)]


def test_a_call_back_is_outbound_with_the_operator_who_placed_it_and_the_citizen_s_number() -> None:
    record = build_call(callback_stream(citizen_answers=True), DIRECTORY)
    assert (record.direction, record.status, record.caller_number) == ("outbound", "answered", "0944826467")
    assert (record.operator, record.operators, record.operator_device) == ("op101", ["op101"], "ip_phone")
    assert record.talk_seconds == pytest.approx(60.0, abs=0.1) and record.ring_seconds == pytest.approx(4.8)
    assert record.ended_by == "caller"  # the citizen hung up


def test_a_call_back_nobody_answered_is_missed() -> None:
    record = build_call(callback_stream(citizen_answers=False), DIRECTORY)
    assert (record.direction, record.status, record.talk_seconds) == ("outbound", "missed", None)
