"""A FastAGI server on a loopback port for tests, and a client that plays Asterisk's side of a session."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from callcenter.model.hotline import load
from callcenter.settings import Settings
from ivr.admission import Limits
from ivr.server import FastAgiServer
from ivr.steps import Services

ENV = (b"agi_network: yes\nagi_network_script: hotline?line=02621022\nagi_channel: PJSIP/citizen1-1\n"
       b"agi_uniqueid: 1795000000.1\nagi_callerid: 0905123456\n\n")
PASSTHROUGH = ENV.replace(b"hotline?", b"passthrough?")
MONDAY_9 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
QUEUED = 'SET VARIABLE "IVR_OUTCOME" "queue"'
Reply = Callable[[str], bytes]
Address = tuple[str, int]


def silent_caller(command: str) -> bytes:
    """Asterisk with a caller who never presses a key: every command succeeds, every wait times out."""
    return b"200 result=0\n"


@contextlib.contextmanager
def running(limits: Limits | None = None, private: Sequence[socket.socket] = ()) -> Iterator[FastAgiServer]:
    """A FastAGI server on 127.0.0.1 (any free port) in a thread; its leftover children are killed at the end."""
    agi = FastAgiServer(("127.0.0.1", 0), Services(load(Settings().model_file)), clock=lambda: MONDAY_9,
                        limits=limits, private=private)
    thread = threading.Thread(target=agi.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield agi
    finally:
        agi.shutdown()
        for pid in agi.active_children or ():  # a session still waiting for a reply: ours, by pid
            os.kill(pid, signal.SIGKILL)
        agi.server_close()


def address(agi: FastAgiServer) -> Address:
    """Where ``agi`` listens."""
    host, port = agi.server_address[:2]
    return str(host), int(port)


def session(where: Address, payload: bytes, reply: Reply | None = silent_caller, timeout: float = 10) -> list[str]:
    """Send ``payload``; answer every AGI command with ``reply`` (None: don't); return the commands received."""
    commands: list[str] = []
    with socket.create_connection(where, timeout=timeout) as conn:
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


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> float:
    """Poll ``condition`` until it holds; the seconds it took. Fails the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not met in {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start
