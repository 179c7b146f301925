"""The AMI users the model renders, against the real sandbox: the listener's user is sent CEL only (its
eventfilter), so it never reads the far larger stream of channel and queue events a call makes; the live board's
own user gets that stream. Both watch the same real call through a plain AMI socket."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from callcenter.sandbox.baresip import SipAgent
from callcenter.store.db import Database
from tests.integration.conftest import MODEL, SETTINGS, ListenerProcess, caller_number, wait_for_calls, wait_until

pytestmark = pytest.mark.sandbox


class AmiTap:
    """A plain AMI session (log in, read events) counting each event's name until closed."""

    def __init__(self, username: str, secret: str) -> None:
        self.events: Counter[str] = Counter()
        self.logged_in = threading.Event()
        self.sock = socket.create_connection((MODEL.pbx.ami.host, MODEL.pbx.ami.port), timeout=5)
        self.sock.sendall(f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\nEvents: on\r\n\r\n".encode())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self.sock.recv(65536):
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    message, buffer = buffer.split(b"\r\n\r\n", 1)
                    headers = dict(line.split(": ", 1) for line in message.decode(errors="replace").split("\r\n")
                                   if ": " in line)
                    if headers.get("Response") == "Success":
                        self.logged_in.set()
                    if "Event" in headers:
                        self.events[headers["Event"]] += 1
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def test_the_listeners_user_is_sent_cel_only_and_the_live_boards_user_everything(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    taps = {"listener": AmiTap(SETTINGS.ami.username, SETTINGS.ami.secret),
            "live": AmiTap(SETTINGS.api.live_username, SETTINGS.api.live_secret)}
    try:
        for tap in taps.values():
            assert tap.logged_in.wait(10)
        operator = agents("op101", register=True, wav_seconds=2)  # hangs up after 2 s
        number = caller_number()
        citizen = agents("citizen2", wav_seconds=60, caller_number=number)
        citizen.dial(next(iter(MODEL.lines)))  # no IVR running: straight to the queue
        operator.wait_event("CALL_ESTABLISHED", 30)
        citizen.wait_event("CALL_CLOSED", 30)
        assert wait_for_calls(db, [number])[number].status == "answered"  # the listener logged it from CEL
        wait_until(lambda: taps["live"].events["Hangup"] >= 2, 10, "the live board's user to see both hang-ups")
        wait_until(lambda: taps["live"].events["CEL"] == taps["listener"].events["CEL"], 10, "both to get every CEL")
    finally:
        for tap in taps.values():
            tap.close()
    heard = taps["listener"].events
    assert heard["CEL"] > 10 and set(heard) <= {"CEL", "FullyBooted", "Shutdown"}, heard
    seen = taps["live"].events
    assert seen["CEL"] == heard["CEL"] and {"Newchannel", "Hangup", "QueueCallerJoin"} <= set(seen), seen
    assert sum(seen.values()) > 2 * sum(heard.values())  # what the filter spares the listener
