"""The notifications outbox in the database: what to tell a department (a case forwarded to it, a case of its
now overdue), written in the same transaction as the change; claimed, marked sent or retried by the worker
(:mod:`callcenter.notify.worker`).

Never twice: each occasion has one ``key`` (unique), so announcing it again adds nothing; a row is claimed by
compare-and-set on its lease before it is sent, so two workers never send the same row; and the key travels with
the message (e-mail ``Message-ID``, webhook ``Idempotency-Key``) so a receiver can drop the one repeat left
possible: a worker that dies after sending and before marking the row sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from callcenter.model.cases import AT_DEPARTMENT
from callcenter.model.hotline import HotlineModel
from callcenter.store.models import Case, Notification

KINDS = ("forwarded", "overdue")
CHANNELS = ("email", "webhook")


def _payload(case: Case, kind: str, model: HotlineModel) -> str:
    """What the message says: the case as the department sees it, without the citizen's contact."""
    topic = next((t for t in model.topics if t.code == case.topic), None)
    department = model.departments.get(case.department)
    return json.dumps({
        "event": f"case.{kind}", "number": case.number, "status": case.status, "topic": case.topic,
        "topic_label": {"vi": topic.label.vi, "en": topic.label.en} if topic else {},
        "department": case.department, "department_name": department.name if department else case.department,
        "description": case.description, "location": case.location, "latitude": case.latitude,
        "longitude": case.longitude, "forwarded_at": _iso(case.forwarded_at), "due_at": _iso(case.due_at),
    }, ensure_ascii=False)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def announce(session: Session, model: HotlineModel, case: Case, kind: str, occasion: str,
             now: datetime | None = None) -> int:
    """Queue one message per address of the case's department about ``kind`` on ``occasion`` (an update id, a
    due time); an occasion already queued adds nothing. Returns how many were added."""
    department = model.departments.get(case.department)
    if department is None:
        return 0
    now = now or datetime.now(UTC)
    targets = [(channel, target) for channel, target in (("email", department.email),
                                                         ("webhook", department.webhook)) if target]
    keys = {f"{kind}/{case.number}/{channel}/{occasion}": (channel, target) for channel, target in targets}
    known = set(session.scalars(select(Notification.key).where(Notification.key.in_(list(keys))))) if keys else set()
    payload = _payload(case, kind, model)
    for key, (channel, target) in keys.items():
        if key not in known:
            session.add(Notification(key=key, case_id=case.id, kind=kind, channel=channel, target=target,
                                     department=case.department, payload=payload, status="pending",
                                     created_at=now, next_at=now, attempts=0, last_error="", lease_owner=""))
    session.flush()
    return len(keys) - len(known)


def announce_overdue(session: Session, model: HotlineModel, now: datetime) -> int:
    """Queue an "overdue" message for every case past its due time at its department (once per due time:
    a case reassigned and overdue again is announced again)."""
    overdue = session.scalars(select(Case).where(Case.status.in_([s.value for s in AT_DEPARTMENT]),
                                                 Case.due_at < now)).all()
    return sum(announce(session, model, case, "overdue", _iso(case.due_at) or "", now) for case in overdue)


@dataclass(frozen=True)
class Claimed:
    """A row a worker holds while it sends it."""

    id: int
    key: str
    kind: str
    channel: str
    target: str
    payload: str
    attempts: int
    created_at: datetime


def claim(session: Session, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[Claimed]:
    """Take up to ``limit`` due rows for ``owner`` until ``now + lease``: compare-and-set per row, so of two
    workers reaching for the same row exactly one gets it."""
    free = or_(Notification.lease_until.is_(None), Notification.lease_until < now)
    due = and_(Notification.status == "pending", Notification.next_at <= now, free)
    ids = list(session.scalars(select(Notification.id).where(due).order_by(Notification.next_at, Notification.id)
                               .limit(limit)))
    taken = []
    for row_id in ids:
        done = session.execute(update(Notification).where(Notification.id == row_id, due)
                               .values(lease_owner=owner, lease_until=now + lease))
        if done.rowcount == 1:  # type: ignore[attr-defined]
            taken.append(row_id)
    session.commit()
    rows = session.scalars(select(Notification).where(Notification.id.in_(taken)).order_by(Notification.id))
    return [Claimed(r.id, r.key, r.kind, r.channel, r.target, r.payload, r.attempts, r.created_at) for r in rows]


def _mine(row_id: int, owner: str) -> ColumnElement[bool]:
    return and_(Notification.id == row_id, Notification.lease_owner == owner, Notification.status == "pending")


def renew(session: Session, row: Claimed, owner: str, now: datetime, lease: timedelta) -> bool:
    """Hold a claimed row until ``now + lease`` again; False if it is no longer this owner's (its lease ran out and
    another worker claimed it), then this owner must not send it."""
    done = session.execute(update(Notification).where(_mine(row.id, owner)).values(lease_until=now + lease))
    return done.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def sent(session: Session, row: Claimed, owner: str, now: datetime) -> None:
    """Mark a claimed row sent (and free its lease)."""
    session.execute(update(Notification).where(_mine(row.id, owner))
                    .values(status="sent", sent_at=now, attempts=row.attempts + 1, last_error="",
                            lease_owner="", lease_until=None))


def failed(session: Session, row: Claimed, owner: str, now: datetime, error: str, retry_at: datetime | None) -> None:
    """Record a failed attempt: try again at ``retry_at``, or give up (``failed``) when it is None."""
    values = {"attempts": row.attempts + 1, "last_error": error[:2000], "lease_owner": "", "lease_until": None}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_at"] = retry_at
    session.execute(update(Notification).where(_mine(row.id, owner)).values(**values))


def pending(session: Session) -> int:
    """Messages not yet delivered and not given up."""
    count = select(func.count()).select_from(Notification).where(Notification.status == "pending")
    return int(session.scalar(count) or 0)


def of_case(session: Session, case_id: int) -> list[Notification]:
    """A case's notifications, oldest first (shown on its page)."""
    return list(session.scalars(select(Notification).where(Notification.case_id == case_id)
                                .order_by(Notification.id)))
