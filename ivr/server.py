"""FastAGI server: one forked process per call (pyst2 installs a SIGHUP handler, main thread only).

The dialplan reaches it with ``AGI(agi://127.0.0.1:4573/<flow>?k=v)``. pyst2's ``AGI`` reads the AGI environment
from one text stream and writes commands to another; a client that sends garbage or nothing gets its connection
closed after a timeout, and never affects other calls.
"""

from __future__ import annotations

import io
import logging
import socketserver
from urllib.parse import parse_qsl, urlsplit

from asterisk.agi import AGI

from callcenter.calls.names import IVR_EVENT_PREFIX
from ivr.flows import FLOWS

log = logging.getLogger(__name__)
READ_TIMEOUT = 10.0  # seconds a silent client may hold its process


class AgiChannel:
    """The flows' Channel interface over a pyst2 AGI session."""

    def __init__(self, agi: AGI) -> None:
        self.agi = agi

    def set_variable(self, name: str, value: str) -> None:
        self.agi.set_variable(name, value)

    def user_event(self, name: str, **fields: str) -> None:
        payload = "&".join(f"{key}={value}" for key, value in fields.items())
        self.agi.exec_command("CELGenUserEvent", f"{IVR_EVENT_PREFIX}{name},{payload}")


def route(script: str) -> tuple[str, dict[str, str]]:
    """``hotline?line=02621022`` -> (``hotline``, {``line``: ``02621022``})."""
    parts = urlsplit(script)
    return parts.path.strip("/"), dict(parse_qsl(parts.query))


class AgiHandler(socketserver.StreamRequestHandler):
    """Serve one AGI session."""

    timeout = READ_TIMEOUT

    def handle(self) -> None:
        # pyst2 wants two text streams: read the AGI environment from one, write commands to the other.
        reader = io.TextIOWrapper(self.rfile, encoding="utf-8", errors="replace")  # type: ignore[type-var]
        writer = io.TextIOWrapper(self.wfile, encoding="utf-8", write_through=True)  # type: ignore[type-var]
        try:
            agi = AGI(stdin=reader, stdout=writer, stderr=io.StringIO())
            name, args = route(agi.env.get("agi_network_script", ""))
            flow = FLOWS.get(name)
            if flow is None:
                log.warning("AGI: unknown flow %r from %s; caller passes on", name, self.client_address)
                return
            flow(AgiChannel(agi), args)
        except Exception as exc:
            log.warning("AGI session from %s ended: %r", self.client_address, exc)


class FastAgiServer(socketserver.ForkingTCPServer):
    """The forking FastAGI server."""

    allow_reuse_address = True
    block_on_close = False  # each call's process ends on its own (EOF or READ_TIMEOUT); shutdown need not wait


def serve(host: str, port: int) -> None:
    """Serve FastAGI until interrupted."""
    with FastAgiServer((host, port), AgiHandler) as server:
        log.info("IVR: FastAGI on %s:%d", host, port)
        server.serve_forever()
