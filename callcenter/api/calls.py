"""/api/calls: the call history (paginated, bounded, filtered) and one call with its timeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session

from callcenter.api.schemas import CallDetail, CallOut, CallPage, EventOut
from callcenter.model.contract import Status
from callcenter.settings import ApiSettings
from callcenter.store import queries

router = APIRouter(prefix="/api/calls", tags=["calls"])
MAX_ID = 2**63 - 1  # ids are BIGINT: anything larger is a client error, not a server one


def get_session(request: Request) -> Iterator[Session]:
    """One database session per request."""
    with request.app.state.db.session() as session:
        yield session


def get_api_settings(request: Request) -> ApiSettings:
    """The API section of the settings the app was built with."""
    settings: ApiSettings = request.app.state.settings.api
    return settings


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def call_filter(
    settings: Annotated[ApiSettings, Depends(get_api_settings)],
    start: Annotated[datetime | None, Query(alias="from", description="ISO 8601; default: `to` minus 30 days")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO 8601, exclusive; default: now")] = None,
    line: Annotated[str | None, Query(pattern=r"^\d{3,15}$", description="hotline number dialled")] = None,
    status: Annotated[Status | None, Query()] = None,
    operator: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = None,
    number: Annotated[str | None, Query(pattern=r"^\+?\d{1,20}$", description="caller number prefix")] = None,
    topic: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$", description="IVR topic code")] = None,
) -> queries.CallFilter:
    """Validate and bound the filters: times are UTC unless they carry an offset; the range is capped."""
    end_at = _aware(end) if end else datetime.now(UTC)
    try:
        start_at = _aware(start) if start else end_at - timedelta(days=30)
    except OverflowError as exc:
        raise HTTPException(422, detail="`to` is too early for a default `from`; give both") from exc
    if start_at >= end_at:
        raise HTTPException(422, detail="`from` must be before `to`")
    if end_at - start_at > timedelta(days=settings.max_range_days):
        raise HTTPException(422, detail=f"date range longer than {settings.max_range_days} days")
    return queries.CallFilter(start=start_at, end=end_at, line=line, status=status.value if status else None,
                              operator=operator, number=number, topic=topic)


@router.get("", response_model=CallPage, summary="Search the call history")
def list_calls(
    where: Annotated[queries.CallFilter, Depends(call_filter)],
    session: Annotated[Session, Depends(get_session)],
    settings: Annotated[ApiSettings, Depends(get_api_settings)],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, description="capped by the server's page_size_max")] = None,
) -> CallPage:
    """Calls that started in [from, to), newest first."""
    size = min(page_size or settings.page_size_default, settings.page_size_max)
    rows, total = queries.list_calls(session, where, page, size)
    return CallPage(items=[CallOut.model_validate(row) for row in rows], page=page, page_size=size, total=total,
                    pages=(total + size - 1) // size)


@router.get("/{call_id}", response_model=CallDetail, summary="One call with its event timeline")
def get_call(call_id: Annotated[int, Path(ge=1, le=MAX_ID)],
             session: Annotated[Session, Depends(get_session)]) -> CallDetail:
    """The call and every CEL event of it, in time order."""
    call = queries.get_call(session, call_id)
    if call is None:
        raise HTTPException(404, detail=f"no call with id {call_id}")
    events = [EventOut(time=datetime.fromtimestamp(row.event_time, UTC), event=row.event,
                       channel=row.payload.get("channel", ""), uniqueid=row.uniqueid,
                       app=row.payload.get("app", ""), appdata=row.payload.get("appdata", ""),
                       extra=row.payload.get("extra", {}), source=row.source)
              for row in queries.call_events(session, call)]
    return CallDetail(**CallOut.model_validate(call).model_dump(), events=events)
