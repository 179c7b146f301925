"""The pure builder: captured and factory-made CEL streams in, call-log records out."""

from __future__ import annotations

import random

import pytest

from callcenter.calls.builder import build_call, endpoint_of
from callcenter.calls.names import DeviceType, Status
from tests.factories import OP, T0, answered_stream, cel, load_jsonl, user


def test_captured_real_call_is_answered() -> None:
    record = build_call(load_jsonl("cel_answered.jsonl"))
    assert record.status is Status.ANSWERED
    assert record.caller_name == "Nguyễn Thị Quỳnh Mai"
    assert record.caller_number == "0912345678"
    assert record.line == "02621022"
    assert record.operator == "op101"  # from the operator channel's ANSWER (no OPERATOR_ANSWER in this capture)
    assert record.talk_seconds == pytest.approx(5.9, abs=0.05)
    assert record.hangup_cause == 16


def test_answered_call_fields() -> None:
    record = build_call(answered_stream(talk=42.0))
    assert record.status is Status.ANSWERED
    assert (record.operator, record.operator_device) == ("op101", DeviceType.IP_PHONE)
    assert record.talk_seconds == pytest.approx(42.0, abs=0.01)
    assert record.wait_seconds == pytest.approx(5.03, abs=0.01)
    assert record.ring_seconds == pytest.approx(4.9, abs=0.01)
    assert record.answered_at == pytest.approx(T0 + 6.03)
    assert record.queue == "operators"


def test_order_of_arrival_does_not_matter() -> None:
    events = answered_stream()
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert build_call(shuffled) == build_call(events)


def test_caller_leaving_the_queue_is_abandoned_in_queue() -> None:
    events = [cel("CHAN_START", 0), user("HOTLINE", 0.01, "line=1900868647"), cel("ANSWER", 0.02),
              user("QUEUE_ENTER", 1, "queue=operators"), cel("CHAN_START", 1.1, **OP),
              cel("HANGUP", 13, extra={"hangupcause": 16}), cel("HANGUP", 13.01, **OP),
              cel("LINKEDID_END", 13.02)]
    record = build_call(events)
    assert record.status is Status.ABANDONED_QUEUE
    assert record.wait_seconds == pytest.approx(12.02, abs=0.01)
    assert record.line == "1900868647"
    assert record.talk_seconds is None


def test_queue_giving_up_is_missed() -> None:
    events = [cel("CHAN_START", 0), user("HOTLINE", 0.01, "line=02621022"), cel("ANSWER", 0.02),
              user("QUEUE_ENTER", 1, "queue=operators"), user("QUEUE_RESULT", 31, "status=TIMEOUT"),
              cel("HANGUP", 31.1), cel("LINKEDID_END", 31.2)]
    record = build_call(events)
    assert (record.status, record.queue_result) == (Status.MISSED, "TIMEOUT")
    assert record.wait_seconds == pytest.approx(30.2, abs=0.01)


def test_hanging_up_in_the_greeting_is_abandoned_before_queue() -> None:
    events = [cel("CHAN_START", 0), cel("ANSWER", 0.02), cel("HANGUP", 4), cel("LINKEDID_END", 4.1)]
    assert build_call(events).status is Status.ABANDONED_BEFORE_QUEUE


def test_never_answered_is_failed() -> None:
    events = [cel("CHAN_START", 0), cel("HANGUP", 0.5, extra={"hangupcause": 34}), cel("LINKEDID_END", 0.6)]
    record = build_call(events)
    assert (record.status, record.hangup_cause) == (Status.FAILED, 34)


def test_blind_transfer_is_counted_and_keeps_first_operator() -> None:
    events = answered_stream()
    op2 = {"uniqueid": "100.3", "channel": "PJSIP/op201-3", "cid_num": "201"}
    events += [cel("BLINDTRANSFER", 20, **OP), user("OPERATOR_ANSWER", 25, "endpoint=op201&device=softphone", **op2)]
    record = build_call(events)
    assert record.transfers == 1
    assert record.operators == ["op101", "op201"]
    assert record.operator == "op101"


def test_unknown_and_ivr_events() -> None:
    events = [*answered_stream(), cel("SOMETHING_NEW", 3), user("IVR_TOPIC", 2, "topic=environment")]
    record = build_call(events)
    assert record.topic == "environment"
    assert record.ivr_path == ["IVR_TOPIC:topic=environment"]


def test_unknown_device_type() -> None:
    events = [e for e in answered_stream() if e.event != "OPERATOR_ANSWER"]
    events.append(user("OPERATOR_ANSWER", 6.01, "endpoint=op101&device=tin-can", **OP))
    assert build_call(events).operator_device is DeviceType.UNKNOWN


def test_empty_stream_is_an_error() -> None:
    with pytest.raises(ValueError):
        build_call([])


@pytest.mark.parametrize(("channel", "endpoint"), [("PJSIP/op101-0000002a", "op101"), ("PJSIP/op-x-1", "op-x"),
                                                   ("Local/foo", "foo")])
def test_endpoint_of(channel: str, endpoint: str) -> None:
    assert endpoint_of(channel) == endpoint


def _ivr_call(*steps: tuple[str, float, str]) -> list:  # type: ignore[type-arg]
    base = [cel("CHAN_START", 0), user("HOTLINE", 0.01, "line=1900868647"), cel("ANSWER", 0.02),
            user("IVR_START", 0.1, "line=1900868647&lang=vi")]
    return base + [user(name, at, payload) for name, at, payload in steps] + [cel("HANGUP", 60),
                                                                              cel("LINKEDID_END", 60.1)]


def test_voice_message_after_hours() -> None:
    record = build_call(_ivr_call(("IVR_AFTER_HOURS", 14, "line=1900868647"),
                                  ("IVR_MESSAGE", 30, "path=/var/spool/asterisk/monitor/100.1/msg-100.1.wav"),
                                  ("IVR_EXIT", 30.1, "outcome=message&reason=key")))
    assert (record.status, record.after_hours) == (Status.VOICE_MESSAGE, True)


def test_callback_request_keeps_the_number() -> None:
    record = build_call(_ivr_call(("IVR_AFTER_HOURS", 14, "line=1900868647"),
                                  ("IVR_CALLBACK", 40, "number=0987654321&source=entered")))
    assert (record.status, record.callback_number) == (Status.CALLBACK_REQUESTED, "0987654321")


def test_hanging_up_in_the_menu_is_abandoned_in_ivr_with_the_path() -> None:
    record = build_call(_ivr_call(("IVR_MENU", 14, "menu=main&attempt=1")))
    assert record.status is Status.ABANDONED_IVR
    assert record.ivr_path == ["IVR_START:line=1900868647&lang=vi", "IVR_MENU:menu=main&attempt=1"]


def test_a_message_that_failed_to_record_is_not_a_voice_message() -> None:
    record = build_call(_ivr_call(("IVR_AFTER_HOURS", 14, "line=1900868647"),
                                  ("IVR_MESSAGE", 30, "path=/var/spool/asterisk/monitor/100.1/msg-100.1.wav"),
                                  ("IVR_EXIT", 30.1, "outcome=message&reason=key"),
                                  ("IVR_TOPIC", 31, "topic=unknown&reason=message_failed"),
                                  ("IVR_EXIT", 31.1, "outcome=queue&reason=message_failed")))
    assert record.status is Status.ABANDONED_IVR
