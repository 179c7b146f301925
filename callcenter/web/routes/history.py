"""The call history page, its CSV export (streamed), and one call's page with its recordings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.calls import may_see_call, public, scoped
from callcenter.model.contract import Role, Status
from callcenter.model.hotline import HotlineModel
from callcenter.store import cases, queries, worklist
from callcenter.store.models import CALL, MAX_ID, Call, Recording
from callcenter.web.auth import EVERYONE, Principal, require
from callcenter.web.pages import render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(require(*EVERYONE, page=True))]
COLUMNS = (("started_at", "Started"), ("caller_number", "Caller"), ("line", "Line"), ("topic", "Topic"),
           ("status", "Status"), ("operator", "Operator"), ("wait_seconds", "Wait"), ("talk_seconds", "Talk"))
CSV_FIELDS = ("id", "started_at", "answered_at", "ended_at", "caller_number", "caller_name", "line", "topic",
              "status", "operator", "operators", "operator_device", "queue", "wait_seconds", "talk_seconds",
              "transfers", "ended_by", "hangup_cause", "after_hours", "callback_number")


@dataclass
class PageFilter:
    """The history form as typed (times in the user's zone), and the query it means."""

    start: str = ""
    end: str = ""
    line: str = ""
    topic: str = ""
    status: str = ""
    operator: str = ""
    number: str = ""


def _local(text: str, zone: ZoneInfo) -> datetime | None:
    """A date-time typed in the user's zone, as UTC; ValueError outside the years 1900-2999 (beyond them the shift
    to UTC, or the default range's 30 days back, would leave the calendar)."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if not 1900 <= moment.year <= 2999:
        raise ValueError("dates between 1900 and 2999")
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _query(request: Request, form: PageFilter, who: Principal) -> queries.CallFilter:
    """The filter for the form (ValueError with what is wrong)."""
    settings, zone = request.app.state.settings.api, ZoneInfo(who.timezone)
    end = _local(form.end, zone) or datetime.now(UTC)
    start = _local(form.start, zone) or end - timedelta(days=30)
    if start >= end:
        raise ValueError("the start must be before the end")
    if end - start > timedelta(days=settings.max_range_days):
        raise ValueError(f"the date range is longer than {settings.max_range_days} days")
    if form.status and form.status not in Status.__members__.values():
        raise ValueError("unknown status")
    if form.number and not form.number.lstrip("+").isdigit():
        raise ValueError("a caller number has digits only")
    found = queries.CallFilter(start=start, end=end, line=form.line or None, topic=form.topic or None,
                               status=form.status or None, operator=form.operator or None,
                               number=form.number or None)
    return scoped(found, who)


def sortable(who: Principal) -> tuple[str, ...]:
    """The columns this user may sort by: not callers' numbers for someone who sees them masked (the order of
    masked numbers tells their hidden digits apart)."""
    return queries.SORTABLE if who.sees_numbers else tuple(c for c in queries.SORTABLE if c != "caller_number")


def _sort(sort: str, who: Principal) -> str:
    """The sort asked for, or the default when this user may not sort by that column."""
    return sort if sort.lstrip("-") in sortable(who) else "-started_at"


def page_filter(start: Annotated[str, Query(alias="from", max_length=40)] = "",
                end: Annotated[str, Query(alias="to", max_length=40)] = "",
                line: Annotated[str, Query(max_length=20)] = "", topic: Annotated[str, Query(max_length=64)] = "",
                status: Annotated[str, Query(max_length=32)] = "",
                operator: Annotated[str, Query(max_length=64)] = "",
                number: Annotated[str, Query(max_length=21)] = "") -> PageFilter:
    """The form's fields from the query string."""
    return PageFilter(start, end, line, topic, status, operator, number)


def _options(model: HotlineModel, who: Principal, language: str) -> dict[str, Any]:
    topics = [(t.code, t.label.get(language)) for t in model.topics]
    operators = [] if who.role is Role.OPERATOR else [(op.id, op.name) for op in model.operators.values()]
    return {"lines": [(n, line.name) for n, line in model.lines.items()], "topics": topics,
            "topic_labels": dict(topics) | {"unknown": "—"}, "statuses": [s.value for s in Status],
            "operators": operators}


@router.get("/calls", response_class=HTMLResponse)
def history(request: Request, who: Person, form: Annotated[PageFilter, Depends(page_filter)],
            page: Annotated[int, Query(ge=1, le=100_000)] = 1,
            sort: Annotated[str, Query(max_length=20)] = "-started_at") -> HTMLResponse:
    """The history: filters, counts by status, a sortable page of calls."""
    settings, model, sort = request.app.state.settings.api, request.app.state.model(), _sort(sort, who)
    size, problem = settings.page_size_default, ""
    rows, total, counts = [], queries.Total(0), {}
    try:
        where = _query(request, form, who)
    except ValueError as exc:
        problem = str(exc)
    else:
        with request.app.state.db.session() as session:
            found, total = queries.list_calls(session, where, page, size, sort)
            rows, counts = [public(call, who) for call in found], queries.count_by_status(session, where)
    if not problem:  # show the range searched, in the user's zone
        form = PageFilter(**{**form.__dict__, "start": form.start or _shown(where.start, who),
                             "end": form.end or _shown(where.end, who)})
    return render(request, "history.html", title="Call history", calls=rows, total=total, page=page,
                  pages=max(1, (total.count + size - 1) // size), more=not total.exact and len(rows) == size,
                  form=form, sort=sort, problem=problem,
                  counts=sorted(counts.items()), columns=COLUMNS, sortable=sortable(who),
                  **_options(model, who, who.language))


def _call_id(session: Session, linkedid: str) -> int | None:
    """The log row of a call by its Asterisk id (None while it is not logged yet)."""
    found: int | None = session.scalar(select(Call.id).where(CALL.linkedid == linkedid).limit(1))
    return found


def _shown(moment: datetime, who: Principal) -> str:
    return moment.astimezone(ZoneInfo(who.timezone)).strftime("%Y-%m-%dT%H:%M")


def _csv_rows(request: Request, where: queries.CallFilter, who: Principal, sort: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    with request.app.state.db.session() as session:
        for count, call in enumerate(queries.iter_calls(session, where, sort), 1):
            row = public(call, who).model_dump()
            writer.writerow([_cell(row.get(field)) for field in CSV_FIELDS])
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


@router.get("/calls.csv")
def export(request: Request, who: Person, form: Annotated[PageFilter, Depends(page_filter)],
           sort: Annotated[str, Query(max_length=20)] = "-started_at") -> StreamingResponse:
    """Every call the filters match, as CSV, streamed (any size at steady memory; numbers masked as on screen)."""
    try:
        where = _query(request, form, who)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(_csv_rows(request, where, who, _sort(sort, who)), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'})


@router.get("/calls/{call_id}", response_class=HTMLResponse)
def call_page(request: Request, who: Person, call_id: int) -> HTMLResponse:
    """One call: parties, times, voice menu, recordings with a player, the event timeline."""
    from callcenter.api.recordings import audio_url

    model = request.app.state.model()
    with request.app.state.db.session() as session:
        call = queries.get_call(session, call_id) if 1 <= call_id <= MAX_ID else None
        if call is None or not may_see_call(who, call):
            return render(request, "error.html", status=404, title="Not found", heading="404",
                          message=f"no call with id {call_id}")
        recordings = session.scalars(select(Recording).where(Recording.node == call.node,
                                                             Recording.linkedid == call.linkedid)
                                     .order_by(Recording.recorded_at, Recording.id)).all()
        events = queries.call_events(session, call) if who.sees_numbers else []
        shown = [{"id": r.id, "kind": r.kind, "status": r.status, "duration_seconds": r.duration_seconds,
                  "audio_url": audio_url(r)} for r in recordings] if who.hears_recordings else []
        timeline = [{"time": datetime.fromtimestamp(e.event_time, UTC), "event": e.event,
                     "channel": e.payload.get("channel", ""), "app": e.payload.get("app", ""),
                     "appdata": e.payload.get("appdata", "")} for e in events]
        out = public(call, who)
        notes = worklist.notes_of(session, call.id)
        attempts = [(a, _call_id(session, a.linkedid)) for a in worklist.attempts_of(session, call.id)
                    ] if who.sees_numbers else []
        linked = [(c.number, c.status) for c in session.scalars(cases.listed(cases.CaseFilter(call_id=call.id)))
                  if who.role is not Role.DEPARTMENT or c.department == who.department]
        returned = worklist.attempt_for(session, call.linkedid)
        original = session.get(Call, returned.call_id) if returned is not None else None
        returning = original.id if original is not None and may_see_call(who, original) else None
    line = model.lines.get(out.line)
    labels = {t.code: t.label.get(who.language) for t in model.topics}
    corrected = next((n.topic for n in reversed(notes) if n.topic), None)
    return render(request, "call.html", title=f"Call {out.caller_number}", call=out, recordings=shown,
                  events=timeline, line_name=line.name if line else "", topic_label=labels.get(out.topic, out.topic),
                  corrected_label=labels.get(corrected, corrected) if corrected else "", notes=notes,
                  attempts=attempts, topics=list(labels.items()), labels=labels,
                  case_topic=corrected or out.topic, case_phone=out.callback_number or out.caller_number,
                  returning=returning, cases=linked, departments=list(model.departments.items()),
                  problem=request.query_params.get("problem", ""),
                  may_note=who.role is not Role.DEPARTMENT)
