"""A hardened panoramisk Manager: login that fails loudly, liveness by ping, callbacks that cannot kill the link.

Each trap of panoramisk 1.4 that this fixes (see DESIGN.md) is handled where it happens:
- a wrong secret: ``open()`` raises ``AmiLoginError`` with Asterisk's message instead of idling unauthenticated;
- a dead link: ``keepalive()`` sends Ping and closes the link when no answer comes in time (panoramisk's own ping
  never checks for an answer);
- exceptions in callbacks: ``dispatch`` catches and logs them per callback (panoramisk lets them escape into the
  protocol, which drops the connection); coroutine callbacks are refused, as they would be fire-and-forget;
- reconnection: panoramisk's own loop (fixed delay, silent) is replaced by the caller's loop with backoff, so
  ``connection_lost`` only signals ``lost``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from callcenter.ami.protocol import TextCallback, Utf8AMIProtocol
from callcenter.model.addresses import Address
from callcenter.settings import AmiSettings

log = logging.getLogger(__name__)
EventCallback = Callable[[Message], None]


class AmiError(RuntimeError):
    """The AMI session could not be opened or was lost."""


class AmiLoginError(AmiError):
    """Asterisk refused the username/secret (or the user lacks permissions)."""


class AmiConnection(Manager):  # type: ignore[misc]
    """One AMI session; the listener opens a new one after every loss."""

    def __init__(self, settings: AmiSettings, address: Address, events: str = "on",
                 username: str | None = None, secret: str | None = None, wanted: frozenset[str] | None = None,
                 direct: Mapping[str, TextCallback] | None = None) -> None:
        """``wanted``: the only events parsed and dispatched (others are dropped unread; None: every event).
        ``direct``: events whose text goes straight to a callback (see :mod:`callcenter.ami.protocol`);
        a callback that raises costs only its event."""
        super().__init__(host=address.host, port=address.port, username=username or settings.username,
                         secret=secret or settings.secret, events=events,
                         protocol_factory=partial(Utf8AMIProtocol, settings.max_message_chars, wanted, direct),
                         ping_delay=10**9, reconnect_timeout=10**9, loop=asyncio.get_running_loop())
        # panoramisk registers its own FullyBooted coroutine (resending queued actions); we queue none.
        self.callbacks.clear()
        self.patterns.clear()
        self.settings = settings
        self.address = address
        self.lost: asyncio.Future[object] = self.loop.create_future()

    def on(self, pattern: str, callback: EventCallback) -> None:
        """Register a plain (non-async) callback for events matching ``pattern``."""
        self.register_event(pattern, lambda _manager, message: callback(message))

    def dispatch(self, event: Message) -> list[str]:
        matches: list[str] = []
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in self.callbacks[pattern]:
                try:
                    result = callback(self, event)
                    if asyncio.iscoroutine(result):
                        result.close()
                        log.error("AMI: coroutine callback for %s refused (would be fire-and-forget)", pattern)
                except Exception:
                    log.exception("AMI: callback for %s failed; event skipped, connection kept", event.event)
        return matches

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if not self.lost.done():
            self.lost.set_result(exc)

    async def open(self, timeout: float = 10.0) -> None:
        """Connect and log in; raise ``AmiError``/``AmiLoginError`` with a clear message on failure."""
        try:
            transport, protocol = await asyncio.wait_for(self.loop.create_connection(
                self.config["protocol_factory"], self.address.host, self.address.port), timeout)
        except (TimeoutError, OSError) as exc:
            raise AmiError(f"cannot reach AMI at {self.address}: {exc}") from exc
        done: asyncio.Future[tuple[Any, Any]] = self.loop.create_future()
        done.set_result((transport, protocol))
        self.connection_made(done)
        login = self.authenticated_future
        # panoramisk never resolves the Login future if the link closes first: wait for either.
        await asyncio.wait({login, self.lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not login.done():
            lost = self.lost.done()
            self.close()
            raise AmiError("AMI closed the connection during login" if lost else "AMI login got no answer")
        response = login.result()
        if not response.success:
            self.close()
            raise AmiLoginError(f"AMI login refused for user {self.config['username']!r}: "
                                f"{response.get('Message', 'no reason given')} (check its secret in the settings)")

    async def keepalive(self) -> None:
        """Ping forever; return (after closing the link) once a ping goes unanswered or the link is lost."""
        while not self.lost.done():
            await asyncio.sleep(self.settings.ping_interval)
            if self.lost.done():
                return
            try:
                await asyncio.wait_for(asyncio.shield(self.send_action({"Action": "Ping"})),
                                       self.settings.ping_timeout)
            except (TimeoutError, Exception) as exc:
                log.error("AMI link dead (ping unanswered in %.1f s: %r); reconnecting",
                          self.settings.ping_timeout, exc)
                self.close()
                self.connection_lost(exc)
                return

    def close(self) -> None:
        super().close()
        if getattr(self, "protocol", None) is not None:
            self.connection_lost(None)
