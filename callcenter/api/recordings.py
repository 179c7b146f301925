"""Recordings of a call and their audio, streamed with HTTP Range so a browser player can seek.

File paths come only from the database, are resolved under the store folder and refused otherwise. Every access,
allowed or refused, is written to the ``recording_access`` audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from callcenter.api.calls import get_session, may_see_call
from callcenter.api.schemas import ErrorOut
from callcenter.model.contract import RecordingStatus
from callcenter.store.models import MAX_ID, Call, Recording
from callcenter.web.audit import audit
from callcenter.web.auth import Principal, principal
from recordings.spool import inside
from recordings.transcode import FORMATS, media_type

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["recordings"])


class RecordingOut(BaseModel):
    """A recording's metadata; ``audio_url`` streams it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    format: str | None
    duration_seconds: float | None
    size_bytes: int | None
    sha256: str | None
    recorded_at: datetime | None
    deleted_at: datetime | None
    error: str | None
    audio_url: str | None = None


def _refuse(request: Request, action: str, code: int, message: str, recording_id: int | None = None,
            call_id: int | None = None) -> HTTPException:
    audit(request, action, code, recording_id, call_id, message)
    return HTTPException(code, detail=message, headers={"WWW-Authenticate": "Bearer"} if code == 401 else None)


def _admitted(request: Request, action: str, call: Call | None, recording_id: int | None = None,
              unattached: bool = False) -> Principal:
    """The signed-in user if they may hear this call's recordings; refused (and audited) otherwise. ``unattached``:
    a recording whose call is not built yet (stored before it, or its call never built): whose it is cannot be
    told, so only those who see every call may hear it."""
    who = principal(request)
    call_id = call.id if call is not None else None
    if who is None:
        raise _refuse(request, action, 401, "sign in, or send an API token", recording_id, call_id)
    if not who.hears_recordings:
        raise _refuse(request, action, 403, f"a {who.role.value} may not hear recordings", recording_id, call_id)
    if call is not None and not may_see_call(who, call):
        raise _refuse(request, action, 403, "an operator may hear only the calls they took", recording_id, call_id)
    if unattached and not who.sees_everything:
        raise _refuse(request, action, 403, "this recording's call is not in the call log yet: only a supervisor "
                      "may hear it", recording_id)
    return who


def _call_of(session: Session, row: Recording | None) -> Call | None:
    """The call a recording belongs to: the one it is attached to, else the one built meanwhile for its node and
    linkedid (attached when the call is next written)."""
    if row is None:
        return None
    if row.call_id is not None:
        return session.get(Call, row.call_id)
    return session.scalar(select(Call).where(Call.node == row.node, Call.linkedid == row.linkedid))


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text} for code, text in (
        (401, "Not signed in"), (403, "Not allowed for this role or this call"), (404, "No such recording"),
        (409, "Not ready, or damaged"), (410, "Purged by retention"))}


@router.get("/calls/{call_id}/recordings", response_model=list[RecordingOut], summary="Recordings of a call",
            responses={**{code: ERRORS[code] for code in (401, 403, 404)}})
def list_recordings(call_id: Annotated[int, FastPath(ge=1, le=MAX_ID)], request: Request,
                    session: Annotated[Session, Depends(get_session)]) -> list[RecordingOut]:
    """Every recording of the call (conversation and voice messages), purged ones included."""
    call = session.get(Call, call_id)
    _admitted(request, "list", call)
    if call is None:
        raise _refuse(request, "list", 404, f"no call with id {call_id}", call_id=call_id)
    rows = session.scalars(select(Recording).where(Recording.node == call.node, Recording.linkedid == call.linkedid)
                           .order_by(Recording.recorded_at, Recording.id)).all()
    audit(request, "list", 200, call_id=call_id, detail=f"{len(rows)} recording(s)")
    return [RecordingOut.model_validate(row).model_copy(update={"audio_url": audio_url(row)}) for row in rows]


def audio_url(row: Recording) -> str | None:
    return f"/api/recordings/{row.id}/audio" if row.status == RecordingStatus.STORED else None


def _stored_file(request: Request, row: Recording, action: str) -> Path:
    """The row's file, checked to be a stored file inside the store folder."""
    if row.status == RecordingStatus.PURGED:
        raise _refuse(request, action, 410, f"recording {row.id} was deleted by retention on {row.deleted_at:%Y-%m-%d}"
                      if row.deleted_at else f"recording {row.id} was deleted", row.id, row.call_id)
    if row.status == RecordingStatus.EMPTY:
        raise _refuse(request, action, 404, f"recording {row.id} has no audio (MixMonitor recorded nothing)",
                      row.id, row.call_id)
    if row.status != RecordingStatus.STORED or not row.path:
        raise _refuse(request, action, 409, f"recording {row.id} is not ready ({row.status})", row.id, row.call_id)
    if row.format not in FORMATS:
        log.error("recording %s: unknown format %r in the database", row.id, row.format)
        raise _refuse(request, action, 409, f"recording {row.id}: unknown format", row.id, row.call_id)
    try:
        path = inside(request.app.state.settings.recordings.store, row.path)
    except (ValueError, OSError) as exc:  # a NUL byte, an unusable path: a damaged row, not a server error
        log.error("recording %s: unusable path in the database: %r (%s)", row.id, row.path, exc)
        path = None
    if path is None:
        raise _refuse(request, action, 404, f"recording {row.id}: path outside the store refused", row.id, row.call_id)
    if not path.is_file():
        raise _refuse(request, action, 404, f"recording {row.id}: file missing (run `callcenter recordings sweep`)",
                      row.id, row.call_id)
    return path


class AuditedFileResponse(FileResponse):
    """A file response whose audit row records the status actually sent (200, 206, 416, 304, ...)."""

    def __init__(self, *args: Any, audit_with: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._audit_with = audit_with

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent: dict[str, int] = {}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = int(message["status"])
            await send(message)

        try:
            await super().__call__(scope, receive, capture)
        finally:
            await run_in_threadpool(self._audit_with, sent.get("status", 500))


AUDIO_PATH = "/recordings/{recording_id}/audio"


@router.get(AUDIO_PATH, summary="Stream a recording (HTTP Range supported)", response_class=FileResponse,
                  responses={200: {"content": {"audio/ogg": {}, "audio/mpeg": {}}, "description": "The audio"},
                             206: {"content": {"audio/ogg": {}, "audio/mpeg": {}}, "description": "Partial content"},
                             416: {"model": ErrorOut, "description": "Range not satisfiable"}, **ERRORS})
def audio(recording_id: Annotated[int, FastPath(ge=1, le=MAX_ID)], request: Request,
          session: Annotated[Session, Depends(get_session)],
          download: Annotated[bool, Query(description="send as an attachment with a file name")] = False
          ) -> Response:
    """The compressed audio; ``Range: bytes=...`` gets 206 Partial Content. Every request is audited with the
    status actually served."""
    action = "download" if download else "play"
    row = session.get(Recording, recording_id)
    call = _call_of(session, row)
    _admitted(request, action, call, recording_id, unattached=row is not None and call is None)
    if row is None:
        raise _refuse(request, action, 404, f"no recording with id {recording_id}", recording_id)
    path = _stored_file(request, row, action)
    stamp = f"{row.recorded_at:%Y%m%d-%H%M%S}" if row.recorded_at else "unknown"
    name = f"call-{row.call_id or row.linkedid}-{stamp}{path.suffix}"
    ids, requested = (row.id, row.call_id), request.headers.get("range", "")[:100]
    return AuditedFileResponse(path, media_type=media_type(row.format or "opus"), filename=name,
                               content_disposition_type="attachment" if download else "inline",
                               audit_with=lambda status: audit(request, action, status, *ids, requested))


# HEAD answers like GET without the body (players probe with it); the schema documents GET only.
router.add_api_route(AUDIO_PATH, audio, methods=["HEAD"], include_in_schema=False)
