"""The FastAGI server over real sockets: whole hotline sessions, and garbage that must not hang or crash it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from callcenter.model.contract import IvrOutcome
from ivr import flows
from ivr.agi import MAX_LINE
from ivr.server import route
from tests.unit.agi_client import ENV, QUEUED, address, running, session

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    with running() as agi:
        yield address(agi)


def test_route() -> None:
    assert route("hotline?line=02621022") == ("hotline", {"line": "02621022"})
    assert route("") == ("", {})
    assert route("/hotline/?x=%20y&&") == ("hotline", {"x": " y"})


def test_silent_caller_is_queued_with_unknown_topic(server: tuple[str, int]) -> None:
    commands = session(server, ENV)
    assert commands[:3] == ['SET VARIABLE "IVR_LANG" "vi"', 'EXEC CELGenUserEvent "IVR_START,line=02621022&lang=vi"',
                            'STREAM FILE callcenter/vi/greeting-02621022 "" 0']
    assert commands.count("WAIT FOR DIGIT 5000") == 3
    assert commands[-5:] == ['SET VARIABLE "IVR_TOPIC" "unknown"', QUEUED,
                             'EXEC CELGenUserEvent "IVR_TOPIC,topic=unknown&reason=no_choice"',
                             'EXEC CELGenUserEvent "IVR_EXIT,outcome=queue&reason=no_choice"',
                             'STREAM FILE callcenter/vi/to-operator "" 0']


def test_a_caller_choosing_a_topic(server: tuple[str, int]) -> None:
    def caller(command: str) -> bytes:
        return b"200 result=54\n" if command.startswith("WAIT FOR DIGIT") else b"200 result=0\n"  # "6"

    commands = session(server, ENV, caller)
    assert 'EXEC CELGenUserEvent "IVR_TOPIC,topic=traffic&reason=key"' in commands
    assert 'SET VARIABLE "IVR_TOPIC" "traffic"' in commands and commands.count("WAIT FOR DIGIT 5000") == 1


def test_passthrough_flow(server: tuple[str, int]) -> None:
    commands = session(server, ENV.replace(b"hotline?", b"passthrough?"))
    assert commands == ['EXEC CELGenUserEvent "IVR_START,line=02621022"', QUEUED]


def test_unknown_flow_is_closed_without_commands(server: tuple[str, int]) -> None:
    assert session(server, ENV.replace(b"hotline?", b"nowhere?")) == []


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe garbage without newline", b"no colon here\n\n",
                                     b"agi_network_script: nowhere?\xff=\xfe\n\n", b"A" * 100_000 + b"\n\n",
                                     b"agi_network_script: hotline?line=02621022\n\n",  # then EOF mid-session
                                     b"k: v\n" * 10_000, b"\n" * 50])
def test_garbage_never_breaks_the_server(server: tuple[str, int], garbage: bytes) -> None:
    session(server, garbage, reply=None)
    assert QUEUED in session(server, ENV)


def test_an_over_long_line_ends_the_session_and_its_tail_is_no_header(server: tuple[str, int]) -> None:
    pad = b"agi_pad: " + b"A" * (MAX_LINE - len(b"agi_pad: "))
    assert session(server, b"agi_network: yes\n" + pad + ENV.replace(b"hotline?", b"passthrough?")) == []


def test_an_over_long_reply_ends_thesession(server: tuple[str, int]) -> None:
    long_reply = b"200 result=0 " + b"x" * MAX_LINE + b"200 result=54\n"
    commands = session(server, ENV, lambda command: long_reply)
    assert commands == ['SET VARIABLE "IVR_LANG" "vi"']


def test_a_carriage_return_in_the_callers_name_forges_no_header(server: tuple[str, int]) -> None:
    name = b"agi_calleridname: Mai\ragi_network_script: nowhere?\r\r\n"
    assert QUEUED in session(server, ENV.replace(b"agi_callerid:", name + b"agi_callerid:"))


def test_a_lone_colon_is_a_bad_header_not_the_end_of_the_environment(server: tuple[str, int]) -> None:
    payload = b"agi_network_script: passthrough?line=1\n:\nagi_x: y\n\n"
    assert session(server, payload) == ['EXEC CELGenUserEvent "IVR_START,line=1"', QUEUED]


USAGE = b"520-Invalid command syntax.  Proper usage follows:\nUsage: STREAM FILE\n520 End of proper usage.\n"


@pytest.mark.parametrize("reply", [b"garbage\n", USAGE,
                                   b"200 result=-1\n", b"511 Command Not Permitted on a dead channel\n",
                                   b"\xff\xfe\n", b"200 result=" + b"9" * 50_000 + b"\n"])
def test_odd_replies_end_the_session_not_the_server(server: tuple[str, int], reply: bytes) -> None:
    commands = session(server, ENV, reply=lambda command: reply)
    assert 1 <= len(commands) <= 3
    assert QUEUED in session(server, ENV)


def test_caller_hanging_up_mid_session_is_harmless(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=5) as conn:
        conn.sendall(ENV)
        conn.recv(100)  # first command arrives; the "caller" hangs up instead of answering
    assert QUEUED in session(server, ENV)


def test_a_crashing_flow_ends_only_its_ownsession(server: tuple[str, int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> IvrOutcome:
        raise RuntimeError("bug")

    monkeypatch.setitem(flows.FLOWS, "broken", broken)  # the forked child sees the patched table
    assert session(server, ENV.replace(b"hotline?", b"broken?")) == []
    assert QUEUED in session(server, ENV)
