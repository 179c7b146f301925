"""Write call-log records: one row per (node, linkedid), upserted so rebuilds and replays are harmless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.calls.builder import CallRecord
from callcenter.store.db import insert_for
from callcenter.store.models import Call, Recording


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _fit(text: str, column: Any) -> str:
    """Cut caller-supplied text to its column (PostgreSQL refuses longer values; the call must still be logged)."""
    length = getattr(column.type, "length", None)
    return text[:length] if length else text


def call_row(node: str, record: CallRecord, now: datetime) -> dict[str, Any]:
    """The calls-table values for a record."""
    return {
        "node": node, "linkedid": record.linkedid, "caller_number": _fit(record.caller_number, Call.caller_number),
        "caller_name": _fit(record.caller_name, Call.caller_name), "line": _fit(record.line, Call.line),
        "direction": record.direction,
        "queue": record.queue, "queue_result": record.queue_result, "operator": record.operator,
        "operator_device": record.operator_device.value if record.operator_device else None,
        "operators": record.operators, "status": record.status.value, "started_at": _when(record.started_at),
        "answered_at": _when(record.answered_at), "ended_at": _when(record.ended_at),
        "ring_seconds": record.ring_seconds, "wait_seconds": record.wait_seconds,
        "talk_seconds": record.talk_seconds, "hangup_cause": record.hangup_cause, "transfers": record.transfers,
        "ivr_path": record.ivr_path, "topic": _fit(record.topic, Call.topic), "after_hours": record.after_hours,
        "callback_number": _fit(record.callback_number, Call.callback_number), "built_at": now,
    }


def upsert_call(session: Session, node: str, record: CallRecord, now: datetime) -> None:
    """Insert the call, or replace every built field of the existing row for the same linkedid."""
    values = call_row(node, record, now)
    statement = insert_for(session, Call).values(values)
    updates = {key: statement.excluded[key] for key in values if key not in ("node", "linkedid")}
    session.execute(statement.on_conflict_do_update(index_elements=["node", "linkedid"], set_=updates))
    # Recordings stored before the call was built get attached now.
    call_id = select(Call.id).where(Call.node == node, Call.linkedid == record.linkedid).scalar_subquery()
    session.execute(update(Recording).where(Recording.node == node, Recording.linkedid == record.linkedid,
                                            Recording.call_id.is_(None)).values(call_id=call_id))
