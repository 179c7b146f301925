"""FastAGI server: one forked process per call (pyst2 installs a SIGHUP handler, main thread only).

The dialplan reaches it with ``AGI(agi://127.0.0.1:4573/<flow>?line=<number>)``. pyst2's ``AGI`` reads the AGI
environment from one text stream and writes commands to another. A client that sends garbage, too much or
nothing gets its connection closed (bounded lines, a bounded environment, read timeouts) and never affects
other calls; a flow that fails ends its session, and the dialplan sends the caller on to the queue.
"""

from __future__ import annotations

import io
import logging
import socketserver
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from callcenter.model.addresses import Address
from callcenter.model.hotline import HotlineModel
from ivr.adapter import AgiChannel
from ivr.agi import BoundedAgi, session
from ivr.flows import FLOWS, run
from ivr.steps import Call, Services

log = logging.getLogger(__name__)
READ_TIMEOUT = 10.0  # seconds a client may take to send the AGI environment
REPLY_MARGIN = 60.0  # beyond the longest command (a voice message), seconds to wait for Asterisk's reply


def route(script: str) -> tuple[str, dict[str, str]]:
    """``hotline?line=02621022`` -> (``hotline``, {``line``: ``02621022``})."""
    parts = urlsplit(script)
    return parts.path.strip("/"), dict(parse_qsl(parts.query))


def utc_now() -> datetime:
    """The clock the server uses unless a test gives it another."""
    return datetime.now(UTC)


class AgiHandler(socketserver.StreamRequestHandler):
    """Serve one AGI session."""

    timeout = READ_TIMEOUT
    server: FastAgiServer

    def handle(self) -> None:
        # pyst2 wants two text streams: read the AGI environment from one, write commands to the other.
        reader = io.TextIOWrapper(self.rfile, encoding="utf-8", errors="replace")  # type: ignore[type-var]
        writer = io.TextIOWrapper(self.wfile, encoding="utf-8", errors="replace",  # type: ignore[type-var]
                                  write_through=True)
        try:
            agi = session(reader, writer)
            self.connection.settimeout(self.server.reply_timeout)
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
    max_children = 400  # one process per call in the IVR; the default 40 would stall caller 41 in silence
    block_on_close = False  # each call's process ends on its own (EOF or a timeout); shutdown need not wait

    def __init__(self, address: tuple[str, int], services: Services | Callable[[], Services],
                 clock: Callable[[], datetime] = utc_now) -> None:
        # Fixed services, or a provider that follows the model file (a line or topic changed while running).
        self.services: Callable[[], Services] = services if callable(services) else (lambda: services)
        self.clock = clock
        self.reply_timeout = self.services().model.ivr.message.max_seconds + REPLY_MARGIN
        super().__init__(address, AgiHandler)


def serve(model: Callable[[], HotlineModel], address: Address | None = None) -> None:
    """Serve FastAGI on the model's IVR address (or ``address``) until interrupted; each call uses the model as
    it is when the call arrives."""
    host, port = address or model().ivr.address
    with FastAgiServer((host, port), lambda: Services(model=model())) as server:
        log.info("IVR: FastAGI on %s:%d, %d lines", host, port, len(model().lines))
        server.serve_forever()
