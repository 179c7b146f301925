"""pyst2's AGI session, hardened for a server that anyone on the loopback can reach.

pyst2 reads the AGI environment and every reply with unbounded ``readline``, loops forever on a ``520`` usage
reply once the peer has closed, and writes a debug trace of everything to stderr. These wrappers bound what is
read, turn EOF into an error and discard the trace; the FastAGI server builds every session from them.
"""

from __future__ import annotations

import io
import socket
import time

from asterisk.agi import AGI

MAX_LINE = 8192  # characters per line read from Asterisk (or whoever connected)
MAX_ENV_LINES = 200  # Asterisk sends about 25 (plus agi_arg_N)


class LineTooLong(ValueError):
    """A line longer than MAX_LINE: the session ends (its tail must never be read as another line)."""


class BoundedLines:
    """What pyst2 reads from: whole lines of at most MAX_LINE characters (newline included); EOF is an error.

    pyst2 reads unbounded lines, and after a ``520`` usage reply it reads until a line starting ``520`` comes,
    spinning forever once the peer has closed. Raising at EOF (an OSError, so a Hangup) ends that. A longer line
    ends the session too: cutting it would hand its tail to pyst2 as the next header or the next command's reply.
    """

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = stream

    def readline(self) -> str:
        line = self.stream.readline(MAX_LINE)
        if line.endswith("\n"):
            return line
        if len(line) >= MAX_LINE:
            raise LineTooLong(f"AGI line longer than {MAX_LINE} characters: {line[:40]!r}...")
        raise ConnectionAbortedError("the AGI peer closed the connection" + (" mid-line" if line else ""))


class DeadlineReader(io.RawIOBase):
    """A socket's reading side for pyst2: each read waits at most ``timeout`` seconds, and none past ``deadline``.

    A socket timeout alone limits each read, so a client sending a byte every few seconds could hold its process
    for ever; the deadline (``time.monotonic()``) limits the whole greeting. ``relax()`` lifts it once the AGI
    environment has arrived: from then on each command may wait for its reply as long as ``timeout``.
    """

    def __init__(self, sock: socket.socket, timeout: float, deadline: float | None) -> None:
        super().__init__()
        self.sock = sock
        self.timeout = timeout
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wait = self.timeout if self.deadline is None else min(self.timeout, self.deadline - time.monotonic())
        if wait <= 0:
            raise TimeoutError("the AGI environment did not arrive in time")
        self.sock.settimeout(wait)
        return self.sock.recv_into(buffer)

    def relax(self, timeout: float) -> None:
        """No deadline from now on; each read waits at most ``timeout`` seconds."""
        self.deadline = None
        self.timeout = timeout
        self.sock.settimeout(timeout)  # writes to the socket use it too


class Discard(io.TextIOBase):
    """pyst2 writes a debug trace of every command to stderr; nobody reads it."""

    def write(self, text: str) -> int:
        return len(text)


class BoundedAgi(AGI):  # type: ignore[misc]  # pyst2 is untyped
    """pyst2's AGI reading a bounded environment: endless header lines end the session instead of filling memory."""

    def _get_agi_env(self) -> None:
        for _ in range(MAX_ENV_LINES):
            line = self.stdin.readline().strip()
            if not line:  # only an empty line ends it (a lone ":" is a bad header, not the end)
                return
            key, _sep, value = line.partition(":")
            if key.strip():
                self.env[key.strip()] = value.strip()
        raise ValueError("AGI environment too long")


def text_reader(source: io.RawIOBase) -> io.TextIOWrapper[io.BufferedReader]:
    """The text stream pyst2 reads from: UTF-8 with bad bytes replaced, lines ended by "\\n" alone, as Asterisk
    ends them. Universal newlines would also end a line at a "\\r" inside a value (a caller's name, say), and
    what follows it would be read as a header of its own, or the blank line that ends the environment."""
    return io.TextIOWrapper(io.BufferedReader(source), encoding="utf-8", errors="replace", newline="\n")


def session(stdin: io.TextIOBase, stdout: io.TextIOBase) -> BoundedAgi:
    """A pyst2 AGI session over two text streams (read the environment now, then one reply per command)."""
    return BoundedAgi(stdin=BoundedLines(stdin), stdout=stdout, stderr=Discard())
