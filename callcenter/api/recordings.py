"""Recordings of a call and their audio, streamed with HTTP Range so a browser player can seek.

File paths come only from the database, are resolved under the store folder and refused otherwise. Every access,
allowed or refused, is written to the ``recording_access`` audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as FastPath
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.calls import MAX_ID, get_session
from callcenter.model.contract import RecordingStatus
from callcenter.store.models import Call, Recording, RecordingAccess
from recordings.spool import inside
from recordings.transcode import media_type

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


def audit(request: Request, action: str, status_code: int, recording_id: int | None = None,
          call_id: int | None = None, detail: str = "") -> None:
    """Write one audit row in its own transaction (kept even when the request then fails)."""
    client = request.client.host if request.client else ""
    with request.app.state.db.session() as session:
        session.add(RecordingAccess(at=datetime.now(UTC), recording_id=recording_id, call_id=call_id, action=action,
                                    allowed=status_code < 400, status_code=status_code, actor="", client=client,
                                    detail=detail[:500]))


def _refuse(request: Request, action: str, code: int, message: str, recording_id: int | None = None,
            call_id: int | None = None) -> HTTPException:
    audit(request, action, code, recording_id, call_id, message)
    return HTTPException(code, detail=message)


@router.get("/calls/{call_id}/recordings", response_model=list[RecordingOut], summary="Recordings of a call")
def list_recordings(call_id: Annotated[int, FastPath(ge=1, le=MAX_ID)], request: Request,
                    session: Annotated[Session, Depends(get_session)]) -> list[RecordingOut]:
    """Every recording of the call (conversation and voice messages), purged ones included."""
    call = session.get(Call, call_id)
    if call is None:
        raise _refuse(request, "list", 404, f"no call with id {call_id}", call_id=call_id)
    rows = session.scalars(select(Recording).where(Recording.node == call.node, Recording.linkedid == call.linkedid)
                           .order_by(Recording.recorded_at, Recording.id)).all()
    audit(request, "list", 200, call_id=call_id, detail=f"{len(rows)} recording(s)")
    return [RecordingOut.model_validate(row).model_copy(update={"audio_url": _audio_url(row)}) for row in rows]


def _audio_url(row: Recording) -> str | None:
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
    path = inside(request.app.state.settings.recordings.store, row.path)
    if path is None:
        raise _refuse(request, action, 404, f"recording {row.id}: path outside the store refused", row.id, row.call_id)
    if not path.is_file():
        raise _refuse(request, action, 404, f"recording {row.id}: file missing (run `callcenter recordings sweep`)",
                      row.id, row.call_id)
    return path


@router.get("/recordings/{recording_id}/audio", summary="Stream a recording (HTTP Range supported)",
            responses={206: {"description": "Partial content"}, 410: {"description": "Purged by retention"},
                       416: {"description": "Range not satisfiable"}})
def audio(recording_id: Annotated[int, FastPath(ge=1, le=MAX_ID)], request: Request,
          session: Annotated[Session, Depends(get_session)],
          download: Annotated[bool, Query(description="send as an attachment with a file name")] = False
          ) -> FileResponse:
    """The compressed audio; ``Range: bytes=...`` gets 206 Partial Content."""
    action = "download" if download else "play"
    row = session.get(Recording, recording_id)
    if row is None:
        raise _refuse(request, action, 404, f"no recording with id {recording_id}", recording_id)
    path = _stored_file(request, row, action)
    requested = request.headers.get("range", "")
    if requested and not _satisfiable(requested, path.stat().st_size):
        audit(request, action, 416, row.id, row.call_id, f"range not satisfiable: {requested[:100]}")
        raise HTTPException(416, detail=f"range {requested[:100]!r} not satisfiable",
                            headers={"Content-Range": f"bytes */{path.stat().st_size}"})
    audit(request, action, 206 if requested else 200, row.id, row.call_id, requested[:100])
    stamp = f"{row.recorded_at:%Y%m%d-%H%M%S}" if row.recorded_at else "unknown"
    name = f"call-{row.call_id or row.linkedid}-{stamp}{path.suffix}"
    return FileResponse(path, media_type=media_type(row.format or "opus"), filename=name,
                        content_disposition_type="attachment" if download else "inline")


def _satisfiable(header: str, size: int) -> bool:
    """Whether any range in a ``bytes=`` header overlaps a file of ``size`` bytes (as Starlette will serve it)."""
    unit, _, ranges = header.partition("=")
    if unit.strip() != "bytes":
        return False
    for part in ranges.split(","):
        first, _, last = part.strip().partition("-")
        try:
            if first.strip() == "":
                return int(last) > 0 and size > 0
            if int(first) < size and (last.strip() == "" or int(last) >= int(first)):
                return True
        except ValueError:
            return False
    return False
