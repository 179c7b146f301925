"""The operator desk: availability (log in and out of the queue, pause with a reason, resume), the screen-pop of
the call being offered, and the after-call note with a corrected topic. Notes can also be written from a call's page
(by an operator who took the call, or by staff) and through the JSON API; every note is audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from callcenter.ami.client import AmiError
from callcenter.api.calls import ERRORS, invalid, may_see_call
from callcenter.api.schemas import ErrorOut
from callcenter.asterisk.secrets import sip_password
from callcenter.desk import availability
from callcenter.desk.availability import PAUSE_REASONS, DeskError
from callcenter.model.contract import DeviceType, Role
from callcenter.store import worklist
from callcenter.store.models import CALL, MAX_ID, Call
from callcenter.web.audit import audit
from callcenter.web.auth import Principal, require
from callcenter.web.i18n import translations
from callcenter.web.pages import json_block, live_feed, render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["operator desk"])
OperatorPage = Annotated[Principal, Depends(require(Role.OPERATOR, page=True))]
Noter = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, page=True))]
NoterApi = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN))]
STILL_LOGGING = "the call is still being written to the log: save again in a few seconds"


def _operator(request: Request, who: Principal) -> str:
    """The signed-in operator's id in the model (403 when their account names none the model knows)."""
    if not who.operator or who.operator not in request.app.state.model().operators:
        raise HTTPException(403, detail="your account is not linked to an operator of the telephony model")
    return who.operator


def _wantsjson_block(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.get("/desk", response_class=HTMLResponse)
def desk_page(request: Request, who: OperatorPage, problem: Annotated[str, Query(max_length=500)] = "") -> HTMLResponse:
    """The operator's desk (``problem``: what a plain form post, without the page's script, was refused for)."""
    operator = _operator(request, who)
    model = request.app.state.model()
    words = translations(who.language)
    topics = {t.code: t.label.get(who.language) for t in model.topics}
    agent = any(operator in q.agents for q in model.queues.values())
    labels = ("free", "ringing", "on_call", "paused", "unreachable", "logged_out", "ringing_offer", "talking",
              "ended", "None", "idle", "calling", "held", "Registered", "Not registered",
              "paused by the queue: a call rang out unanswered", "Unknown", "Saved",
              "Case opened. Tell the citizen the case number:",
              *PAUSE_REASONS, "answered", "voice_message", "callback_requested", "abandoned_queue", "missed",
              "abandoned_ivr", "abandoned_before_queue", "failed", "new", "forwarded", "in_progress", "resolved",
              "closed", "returned", "reopened")
    me = model.operators[operator]
    phone = None
    if me.device is DeviceType.BROWSER:  # the page is the phone: its SIP account, for this operator only
        phone = {"wsUrl": model.pbx.wss_url, "user": me.id, "displayName": me.name,
                 "password": sip_password(request.app.state.settings.pbx.sip_secret, me.id)}
    colleagues = [(op.extension, op.name) for op in model.operators.values() if op.id != operator]
    colleagues += [(d.phone, d.name) for d in model.departments.values() if d.phone]
    page = render(request, "desk.html", title="Desk", operator=me, agent=agent, reasons=PAUSE_REASONS,
                  topics=list(topics.items()), topics_json=json_block(topics),
                  words_json=json_block({key: words.gettext(key) for key in labels}),
                  live=live_feed(request) is not None,
                  phone_json=json_block(phone) if phone else "", colleagues=colleagues,
                  departments=list(model.departments.items()), case_topic=None, case_phone=None,
                  problem=problem)
    page.headers["Cache-Control"] = "no-store"  # it may hold the operator's SIP password
    return page


@router.get("/desk/events")
async def desk_events(request: Request, who: OperatorPage) -> EventSourceResponse:
    """The desk's state as server-sent events: one now, then one per change."""
    operator, feed = _operator(request, who), live_feed(request)

    async def stream() -> AsyncIterator[dict[str, str]]:
        if feed is None:
            yield {"event": "desk", "data": json.dumps({"connected": False})}
            return
        async for data in feed.subscribe_desk(operator):
            if await request.is_disconnected():
                return
            yield {"event": "desk", "data": data}

    return EventSourceResponse(stream(), ping=15)


def _answer(request: Request, status: int, message: str) -> Response:
    """JSON for the page's script; without it (a plain form post) back to the desk, saying what went wrong."""
    if _wantsjson_block(request):
        return JSONResponse({"detail": message}, status_code=status)
    return RedirectResponse(f"/desk?{urlencode({'problem': message})}" if status >= 400 else "/desk",
                            status_code=303)


@router.post("/desk/availability")
async def change_availability(request: Request, who: OperatorPage,
                              action: Annotated[Literal["login", "logout", "pause", "resume"], Form()],
                              reason: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Log in, log out, pause (with a reason) or resume, through the PBX; the page then follows the PBX's events."""
    operator, model, settings = _operator(request, who), request.app.state.model(), request.app.state.settings
    db = request.app.state.db  # the change is kept as the operator's intent, for a node that misses it
    if action == "pause" and reason not in PAUSE_REASONS:  # bad input, not a change the PBX refused
        return _answer(request, 422, f"unknown pause reason {reason!r}; expected one of: {', '.join(PAUSE_REASONS)}")
    try:
        if action == "login":
            await availability.log_in(settings, model, operator, db)
        elif action == "logout":
            await availability.log_out(settings, model, operator, db)
        elif action == "pause":
            await availability.pause(settings, model, operator, reason, db)
        else:
            await availability.resume(settings, model, operator, db)
    except DeskError as exc:
        return _answer(request, 409, str(exc))
    except (AmiError, OSError, TimeoutError) as exc:
        return _answer(request, 503, f"the PBX did not take the change: {exc or 'no answer'}")
    return _answer(request, 200, "ok")


def _topic(request: Request, topic: str) -> str | None:
    if not topic:
        return None
    if topic not in request.app.state.model().topic_codes:
        raise ValueError(f"unknown topic {topic!r}")
    return topic


def _keep_note(request: Request, who: Principal, call_id: int | None, text: str, topic: str) -> int:
    """Keep a note on call ``call_id`` for ``who``; the HTTP status (and audit it). The call is read in the session
    that keeps the note: whether an operator may see it depends on the worklist item they hold, read through it."""
    with request.app.state.db.session() as session:
        call = session.get(Call, call_id) if call_id is not None and 1 <= call_id <= MAX_ID else None
        if call is None:
            raise HTTPException(404, detail="no such call")
        if not may_see_call(who, call):
            audit(request, "note", 403, call_id=call.id)
            raise HTTPException(404, detail="no such call")
        try:
            corrected = _topic(request, topic)
            worklist.add_note(session, call, who.name, who.operator or "", text, corrected)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from None
    audit(request, "note", 201, call_id=call_id, detail=f"topic={corrected}" if corrected else "")
    return 201


def _call_by_linkedid(request: Request, linkedid: str) -> Call | None:
    with request.app.state.db.session() as session:
        found: Call | None = session.scalars(select(Call).where(CALL.linkedid == linkedid).order_by(CALL.id.desc())
                                             .limit(1)).first()
    return found


@router.post("/desk/notes")
def desk_note(request: Request, who: OperatorPage, linkedid: Annotated[str, Form(max_length=64)],
              text: Annotated[str, Form(max_length=worklist.NOTE_MAX)] = "",
              topic: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The after-call note on the operator's last call (by its Asterisk id: the log row may be seconds behind)."""
    call = _call_by_linkedid(request, linkedid)
    if call is None:
        return _answer(request, 409, STILL_LOGGING)
    try:
        _keep_note(request, who, call.id, text, topic)
    except HTTPException as exc:
        return _answer(request, exc.status_code, str(exc.detail))
    return _answer(request, 201, "saved")


@router.post("/calls/{call_id}/notes")
def call_note(request: Request, who: Noter, call_id: int, text: Annotated[str, Form(max_length=worklist.NOTE_MAX)]
              = "", topic: Annotated[str, Form(max_length=64)] = "") -> Response:
    """A note from the call's page."""
    _keep_note(request, who, call_id, text, topic)
    return RedirectResponse(f"/calls/{call_id}#notes", status_code=303)


class NoteIn(BaseModel):
    """A note on a call."""

    text: str = Field(max_length=worklist.NOTE_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                      description="what was said and done (not blank)")
    topic: str = Field(default="", max_length=64,
                       description="the right topic code, when the keyed one was wrong (the model's codes)")


class NoteOut(BaseModel):
    """A kept note."""

    call_id: int
    text: str
    topic: str | None


@api.post("/calls/{call_id}/notes", status_code=201, response_model=NoteOut,
          responses={**ERRORS, 404: {"model": ErrorOut, "description": "No such call (or not yours)"},
                     },
          summary="Keep a note (and a corrected topic) on a call")
def api_note(request: Request, who: NoterApi, call_id: Annotated[int, Path(ge=1, le=MAX_ID)],
             note: NoteIn) -> dict[str, Any]:
    """Operators on calls they took; supervisors and admins on any call. Audited."""
    try:
        _keep_note(request, who, call_id, note.text, note.topic)
    except HTTPException as exc:
        if exc.status_code != 422:
            raise
        raise invalid("topic" if "topic" in str(exc.detail) else "text", note.text, str(exc.detail),
                      where="body") from None
    return {"call_id": call_id, "text": note.text.strip(), "topic": note.topic or None}


def document_topics(app: Any, codes: Callable[[], list[str]]) -> None:
    """Name the model's topic codes in the OpenAPI schema of a note (they live in the model, not in the code)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = generate()
        note = schema.get("components", {}).get("schemas", {}).get("NoteIn")
        if note is not None:
            note["properties"]["topic"]["enum"] = ["", *codes()]
        return schema

    app.openapi = openapi

