"""Write call-log records: one row per (node, linkedid), upserted so rebuilds and replays are harmless."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.calls.record import CallRecord, widths
from callcenter.store import summary
from callcenter.store.db import insert_for
from callcenter.store.models import CALL, Recording, calls

WIDTHS = widths(CallRecord)


def _stored(name: str, value: Any) -> Any:
    """A field's value as the column takes it: enums as their text, caller-supplied text cut to its width."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str) and name in WIDTHS:
        value = value[:WIDTHS[name]]
    return value


def call_row(node: str, record: CallRecord, now: datetime) -> dict[str, Any]:
    """The calls-table values for a record: every field of the record, plus the node and when it was built."""
    values = {name: _stored(name, getattr(record, name)) for name in CallRecord.model_fields}
    return {**values, "node": node, "built_at": now}


def upsert_call(session: Session, node: str, record: CallRecord, now: datetime) -> None:
    """Insert the call, or replace every built field of the existing row for the same linkedid; the statistics
    summary moves the call's counts from its old row to the new one in the same transaction."""
    values = call_row(node, record, now)
    summary.maintain(session, node, record.linkedid, values)
    statement = insert_for(session, calls).values(values)
    updates = {key: statement.excluded[key] for key in values if key not in ("node", "linkedid")}
    session.execute(statement.on_conflict_do_update(index_elements=["node", "linkedid"], set_=updates))
    # Recordings stored before the call was built get attached now.
    call_id = select(CALL.id).where(CALL.node == node, CALL.linkedid == record.linkedid).scalar_subquery()
    session.execute(update(Recording).where(Recording.node == node, Recording.linkedid == record.linkedid,
                                            Recording.call_id.is_(None)).values(call_id=call_id))
