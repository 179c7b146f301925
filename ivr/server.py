"""FastAGI server: one forked process per call (pyst2 installs a SIGHUP handler, main thread only).

The dialplan reaches it with ``AGI(agi://127.0.0.1:4573/<flow>?line=<number>)``. pyst2's ``AGI`` reads the AGI
environment from one text stream and writes commands to another. A client that sends garbage, too much or
nothing gets its connection closed (bounded lines, a bounded environment, a deadline for all of it) and never
affects other calls; a flow that fails ends its session, and the dialplan sends the caller on to the queue.
Processes are capped, with a share kept for calls (see :mod:`ivr.admission`): when the IVR is full, a new
connection is closed at once and the caller goes to the queue rather than waiting in silence.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import socketserver
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from callcenter.model.addresses import Address
from callcenter.model.hotline import HotlineModel
from callcenter.ops.metrics import IVR, IVR_ADMITTED, IVR_EVICTED, IVR_REFUSED, IVR_SESSIONS
from callcenter.ops.metrics import serve as serve_metrics
from ivr.adapter import AgiChannel
from ivr.admission import Admission, Limits
from ivr.agi import BoundedAgi, DeadlineReader, session, text_reader
from ivr.cases import CaseLookup, NoCases
from ivr.flows import FLOWS, run
from ivr.steps import Call, Services

log = logging.getLogger(__name__)
REPLY_MARGIN = 60.0  # beyond the longest command (a voice message), seconds to wait for Asterisk's reply


def route(script: str) -> tuple[str, dict[str, str]]:
    """``hotline?line=02621022`` -> (``hotline``, {``line``: ``02621022``}); ("", {}) for what is no URL."""
    try:
        parts = urlsplit(script)
    except ValueError:  # e.g. "//[": an unclosed IPv6 host
        return "", {}
    return parts.path.strip("/"), dict(parse_qsl(parts.query))


def utc_now() -> datetime:
    """The clock the server uses unless a test gives it another."""
    return datetime.now(UTC)


class AgiHandler(socketserver.StreamRequestHandler):
    """Serve one AGI session."""

    server: FastAgiServer
    connection: socket.socket

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # not used: reads go through the deadline below (see handle)
        # The whole environment must arrive by the deadline, however slowly it trickles (see DeadlineReader).
        deadline = time.monotonic() + self.server.limits.env_deadline
        self.source = DeadlineReader(self.connection, self.server.limits.env_deadline, deadline)

    def handle(self) -> None:
        # pyst2 wants two text streams: read the AGI environment from one, write commands to the other.
        reader = text_reader(self.source)
        writer = io.TextIOWrapper(self.wfile, encoding="utf-8", errors="replace",  # type: ignore[type-var]
                                  write_through=True)
        try:
            agi = session(reader, writer)
            self.source.relax(self.server.reply_timeout)
            self.server.admission.greeted()
            self._serve(agi)
        except Exception as exc:
            log.warning("AGI session from %s ended: %r", self.client_address, exc)

    def _serve(self, agi: BoundedAgi) -> None:
        name, args = route(agi.env.get("agi_network_script", ""))
        flow = FLOWS.get(name)
        if flow is None:
            log.warning("AGI: unknown flow %r from %s; caller passes on", name, self.client_address)
            return
        services = self.server.services()
        call = Call(line=args.get("line", ""), now=self.server.clock(), caller=agi.env.get("agi_callerid", ""))
        outcome = run(flow, AgiChannel(agi, services.model.ivr.prompts), call, services)
        log.info("IVR %s: line %s, %s", agi.env.get("agi_uniqueid", "?"), call.line, outcome)


class FastAgiServer(socketserver.ForkingTCPServer):
    """The forking FastAGI server; each call's process gets the services and the clock."""

    allow_reuse_address = True
    # socketserver listens with a backlog of 5: a burst of calls beyond that while the server forks would have
    # their connections dropped and retried by the kernel a second later, a second of silence for the caller.
    request_queue_size = socket.SOMAXCONN
    # ForkingMixIn blocks the accepting process in waitpid() once max_children run: callers then wait in silence.
    # Admission keeps the count below Limits.max_sessions instead, so this bound is never reached.
    max_children = 1 << 30
    block_on_close = False  # each call's process ends on its own (EOF or a timeout); shutdown need not wait

    def __init__(self, address: tuple[str, int], services: Services | Callable[[], Services],
                 clock: Callable[[], datetime] = utc_now, limits: Limits | None = None,
                 private: Sequence[socket.socket] = ()) -> None:
        """``private``: the parent's other listening sockets (the metrics port), closed in each call's process."""
        # Fixed services, or a provider that follows the model file (a line or topic changed while running).
        self.services: Callable[[], Services] = services if callable(services) else (lambda: services)
        self.clock = clock
        self.reply_timeout = self.services().model.ivr.message.max_seconds + REPLY_MARGIN
        self.limits = limits or Limits()
        self.admission = Admission(self.limits)
        self.private = private
        super().__init__(address, AgiHandler)
        # Counted in this (the parent) process only: a call's process never touches a metric.
        IVR_SESSIONS.set_function(lambda: self.sessions)

    def verify_request(self, request: socket.socket | tuple[bytes, socket.socket],  # type: ignore[override]
                       client_address: object) -> bool:
        """Admit the connection, ending the oldest greeter if need be; False (closed at once) when full."""
        self._reap()
        if self.admission.full(self.sessions):
            log.warning("IVR full (%d calls): closed %s at once; Asterisk sends the caller to the queue",
                        self.sessions, client_address)
            IVR_REFUSED.inc()
            return False
        victim = self.admission.make_room(self.sessions)
        if victim is not None:
            self._end_greeter(victim)
        return True

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket],  # type: ignore[override]
                        client_address: object) -> None:
        before = set(self.active_children or ())
        super().process_request(request, client_address)  # only the parent returns
        for pid in set(self.active_children or ()) - before:
            self.admission.started(pid, client_address)
            IVR_ADMITTED.inc()

    def finish_request(self, request: socket.socket | tuple[bytes, socket.socket],  # type: ignore[override]
                       client_address: object) -> None:
        # In the call's process: let go of the listening socket, which a restarted IVR must be able to bind (and
        # on which connections would otherwise queue, never accepted, once this server has stopped).
        self.socket.close()
        for other in self.private:  # likewise the metrics port, which a restarted IVR binds again
            other.close()
        super().finish_request(request, client_address)

    @property
    def sessions(self) -> int:
        """Processes running (calls and greeters)."""
        return len(self.active_children or ())

    def service_actions(self) -> None:
        self._reap()

    def _reap(self) -> None:
        self.admission.update()  # before reaping: a pid that exits is never confused with its reuse
        self.collect_children()
        self.admission.forget_all_but(set(self.active_children or ()))

    def _end_greeter(self, pid: int) -> None:
        greeter = self.admission.greeting.pop(pid)
        log.warning("IVR: ended the session from %s, still sending its AGI environment after %.1f s, to make room",
                    greeter.client, time.monotonic() - greeter.since)
        IVR_EVICTED.inc()
        os.kill(pid, signal.SIGKILL)  # our own child, still reading its environment: nothing to lose
        os.waitpid(pid, 0)  # at once: SIGKILL cannot be caught
        if self.active_children is not None:
            self.active_children.discard(pid)

    def server_close(self) -> None:
        super().server_close()
        self.admission.close()


def serve(model: Callable[[], HotlineModel], address: Address | None = None, cases: CaseLookup | None = None,
          metrics: tuple[str, int] = ("", 0)) -> None:
    """Serve FastAGI on the model's IVR address (or ``address``) until interrupted; each call uses the model as
    it is when the call arrives, and ``cases`` for case lookups (none found without it). ``metrics``: where to
    serve the IVR's metrics (port 0: nowhere)."""
    host, port = address or model().ivr.address
    lookup = cases or NoCases()
    exporter = serve_metrics(IVR, *metrics)
    private = [exporter.socket] if exporter is not None else []
    with FastAgiServer((host, port), lambda: Services(model=model(), cases=lookup), private=private) as server:
        log.info("IVR: FastAGI on %s:%d, %d lines", host, port, len(model().lines))
        server.serve_forever()
