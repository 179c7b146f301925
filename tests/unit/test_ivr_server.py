"""The FastAGI server over real sockets: whole hotline sessions, and garbage that must not hang or crash it."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from callcenter.model.contract import IvrOutcome
from callcenter.model.hotline import load
from callcenter.settings import Settings
from ivr import flows
from ivr.agi import MAX_LINE
from ivr.server import FastAgiServer, route
from ivr.steps import Services

pytestmark = pytest.mark.timeout(60)
ENV = (b"agi_network: yes\nagi_network_script: hotline?line=02621022\nagi_channel: PJSIP/citizen1-1\n"
       b"agi_uniqueid: 1795000000.1\nagi_callerid: 0905123456\n\n")
MONDAY_9 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
QUEUED = 'SET VARIABLE "IVR_OUTCOME" "queue"'
Reply = Callable[[str], bytes]


def silent_caller(command: str) -> bytes:
    """Asterisk with a caller who never presses a key: every command succeeds, every wait times out."""
    return b"200 result=0\n"


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    agi = FastAgiServer(("127.0.0.1", 0), Services(load(Settings().model_file)), clock=lambda: MONDAY_9)
    thread = threading.Thread(target=agi.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield agi.server_address  # type: ignore[misc]
    agi.shutdown()
    for pid in agi.active_children or ():  # a session still waiting for a reply: not ours to keep
        os.kill(pid, signal.SIGKILL)
    agi.server_close()


def _session(address: tuple[str, int], payload: bytes, reply: Reply | None = silent_caller) -> list[str]:
    """Send ``payload``; answer every AGI command with ``reply`` (None: don't); return the commands received."""
    commands: list[str] = []
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(payload)
        if reply is None:
            conn.shutdown(socket.SHUT_WR)  # a client that sends garbage and goes away
        reader = conn.makefile("rb")
        try:
            while line := reader.readline():
                commands.append(line.decode().strip())
                if reply is not None:
                    conn.sendall(reply(commands[-1]))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up on this session while we were still talking: that is the point
        return commands


def test_route() -> None:
    assert route("hotline?line=02621022") == ("hotline", {"line": "02621022"})
    assert route("") == ("", {})
    assert route("/hotline/?x=%20y&&") == ("hotline", {"x": " y"})


def test_silent_caller_is_queued_with_unknown_topic(server: tuple[str, int]) -> None:
    commands = _session(server, ENV)
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

    commands = _session(server, ENV, caller)
    assert 'EXEC CELGenUserEvent "IVR_TOPIC,topic=traffic&reason=key"' in commands
    assert 'SET VARIABLE "IVR_TOPIC" "traffic"' in commands and commands.count("WAIT FOR DIGIT 5000") == 1


def test_passthrough_flow(server: tuple[str, int]) -> None:
    commands = _session(server, ENV.replace(b"hotline?", b"passthrough?"))
    assert commands == ['EXEC CELGenUserEvent "IVR_START,line=02621022"', QUEUED]


def test_unknown_flow_is_closed_without_commands(server: tuple[str, int]) -> None:
    assert _session(server, ENV.replace(b"hotline?", b"nowhere?")) == []


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe garbage without newline", b"no colon here\n\n",
                                     b"agi_network_script: nowhere?\xff=\xfe\n\n", b"A" * 100_000 + b"\n\n",
                                     b"agi_network_script: hotline?line=02621022\n\n",  # then EOF mid-session
                                     b"k: v\n" * 10_000, b"\n" * 50])
def test_garbage_never_breaks_the_server(server: tuple[str, int], garbage: bytes) -> None:
    _session(server, garbage, reply=None)
    assert QUEUED in _session(server, ENV)


def test_an_over_long_line_ends_the_session_and_its_tail_is_no_header(server: tuple[str, int]) -> None:
    pad = b"agi_pad: " + b"A" * (MAX_LINE - len(b"agi_pad: "))
    assert _session(server, b"agi_network: yes\n" + pad + ENV.replace(b"hotline?", b"passthrough?")) == []


def test_an_over_long_reply_ends_the_session(server: tuple[str, int]) -> None:
    long_reply = b"200 result=0 " + b"x" * MAX_LINE + b"200 result=54\n"
    commands = _session(server, ENV, lambda command: long_reply)
    assert commands == ['SET VARIABLE "IVR_LANG" "vi"']


USAGE = b"520-Invalid command syntax.  Proper usage follows:\nUsage: STREAM FILE\n520 End of proper usage.\n"


@pytest.mark.parametrize("reply", [b"garbage\n", USAGE,
                                   b"200 result=-1\n", b"511 Command Not Permitted on a dead channel\n",
                                   b"\xff\xfe\n", b"200 result=" + b"9" * 50_000 + b"\n"])
def test_odd_replies_end_the_session_not_the_server(server: tuple[str, int], reply: bytes) -> None:
    commands = _session(server, ENV, reply=lambda command: reply)
    assert 1 <= len(commands) <= 3
    assert QUEUED in _session(server, ENV)


def test_caller_hanging_up_mid_session_is_harmless(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=5) as conn:
        conn.sendall(ENV)
        conn.recv(100)  # first command arrives; the "caller" hangs up instead of answering
    assert QUEUED in _session(server, ENV)


def test_a_crashing_flow_ends_only_its_own_session(server: tuple[str, int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> IvrOutcome:
        raise RuntimeError("bug")

    monkeypatch.setitem(flows.FLOWS, "broken", broken)  # the forked child sees the patched table
    assert _session(server, ENV.replace(b"hotline?", b"broken?")) == []
    assert QUEUED in _session(server, ENV)
