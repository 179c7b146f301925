"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve: the database answers, and so does
Asterisk's AMI), for load balancers and service managers: no sign-in, and nothing in the answer but which check
failed (the reason goes to the log, where a password in an error message stays private).

AMI: with the live board on, the API's own AMI sessions say whether they are logged in; with it off, a TCP connect to
each node's AMI (``CALLCENTER_NODES``, else the model's ``pbx.ami``; closed at once) says whether Asterisk listens.
Several nodes: ``partial`` while some are up (still ready: calls go on through the others, and history, cases and
Open311 are served), ``down`` only when none is. ``api.ready_needs_ami = false`` reports
AMI without failing on it: a PBX outage then leaves history, cases and Open311 served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from callcenter.model.addresses import Address
from callcenter.store.db import Database

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
DB_TIMEOUT = 2.0  # seconds: a load balancer's probe must not hang on a stuck database
AMI_TIMEOUT = 1.0


@router.get("/healthz", summary="Alive: the process answers (no database needed)")
def healthz() -> dict[str, str]:
    """Alive."""
    return {"status": "alive"}


@router.get("/readyz", summary="Ready: the database answers (and AMI is reachable); 503 names what is down",
            responses={503: {"description": "something this process needs is down"}})
async def readyz(request: Request) -> JSONResponse:
    """Each check is ``ok``, ``partial`` (AMI: some nodes up), ``down`` or ``not checked``; 503 when one that
    counts is down."""
    needs_ami = request.app.state.settings.api.ready_needs_ami
    checks = {"database": await _database(request.app.state.db), "ami": await _ami(request)}
    down = [name for name, state in checks.items() if state == "down" and (name != "ami" or needs_ami)]
    body = {"status": "not ready" if down else "ready", "checks": checks, "down": down}
    return JSONResponse(body, status_code=503 if down else 200)


def _select_one(db: Database) -> None:
    with db.session() as session:
        session.execute(text("SELECT 1"))


async def _database(db: Database) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, db), DB_TIMEOUT)
    except Exception as exc:  # any failure means not ready; the reason goes to the log
        log.warning("readyz: the database does not answer: %r", exc)
        return "down"
    return "ok"


async def _ami(request: Request) -> str:
    feed = getattr(request.app.state, "live", None)
    if feed is not None:
        answers = [board.connected for board in feed.boards]
    else:
        nodes = request.app.state.settings.listener_nodes(request.app.state.model().pbx.ami)
        answers = list(await asyncio.gather(*(_listens(node.ami) for node in nodes)))
    return "ok" if all(answers) else "partial" if any(answers) else "down"


async def _listens(address: Address) -> bool:
    host, port = address
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), AMI_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        log.warning("readyz: Asterisk's AMI at %s:%d does not answer: %r", host, port, exc)
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
