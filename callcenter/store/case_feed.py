"""What the hotline publishes about cases to other systems (the Open311 API): cases by the GeoReport filters, and
the updates a citizen may follow.

Published updates are status moves and progress notes. Reassignments and linked calls are the hotline's own
bookkeeping (a linked call names a caller's call) and are never published; neither is any contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from callcenter.store.cases import CaseFilter, listed
from callcenter.store.models import Case, CaseUpdate

PUBLISHED_KINDS = ("status", "progress")


@dataclass(frozen=True)
class RequestFilter:
    """Cases by number, or by topics, statuses and the time they were opened in [start, end); ``department``
    scopes a department's view (empty: every department)."""

    start: datetime
    end: datetime
    numbers: tuple[str, ...] = ()  # when given, the other filters (but the department) do not apply
    topics: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    department: str = ""


def requests(where: RequestFilter) -> Select[Any]:
    """Cases matching the filter, newest first."""
    query = listed(CaseFilter(department=where.department))
    if where.numbers:
        return query.where(Case.number.in_(where.numbers))
    query = query.where(Case.created_at >= where.start, Case.created_at < where.end)
    if where.topics:
        query = query.where(Case.topic.in_(where.topics))
    if where.statuses:
        query = query.where(Case.status.in_(where.statuses))
    return query


def published_updates(start: datetime, end: datetime, department: str = "") -> Select[Any]:
    """(update, case number, the case's status once the update was made) of the published updates made in
    [start, end), oldest first."""
    before = aliased(CaseUpdate)
    status_then = (select(before.to_status).where(before.case_id == CaseUpdate.case_id, before.id <= CaseUpdate.id,
                                                  before.to_status != "")
                   .order_by(before.id.desc()).limit(1).scalar_subquery())
    query = (select(CaseUpdate, Case.number, status_then).join(Case, Case.id == CaseUpdate.case_id)
             .where(CaseUpdate.kind.in_(PUBLISHED_KINDS), CaseUpdate.at >= start, CaseUpdate.at < end))
    if department:
        query = query.where(Case.department == department)
    result: Select[Any] = query.order_by(CaseUpdate.at, CaseUpdate.id)
    return result


def last_published(session: Session, case_ids: Sequence[int]) -> dict[int, CaseUpdate]:
    """Each case's latest published update (for a request's status notes)."""
    if not case_ids:
        return {}
    rows = session.scalars(select(CaseUpdate).where(CaseUpdate.case_id.in_(case_ids),
                                                    CaseUpdate.kind.in_(PUBLISHED_KINDS))
                           .order_by(CaseUpdate.case_id, CaseUpdate.id))
    return {row.case_id: row for row in rows}
