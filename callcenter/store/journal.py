"""The CEL event journal: append with dedupe, read back a linkedid's events, find calls still to build."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from callcenter.ami.events import CelEvent
from callcenter.model.contract import Cel
from callcenter.store.db import insert_for
from callcenter.store.models import CALL, Call, CelJournal

JOURNAL = CelJournal.__table__  # Core inserts: no ORM bulk-insert bookkeeping per row

CHUNK = 500  # rows per INSERT statement (SQLite caps bound parameters per statement)


def _row(node: str, event: CelEvent, source: str) -> dict[str, Any]:
    return {"node": node, "event_key": event.key, "linkedid": event.linkedid, "uniqueid": event.uniqueid,
            "event": event.event, "event_time": event.time, "source": source, "payload": event.to_json()}


def append(session: Session, node: str, events: Sequence[CelEvent], source: str) -> set[str]:
    """Journal events not seen before; return the linkedids that got at least one new event."""
    if not events:
        return set()
    # One statement, many parameter sets: SQLAlchemy compiles it once and sends the rows as multi-row VALUES
    # ("insertmanyvalues", pages within SQLite's parameter cap), in order, so ids follow arrival order. (A
    # statement with the rows as literal values is compiled anew for every batch: most of the journal's cost.)
    statement = insert_for(session, JOURNAL).on_conflict_do_nothing(
        index_elements=["node", "event_key"]).returning(JOURNAL.c.linkedid)
    rows = [_row(node, event, source) for event in events]
    return set(session.scalars(statement, rows).all())


def finished(session: Session, node: str, linkedids: Iterable[str]) -> list[str]:
    """Those of the linkedids whose LINKEDID_END is in the journal."""
    wanted = sorted(set(linkedids))
    done: list[str] = []
    for start in range(0, len(wanted), CHUNK):
        statement = select(CelJournal.linkedid).distinct().where(
            CelJournal.node == node, CelJournal.event == Cel.LINKEDID_END,
            CelJournal.linkedid.in_(wanted[start:start + CHUNK]))
        done.extend(session.scalars(statement).all())
    return done


def finished_without_call(session: Session, node: str, after: int = 0,
                          limit: int = 10_000) -> tuple[list[str], int]:
    """Linkedids that ended (LINKEDID_END journaled, in journal rows after ``after``) but have no call-log row yet,
    and the journal id up to which that is now known (pass it as ``after`` next time, so a check costs the events
    since the last one, not the whole history)."""
    ends = (CelJournal.node == node) & (CelJournal.event == Cel.LINKEDID_END) & (CelJournal.id > after)
    top = session.scalar(select(func.max(CelJournal.id)).where(ends))
    if top is None:
        return [], after
    statement = (select(CelJournal.id, CelJournal.linkedid)
                 .outerjoin(Call, (CALL.node == CelJournal.node) & (CALL.linkedid == CelJournal.linkedid))
                 .where(ends, CelJournal.id <= top, CALL.id.is_(None)).order_by(CelJournal.id).limit(limit))
    rows = session.execute(statement).all()
    if len(rows) == limit:  # more than one go's worth: the next check goes on from the last one taken
        top = rows[-1][0]
    return list(dict.fromkeys(linkedid for _, linkedid in rows)), int(top)


LOOK_BACK = 86_400.0  # seconds before the cut-off that a call cut by a restart may have started (no call is longer)


def unfinished_before(session: Session, node: str, before: float, limit: int = 10_000) -> list[str]:
    """Linkedids whose last journaled event is older than ``before`` (epoch seconds) and that never got their
    LINKEDID_END nor a call-log row: calls Asterisk lost (it restarted since ``before``) or that went silent."""
    ended = func.sum(case((CelJournal.event == Cel.LINKEDID_END, 1), else_=0))
    candidates = (select(CelJournal.linkedid).where(CelJournal.node == node,
                                                    CelJournal.event_time >= before - LOOK_BACK)
                  .group_by(CelJournal.linkedid)
                  .having(func.max(CelJournal.event_time) < before, ended == 0).subquery())
    statement = (select(candidates.c.linkedid)
                 .outerjoin(Call, (CALL.node == node) & (CALL.linkedid == candidates.c.linkedid))
                 .where(CALL.id.is_(None)).limit(limit))
    return list(session.scalars(statement).all())


def events_for_many(session: Session, node: str, linkedids: Iterable[str]) -> dict[str, list[CelEvent]]:
    """Each linkedid's events in journal (arrival) order (as :func:`events_for`), read in few queries."""
    wanted = sorted(set(linkedids))
    found: dict[str, list[CelEvent]] = {linkedid: [] for linkedid in wanted}
    for start in range(0, len(wanted), CHUNK):
        statement = select(CelJournal.linkedid, CelJournal.payload).where(
            CelJournal.node == node, CelJournal.linkedid.in_(wanted[start:start + CHUNK])).order_by(CelJournal.id)
        for linkedid, payload in session.execute(statement):
            found[linkedid].append(CelEvent(**payload))
    return found


def events_for(session: Session, node: str, linkedid: str) -> list[CelEvent]:
    """A linkedid's events in journal (arrival) order."""
    statement = select(CelJournal.payload).where(
        CelJournal.node == node, CelJournal.linkedid == linkedid).order_by(CelJournal.id)
    return [CelEvent(**payload) for payload in session.scalars(statement).all()]
