"""Which connections get an IVR process: a cap on sessions, and a smaller one on those still sending their greeting.

Asterisk sends the whole AGI environment (about 1 KiB) the moment it connects, so a session still "greeting"
(sending its environment) after a few milliseconds is almost surely not Asterisk: a scanner, a stuck client, or
someone trickling bytes to hold processes. Greeters may hold at most ``max_greeting`` of the ``max_sessions``
processes; the rest is kept for sessions that have started, which are calls. A new connection that finds either
cap reached ends the oldest greeter (the one least likely to be Asterisk) and takes its place; when every process
is a started call, the new connection is closed at once, AGI() fails in the dialplan and the caller goes on to
the queue. Nothing ever waits for a free process. A greeter also ends by itself at ``env_deadline``.

Each child tells the server that its greeting is over by writing its pid to a pipe the server reads without
blocking, so the server's view needs no shared memory and no locks.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from dataclasses import dataclass

PID = struct.Struct("=i")  # 4 bytes: a pipe write this small is atomic, so pids never interleave


@dataclass(frozen=True)
class Limits:
    """The IVR server's capacity. These protect the host, not the hotline: module defaults, tests shrink them."""

    # One process per call in the IVR; 400 took ~630 MiB when measured, and 150 callers at once kept up fine.
    max_sessions: int = 400
    # Asterisk greets in milliseconds: even at 100 new calls a second hardly two greet at once.
    max_greeting: int = 32
    # Seconds from connect to the blank line that ends the environment, however slowly it trickles.
    env_deadline: float = 5.0


@dataclass(frozen=True)
class Greeter:
    """A child still reading its AGI environment: since when, and for whom (for the log)."""

    since: float
    client: object


class Admission:
    """The server's view of its children still greeting; decides whether a new connection may start."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.greeting: dict[int, Greeter] = {}  # pid -> greeter, oldest first
        self._inbox, self._outbox = os.pipe()
        for fd in (self._inbox, self._outbox):
            os.set_blocking(fd, False)  # neither the server nor a child may ever wait on this pipe

    def started(self, pid: int, client: object) -> None:
        """The server forked ``pid`` for a new connection: it greets until it says otherwise."""
        self.greeting[pid] = Greeter(time.monotonic(), client)

    def greeted(self) -> None:
        """In the child: the environment has arrived, this process is a call now."""
        with contextlib.suppress(OSError):  # a full pipe: the server counts us a greeter a while longer
            os.write(self._outbox, PID.pack(os.getpid()))

    def update(self) -> None:
        """Read which children finished greeting (before reaping, so a reused pid is never mistaken)."""
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self._inbox, PID.size * 1024):
                for (pid,) in PID.iter_unpack(data):
                    self.greeting.pop(pid, None)

    def forget_all_but(self, alive: set[int]) -> None:
        """Drop greeters that have exited (reaped by the server)."""
        for pid in [pid for pid in self.greeting if pid not in alive]:
            del self.greeting[pid]

    def make_room(self, sessions: int) -> int | None:
        """With ``sessions`` processes running, the greeter to end for a new connection, or None if no need."""
        full = sessions >= self.limits.max_sessions or len(self.greeting) >= self.limits.max_greeting
        return next(iter(self.greeting), None) if full else None

    def full(self, sessions: int) -> bool:
        """No room for a new connection even after ending greeters: every process is a started call."""
        return sessions >= self.limits.max_sessions and not self.greeting

    def close(self) -> None:
        """Close the pipe (the server is done)."""
        for fd in (self._inbox, self._outbox):
            with contextlib.suppress(OSError):
                os.close(fd)
