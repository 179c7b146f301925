"""The AGI adapter: the exact AGI command lines (through real pyst2), safe payloads, and failures as Hangup."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qsl

import pytest

from callcenter.calls.builder import build_call
from ivr.adapter import AgiChannel, event_argument
from ivr.agi import MAX_ENV_LINES
from ivr.agi import session as agi_session
from ivr.channel import Hangup
from tests.factories import answered_stream, user

ENV = "agi_network: yes\nagi_network_script: hotline?line=02621022\nagi_uniqueid: 1795000000.13\n\n"


def session(*replies: str) -> tuple[AgiChannel, io.StringIO]:
    """An adapter over real pyst2, Asterisk's replies scripted; returns it and what it wrote."""
    sent = io.StringIO()
    agi = agi_session(io.StringIO(ENV + "".join(f"{reply}\n" for reply in replies)), sent)
    return AgiChannel(agi, "callcenter"), sent


def lines(sent: io.StringIO) -> list[str]:
    return sent.getvalue().splitlines()


def test_play_with_and_without_interrupt_keys() -> None:
    channel, sent = session("200 result=0 endpos=8000", "200 result=50 endpos=1200")
    assert channel.play("greeting-02621022") == ""
    channel.use_language("en")
    assert channel.play("menu-intro", "0123456789*#x") == "2"
    assert lines(sent) == ['STREAM FILE callcenter/vi/greeting-02621022 "" 0',
                           'STREAM FILE callcenter/en/menu-intro "0123456789*#" 0']


def test_wait_key_and_collect() -> None:
    channel, sent = session("200 result=0", "200 result=35", "200 result=12345 (timeout)", "200 result= (timeout)",
                            "200 result=*12")
    assert channel.wait_key(5.0) == ""
    assert channel.wait_key(0.25) == "#"
    assert channel.collect("case-enter", max_digits=13, timeout=6.0) == "12345"
    assert channel.collect("case-enter", max_digits=13, timeout=6.0) == ""
    assert channel.collect("case-enter", max_digits=0, timeout=6.0) == "*12"
    assert lines(sent) == ["WAIT FOR DIGIT 5000", "WAIT FOR DIGIT 250", "GET DATA callcenter/vi/case-enter 6000 13",
                           "GET DATA callcenter/vi/case-enter 6000 13", "GET DATA callcenter/vi/case-enter 6000 1"]


def test_user_event_payload_is_url_encoded_and_quoted() -> None:
    channel, sent = session("200 result=0", "200 result=0")
    channel.user_event("START", line="02621022", lang="vi")
    channel.user_event("INVALID", menu="case", input='1 2,3"$x&y=z;|\\')
    assert lines(sent) == ['EXEC CELGenUserEvent "IVR_START,line=02621022&lang=vi"',
                           'EXEC CELGenUserEvent "IVR_INVALID,menu=case&input=1%202%2C3%22%24x%26y%3Dz%3B%7C%5C"']


def test_event_payload_round_trips_through_the_builder() -> None:
    argument = event_argument("TOPIC", {"topic": "urban_order", "reason": "key"})
    name, payload = argument.split(",", 1)
    record = build_call([*answered_stream(), user(name, 0.5, payload)])
    assert record.topic == "urban_order"
    assert record.ivr_path == ["IVR_TOPIC:topic=urban_order&reason=key"]
    odd = {"path": "/var/spool/asterisk/monitor/1.2/msg-1.2.wav", "input": "a b&c=d,é"}
    assert dict(parse_qsl(event_argument("MESSAGE", odd).split(",", 1)[1])) == odd


def test_set_variable_drops_characters_that_break_the_command_line() -> None:
    channel, sent = session("200 result=1")
    channel.set_variable("IVR_TOPIC", 'ad"mi\\n\r\n')
    assert lines(sent) == ['SET VARIABLE "IVR_TOPIC" "admin"']


def test_message_path_follows_the_spool_contract() -> None:
    channel, sent = session("200 result=1 (/var/spool/asterisk/monitor)", "200 result=1 (1795000000.12)")
    assert channel.message_path() == "/var/spool/asterisk/monitor/1795000000.12/msg-1795000000.13.wav"
    assert lines(sent) == ['GET FULL VARIABLE "${RECORDINGS_SPOOL}"', 'GET FULL VARIABLE "${CHANNEL(linkedid)}"']


@pytest.mark.parametrize("replies", [("200 result=0", "200 result=1 (1795000000.12)"),  # no RECORDINGS_SPOOL
                                     ("200 result=1 (/var/spool/../../etc)", "200 result=1 (1795000000.12)"),
                                     ("200 result=1 (/var/spool)", "200 result=1 (x y)")])
def test_no_message_path_when_the_dialplan_gives_no_usable_one(replies: tuple[str, str]) -> None:
    channel, _ = session(*replies)
    assert channel.message_path() == ""


@pytest.mark.parametrize(("status", "kept"), [("DTMF", True), ("SILENCE", True), ("TIMEOUT", True),
                                              ("ERROR", False)])
def test_record_uses_record_keeping_the_file_on_hangup(status: str, kept: bool) -> None:
    channel, sent = session("200 result=0", f"200 result=1 ({status})")
    path = "/var/spool/asterisk/monitor/1.2/msg-1.3.wav"
    assert channel.record(path, max_seconds=120, silence_seconds=5) is kept
    assert lines(sent) == [f'EXEC Record "{path},5,120,k"', 'GET VARIABLE "RECORD_STATUS"']


@pytest.mark.timeout(10)
@pytest.mark.parametrize("replies", [
    ["200 result=-1"], ["200 result=-1 endpos=0"], ["200 result=0 (hangup)"],
    ["511 Command Not Permitted on a dead channel or intercept routine"],
    [],  # EOF: Asterisk closed the connection
    ["garbage without a code"], ["HANGUP"],
    ["520-Invalid command syntax.  Proper usage follows:", "Usage: STREAM FILE", "520 End of proper usage."],
    ["520-Invalid command syntax.  Proper usage follows:", "Usage: STREAM FILE"],  # then EOF: pyst2 alone spins
])
def test_every_agi_failure_is_a_hangup(replies: list[str]) -> None:
    channel, _ = session(*replies)
    with pytest.raises(Hangup):
        channel.play("menu-intro", "1")


def test_a_long_line_and_an_endless_environment_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):  # ivr.agi.LineTooLong: never cut into two lines
        agi_session(io.StringIO("agi_x: " + "A" * 100_000 + "\n\n"), io.StringIO())
    with pytest.raises(ValueError, match="too long"):
        agi_session(io.StringIO("k: v\n" * (MAX_ENV_LINES + 1)), io.StringIO())


class BrokenPipe:
    def __init__(self) -> None:
        self.env: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any) -> Any:
            raise BrokenPipeError(32, "Broken pipe")
        return fail


def test_socket_errors_are_hangups() -> None:
    channel = AgiChannel(BrokenPipe(), "callcenter")
    with pytest.raises(Hangup):
        channel.wait_key(1)


@pytest.mark.parametrize("name", ["../etc/passwd", "menu intro", "", "Menu", "a;b"])
def test_prompt_names_are_checked(name: str) -> None:
    channel, _ = session()
    with pytest.raises(ValueError, match="bad prompt name"):
        channel.play(name)


def test_bad_arguments_are_programming_errors() -> None:
    channel, _ = session()
    with pytest.raises(ValueError):
        channel.use_language("fr")
    with pytest.raises(ValueError):
        channel.record("relative/msg.wav", max_seconds=1, silence_seconds=0)
    with pytest.raises(ValueError):
        channel.user_event("start")
    with pytest.raises(ValueError):
        channel.set_variable("IVR TOPIC", "x")
