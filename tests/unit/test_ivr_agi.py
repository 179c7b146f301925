"""The hardened pyst2 session (ivr/agi.py) on its own: bounded lines, over-long lines, EOF, the environment."""

from __future__ import annotations

import io
import socket

import pytest

from ivr.agi import MAX_LINE, BoundedLines, DeadlineReader, LineTooLong, session, text_reader

pytestmark = pytest.mark.timeout(20)
PASSTHROUGH = "agi_network_script: passthrough?line=1"


def _session(text: str) -> tuple[dict[str, str], io.StringIO]:
    out = io.StringIO()
    return session(io.StringIO(text), out).env, out


def test_lines_up_to_the_limit_are_read_whole() -> None:
    line = "k: " + "v" * (MAX_LINE - 4) + "\n"  # exactly MAX_LINE characters with its newline
    lines = BoundedLines(io.StringIO(line + "next\n"))
    assert lines.readline() == line
    assert lines.readline() == "next\n"


@pytest.mark.parametrize("length", [MAX_LINE, MAX_LINE + 1, 3 * MAX_LINE])
def test_an_over_long_line_is_refused_not_split(length: int) -> None:
    lines = BoundedLines(io.StringIO("x" * length + "\nnext\n"))
    with pytest.raises(LineTooLong):
        lines.readline()


def test_eof_is_an_error_and_a_cut_last_line_too() -> None:
    with pytest.raises(ConnectionAbortedError):
        BoundedLines(io.StringIO("")).readline()
    with pytest.raises(ConnectionAbortedError):
        BoundedLines(io.StringIO("200 result=")).readline()  # the peer closed mid-line


def test_the_tail_of_an_over_long_header_is_never_a_header() -> None:
    """Before the fix, the 8,193rd character onwards was read as the next header: here, a flow to run."""
    pad = "agi_pad: "
    line = pad + "A" * (MAX_LINE - len(pad)) + PASSTHROUGH + "\n"
    with pytest.raises(LineTooLong):
        _session("agi_network: yes\n" + line + "\n")


def test_a_carriage_return_inside_a_value_neither_ends_the_line_nor_forges_a_header() -> None:
    """Before the fix the server's reader used universal newlines: a "\\r" in a caller's name ended its line."""
    name = "agi_calleridname: Mai\ragi_network_script: passthrough?line=1\r\ragi_x: after\n"
    left, right = socket.socketpair()
    with left, right:
        right.sendall(f"agi_network_script: hotline?line=02621022\n{name}\n".encode())
        env = session(text_reader(DeadlineReader(left, 2.0, None)), io.StringIO()).env
    assert env["agi_network_script"] == "hotline?line=02621022"
    assert env["agi_calleridname"] == "Mai\ragi_network_script: passthrough?line=1\r\ragi_x: after"


def test_a_plain_environment_is_read() -> None:
    env, out = _session(f"agi_network: yes\n{PASSTHROUGH}\nno colon\n : lone\n:\nagi_x: a:b\n\n")
    assert env == {"agi_network": "yes", "agi_network_script": "passthrough?line=1", "no colon": "",
                   "agi_x": "a:b"}
    assert out.getvalue() == ""  # reading the environment sends nothing


def test_an_over_long_reply_ends_the_command_and_is_not_the_next_reply() -> None:
    reply = "200 result=0 " + "x" * MAX_LINE + "200 result=54\n"
    agi = session(io.StringIO(f"{PASSTHROUGH}\n\n" + reply + "200 result=0\n"), io.StringIO())
    with pytest.raises(LineTooLong):
        agi.wait_for_digit(1000)
