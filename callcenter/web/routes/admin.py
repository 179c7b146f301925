"""Users (admins) and the recording-access audit log (supervisors and admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from callcenter.model.contract import Role
from callcenter.store import accounts
from callcenter.store.models import MAX_ID, RecordingAccess, User
from callcenter.store.queries import count_rows
from callcenter.web.auth import STAFF, Principal, require
from callcenter.web.i18n import translations
from callcenter.web.pages import render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(require(Role.ADMIN, page=True))]
Staff = Annotated[Principal, Depends(require(*STAFF, page=True))]
AUDIT_PAGE = 100


def _users_page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    model = request.app.state.model()
    with request.app.state.db.session() as session:
        users = session.scalars(select(User).order_by(User.name)).all()
    return render(request, "users.html", status=status, title="Users", users=users, roles=[r.value for r in Role],
                  operators=[(op.id, op.name) for op in model.operators.values()],
                  departments=[(key, d.name) for key, d in model.departments.items()], **context)


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, who: Admin) -> HTMLResponse:
    """Every user, and a form to add one."""
    return _users_page(request)


@router.post("/users")
def add_user(request: Request, who: Admin, name: Annotated[str, Form(max_length=64)],
             role: Annotated[str, Form()], password: Annotated[str, Form(max_length=256)],
             display_name: Annotated[str, Form(max_length=128)] = "",
             operator: Annotated[str, Form(max_length=64)] = "",
             department: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Add a user (a clear error for a bad name, a short password, an operator without operator id, a department
    user without a department)."""
    model = request.app.state.model()
    if role not in Role.__members__.values():
        return _users_page(request, 422, error="unknown role")
    if operator and operator not in model.operators:
        return _users_page(request, 422, error=f"no operator {operator!r} in the telephony model")
    # As `callcenter users add`: a department user without one of the model's departments would see no case.
    if role == Role.DEPARTMENT.value and department not in model.departments:
        words = translations(who.language)
        return _users_page(request, 422, error=words.gettext("A department user needs one of the departments."))
    new = accounts.NewUser(name=name.strip().lower(), role=Role(role), password=password, display_name=display_name,
                           operator=operator or None, department=department if role == Role.DEPARTMENT.value else None)
    with request.app.state.db.session() as session:
        try:
            accounts.create_user(session, new)
        except accounts.AccountError as exc:
            return _users_page(request, 422, error=str(exc))
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/{action}")
def change_user(request: Request, who: Admin, user_id: Annotated[int, Path(ge=1, le=MAX_ID)], action: str,
                password: Annotated[str, Form(max_length=256)] = "") -> Response:
    """Disable, enable, or set a new password (every session of that user ends)."""
    with request.app.state.db.session() as session:
        user = session.get(User, user_id)
        if user is None or action not in ("disable", "enable", "password") or (
                user.id == who.user_id and action == "disable"):
            return _users_page(request, 404, error="no such user or action")
        try:
            if action == "password":
                accounts.set_password(user, password)
            else:
                accounts.set_active(user, action == "enable")
        except accounts.AccountError as exc:
            return _users_page(request, 422, error=str(exc))
    return RedirectResponse("/users", status_code=303)


def _moment(text: str, zone: ZoneInfo) -> datetime | None:
    """A date-time typed in the user's zone; ValueError outside the years 1900-2999 (beyond them the default
    range's 30 days back, or the shift to UTC in the query, would leave the calendar)."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if not 1900 <= moment.year <= 2999:
        raise ValueError("dates between 1900 and 2999")
    return moment.replace(tzinfo=zone)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, who: Staff, start: Annotated[str, Query(alias="from", max_length=40)] = "",
              end: Annotated[str, Query(alias="to", max_length=40)] = "",
              actor: Annotated[str, Query(max_length=64)] = "", outcome: Annotated[str, Query(max_length=8)] = "",
              recording: Annotated[str, Query(max_length=18)] = "",
              page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    """Who reached which recording, when, from where, and what they got; newest first."""
    zone = ZoneInfo(who.timezone)
    form = {"start": start, "end": end, "actor": actor, "outcome": outcome, "recording": recording}
    try:
        until = _moment(end, zone) or datetime.now(UTC)
        since = _moment(start, zone) or until - timedelta(days=30)
        record_id = int(recording) if recording else None
    except ValueError:
        return render(request, "audit.html", status=422, title="Audit", rows=[], total=0, page=1, pages=1,
                      form=form, problem="dates as YYYY-MM-DDTHH:MM (1900 to 2999), a recording as its number")
    query = select(RecordingAccess).where(RecordingAccess.at >= since, RecordingAccess.at < until)
    if actor:
        query = query.where(RecordingAccess.actor == actor)
    if outcome in ("allowed", "refused"):
        query = query.where(RecordingAccess.allowed.is_(outcome == "allowed"))
    if record_id is not None:
        query = query.where(RecordingAccess.recording_id == record_id)
    with request.app.state.db.session() as session:
        total = count_rows(session, query)
        rows = session.scalars(query.order_by(RecordingAccess.at.desc(), RecordingAccess.id.desc())
                               .offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE)).all()
    return render(request, "audit.html", title="Audit", rows=rows, total=total, page=page,
                  pages=max(1, -(-total // AUDIT_PAGE)), form=form, problem="")
