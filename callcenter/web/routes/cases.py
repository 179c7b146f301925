"""Cases: the hotline opens one from a call (the desk or the call's page) and forwards it; the department it was
forwarded to starts it, posts progress, reports the result or sends it back; supervisors follow every case, the
overdue ones first, and reassign, close or reopen. Departments see only their own cases, and a citizen's contact
only where the citizen agreed to give it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from callcenter.api.calls import may_see_call
from callcenter.model.cases import CaseStatus, next_statuses
from callcenter.model.contract import Role
from callcenter.model.text import is_digits
from callcenter.store import attachments as files_store
from callcenter.store import cases as store
from callcenter.store import outbox
from callcenter.store.models import CALL, MAX_ID, Call, Case, CaseAttachment
from callcenter.store.queries import count_rows
from callcenter.web.auth import EVERYONE, Principal, require
from callcenter.web.pages import back_to, json_block, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(require(*EVERYONE, page=True))]
Hotline = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, page=True))]
Staff = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.ADMIN, page=True))]
PAGE_SIZE = 50
Files = Annotated[list[UploadFile], File()]
NO_FILES: list[UploadFile] = []


def actor(who: Principal) -> store.Actor:
    return store.Actor(who.name, who.role, who.department)


def _scope(where: store.CaseFilter, who: Principal) -> store.CaseFilter:
    """A department user sees their own department's cases only."""
    if who.role is Role.DEPARTMENT:
        return store.CaseFilter(**{**where.__dict__, "department": who.department or "\x00none"})
    return where


def _labels(request: Request, who: Principal) -> dict[str, Any]:
    model = request.app.state.model()
    return {"topics": [(t.code, t.label.get(who.language)) for t in model.topics],
            "topic_labels": {t.code: t.label.get(who.language) for t in model.topics},
            "departments": [(key, d.name) for key, d in model.departments.items()],
            "department_names": {key: d.name for key, d in model.departments.items()},
            "statuses": [s.value for s in CaseStatus]}


@router.get("/cases", response_class=HTMLResponse)
def case_list(request: Request, who: Person, status: Annotated[str, Query(max_length=16)] = "",
              topic: Annotated[str, Query(max_length=64)] = "", department: Annotated[str, Query(max_length=64)] = "",
              overdue: Annotated[bool, Query()] = False,
              page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    """Cases, newest first, with filters; "overdue" lists those past their topic's target handling time."""
    problem = ""
    if status and status not in CaseStatus.__members__.values():
        problem, status = "unknown status", ""
    where = _scope(store.CaseFilter(status=status, topic=topic, department=department, overdue=overdue), who)
    with request.app.state.db.session() as session:
        query = store.listed(where)
        total = count_rows(session, query)
        rows = list(session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
        shown = [{"case": case, "overdue": store.overdue(case)} for case in rows]
    return render(request, "cases.html", title="Cases", items=shown, total=total, page=page,
                  pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), problem=problem,
                  form={"status": status, "topic": topic, "department": department, "overdue": overdue},
                  **_labels(request, who))


def _case(session: Any, number: str, who: Principal) -> Case:
    case = store.by_number(session, number)
    if case is None or (who.role is Role.DEPARTMENT and case.department != who.department):
        raise HTTPException(404, detail=f"no case {number}")
    return case


@router.get("/cases/handling", response_class=HTMLResponse)
def handling_page(request: Request, who: Staff, start: Annotated[str, Query(alias="from", max_length=10)] = "",
                  end: Annotated[str, Query(alias="to", max_length=10)] = "") -> HTMLResponse:
    """Handling times of the cases opened in a date range, by department and by topic, with charts."""
    from zoneinfo import ZoneInfo

    from callcenter.web.routes.board import local_days

    zone, model = ZoneInfo(who.timezone), request.app.state.model()
    form = {"start": start, "end": end}
    try:
        since, until = local_days(start, end, zone, request.app.state.settings.api.max_range_days)
    except ValueError as exc:
        return render(request, "cases_handling.html", status=422, title="Handling times", form=form,
                      problem=str(exc), found=None, chart="{}", **_labels(request, who))
    with request.app.state.db.session() as session:
        found = store.handling(session, model, since, until)
    names = {key: d.name for key, d in model.departments.items()}
    chart = {"labels": [names.get(h.key, h.key) for h in found["department"]],
             "average": [h.average_hours for h in found["department"]],
             "p90": [h.p90_hours for h in found["department"]]}
    form = {"start": start or since.astimezone(zone).date().isoformat(),
            "end": end or (until.astimezone(zone).date() - timedelta(days=1)).isoformat()}
    return render(request, "cases_handling.html", title="Handling times", form=form, problem="", found=found,
                  chart=json_block(chart), targets={t.code: t.target_hours for t in model.topics},
                  **_labels(request, who))


@router.get("/cases/{number}", response_class=HTMLResponse)
def case_page(request: Request, who: Person, number: str) -> HTMLResponse:
    """One case: what was reported, where, by whom (contact as allowed), its calls, every update, and what this
    user may do next."""
    with request.app.state.db.session() as session:
        case = _case(session, number, who)
        updates = store.updates_of(session, case.id)
        calls = store.calls_of(session, case.id)
        shown_contact = who.role is not Role.DEPARTMENT or case.contact_consent
        moves = [s.value for s in next_statuses(CaseStatus(case.status), who.role)]
        view = {c.name: getattr(case, c.name) for c in Case.__table__.columns}
        files = files_store.of_case(session, case.id)
        told = [{"kind": n.kind, "channel": n.channel, "target": n.target, "status": n.status, "at": n.created_at,
                 "sent_at": n.sent_at, "attempts": n.attempts, "error": n.last_error, "next_at": n.next_at}
                for n in outbox.of_case(session, case.id)]
    return render(request, "case.html", title=f"Case {number}", case=view, updates=updates, notifications=told,
                  files=files, limits=request.app.state.settings.cases, accept=",".join(files_store.ALLOWED),
                  calls=[(c.id, c.started_at, c.status) for c in calls], shown_contact=shown_contact, moves=moves,
                  overdue=store.overdue(case), opened=request.query_params.get("opened") == "1",
                  flash=request.query_params.get("problem", ""), flash_kind="error", **_labels(request, who))


def _back(number: str, problem: str = "") -> RedirectResponse:
    return back_to(f"/cases/{number}", problem)


def _float(text: str, what: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise store.CaseError(f"{what}: a number such as 12.2388") from None


def _call_id(session: Any, call_id: str, linkedid: str) -> list[int]:
    if call_id:
        if not is_digits(call_id) or not 1 <= int(call_id) <= MAX_ID:
            raise store.CaseError("call: an id")
        return [int(call_id)]
    if linkedid:
        found = session.scalar(select(Call.id).where(CALL.linkedid == linkedid).limit(1))
        if found is None:
            raise store.CaseError("the call is still being written to the log: open the case again in a few seconds")
        return [int(found)]
    return []


def _seen(session: Any, who: Principal, call_ids: list[int]) -> list[int]:
    """The calls, if this user may see each (an operator: the calls they took part in or work on); a call they may
    not see is refused as unknown (linking it would show it on the case's page, and the case on its caller's)."""
    for call_id in call_ids:
        call = session.get(Call, call_id)
        if call is None or not may_see_call(who, call):
            raise store.CaseError(f"no call with id {call_id}")
    return call_ids


@router.post("/cases")
def open_case(request: Request, who: Hotline, topic: Annotated[str, Form(max_length=64)],
              description: Annotated[str, Form(max_length=store.TEXT_MAX)],
              department: Annotated[str, Form(max_length=64)] = "",
              location: Annotated[str, Form(max_length=500)] = "", latitude: Annotated[str, Form(max_length=32)] = "",
              longitude: Annotated[str, Form(max_length=32)] = "",
              contact_name: Annotated[str, Form(max_length=128)] = "",
              contact_phone: Annotated[str, Form(max_length=32)] = "", consent: Annotated[bool, Form()] = False,
              forward: Annotated[bool, Form()] = False, call_id: Annotated[str, Form(max_length=20)] = "",
              linkedid: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Open (and, if asked, forward) a case from a call; the answer names the case number to read out."""
    model = request.app.state.model()
    try:
        with request.app.state.db.session() as session:
            new = store.NewCase(topic=topic, description=description, department=department, location=location,
                                latitude=_float(latitude, "latitude"), longitude=_float(longitude, "longitude"),
                                contact_name=contact_name, contact_phone=contact_phone, contact_consent=consent,
                                forward=forward, call_ids=_seen(session, who, _call_id(session, call_id, linkedid)))
            case = store.open_case(session, model, new, actor(who))
            number, status = case.number, case.status
    except store.CaseError as exc:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        raise HTTPException(422, detail=str(exc)) from None
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"number": number, "status": status, "url": f"/cases/{number}"}, status_code=201)
    return RedirectResponse(f"/cases/{number}?opened=1", status_code=303)


def _uploads(request: Request, files: list[UploadFile]) -> list[tuple[files_store.Upload, str]]:
    """The posted files, checked (type by content, size, count) before anything changes."""
    limits = request.app.state.settings.cases
    read = [files_store.Upload(f.filename or "", f.file.read(limits.attachment_max_bytes + 1)) for f in files]
    return files_store.check(read, limits)


@router.post("/cases/{number}/status")
def change_status(request: Request, who: Person, number: str, to: Annotated[str, Form(max_length=16)],
                  text: Annotated[str, Form(max_length=store.TEXT_MAX)] = "",
                  department: Annotated[str, Form(max_length=64)] = "", files: Files = NO_FILES) -> Response:
    """Move the case along the flow, with files if any (a refused move says why and changes nothing)."""
    if to not in CaseStatus.__members__.values():
        return _back(number, f"unknown status {to!r}")
    try:
        checked = _uploads(request, files)
        with request.app.state.db.session() as session:
            case = _case(session, number, who)
            update = store.move(session, request.app.state.model(), case, CaseStatus(to), actor(who), text,
                                department)
            files_store.attach(session, request.app.state.settings.cases, case, update, who.name, checked)
    except (store.CaseError, files_store.AttachmentError) as exc:
        return _back(number, str(exc))
    return _back(number)


@router.post("/cases/{number}/progress")
def post_progress(request: Request, who: Person, number: str,
                  text: Annotated[str, Form(max_length=store.TEXT_MAX)] = "", files: Files = NO_FILES) -> Response:
    """A progress note, with photos or documents if any."""
    try:
        checked = _uploads(request, files)
        with request.app.state.db.session() as session:
            case = _case(session, number, who)
            update = store.progress(session, case, actor(who), text)
            files_store.attach(session, request.app.state.settings.cases, case, update, who.name, checked)
    except (store.CaseError, files_store.AttachmentError) as exc:
        return _back(number, str(exc))
    return _back(number)


@router.get("/cases/{number}/files/{file_id}")
def attachment(request: Request, who: Person, number: str, file_id: int) -> FileResponse:
    """One file of the case, to whoever may see the case: photos shown in the page, documents downloaded."""
    with request.app.state.db.session() as session:
        case = _case(session, number, who)
        row = session.get(CaseAttachment, file_id) if 1 <= file_id <= MAX_ID else None
        if row is None or row.case_id != case.id:
            raise HTTPException(404, detail=f"no file {file_id} in case {number}")
        path = files_store.path_of(request.app.state.settings.cases, row)
        name, kind = row.name, row.content_type
    if not path.is_file():
        raise HTTPException(404, detail="the file is missing from the store")
    inline = kind.startswith("image/")
    return FileResponse(path, media_type=kind, filename=name,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"Cache-Control": "private, max-age=3600"})


@router.post("/cases/{number}/reassign")
def reassign(request: Request, who: Person, number: str, department: Annotated[str, Form(max_length=64)],
             text: Annotated[str, Form(max_length=store.TEXT_MAX)] = "") -> Response:
    """Give the case to another department (supervisors)."""
    try:
        with request.app.state.db.session() as session:
            store.reassign(session, request.app.state.model(), _case(session, number, who), department, actor(who),
                           text)
    except store.CaseError as exc:
        return _back(number, str(exc))
    return _back(number)


@router.post("/cases/{number}/calls")
def link_call(request: Request, who: Hotline, number: str, call_id: Annotated[str, Form(max_length=20)]) -> Response:
    """Link another call to the case (the citizen calling back, another citizen reporting the same)."""
    try:
        with request.app.state.db.session() as session:
            ids = _seen(session, who, _call_id(session, call_id, ""))
            if not ids:
                raise store.CaseError("call: an id")
            store.link_call(session, _case(session, number, who), ids[0], actor(who))
    except store.CaseError as exc:
        return _back(number, str(exc))
    return _back(number)


@router.post("/calls/{call_id}/case")
def link_from_call(request: Request, who: Hotline, call_id: int,
                   number: Annotated[str, Form(max_length=16)]) -> Response:
    """Link this call to an existing case by its number (typed as the citizen reads it out)."""
    from urllib.parse import urlencode

    problem = ""
    try:
        with request.app.state.db.session() as session:
            call = session.get(Call, call_id) if 1 <= call_id <= MAX_ID else None
            if call is None or not may_see_call(who, call):
                raise HTTPException(404, detail=f"no call with id {call_id}")
            case = store.by_number(session, number.strip())
            if case is None:
                raise store.CaseError(f"no case {number.strip()!r} (check the number: its last digit is a check)")
            store.link_call(session, case, call_id, actor(who))
    except store.CaseError as exc:
        problem = str(exc)
    suffix = f"?{urlencode({'problem': problem})}" if problem else ""
    return RedirectResponse(f"/calls/{call_id}{suffix}#cases", status_code=303)
