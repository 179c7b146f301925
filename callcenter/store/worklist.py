"""The operator desk's questions to the call log: a caller's earlier calls, the calls still waiting to be returned
(the call-back worklist: after-hours call-back requests, voice messages, abandoned and missed calls), and the notes
operators keep on calls.

An item is open until somebody reached the citizen on a call-back, closed it by hand, or the same number has since
had an answered call (then it closes by itself: nobody needs to call back a citizen who got through).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session, aliased

from callcenter.model.contract import Direction, Status
from callcenter.store.models import CALL, Call, CallbackAttempt, CallbackItem, CallNote, calls

RETURNABLE = (Status.CALLBACK_REQUESTED, Status.VOICE_MESSAGE, Status.ABANDONED_QUEUE, Status.MISSED)
NOTE_MAX = 4000


def earlier_calls(session: Session, number: str, but: str = "", limit: int = 5) -> list[Call]:
    """The caller's latest calls (newest first), except the call ``but`` (a linkedid)."""
    if not number:
        return []
    return list(session.scalars(select(Call).where(CALL.caller_number == number, CALL.linkedid != but)
                                .order_by(CALL.started_at.desc()).limit(limit)))


def _answered_since() -> Any:
    later = aliased(calls)
    return exists().where(later.c.caller_number == CALL.caller_number, later.c.status == Status.ANSWERED.value,
                          later.c.started_at > CALL.started_at)


def open_items(number: str = "") -> Select[Any]:
    """Open worklist items, oldest first: (Call, CallbackItem or None); only those of ``number`` if given."""
    query: Any = (select(Call, CallbackItem).outerjoin(CallbackItem, CallbackItem.call_id == CALL.id)
             .where(CALL.status.in_([s.value for s in RETURNABLE]), CALL.direction == Direction.INBOUND.value,
                    CALL.caller_number != "", CallbackItem.closed_at.is_(None), ~_answered_since()))
    if number:
        query = query.where(or_(CALL.caller_number == number, CALL.callback_number == number))
    return cast("Select[Any]", query.order_by(CALL.started_at, CALL.id))


def open_requests(session: Session, number: str, limit: int = 5) -> list[Call]:
    """The number's calls still waiting to be returned (what the screen-pop shows)."""
    return [call for call, _ in session.execute(open_items(number).limit(limit)).all()]


@dataclass(frozen=True)
class Note:
    """A note as the call's page shows it."""

    at: datetime
    author: str
    operator: str
    text: str
    topic: str | None


def add_note(session: Session, call: Call, author: str, operator: str, text: str, topic: str | None) -> CallNote:
    """Keep a note (and a corrected topic) on a call; ValueError if there is nothing to keep or it is too long."""
    text = text.strip()
    if not text and not topic:
        raise ValueError("write a note or choose the right topic")
    if len(text) > NOTE_MAX:
        raise ValueError(f"a note is at most {NOTE_MAX} characters")
    note = CallNote(call_id=call.id, author=author, operator=operator, text=text, topic=topic or None,
                    created_at=datetime.now(UTC))
    session.add(note)
    session.flush()
    return note


def notes_of(session: Session, call_id: int) -> list[Note]:
    """A call's notes, oldest first."""
    rows = session.scalars(select(CallNote).where(CallNote.call_id == call_id).order_by(CallNote.id))
    return [Note(n.created_at, n.author, n.operator, n.text, n.topic) for n in rows]


def corrected_topic(session: Session, call_id: int) -> str | None:
    """The latest topic correction of a call, if any."""
    return session.scalar(select(CallNote.topic).where(CallNote.call_id == call_id, CallNote.topic.is_not(None))
                          .order_by(CallNote.id.desc()).limit(1))


def attempts_of(session: Session, call_id: int) -> list[CallbackAttempt]:
    """The call-backs placed for a call, oldest first."""
    return list(session.scalars(select(CallbackAttempt).where(CallbackAttempt.call_id == call_id)
                                .order_by(CallbackAttempt.id)))



