"""The API process's own metrics: request latency by route template, and ``GET /metrics``.

Who may read them: a client on the loopback interface that came straight to the app (no proxy's forwarding
header: behind a reverse proxy on the same host every client would otherwise look local), or a signed-in
supervisor or admin (an API token, for a Prometheus elsewhere). Metrics reveal call volumes and who is busy, so
nobody else; the production guide also blocks ``/metrics`` at the proxy.
"""

from __future__ import annotations

import ipaddress
import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.ops.metrics import API, HTTP_LATENCY
from callcenter.web.auth import STAFF, principal

router = APIRouter(include_in_schema=False)
FORWARDING = ("forwarded", "x-forwarded-for", "x-real-ip")


class RequestMetrics:
    """Times every request routed by the app (installed innermost, where the router's matched route is still in
    the scope): labels are the method, the route's path template (``/api/calls/{call_id}``, never the raw path, so
    the series stay few; ``unmatched`` for a 404 no route took) and the status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_LATENCY.labels(scope["method"], route, f"{status // 100}xx").observe(time.perf_counter() - started)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allow_scrape(request: Request) -> None:
    """Let this request read the metrics (see the module docstring), or raise 401/403."""
    direct = not any(name in request.headers for name in FORWARDING)
    if direct and request.client is not None and _loopback(request.client.host):
        return
    who = principal(request)
    if who is None:
        raise HTTPException(401, detail="metrics: from the loopback interface, or with a supervisor's or an "
                            "admin's API token", headers={"WWW-Authenticate": "Bearer"})
    if who.role not in STAFF:
        raise HTTPException(403, detail=f"a {who.role.value} may not read the metrics")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The API process's metrics in Prometheus's text format."""
    allow_scrape(request)
    return Response(generate_latest(API), media_type=CONTENT_TYPE_LATEST)
