"""Read side of the call log: filtered, paginated lists and one call with its event timeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, cast, func, or_, select
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
    participant: str | None = None  # an operator who took part (first or after a transfer)


def filtered(query: Select[Any], where: CallFilter) -> Select[Any]:
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
    if where.participant:
        # operators is a JSON list of ids (text on SQLite, json on PostgreSQL): look for the quoted id.
        quoted = f'"{where.participant}"'
        query = query.where(or_(CALL.operator == where.participant,
                                   cast(CALL.operators, Text).contains(quoted, autoescape=True)))
    return query


SORTABLE = ("started_at", "wait_seconds", "talk_seconds", "caller_number", "status", "operator")


def _ordered(query: Select[Any], sort: str) -> Select[Any]:
    """``-started_at`` (newest first, the default), ``talk_seconds`` (shortest first), ...; id breaks ties."""
    descending = sort.startswith("-")
    column = CALL[sort.lstrip("-")] if sort.lstrip("-") in SORTABLE else CALL.started_at
    if sort.lstrip("-") not in SORTABLE:
        descending = True
    ordered = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return query.order_by(ordered, CALL.id.desc() if descending else CALL.id.asc())


def count_rows(session: Session, query: Select[Any]) -> int:
    """How many rows a (paged) list's query has in all."""
    return int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def page_query(where: CallFilter, page: int, page_size: int, sort: str = "-started_at") -> Select[Any]:
    """The query of one page of calls in the asked order."""
    return _ordered(filtered(select(Call), where), sort).offset((page - 1) * page_size).limit(page_size)


def total_query(where: CallFilter) -> Select[Any]:
    """The query of how many calls match."""
    return filtered(select(func.count()).select_from(Call), where)


def list_calls(session: Session, where: CallFilter, page: int, page_size: int,
               sort: str = "-started_at") -> tuple[list[Call], int]:
    """One page of calls in the asked order (newest first by default), and the total number matching."""
    total = session.scalar(total_query(where))
    rows = session.scalars(page_query(where, page, page_size, sort)).all()
    return list(rows), int(total or 0)


def count_by_status(session: Session, where: CallFilter) -> dict[str, int]:
    """How many of the matching calls ended in each status."""
    query = filtered(select(CALL.status, func.count()).select_from(Call), where).group_by(CALL.status)
    return {status: int(count) for status, count in session.execute(query).all()}


def iter_calls(session: Session, where: CallFilter, sort: str = "-started_at",
               batch: int = 1000) -> Iterator[Call]:
    """Every matching call, fetched ``batch`` rows at a time (a server-side cursor on PostgreSQL): for exports
    of any size at steady memory."""
    query = _ordered(filtered(select(Call), where), sort).execution_options(yield_per=batch)
    for call in session.scalars(query):
        yield call
        session.expunge(call)  # let each exported row go


def get_call(session: Session, call_id: int) -> Call | None:
    """One call by id."""
    return session.get(Call, call_id)


def call_events(session: Session, call: Call) -> list[CelJournal]:
    """The call's journaled CEL events in time order (its timeline)."""
    query = select(CelJournal).where(CelJournal.node == call.node, CelJournal.linkedid == call.linkedid)
    return list(session.scalars(query.order_by(CelJournal.event_time, CelJournal.id)).all())
