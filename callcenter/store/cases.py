"""Cases in the database: open one (from a call), forward, move through the flow, post progress, reassign, link
more calls, find by number, list with filters (overdue ones included), and what a caller hears by phone.

Every change adds a :class:`CaseUpdate`; nothing is deleted. Status rules live in :mod:`callcenter.model.cases`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from callcenter.model.cases import AT_DEPARTMENT, CaseStatus, TransitionError, case_number, check_transition, serial_of
from callcenter.model.contract import Role
from callcenter.model.hotline import HotlineModel
from callcenter.store import outbox
from callcenter.store.db import insert_for
from callcenter.store.models import CALL, Call, Case, CaseCall, CaseUpdate

TEXT_MAX = 4000
PHONE = re.compile(r"\+?[0-9]+")  # ASCII digits: str.isdigit also admits "١٢٣٤", which no phone dials


class CaseError(ValueError):
    """A case change refused (bad input, or not this user's case); the message says why."""


@dataclass(frozen=True)
class Actor:
    """Who changes a case: their user name, role and (for department users) department."""

    name: str
    role: Role
    department: str | None = None


@dataclass
class NewCase:
    """What an operator types to open a case."""

    topic: str
    description: str
    department: str = ""  # empty: the topic's department
    location: str = ""
    latitude: float | None = None
    longitude: float | None = None
    contact_name: str = ""
    contact_phone: str = ""
    contact_consent: bool = False
    forward: bool = True
    call_ids: list[int] = field(default_factory=list)


def _text(value: str, what: str, required: bool = False, limit: int = TEXT_MAX) -> str:
    value = value.strip()
    if required and not value:
        raise CaseError(f"{what}: write something")
    if len(value) > limit:
        raise CaseError(f"{what}: at most {limit} characters")
    if "\x00" in value:
        raise CaseError(f"{what}: no NUL characters")
    return value


def _department(model: HotlineModel, topic: str, chosen: str) -> str:
    topics = {t.code: t for t in model.topics}
    if topic not in topics:
        raise CaseError(f"unknown topic {topic!r}")
    department = chosen or topics[topic].department
    if department not in model.departments:
        raise CaseError(f"unknown department {department!r} (known: {', '.join(model.departments)})")
    return department


def _due(model: HotlineModel, topic: str, from_: datetime) -> datetime:
    hours = next((t.target_hours for t in model.topics if t.code == topic), 72)
    return from_ + timedelta(hours=hours)


def _log(session: Session, case: Case, who: Actor, kind: str, text: str = "", before: str = "", after: str = "",
         department: str = "") -> CaseUpdate:
    now = datetime.now(UTC)
    update = CaseUpdate(case_id=case.id, at=now, author=who.name, role=who.role.value, kind=kind,
                        from_status=before, to_status=after, department=department, text=text)
    session.add(update)
    case.updated_at = now
    return update


def _announce(session: Session, model: HotlineModel, case: Case, update: CaseUpdate) -> None:
    """The department the case now lies with is told (the outbox row commits with the change)."""
    session.flush()
    outbox.announce(session, model, case, "forwarded", str(update.id))


def _check_place(latitude: float | None, longitude: float | None) -> None:
    """Latitude and longitude within their ranges, and both or neither: half a point places the case nowhere
    (Open311 refuses it the same way)."""
    for value, lo, hi, what in ((latitude, -90, 90, "latitude"), (longitude, -180, 180, "longitude")):
        if value is not None and not lo <= value <= hi:
            raise CaseError(f"{what} must be between {lo} and {hi}")
    if (latitude is None) != (longitude is None):
        raise CaseError("latitude and longitude: both or neither")


def open_case(session: Session, model: HotlineModel, new: NewCase, who: Actor) -> Case:
    """Open a case (and forward it at once unless ``new.forward`` is false); its number is set."""
    if who.role not in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
        raise CaseError("only the hotline opens cases")
    department = _department(model, new.topic, new.department)
    description = _text(new.description, "description", required=True)
    _check_place(new.latitude, new.longitude)
    phone = new.contact_phone.strip()
    if phone and not PHONE.fullmatch(phone):
        raise CaseError("contact phone: digits only")
    now = datetime.now(UTC)
    case = Case(number="", status=CaseStatus.NEW.value, topic=new.topic, department=department,
                description=description, location=_text(new.location, "location", limit=500),
                latitude=new.latitude, longitude=new.longitude,
                contact_name=_text(new.contact_name, "contact name", limit=128), contact_phone=phone[:32],
                contact_consent=new.contact_consent, created_at=now, created_by=who.name, updated_at=now)
    session.add(case)
    session.flush()
    case.number = case_number(case.id)
    _log(session, case, who, "opened", description, after=CaseStatus.NEW.value, department=department)
    for call_id in new.call_ids:
        link_call(session, case, call_id, who)
    if new.forward:
        move(session, model, case, CaseStatus.FORWARDED, who, "")
    return case


def link_call(session: Session, case: Case, call_id: int, who: Actor) -> None:
    """Link a call to a case (linking twice is harmless)."""
    if session.get(Call, call_id) is None:
        raise CaseError(f"no call with id {call_id}")
    # In the caller's transaction (a SAVEPOINT committed the link on SQLite, whatever became of the rest); a link
    # made meanwhile by someone else is theirs, logged by them.
    linked = session.scalar(insert_for(session, CaseCall).values(
        case_id=case.id, call_id=call_id, linked_at=datetime.now(UTC), linked_by=who.name)
        .on_conflict_do_nothing().returning(CaseCall.id))  # (a row count is not reliable here on PostgreSQL)
    if linked is not None:
        _log(session, case, who, "link", f"call {call_id}")


def _mine(case: Case, who: Actor) -> None:
    if who.role is Role.DEPARTMENT and case.department != who.department:
        raise CaseError("this case is not your department's")


def move(session: Session, model: HotlineModel, case: Case, target: CaseStatus, who: Actor, text: str,
         department: str = "") -> CaseUpdate:
    """Move a case to ``target`` (forwarding may name another department); refused moves raise CaseError."""
    _mine(case, who)
    current = CaseStatus(case.status)
    try:
        check_transition(current, target, who.role)
    except TransitionError as exc:
        raise CaseError(str(exc)) from None
    text = _text(text, "reason" if target is CaseStatus.RETURNED else "text",
                 required=target in (CaseStatus.RETURNED, CaseStatus.RESOLVED))
    now = datetime.now(UTC)
    if target is CaseStatus.FORWARDED:
        case.department = _department(model, case.topic, department or case.department)
        case.forwarded_at, case.due_at = now, _due(model, case.topic, now)
    case.status = target.value
    case.closed_at = now if target is CaseStatus.CLOSED else None
    update = _log(session, case, who, "status", text, before=current.value, after=target.value,
                  department=case.department)
    if target is CaseStatus.FORWARDED:
        _announce(session, model, case, update)
    return update


def progress(session: Session, case: Case, who: Actor, text: str) -> CaseUpdate:
    """A progress note from the department (or the hotline) on an open case."""
    _mine(case, who)
    if case.status in (CaseStatus.CLOSED.value,):
        raise CaseError("the case is closed: reopen it first")
    update = _log(session, case, who, "progress", _text(text, "progress", required=True))
    session.flush()
    return update


def reassign(session: Session, model: HotlineModel, case: Case, department: str, who: Actor, text: str) -> None:
    """Staff give a case to another department (the target time starts again if it is there)."""
    if who.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise CaseError("only supervisors reassign cases")
    if department not in model.departments:
        raise CaseError(f"unknown department {department!r}")
    if department == case.department:
        raise CaseError("the case is already that department's")
    case.department = department
    at_department = case.status in AT_DEPARTMENT
    if at_department:
        now = datetime.now(UTC)
        case.forwarded_at, case.due_at = now, _due(model, case.topic, now)
    update = _log(session, case, who, "reassign", _text(text, "text"), department=department)
    if at_department:
        _announce(session, model, case, update)


def by_number(session: Session, number: str) -> Case | None:
    """The case a (keyed-in) number names; None for a number that is not one."""
    if serial_of(number) is None:
        return None
    found: Case | None = session.scalar(select(Case).where(Case.number == number))
    return found


@dataclass(frozen=True)
class CaseFilter:
    """The case list's filters."""

    status: str = ""
    topic: str = ""
    department: str = ""
    overdue: bool = False
    call_id: int | None = None


def listed(where: CaseFilter, now: datetime | None = None) -> Select[Any]:
    """Cases matching the filters, newest first."""
    query: Any = select(Case)
    if where.status:
        query = query.where(Case.status == where.status)
    if where.topic:
        query = query.where(Case.topic == where.topic)
    if where.department:
        query = query.where(Case.department == where.department)
    if where.overdue:
        query = query.where(Case.status.in_([s.value for s in AT_DEPARTMENT]), Case.due_at < (now or datetime.now(UTC)))
    if where.call_id is not None:
        query = query.where(Case.id.in_(select(CaseCall.case_id).where(CaseCall.call_id == where.call_id)))
    result: Select[Any] = query.order_by(Case.created_at.desc(), Case.id.desc())
    return result


def updates_of(session: Session, case_id: int) -> list[CaseUpdate]:
    return list(session.scalars(select(CaseUpdate).where(CaseUpdate.case_id == case_id).order_by(CaseUpdate.id)))


def calls_of(session: Session, case_id: int) -> list[Call]:
    return list(session.scalars(select(Call).join(CaseCall, CaseCall.call_id == Call.id)
                                .where(CaseCall.case_id == case_id).order_by(Call.id)))


def overdue(case: Case, now: datetime | None = None) -> bool:
    """Whether the department is past the topic's target handling time."""
    return case.status in AT_DEPARTMENT and case.due_at is not None and case.due_at < (now or datetime.now(UTC))


def of_caller(session: Session, number: str, limit: int = 5) -> list[Case]:
    """A caller's cases, newest first: those opened from or linked to their calls, or naming their phone."""
    if not number:
        return []
    theirs = select(CaseCall.case_id).join(Call, Call.id == CaseCall.call_id).where(CALL.caller_number == number)
    return list(session.scalars(select(Case).where((Case.contact_phone == number) | Case.id.in_(theirs))
                                .order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)))


@dataclass
class Handling:
    """Handling of the cases of one department or topic: how many were forwarded, resolved, and how fast."""

    key: str
    forwarded: int = 0
    resolved: int = 0
    within_target: int = 0
    overdue_now: int = 0
    hours: list[float] = field(default_factory=list)

    @property
    def average_hours(self) -> float | None:
        return round(sum(self.hours) / len(self.hours), 1) if self.hours else None

    @property
    def p90_hours(self) -> float | None:
        if not self.hours:
            return None
        ordered = sorted(self.hours)
        return round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)

    @property
    def on_time_percent(self) -> int | None:
        return round(100 * self.within_target / self.resolved) if self.resolved else None


def handling(session: Session, model: HotlineModel, start: datetime, end: datetime,
             now: datetime | None = None) -> dict[str, list[Handling]]:
    """Cases opened in [start, end): by department and by topic, how many were forwarded and resolved, the hours
    from the (last) forwarding to the first result, the share resolved within the topic's target, and how many
    are overdue now."""
    now = now or datetime.now(UTC)
    targets = {t.code: t.target_hours for t in model.topics}
    rows = session.scalars(select(Case).where(Case.created_at >= start, Case.created_at < end)).all()
    resolved_at = dict(session.execute(
        select(CaseUpdate.case_id, func.min(CaseUpdate.at)).where(
            CaseUpdate.case_id.in_([c.id for c in rows]), CaseUpdate.to_status == CaseStatus.RESOLVED.value)
        .group_by(CaseUpdate.case_id)).all()) if rows else {}
    groups: dict[str, dict[str, Handling]] = {"department": {}, "topic": {}}
    for case in rows:
        for dimension, key in (("department", case.department), ("topic", case.topic)):
            found = groups[dimension].setdefault(key, Handling(key))
            if case.forwarded_at is None:
                continue
            found.forwarded += 1
            found.overdue_now += overdue(case, now)
            done = resolved_at.get(case.id)
            if done is not None:
                done = done if done.tzinfo else done.replace(tzinfo=UTC)
                hours = max(0.0, (done - case.forwarded_at).total_seconds() / 3600)
                found.resolved += 1
                found.hours.append(hours)
                found.within_target += hours <= targets.get(case.topic, 72)
    return {dimension: sorted(found.values(), key=lambda h: h.key) for dimension, found in groups.items()}
