"""Write call-log records: one row per (node, linkedid), upserted so rebuilds and replays are harmless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callcenter.calls.builder import CallRecord
from callcenter.store.models import Call


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def call_row(node: str, record: CallRecord, now: datetime) -> dict[str, Any]:
    """The calls-table values for a record."""
    return {
        "node": node, "linkedid": record.linkedid, "caller_number": record.caller_number,
        "caller_name": record.caller_name, "line": record.line, "direction": record.direction,
        "queue": record.queue, "queue_result": record.queue_result, "operator": record.operator,
        "operator_device": record.operator_device.value if record.operator_device else None,
        "operators": record.operators, "status": record.status.value, "started_at": _when(record.started_at),
        "answered_at": _when(record.answered_at), "ended_at": _when(record.ended_at),
        "ring_seconds": record.ring_seconds, "wait_seconds": record.wait_seconds,
        "talk_seconds": record.talk_seconds, "hangup_cause": record.hangup_cause, "transfers": record.transfers,
        "ivr_path": record.ivr_path, "topic": record.topic, "after_hours": record.after_hours,
        "callback_number": record.callback_number, "built_at": now,
    }


def upsert_call(session: Session, node: str, record: CallRecord, now: datetime) -> None:
    """Insert the call, or replace every built field of the existing row for the same linkedid."""
    values = call_row(node, record, now)
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(Call).values(values)
    updates = {key: statement.excluded[key] for key in values if key not in ("node", "linkedid")}
    session.execute(statement.on_conflict_do_update(index_elements=["node", "linkedid"], set_=updates))
