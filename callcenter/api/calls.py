"""/api/calls: the call history (paginated, bounded, filtered, scoped to the caller's role) and one call with its
timeline. Operators see the calls they took; departments see callers' numbers masked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session, object_session

from callcenter.api.schemas import CallDetail, CallOut, CallPage, ErrorOut, EventOut
from callcenter.model.contract import Role, Status
from callcenter.settings import NODE_NAME, ApiSettings
from callcenter.store import queries, worklist
from callcenter.store.models import MAX_ID, Call
from callcenter.web.auth import Anyone, Principal
from callcenter.web.privacy import mask_number, mask_step

router = APIRouter(prefix="/api/calls", tags=["calls"])
# ISO 8601 dates and date-times as the schema documents them: years 1900-2999 (a call log has no others, and
# the bounds keep every shift between time zones inside the calendar), months and days within their ranges.
# What a pattern cannot say (29 February of a common year) parse_moment refuses as "not a calendar date".
DAY = (r"(19|2[0-9])[0-9][0-9]-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
       r"|02-(0[1-9]|1[0-9]|2[0-9]))")
CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]"
MOMENT = rf"^{DAY}([T ]{CLOCK}(:[0-5][0-9](\.[0-9]{{1,6}})?)?(Z|[+-]{CLOCK}|[+-][01][0-9][0-5][0-9])?)?$"
NOT_A_DATE = "not a calendar date"
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut, "description": "Not signed in"},
                                           403: {"model": ErrorOut, "description": "Not allowed for this role"}}


def get_session(request: Request) -> Iterator[Session]:
    """One database session per request."""
    with request.app.state.db.session() as session:
        yield session


def get_api_settings(request: Request) -> ApiSettings:
    """The API section of the settings the app was built with."""
    settings: ApiSettings = request.app.state.settings.api
    return settings


def invalid(field: str, value: object, message: str, where: str = "query") -> RequestValidationError:
    """A 422 in FastAPI's documented validation shape (the same as for any other bad parameter), for a query
    parameter or (``where="body"``) a field of the JSON body."""
    return RequestValidationError([{"type": "value_error", "loc": (where, field), "msg": message,
                                    "input": value}])


def parse_moment(field: str, text: str | None) -> datetime | None:
    """An ISO 8601 date or date-time (UTC unless it carries an offset), as an aware UTC datetime; 422 otherwise
    (numbers such as ``0.5`` are not dates; dates that leave the calendar when moved to UTC are refused)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid(field, text, f"{NOT_A_DATE}: expected an ISO 8601 date-time, e.g. 2026-11-30T08:00:00+07:00"
                      ) from None


def call_filter(
    settings: Annotated[ApiSettings, Depends(get_api_settings)],
    start: Annotated[str | None, Query(alias="from", pattern=MOMENT, json_schema_extra={"format": "date-time"},
                                       description="ISO 8601; default: `to` minus 30 days")] = None,
    end: Annotated[str | None, Query(alias="to", pattern=MOMENT, json_schema_extra={"format": "date-time"},
                                     description="ISO 8601, exclusive; default: now")] = None,
    line: Annotated[str | None, Query(pattern=r"^\d{3,15}$", description="hotline number dialled")] = None,
    status: Annotated[Status | None, Query()] = None,
    operator: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = None,
    number: Annotated[str | None, Query(pattern=r"^\+?\d{1,20}$", description="caller number prefix")] = None,
    topic: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$", description="IVR topic code")] = None,
    node: Annotated[str | None, Query(pattern=NODE_NAME, description="the Asterisk node that took the call")] = None,
) -> queries.CallFilter:
    """Validate and bound the filters: times are UTC unless they carry an offset; the range is capped."""
    end_at = parse_moment("to", end) or datetime.now(UTC)
    start_at = parse_moment("from", start) or end_at - timedelta(days=30)
    if start_at >= end_at:
        raise invalid("from", start, "`from` must be before `to`")
    if end_at - start_at > timedelta(days=settings.max_range_days):
        raise invalid("from", start, f"the date range is longer than {settings.max_range_days} days")
    return queries.CallFilter(start=start_at, end=end_at, line=line, status=status.value if status else None,
                              operator=operator, number=number, topic=topic, node=node)


class HiddenFilter(ValueError):
    """A filter on something the user sees masked (a department searching by caller number)."""


NUMBER_HIDDEN = "callers' numbers are masked for a department: it may not search by them"


def scoped(where: queries.CallFilter, who: Principal) -> queries.CallFilter:
    """The filter narrowed to what the user may see: an operator only the calls they took part in. A search by
    caller number from someone who sees numbers masked is refused (HiddenFilter): a prefix answered call by call
    would give the hidden digits away one at a time."""
    if where.number and not who.sees_numbers:
        raise HiddenFilter(NUMBER_HIDDEN)
    if who.role is Role.OPERATOR:
        return queries.CallFilter(**{**where.__dict__, "participant": who.operator or "\x00none"})
    return where


def may_see_call(who: Principal, call: Call) -> bool:
    """Whether the user may see this call (and, where their role hears recordings, hear it): an operator the calls
    they took part in, and the worklist items they hold or called back (to hear a voice message first)."""
    if who.role is not Role.OPERATOR:
        return True
    if not who.operator:
        return False
    if call.operator == who.operator or who.operator in (call.operators or []):
        return True
    session = object_session(call)
    return session is not None and worklist.worked_on(session, call.id, who.name)


def public(call: Call, who: Principal) -> CallOut:
    """The call as this user may see it: for departments, numbers masked (in the voice menu's steps too) and the
    caller's name left out (a department learns who the citizen is only from a case whose citizen agreed to give
    their contact)."""
    out = CallOut.model_validate(call)
    if not who.sees_numbers:
        out = out.model_copy(update={"caller_number": mask_number(out.caller_number), "caller_name": "",
                                     "callback_number": mask_number(out.callback_number),
                                     "ivr_path": [mask_step(step) for step in out.ivr_path]})
    return out


@router.get("", response_model=CallPage, summary="Search the call history", responses=ERRORS)
def list_calls(
    who: Anyone,
    where: Annotated[queries.CallFilter, Depends(call_filter)],
    session: Annotated[Session, Depends(get_session)],
    settings: Annotated[ApiSettings, Depends(get_api_settings)],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=100_000, description="capped by the server's page_size_max")]
    = None,
) -> CallPage:
    """Calls that started in [from, to), newest first (an operator's own calls only). `total` is exact up to
    10,000 calls; beyond, it is 10,000 with `total_exact` false (pages after `pages` exist while pages are full)."""
    size = min(page_size or settings.page_size_default, settings.page_size_max)
    try:
        mine = scoped(where, who)
    except HiddenFilter as exc:
        raise invalid("number", where.number, str(exc)) from None
    rows, total = queries.list_calls(session, mine, page, size)
    return CallPage(items=[public(row, who) for row in rows], page=page, page_size=size, total=total.count,
                    total_exact=total.exact, pages=(total.count + size - 1) // size)


@router.get("/{call_id}", response_model=CallDetail, summary="One call with its event timeline",
            responses={**ERRORS, 404: {"model": ErrorOut, "description": "No such call (or not yours)"}})
def get_call(who: Anyone, call_id: Annotated[int, Path(ge=1, le=MAX_ID)],
             session: Annotated[Session, Depends(get_session)]) -> CallDetail:
    """The call and every CEL event of it, in time order."""
    call = queries.get_call(session, call_id)
    if call is None or not may_see_call(who, call):
        raise HTTPException(404, detail=f"no call with id {call_id}")
    events = [EventOut(time=datetime.fromtimestamp(row.event_time, UTC), event=row.event,
                       channel=row.payload.get("channel", ""), uniqueid=row.uniqueid,
                       app=row.payload.get("app", ""), appdata=row.payload.get("appdata", ""),
                       extra=row.payload.get("extra", {}), source=row.source)
              for row in queries.call_events(session, call)]
    if not who.sees_numbers:  # the timeline carries caller ids too
        events = []
    return CallDetail(**public(call, who).model_dump(), events=events)
