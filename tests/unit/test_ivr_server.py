"""The FastAGI server over real sockets: a pass-through session, and garbage that must not hang or crash it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from ivr.flows import passthrough
from ivr.server import AgiHandler, FastAgiServer, route

ENV = b"agi_network: yes\nagi_network_script: hotline?line=02621022\nagi_channel: PJSIP/citizen1-1\n\n"


class FakeChannel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def set_variable(self, name: str, value: str) -> None:
        self.calls.append(("set", (name, value)))

    def user_event(self, name: str, **fields: str) -> None:
        self.calls.append(("event", (name, fields)))


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    agi = FastAgiServer(("127.0.0.1", 0), AgiHandler)
    thread = threading.Thread(target=agi.serve_forever, daemon=True)
    thread.start()
    yield agi.server_address  # type: ignore[misc]
    agi.shutdown()
    agi.server_close()


def _session(address: tuple[str, int], payload: bytes, answer: bool = True) -> list[str]:
    """Send ``payload``; answer every AGI command with success; return the commands received."""
    commands: list[str] = []
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(payload)
        if not answer:
            conn.shutdown(socket.SHUT_WR)  # a client that sends garbage and goes away
        reader = conn.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return commands
            commands.append(line.decode().strip())
            if answer:
                conn.sendall(b"200 result=1\n")


def test_route() -> None:
    assert route("hotline?line=02621022") == ("hotline", {"line": "02621022"})
    assert route("") == ("", {})
    assert route("/hotline/?x=%20y&&") == ("hotline", {"x": " y"})


def test_passthrough_flow_reports_and_marks() -> None:
    channel = FakeChannel()
    passthrough(channel, {"line": "1900868647"})
    assert channel.calls == [("event", ("START", {"line": "1900868647"})), ("set", ("IVR_STATUS", "passthrough"))]


def test_passthrough_session_over_fastagi(server: tuple[str, int]) -> None:
    commands = _session(server, ENV)
    assert commands == ["EXEC CELGenUserEvent IVR_START,line=02621022", 'SET VARIABLE "IVR_STATUS" "passthrough"']


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe garbage without newline", b"no colon here\n\n",
                                     b"agi_network_script: nowhere?\xff=\xfe\n\n", b"A" * 100_000 + b"\n\n"])
def test_garbage_never_breaks_the_server(server: tuple[str, int], garbage: bytes) -> None:
    _session(server, garbage, answer=False)
    assert _session(server, ENV)[-1] == 'SET VARIABLE "IVR_STATUS" "passthrough"'


def test_caller_hanging_up_mid_session_is_harmless(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=5) as conn:
        conn.sendall(ENV)
        conn.recv(100)  # first command arrives; the "caller" hangs up instead of answering
    assert _session(server, ENV)[-1] == 'SET VARIABLE "IVR_STATUS" "passthrough"'
