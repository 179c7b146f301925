"""Read side of the call log: filtered, paginated lists and one call with its event timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from callcenter.store.models import CALL, Call, CelJournal


@dataclass(frozen=True)
class CallFilter:
    """What a history search may narrow by; every field is optional but the date range."""

    start: datetime
    end: datetime
    line: str | None = None
    status: str | None = None
    operator: str | None = None
    number: str | None = None  # caller number prefix
    topic: str | None = None
    node: str | None = None


def _filtered(query: Select[Any], where: CallFilter) -> Select[Any]:
    query = query.where(CALL.started_at >= where.start, CALL.started_at < where.end)
    if where.line:
        query = query.where(CALL.line == where.line)
    if where.status:
        query = query.where(CALL.status == where.status)
    if where.operator:
        query = query.where(CALL.operator == where.operator)
    if where.number:
        query = query.where(CALL.caller_number.startswith(where.number, autoescape=True))
    if where.topic:
        query = query.where(CALL.topic == where.topic)
    if where.node:
        query = query.where(CALL.node == where.node)
    return query


def list_calls(session: Session, where: CallFilter, page: int, page_size: int) -> tuple[list[Call], int]:
    """One page of calls, newest first, and the total number matching."""
    total = session.scalar(_filtered(select(func.count()).select_from(Call), where))
    query = _filtered(select(Call), where).order_by(CALL.started_at.desc(), CALL.id.desc())
    rows = session.scalars(query.offset((page - 1) * page_size).limit(page_size)).all()
    return list(rows), int(total or 0)


def get_call(session: Session, call_id: int) -> Call | None:
    """One call by id."""
    return session.get(Call, call_id)


def call_events(session: Session, call: Call) -> list[CelJournal]:
    """The call's journaled CEL events in time order (its timeline)."""
    query = select(CelJournal).where(CelJournal.node == call.node, CelJournal.linkedid == call.linkedid)
    return list(session.scalars(query.order_by(CelJournal.event_time, CelJournal.id)).all())
