"""A tiny fake Asterisk Manager Interface server for unit tests (asyncio TCP on 127.0.0.1, port 0).

It speaks just enough AMI for the listener: the banner, ``Login`` (right or wrong secret), ``Ping`` (answered
with the ActionID echoed, unless told to stay silent) and ``Logoff``. Tests push arbitrary raw bytes to the
connected client, optionally split at given byte positions; every piece is written, drained and followed by a
short sleep so that it reaches the client in a read of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from callcenter.ami.events import headers_of

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
EOL = b"\r\n"
SEPARATOR = b"\r\n\r\n"


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """One AMI message (``Key: value`` lines and the empty line that ends it), UTF-8."""
    return b"".join(f"{key}: {value}".encode() + EOL for key, value in headers) + EOL


# The header order and names of a real Asterisk 22 CEL event (an answered hotline call, CHAN_START of the citizen).
CEL_HEADERS: tuple[tuple[str, str], ...] = (
    ("Event", "CEL"), ("Privilege", "call,all"), ("Timestamp", "1795952287.189461"), ("EventName", "CHAN_START"),
    ("AccountCode", ""), ("CallerIDnum", "0912345678"), ("CallerIDname", "Nguyễn Thị Quỳnh Mai"),
    ("CallerIDani", ""), ("CallerIDrdnis", ""), ("CallerIDdnid", ""), ("Exten", "1900868647"),
    ("Context", "from-citizens"), ("Channel", "PJSIP/citizen2-00000004"), ("Application", ""), ("AppData", ""),
    ("EventTime", "2026-11-29 11:38:07"), ("AMAFlags", "DOCUMENTATION"), ("UniqueID", "1795952287.4"),
    ("LinkedID", "1795952287.4"), ("Userfield", ""), ("Peer", ""), ("PeerAccount", ""), ("Extra", ""),
)


def cel(drop: Iterable[str] = (), **values: str) -> bytes:
    """A CEL event as Asterisk sends it; ``values`` replace headers (by exact name), ``drop`` removes some."""
    unknown = set(values) - {key for key, _ in CEL_HEADERS}
    assert not unknown, f"not a CEL header: {unknown}"
    return encode((key, values.get(key, value)) for key, value in CEL_HEADERS if key not in set(drop))


def parse(raw: bytes) -> dict[str, str]:
    """The headers of one action the client sent (keys lower-cased)."""
    return headers_of(raw.decode("utf-8", errors="replace"))


@dataclass
class Session:
    """One client connection as the fake server sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    actions: list[dict[str, str]] = field(default_factory=list)
    authenticated: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class FakeAmi:
    """The fake server. ``async with FakeAmi(...) as ami:`` starts it; ``ami.port`` is where it listens."""

    def __init__(self, username: str = "callcenter", secret: str = "right-secret", *,
                 answer_pings: bool = True, close_on_auth_failure: bool = True,
                 answer_logins: bool = True, pause: float = 0.005) -> None:
        self.username = username
        self.secret = secret
        self.answer_pings = answer_pings  # False: pings are read and ignored, the socket stays open
        self.answer_logins = answer_logins  # False: the server hangs up instead of answering Login
        self.close_on_auth_failure = close_on_auth_failure  # Asterisk hangs up after a failed login
        self.pause = pause  # sleep after each pushed piece, so pieces arrive in separate reads
        self.sessions: list[Session] = []
        self.logins: list[tuple[str, str, bool]] = []  # (username, secret, accepted) per Login seen
        self.login_times: list[float] = []  # time.monotonic() of each Login
        self.pings = 0  # pings answered
        self.pings_ignored = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in self.sessions:
            session.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def __aenter__(self) -> FakeAmi:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- what the tests drive ----------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The latest client connection."""
        assert self.sessions, "no client connected to the fake AMI"
        return self.sessions[-1]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        """Wait until ``predicate()`` holds (polled every 5 ms); fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake AMI: condition not met in {timeout} s "
                                     f"(logins={self.logins}, sessions={len(self.sessions)})")
            await asyncio.sleep(0.005)

    async def wait_logins(self, count: int, timeout: float = 3.0) -> None:
        await self.wait_until(lambda: len(self.logins) >= count, timeout)

    async def push(self, data: bytes, splits: Iterable[int] = (), session: Session | None = None) -> None:
        """Send raw bytes to the client, cut at the given byte offsets, each piece in its own write."""
        target = session or self.session
        cuts = sorted({0, len(data), *(cut for cut in splits if 0 < cut < len(data))})
        for start, end in itertools.pairwise(cuts):
            await target.write(data[start:end])
            await asyncio.sleep(self.pause)

    async def push_bytewise(self, data: bytes, session: Session | None = None) -> None:
        """Send raw bytes one byte per write."""
        await self.push(data, range(len(data)), session)

    async def drop(self, session: Session | None = None) -> None:
        """Hang up on the client (server side closes the socket)."""
        target = session or self.session
        target.writer.close()
        with contextlib.suppress(Exception):
            await target.writer.wait_closed()

    # -- the server --------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = Session(reader, writer)
        self.sessions.append(session)
        try:
            await session.write(BANNER)
            while True:
                try:
                    raw = await reader.readuntil(SEPARATOR)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                action = parse(raw)
                session.actions.append(action)
                if not await self._answer(session, action):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            session.closed.set()
            self._tasks.discard(task)

    async def _answer(self, session: Session, action: dict[str, str]) -> bool:
        """Answer one action; return False to hang up."""
        name = action.get("action", "").lower()
        action_id = [("ActionID", action["actionid"])] if "actionid" in action else []
        if name == "login":
            username, secret = action.get("username", ""), action.get("secret", "")
            accepted = username == self.username and secret == self.secret
            self.logins.append((username, secret, accepted))
            self.login_times.append(time.monotonic())
            if not self.answer_logins:
                return False
            if not accepted:
                await session.write(encode([("Response", "Error"), *action_id,
                                            ("Message", "Authentication failed")]))
                return not self.close_on_auth_failure
            session.authenticated = True
            await session.write(encode([("Response", "Success"), *action_id,
                                        ("Message", "Authentication accepted")]))
            await session.write(encode([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "99"),
                                        ("LastReload", "0"), ("Status", "Fully Booted")]))
            return True
        if name == "ping":
            if not self.answer_pings:
                self.pings_ignored += 1
                return True
            self.pings += 1
            await session.write(encode([("Response", "Success"), *action_id, ("Ping", "Pong"),
                                        ("Timestamp", f"{time.time():.6f}")]))
            return True
        if name == "logoff":
            await session.write(encode([("Response", "Goodbye"), *action_id,
                                        ("Message", "Thanks for all the fish.")]))
            return False
        await session.write(encode([("Response", "Error"), *action_id, ("Message", "Invalid/unknown command")]))
        return True
