"""The CEL event journal: append with dedupe, read back a linkedid's events, find calls still to build."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, Select, String, bindparam, case, func, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from callcenter.ami.events import CelEvent, event_of
from callcenter.model.contract import Cel
from callcenter.store import jsoncodec
from callcenter.store.db import execute_rows, in_slices
from callcenter.store.models import CALL, Call, CelJournal

COLUMNS = ("node", "event_key", "linkedid", "uniqueid", "event", "event_time", "source", "payload")


def _row(node: str, key: str, event: CelEvent, source: str) -> tuple[Any, ...]:
    """A journal row, in COLUMNS order (the payload as JSON text)."""
    return (node, key, event.linkedid, event.uniqueid, event.event, event.time, source,
            jsoncodec.dumps(event.__dict__))  # to_json() without its copy


@dataclass(frozen=True)
class Appended:
    """What one append journaled: the new events in journal order, and the journal's last id before them when
    every one of them went in (then a linkedid's journal is its rows up to ``before`` followed by its events here);
    None when some did not (another writer got there first: the journal itself must be read)."""

    events: list[CelEvent]
    before: int | None


def append(session: Session, node: str, events: Sequence[CelEvent], source: str) -> set[str]:
    """Journal events not seen before; return the linkedids that got at least one new event."""
    return {event.linkedid for event in append_new(session, node, events, source).events}


def append_new(session: Session, node: str, events: Sequence[CelEvent], source: str,
               likely_new: bool = False) -> Appended:
    """Journal events not seen before (the first of equal events in one batch); say which were new.

    The keys already journaled are looked up first (a few indexed reads), then the new events are inserted in
    arrival order, so ids follow it (see :func:`_insert`); the number of rows inserted says whether every new
    event went in. ``likely_new`` (events straight from AMI, journaled before only when a batch is replayed after
    a crash): no look-up first, see :func:`_append_unseen`."""
    fresh: dict[str, CelEvent] = {}
    for event in events:
        fresh.setdefault(event.key, event)
    if likely_new and fresh:
        appended = _append_unseen(session, node, fresh, source)
        if appended is not None:
            return appended
    known = _journaled(session, node, fresh)
    new = [(key, event) for key, event in fresh.items() if key not in known]
    if not new:
        return Appended([], None)
    before = session.scalar(select(func.max(CelJournal.id)))
    inserted = _insert(session.connection(), [_row(node, key, event, source) for key, event in new])
    return Appended([event for _, event in new], int(before or 0) if inserted == len(new) else None)


def _append_unseen(session: Session, node: str, fresh: dict[str, CelEvent], source: str) -> Appended | None:
    """Insert every event without looking its key up (the look-up cost as much as a tenth of the listener's CPU
    at full rate, for keys that are new but after a crash). On SQLite the insert skips a key journaled already and
    the rows it added (ids after ``before``, of this node: one listener writes a node's journal, its spool lock
    sees to that) say which were new. On PostgreSQL COPY refuses the whole batch for one such key: it is undone to
    a savepoint and None says to look the keys up."""
    before = int(session.scalar(select(func.max(CelJournal.id))) or 0)
    rows = [_row(node, key, event, source) for key, event in fresh.items()]
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        if _insert(connection, rows) == len(rows):
            return Appended(list(fresh.values()), before)
        added = set(session.scalars(select(CelJournal.event_key).where(CelJournal.id > before,
                                                                        CelJournal.node == node)))
        return Appended([event for key, event in fresh.items() if key in added], before)
    try:
        with session.begin_nested():
            _insert(session.connection(), rows)  # the connection asked for inside: that emits the SAVEPOINT
    except IntegrityError:
        return None
    return Appended(list(fresh.values()), before)


NAMES = ", ".join(COLUMNS)
INSERT = (f"INSERT INTO cel_journal ({NAMES}) VALUES ({', '.join('?' * len(COLUMNS))}) "
          "ON CONFLICT (node, linkedid, event_key) DO NOTHING")
COPY = f"COPY cel_journal ({NAMES}) FROM STDIN"


def _insert(connection: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert the rows (COLUMNS order, keys not journaled a moment ago) in their order; how many went in.

    Through SQLAlchemy's executemany, each row cost more in Python than the database's work on it. On SQLite the
    rows go to the driver as tuples in multi-row INSERTs (see :func:`~callcenter.store.db.execute_rows`),
    skipping a key journaled meanwhile. On PostgreSQL psycopg sent them one statement each (8 us of the listener's
    CPU a row); COPY costs 1.3 and the least server time
    (a temporary table and INSERT ... SELECT ... ON CONFLICT took half as long again). COPY has no ON CONFLICT:
    should another writer journal one of the keys between the look-up and the copy (a second listener for the
    node, which the spool's lock is there to prevent), the unique key refuses the copy and the transaction, and
    the delivery tries the batch again after its backoff, when the look-up sees that row."""
    if connection.dialect.name != "postgresql":
        return execute_rows(connection, INSERT, rows)
    try:
        with connection.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(COPY) as copy:
                for row in rows:
                    copy.write_row(row)
            return int(cursor.rowcount)
    except psycopg.Error as exc:  # as SQLAlchemy raises the driver's errors for every other statement
        raise DBAPIError.instance(COPY, None, exc, psycopg.Error) from exc


def _journaled(session: Session, node: str, events: Mapping[str, CelEvent]) -> set[str]:
    """Those of the keys of ``events`` (key -> event) already in the node's journal: the keys journaled for their
    calls, read from the unique index (node, linkedid, event_key) alone."""
    found: set[str] = set()
    for some in in_slices(sorted({event.linkedid for event in events.values()})):
        found.update(session.scalars(_of_calls(session, node, some, ["event_key"])))
    return found & events.keys()


def _of_calls(session: Session, node: str, linkedids: Sequence[str], columns: Sequence[str], *conditions: Any,
              ordered: bool = False) -> Select[Any]:
    """The columns of the node's journal rows of these calls that meet the conditions (in journal order if
    ``ordered``), found by probing an index led by (node, linkedid) once per call, on either database.

    PostgreSQL, left to choose, read all the node's rows for them whenever its statistics said the node had few
    rows, as they do on a new database until autovacuum's first ANALYZE (a minute or more; never, for a table that
    only had rows deleted since): the index scanned by node alone, each row filtered by the IN list. A batch does
    this for its calls, so a busy first minute (a backfill after installing, a benchmark) went quadratic: the
    history read took 50-130 ms a batch at 60,000-200,000 rows, against 2-6 ms in probes. The linkedids come as
    one array, each probing the index in a LATERAL subquery that OFFSET 0 keeps the planner from merging into a
    join (which it planned as a hash join over the same scan by node)."""
    if session.get_bind().dialect.name != "postgresql":
        statement = select(*(getattr(CelJournal, name) for name in columns)).where(
            CelJournal.node == node, CelJournal.linkedid.in_(linkedids), *conditions)
        return statement.order_by(CelJournal.id) if ordered else statement
    calls = func.unnest(bindparam(None, list(linkedids), type_=postgresql.ARRAY(String))).table_valued(
        "linkedid").render_derived()
    picked = (*(["id"] if ordered else []), *columns)  # the keys alone come from the index (no heap read)
    rows = (select(*(getattr(CelJournal, name) for name in picked))
            .where(CelJournal.node == node, CelJournal.linkedid == calls.c.linkedid, *conditions)
            .offset(0).lateral())
    statement = select(*(rows.c[name] for name in columns)).select_from(calls).join(rows, true())
    return statement.order_by(rows.c.id) if ordered else statement


def _up_to(through: int | None) -> tuple[Any, ...]:
    # "id + 0": not the primary key's index. PostgreSQL's planner, not knowing that a batch's calls have few rows
    # before ``through``, took the ids up to it in order and filtered every one of them (9 ms a batch on the
    # bench's journal, instead of 1.5 through the linkedids' index).
    return () if through is None else (CelJournal.id + 0 <= through,)


def finished(session: Session, node: str, linkedids: Iterable[str]) -> list[str]:
    """Those of the linkedids whose LINKEDID_END is in the journal."""
    wanted = sorted(set(linkedids))
    done: list[str] = []
    for some in in_slices(wanted):
        ends = _of_calls(session, node, some, ["linkedid"], CelJournal.event == Cel.LINKEDID_END)
        done.extend(dict.fromkeys(session.scalars(ends)))
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
    """Linkedids of calls that started (a channel's CHAN_START) in the LOOK_BACK before ``before`` (epoch seconds),
    whose last journaled event is older than ``before`` and that never got their LINKEDID_END nor a call-log row:
    calls Asterisk lost (it restarted since ``before``) or that went silent. The starts are found through their
    own index (migration 0022); a call none of whose starts is journaled is not among them."""
    started = select(CelJournal.linkedid).where(CelJournal.node == node, CelJournal.event == Cel.CHAN_START,
                                                CelJournal.event_time >= before - LOOK_BACK,
                                                CelJournal.event_time < before)
    ended = func.sum(case((CelJournal.event == Cel.LINKEDID_END, 1), else_=0))
    candidates = (select(CelJournal.linkedid).where(CelJournal.node == node, CelJournal.linkedid.in_(started))
                  .group_by(CelJournal.linkedid)
                  .having(func.max(CelJournal.event_time) < before, ended == 0).subquery())
    statement = (select(candidates.c.linkedid)
                 .outerjoin(Call, (CALL.node == node) & (CALL.linkedid == candidates.c.linkedid))
                 .where(CALL.id.is_(None)).limit(limit))
    return list(session.scalars(statement).all())


def events_for_many(session: Session, node: str, linkedids: Iterable[str],
                    through: int | None = None) -> dict[str, list[CelEvent]]:
    """Each linkedid's events in journal (arrival) order (as :func:`events_for`), read in few queries; with
    ``through``, only those journaled up to that id."""
    wanted = sorted(set(linkedids))
    found: dict[str, list[CelEvent]] = {linkedid: [] for linkedid in wanted}
    for some in in_slices(wanted):
        statement = _of_calls(session, node, some, ["linkedid", "payload"], *_up_to(through), ordered=True)
        for linkedid, payload in session.execute(statement):
            found[linkedid].append(event_of(payload))
    return found


def history(session: Session, node: str, linkedids: Iterable[str], appended: Appended) -> dict[str, list[CelEvent]]:
    """Each linkedid's events in journal order, right after ``appended``: what was journaled before it, read
    back, followed by its new events, which are at hand (decoding them again is a good part of a build's cost)."""
    if appended.before is None:
        return events_for_many(session, node, linkedids)
    found = events_for_many(session, node, linkedids, through=appended.before)
    for event in appended.events:
        if event.linkedid in found:
            found[event.linkedid].append(event)
    return found


def events_for(session: Session, node: str, linkedid: str) -> list[CelEvent]:
    """A linkedid's events in journal (arrival) order."""
    statement = select(CelJournal.payload).where(
        CelJournal.node == node, CelJournal.linkedid == linkedid).order_by(CelJournal.id)
    return [event_of(payload) for payload in session.scalars(statement).all()]
