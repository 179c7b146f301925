"""The call-back worklist: calls waiting to be returned (after-hours call-back requests, voice messages to listen
to, abandoned and missed calls), oldest first. An operator claims an item (one person at a time), listens to the
message on the call's page, calls back from their own phone (click-to-call), and the item closes when the citizen
is reached, when somebody closes it, or by itself once the same number has had an answered call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from callcenter.ami.client import AmiError
from callcenter.api.calls import public
from callcenter.desk import callback
from callcenter.desk.availability import DeskError
from callcenter.model.contract import Role
from callcenter.store import worklist
from callcenter.store.models import MAX_ID, CallbackAttempt, CallbackItem
from callcenter.store.queries import count_rows
from callcenter.web.auth import Principal, require
from callcenter.web.pages import back_to, render

router = APIRouter(include_in_schema=False)
Worker = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, page=True))]
PAGE_SIZE = 50


def _settle(request: Request) -> None:
    """Results of call-backs that have ended (a reached citizen closes the item)."""
    model = request.app.state.model()
    nodes = [node.name for node in request.app.state.settings.listener_nodes(model.pbx.ami)]
    with request.app.state.db.session() as session:
        worklist.settle_attempts(session, set(model.operators), nodes)


@router.get("/worklist", response_class=HTMLResponse)
def worklist_page(request: Request, who: Worker, page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  mine: Annotated[bool, Query()] = False) -> HTMLResponse:
    """Open items, oldest first, with who holds each and its call-backs so far."""
    _settle(request)
    model = request.app.state.model()
    query = worklist.open_items()
    if mine:
        query = query.where(CallbackItem.claimed_by == who.name)
    with request.app.state.db.session() as session:
        total = count_rows(session, query)
        rows = session.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        ids = [call.id for call, _ in rows]
        attempts: dict[int, list[CallbackAttempt]] = {}
        for attempt in session.scalars(select(CallbackAttempt).where(CallbackAttempt.call_id.in_(ids))
                                       .order_by(CallbackAttempt.id)):
            attempts.setdefault(attempt.call_id, []).append(attempt)
        items = [{"call": public(call, who), "number": worklist.return_number(call),
                  "held_by": item.claimed_by if item else "", "attempts": attempts.get(call.id, [])}
                 for call, item in rows]
    labels = {t.code: t.label.get(who.language) for t in model.topics}
    return render(request, "worklist.html", title="Call-backs", items=items, total=total, page=page,
                  pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), mine=mine, labels=labels,
                  can_call=bool(who.operator and who.operator in model.operators),
                  flash=request.query_params.get("problem", ""), flash_kind="error")


def _back(request: Request, problem: str = "") -> Response:
    return back_to("/worklist", problem)


@router.post("/worklist/{call_id}")
async def act(request: Request, who: Worker, call_id: int,
              action: Annotated[Literal["claim", "release", "call", "close"], Form()]) -> Response:
    """Claim, release, call back or close (as dismissed) one item."""
    if not 1 <= call_id <= MAX_ID:
        return _back(request, "no such call")
    staff = who.role is not Role.OPERATOR
    model, settings = request.app.state.model(), request.app.state.settings
    try:
        with request.app.state.db.session() as session:
            if action == "claim":
                worklist.claim(session, call_id, who.name)
            elif action == "release":
                worklist.release(session, call_id, who.name, staff)
            elif action == "close":
                worklist.close(session, call_id, who.name, "dismissed", staff)
            else:
                if not who.operator or who.operator not in model.operators:
                    raise DeskError("only an operator with a phone can call back")
                call = worklist.open_call(session, call_id)
                linkedid = callback.new_linkedid()
                attempt = worklist.start_attempt(session, call, who.name, who.operator, linkedid)
                number, line, returning = attempt.number, call.line, call.linkedid
        if action == "call":
            try:
                await callback.originate(settings, model, who.operator or "", number, line, returning, linkedid)
            except (AmiError, OSError, TimeoutError, DeskError) as exc:  # DeskError: the phone is on no node
                with request.app.state.db.session() as session:
                    failed = session.get(CallbackAttempt, attempt.id)
                    if failed is not None:
                        failed.result, failed.detail = "failed", str(exc)[:500] or "no answer from the PBX"
                return _back(request, f"the PBX did not place the call: {exc or 'no answer'}")
    except (worklist.WorklistError, DeskError) as exc:
        return _back(request, str(exc))
    return _back(request)
