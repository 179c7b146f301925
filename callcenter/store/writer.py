"""Write call-log records: one row per (node, linkedid), upserted so rebuilds and replays are harmless.

A batch of calls is written with a fixed number of statements whatever its size: the statistics summary's moves
(``summary.maintain``), one upsert for every row, one update attaching recordings. Each statement is built once
per dialect and kept: building an ``ON CONFLICT DO UPDATE`` with its ``excluded`` columns costs more than
executing it for one row; on SQLite the rows go to the driver as tuples, in multi-row INSERTs (``db.insert_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from callcenter.calls.record import CallRecord, widths
from callcenter.store import summary
from callcenter.store.db import in_slices, insert_in, insert_rows
from callcenter.store.models import CALL, Recording, calls

WIDTHS = widths(CallRecord)
FIELDS = tuple(CallRecord.model_fields)
# Only the fields stored as text can hold an enum or a text too long for its column (every enum field has a width:
# its column is text): the others are numbers, times and lists, looked at no further, once per call.
TEXT = tuple(WIDTHS.items())


def call_row(node: str, record: CallRecord, now: datetime) -> dict[str, Any]:
    """The calls-table values for a record: every field of the record (enums as their text, caller-supplied text
    cut to its column's width), plus the node and when it was built."""
    values = {name: getattr(record, name) for name in FIELDS}
    for name, width in TEXT:
        value = values[name]
        if isinstance(value, Enum):
            values[name] = value = value.value
        if isinstance(value, str) and len(value) > width:
            values[name] = value[:width]
    values["node"], values["built_at"] = node, now
    return values


@cache
def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (node, linkedid) DO UPDATE every built field, for ``dialect``."""
    statement = insert_in(dialect, calls)
    built = [name for name in (*CallRecord.model_fields, "built_at") if name != "linkedid"]
    return statement.on_conflict_do_update(index_elements=["node", "linkedid"],
                                           set_={name: statement.excluded[name] for name in built})


# Recordings stored before their call was built get attached when it is. On the table, not the ORM class: an ORM
# update first evaluates its WHERE against the session's objects (none here), which took twice the update's time.
_RECORDINGS = Recording.metadata.tables[Recording.__tablename__]
_RECORDING = _RECORDINGS.c
_ATTACH = (update(_RECORDINGS)
           .where(_RECORDING.node == bindparam("at_node"), _RECORDING.call_id.is_(None),
                  _RECORDING.linkedid.in_(bindparam("at_linkedids", expanding=True)))
           .values(call_id=select(CALL.id).where(CALL.node == _RECORDING.node, CALL.linkedid == _RECORDING.linkedid)
                   .scalar_subquery()))


def upsert_calls(session: Session, node: str, records: Sequence[CallRecord], now: datetime) -> None:
    """Insert each call, or replace every built field of the stored row for the same linkedid (a linkedid given
    twice: the last record wins); the statistics summary moves the calls' counts from their old rows to the new
    ones in the same transaction. Rows go in linkedid order, so two writers lock shared rows in the same order."""
    latest = {row["linkedid"]: row for row in (call_row(node, record, now) for record in records)}
    if not latest:
        return
    linkedids = sorted(latest)
    rows = [latest[linkedid] for linkedid in linkedids]
    summary.maintain(session, node, rows)
    insert_rows(session, _upsert(session.get_bind().dialect.name), rows)
    for some in in_slices(linkedids):
        session.execute(_ATTACH, {"at_node": node, "at_linkedids": some})


def upsert_call(session: Session, node: str, record: CallRecord, now: datetime) -> None:
    """One call: :func:`upsert_calls` of one record."""
    upsert_calls(session, node, [record], now)
