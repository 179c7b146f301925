"""Fuzzing the FastAGI request side: the AGI environment parser over socketpairs, and the server over sockets.

Garbage, huge lines, NULs, invalid UTF-8 and random ``agi_network_script`` values must end their own session
(or run a flow) promptly, and the server must serve a well-formed session right after each of them.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ivr.admission import Limits
from ivr.agi import MAX_ENV_LINES, MAX_LINE, DeadlineReader, session, text_reader
from ivr.server import FastAgiServer, route
from tests.unit.agi_client import ENV, PASSTHROUGH, QUEUED, Address, address, running, silent_caller
from tests.unit.agi_client import session as agi_session
from tests.unit.fuzzing import fuzz

pytestmark = pytest.mark.timeout(180)
ODD_BYTES = st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xe1\xbb", b"\r", b":", b" ", b"\t", "ễ".encode()])
LINE_BYTES = st.lists(st.binary(max_size=12) | ODD_BYTES, max_size=8).map(b"".join).filter(lambda b: b"\n" not in b)
HUGE = st.integers(MAX_LINE - 20, 3 * MAX_LINE).map(lambda n: b"agi_pad: " + b"A" * n)
SCRIPT = st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s)
SCRIPTS = st.sampled_from(["hotline", "passthrough", "", "?", "//[", "hotline?line=%ff&line=", "a" * 300]) | SCRIPT


@st.composite
def environments(draw: st.DrawFn) -> bytes:
    """An AGI environment with random lines (odd bytes, huge ones) and a random script, maybe never ended."""
    lines = draw(st.lists(LINE_BYTES | HUGE, max_size=6))
    lines.insert(draw(st.integers(0, len(lines))), b"agi_network_script: " + draw(SCRIPTS).encode())
    end = draw(st.sampled_from([b"\n\n", b"\n", b"", b"\r\n\r\n"]))
    return b"\n".join(lines) + end


def parse(payload: bytes) -> tuple[dict[str, str], str]:
    """Parse ``payload`` as the server does (then EOF); the environment and the line after it, or raise."""
    left, right = socket.socketpair()
    with left, right:
        right.sendall(payload)
        right.shutdown(socket.SHUT_WR)
        agi = session(text_reader(DeadlineReader(left, 2.0, time.monotonic() + 2.0)), io.StringIO())
        return agi.env, agi.stdin.readline()


@given(environments() | st.binary(max_size=3 * MAX_LINE))
@fuzz(200)
@example(b"agi_x: \x00\xff\xfe\n\n200 result=0\n")
@example(b"k: v\n" * (MAX_ENV_LINES + 1))
def test_the_environment_parser_ends_cleanly(payload: bytes) -> None:
    try:
        env, after = parse(payload + b"200 result=0\n")
    except (ValueError, OSError):
        return  # refused (too long, cut, not ended): the session ends, nothing is left half-read
    assert len(env) < MAX_ENV_LINES
    assert all("\n" not in key + value and len(key + value) < MAX_LINE for key, value in env.items())
    assert after == line_after_blank(payload + b"200 result=0\n")  # the environment ends there, never later


def line_after_blank(payload: bytes) -> str:
    """The line after the first blank one (pyst2 strips each line): where the environment must end."""
    lines = payload.decode("utf-8", "replace").split("\n")
    blank = next(index for index, line in enumerate(lines) if not line.strip())
    return lines[blank + 1] + "\n"


@given(SCRIPTS)
@fuzz(200)
def test_route_takes_any_script(script: str) -> None:
    name, args = route(script)
    assert isinstance(name, str) and all(isinstance(value, str) for value in args.values())


@pytest.fixture(scope="module")
def agi_server() -> Iterator[FastAgiServer]:
    with running(Limits(env_deadline=0.5)) as agi:  # short: many examples never end their environment
        yield agi


def served(where: Address) -> bool:
    return QUEUED in agi_session(where, PASSTHROUGH)


@given(environments() | st.binary(max_size=2 * MAX_LINE), st.booleans())
@fuzz(40, deadline=8.0)
@example(ENV.replace(b"hotline?", b"hotline?line=\xff\x00"), True)
@example(b"agi_network_script: //[\n\n", True)
def test_the_server_survives_any_request(agi_server: FastAgiServer, payload: bytes, answer: bool) -> None:
    where = address(agi_server)
    # ended by the flow, EOF or the environment's 0.5 s deadline; a server holding the call times the client
    # out (socket.timeout fails the example)
    agi_session(where, payload, silent_caller if answer else None, timeout=5.0)
    assert served(where)
