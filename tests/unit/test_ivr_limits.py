"""The FastAGI server under slow and too many clients, over real sockets: calls are served or refused at once.

Trickling clients are paced by waiting for the server to close them (``select`` with a short timeout), so no
test sleeps a fixed time: each waits for a socket state or a condition of the server.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.admission import Limits
from ivr.server import FastAgiServer
from tests.unit.agi_client import ENV, PASSTHROUGH, QUEUED, Address, address, running, session, wait_until

pytestmark = pytest.mark.timeout(60)
PARTIAL = b"agi_network: yes\nagi_network_script: hot"  # a greeting that never ends


def closed(conn: socket.socket, wait: float = 0.0) -> bool:
    """Whether the server has closed ``conn`` (EOF or reset), waiting at most ``wait`` seconds to see it."""
    if not select.select([conn], [], [], wait)[0]:
        return False
    try:
        return conn.recv(4096, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def children() -> int:
    """The server's forks alive: processes whose parent is this test process and whose command line is its own
    (other children of the test run, such as a browser driver, are not counted), read from /proc."""
    count, own = 0, Path("/proc/self/cmdline").read_bytes()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            count += (fields[1] == str(os.getpid()) and fields[0] != "Z"
                      and (stat.parent / "cmdline").read_bytes() == own)
    return count


@contextlib.contextmanager
def connections(where: Address, count: int, payload: bytes, started: bool = False) -> Iterator[list[socket.socket]]:
    """``count`` clients, one after the other, that each sent ``payload`` and then hold their connection open;
    ``started``: each waits for its first command (a call in progress) before the next connects."""
    with contextlib.ExitStack() as stack:
        conns = []
        for _ in range(count):
            conns.append(conn := stack.enter_context(socket.create_connection(where, timeout=10)))
            conn.sendall(payload)
            assert not started or conn.recv(4096).startswith(b"SET VARIABLE")
        yield conns
        for conn in conns:  # the server's children hold copies of these sockets (same process): hang up for real
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def started_calls(where: Address, count: int) -> contextlib.AbstractContextManager[list[socket.socket]]:
    """``count`` calls in progress: each got its first command and is waiting (never answering it)."""
    return connections(where, count, ENV, started=True)


def test_a_trickling_greeting_is_ended_at_its_deadline_however_often_bytes_come() -> None:
    """Before the fix only each read was timed (10 s): a byte every 0.2 s held the process for ever. With a 1 s
    deadline the server must close within a few bytes; 100 bytes (20 s of trickle) without a close is the bug."""
    with running(Limits(env_deadline=1.0)) as agi, socket.create_connection(address(agi), timeout=10) as conn:
        for byte in (PARTIAL * 20)[:100]:
            conn.sendall(bytes([byte]))
            if closed(conn, wait=0.2):
                break
        assert closed(conn)


def test_a_well_formed_greeting_is_not_hurried() -> None:
    with running(Limits(env_deadline=1.0)) as agi:
        assert QUEUED in session(address(agi), ENV)


def test_a_full_ivr_closes_a_new_connection_at_once_and_serves_again_when_a_call_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    with running(Limits(max_sessions=3, max_greeting=2)) as agi:
        with started_calls(address(agi), 3):
            # closed before any command (a server that made it wait would time the client out): the dialplan
            # goes on to the queue
            assert session(address(agi), ENV) == []
            assert "IVR full (3 calls)" in caplog.text
        wait_until(lambda: agi.sessions == 0, what="the held calls end")
        assert QUEUED in session(address(agi), ENV)


def test_many_trickling_clients_cannot_keep_a_call_out() -> None:
    """Before the fix 406 such clients held all 400 processes and real calls timed out."""
    limits = Limits(max_sessions=6, max_greeting=2, env_deadline=30.0)
    with running(limits) as agi, started_calls(address(agi), 3), connections(address(agi), 12, PARTIAL) as slow:
        # (The server ends a greeter before it forks the next one: wait for both, not just the tenth close.)
        # (An ended greeter is counted out before its process is gone: wait for the process count as well.)
        wait_until(lambda: sum(closed(conn) for conn in slow) == 10 and len(agi.admission.greeting) == 2
                   and agi.sessions == 5 and children() == 5,
                   what="the oldest greeters are ended, the two newest greet")
        assert QUEUED in session(address(agi), PASSTHROUGH)  # served at once, not after the client's timeout
        assert agi.sessions <= limits.max_sessions and children() <= limits.max_sessions


def test_a_call_ending_a_greeter_leaves_the_other_calls_alone() -> None:
    with running(Limits(max_sessions=3, max_greeting=3)) as agi, started_calls(address(agi), 2) as calls, \
            connections(address(agi), 1, PARTIAL) as [slow]:
        wait_until(lambda: len(agi.admission.greeting) == 1, what="the greeter is counted")
        assert QUEUED in session(address(agi), PASSTHROUGH)
        assert closed(slow, wait=1.0)
        assert not any(closed(call) for call in calls)


def test_the_server_counts_greetings_and_calls_apart() -> None:
    with running(Limits(max_sessions=10, max_greeting=5)) as agi, started_calls(address(agi), 2), \
            connections(address(agi), 3, PARTIAL):
        wait_until(lambda: agi.sessions == 5 and len(agi.admission.greeting) == 3, what="3 greeters, 2 calls")


def test_default_limits_are_sane() -> None:
    limits = Limits()
    assert limits.max_greeting < limits.max_sessions and 1 <= limits.env_deadline <= 10
    assert FastAgiServer.max_children > limits.max_sessions  # ForkingMixIn must never block in waitpid


def test_a_restarted_server_can_listen_while_calls_of_the_old_one_go_on() -> None:
    """Before the fix each call's process kept the listening socket: a new IVR could not bind its port (and
    connections queued on the old socket were never answered) until every call in progress had ended."""
    with running() as agi, started_calls(address(agi), 1):
        agi.shutdown()
        agi.server_close()  # the old server stops; its call goes on
        FastAgiServer(address(agi), agi.services()).server_close()
