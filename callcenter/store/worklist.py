"""The operator desk's questions to the call log: a caller's earlier calls, the calls still waiting to be returned
(the call-back worklist: after-hours call-back requests, voice messages, abandoned and missed calls), and the notes
operators keep on calls.

An item is open until somebody reached the citizen on a call-back, closed it by hand, or the same number has since
had an answered call (then it closes by itself: nobody needs to call back a citizen who got through).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from callcenter.calls.channels import endpoint_of, is_person
from callcenter.model.contract import Cel, Direction, Status
from callcenter.store.db import among, in_slices, insert_for
from callcenter.store.models import CALL, STARTS, Call, CallbackAttempt, CallbackItem, CallNote, CelJournal, calls

RETURNABLE = (Status.CALLBACK_REQUESTED, Status.VOICE_MESSAGE, Status.ABANDONED_QUEUE, Status.MISSED)
NOTE_MAX = 4000
# A call-back whose call has not ended in the journal while the journal went on this long after it was placed never
# will: Asterisk lost it (a restart before the call's end), or it started on a node no longer followed. It is
# settled ``failed`` then, so it stops showing as going on and stops being looked up at every look at the worklist.
# No real call-back lasts half a day; its item stays open for another one.
PLACED_AT_MOST = timedelta(hours=12)


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
    if "\x00" in text:
        raise ValueError("a note cannot contain NUL characters")
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





class WorklistError(ValueError):
    """A worklist change refused (held by somebody else, already closed); the message says why."""


def return_number(call: Call) -> str:
    """The number to call back: the one the caller asked for, else the one they called from."""
    return str(call.callback_number or call.caller_number)


def _item(session: Session, call_id: int) -> CallbackItem:
    """The item's row (created on first touch; a concurrent creator wins and this one reads theirs), in the
    session's transaction: an action refused afterwards leaves none behind. (A SAVEPOINT did this before; on
    SQLite, whose driver begins a transaction only at the first write, the savepoint's release committed the new
    row whatever happened to the action.)"""
    mine = select(CallbackItem).where(CallbackItem.call_id == call_id).with_for_update()
    item = session.scalar(mine)
    if item is not None:
        return item
    session.execute(insert_for(session, CallbackItem).values(call_id=call_id, claimed_by="", closed_reason="",
                                                             closed_by="").on_conflict_do_nothing())
    item = session.scalar(mine)
    assert item is not None
    return item


def open_call(session: Session, call_id: int) -> Call:
    """The call of an open item (WorklistError if it is not one)."""
    row = session.execute(open_items().where(CALL.id == call_id)).first()
    if row is None:
        raise WorklistError("this call is not waiting to be returned (closed, answered since, or not a request)")
    call: Call = row[0]
    return call


def claim(session: Session, call_id: int, user: str) -> None:
    """Hold an item (one person at a time; holding it again is harmless)."""
    open_call(session, call_id)
    item = _item(session, call_id)
    if item.claimed_by not in ("", user):
        raise WorklistError(f"{item.claimed_by} is working on this call already")
    item.claimed_by, item.claimed_at = user, datetime.now(UTC)


def release(session: Session, call_id: int, user: str, staff: bool = False) -> None:
    """Let go of an item (its holder, or staff for anybody)."""
    open_call(session, call_id)
    item = _item(session, call_id)
    if item.claimed_by and item.claimed_by != user and not staff:
        raise WorklistError(f"{item.claimed_by} holds this call, not you")
    item.claimed_by, item.claimed_at = "", None


def close(session: Session, call_id: int, user: str, reason: str, staff: bool = False) -> None:
    """Close an item (its holder, or staff): ``reached`` or ``dismissed``."""
    open_call(session, call_id)
    item = _item(session, call_id)
    if item.claimed_by != user and not staff:
        raise WorklistError("take the call first (claim it), then close it")
    item.closed_at, item.closed_reason, item.closed_by = datetime.now(UTC), reason, user
    item.claimed_by, item.claimed_at = "", None


def start_attempt(session: Session, call: Call, user: str, operator: str, linkedid: str) -> CallbackAttempt:
    """Record a call-back about to be placed (its call's linkedid is chosen before it starts)."""
    item = _item(session, call.id)
    if item.claimed_by != user:
        raise WorklistError("take the call first (claim it), then call back")
    attempt = CallbackAttempt(call_id=call.id, linkedid=linkedid, author=user, operator=operator,
                              number=return_number(call), started_at=datetime.now(UTC), result="placed", detail="")
    session.add(attempt)
    session.flush()
    return attempt


def settle_attempts(session: Session, operators: set[str], nodes: Sequence[str]) -> int:
    """Decide the result of call-backs whose call has ended (from the CEL journal of ``nodes``, the Asterisk
    nodes a call-back may have started on): ``reached`` when a channel that is no operator's answered (the
    citizen), else ``not_reached``; a reached citizen closes the item. Returns how many were settled. The pending
    calls' events are read in few queries, by node and linkedid (the journal's unique index: a year of journal is
    not scanned at each look at the worklist). A call has ended when its LINKEDID_END is journaled or the listener
    built its log without one (a call Asterisk lost, see :func:`callcenter.store.journal.unfinished_before`). One
    that has not once the nodes' journal has gone on :data:`PLACED_AT_MOST` past it (so not while the listener
    is away: its backfill may still bring the end) is settled ``failed``."""
    pending = session.scalars(select(CallbackAttempt).where(CallbackAttempt.result == "placed")).all()
    if not pending:
        return 0
    events: dict[str, list[tuple[str, str]]] = {attempt.linkedid: [] for attempt in pending}
    on: dict[str, set[str]] = {attempt.linkedid: set() for attempt in pending}  # the nodes journaling each
    logged: set[str] = set()
    for some in in_slices(sorted(events)) if nodes else ():
        statement = select(CelJournal.linkedid, CelJournal.node, CelJournal.event, CelJournal.payload).where(
            CelJournal.node.in_(list(nodes)), among(session, CelJournal.linkedid, some))
        for linkedid, node, event, payload in session.execute(statement):
            events[linkedid].append((event, str(payload.get("channel", ""))))
            on[linkedid].add(node)
        logged.update(session.scalars(select(CALL.linkedid).where(CALL.node.in_(list(nodes)),
                                                                   among(session, CALL.linkedid, some))))
    settled, newest = 0, None
    for attempt in pending:
        its = events[attempt.linkedid]
        if attempt.linkedid not in logged and not any(event == Cel.LINKEDID_END for event, _ in its):
            if newest is None:  # read once, and only for a call-back whose call has not ended
                newest = _newest_starts(session, nodes)
            settled += _give_up(attempt, newest, on[attempt.linkedid], nodes)
            continue
        reached = any(event == Cel.ANSWER and is_person(channel) and endpoint_of(channel) not in operators
                      for event, channel in its)
        attempt.result = "reached" if reached else "not_reached"
        settled += 1
        if reached:
            item = _item(session, attempt.call_id)
            if item.closed_at is None:
                item.closed_at, item.closed_reason, item.closed_by = attempt.started_at, "reached", attempt.author
                item.claimed_by, item.claimed_at = "", None
    return settled


def _newest_starts(session: Session, nodes: Sequence[str]) -> dict[str, float]:
    """When the newest channel journaled on each of ``nodes`` started (epoch seconds; a node with none is left
    out), through the starts' own index."""
    times = {node: session.scalar(select(func.max(CelJournal.event_time)).where(CelJournal.node == node,
                                                                                  text(STARTS)))
             for node in nodes}
    return {node: float(time) for node, time in times.items() if time is not None}


def _give_up(attempt: CallbackAttempt, newest: dict[str, float], journaling: set[str], nodes: Sequence[str]) -> int:
    """Settle ``attempt`` (its call not ended) as ``failed`` if a channel started :data:`PLACED_AT_MOST` after it
    was placed (``newest``: each node's newest start) on every node that journaled its call (``journaling``), or,
    for a call never journaled, on every node followed that has a journal; 1 if it was. A node whose listener is
    away has no newer start: its backfill may still bring the call's end, or its start."""
    known = [newest[node] for node in journaling or nodes if node in newest]
    if not known or min(known) < attempt.started_at.timestamp() + PLACED_AT_MOST.total_seconds():
        return 0
    hours = int(PLACED_AT_MOST.total_seconds() // 3600)
    attempt.result = "failed"
    attempt.detail = (f"its call began but had not ended {hours} hours later: Asterisk lost it" if journaling else
                      f"its call never reached the call log of the nodes followed ({', '.join(nodes)}) in {hours} "
                      "hours: Asterisk did not place it, or it ran on a node no longer followed")
    return 1


def attempt_for(session: Session, linkedid: str) -> CallbackAttempt | None:
    """The call-back a call was (so its page can link to the call it returned)."""
    return session.scalar(select(CallbackAttempt).where(CallbackAttempt.linkedid == linkedid).limit(1))


def worked_on(session: Session, call_id: int, user: str) -> bool:
    """Whether ``user`` holds this call's worklist item now, or called it back."""
    holds = select(CallbackItem.id).where(CallbackItem.call_id == call_id, CallbackItem.claimed_by == user,
                                          CallbackItem.closed_at.is_(None))
    called = select(CallbackAttempt.id).where(CallbackAttempt.call_id == call_id, CallbackAttempt.author == user)
    return session.scalar(holds.union_all(called).limit(1)) is not None
