"""The call-log row, defined once. The builder fills it; the store's ``calls`` table, the writer's values and the
API's ``CallOut`` schema are all derived from this class (``callcenter.store.models``, ``callcenter.store.writer``,
``callcenter.api.schemas``), so adding a field is one edit here plus a migration.

``Width(n)`` marks text stored in a column of ``n`` characters: caller-supplied text longer than that is cut
when written (PostgreSQL would refuse it, and the call must still be logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from callcenter.model.contract import DeviceType, Direction, EndedBy, Status


@dataclass(frozen=True)
class Width:
    """The stored width of a text field, in characters."""

    characters: int


class CallRecord(BaseModel):
    """One call as the log shows it: who called which line, what happened, who answered and for how long."""

    linkedid: Annotated[str, Width(64), Field(description="Asterisk's id of the whole call")]
    started_at: Annotated[datetime, Field(description="when the call reached the PBX (UTC)")]
    ended_at: Annotated[datetime, Field(description="when its last channel ended (UTC)")]
    status: Annotated[Status, Width(32), Field(description="how the call ended for the citizen")]
    caller_number: Annotated[str, Width(64)] = ""
    caller_name: Annotated[str, Width(255)] = ""
    line: Annotated[str, Width(32), Field(description="the hotline number dialled")] = ""
    direction: Annotated[Direction, Width(16)] = Direction.INBOUND
    queue: Annotated[str, Width(64)] = ""
    queue_result: Annotated[str, Width(32), Field(description="why the queue gave up (TIMEOUT, JOINEMPTY)")] = ""
    operator: Annotated[str, Width(64), Field(description="the first operator who talked to the caller")] = ""
    operator_device: Annotated[DeviceType | None, Width(16)] = None
    operators: Annotated[list[str], Field(description="every operator who talked to the caller, in order")] = []
    answered_at: datetime | None = None
    ring_seconds: float | None = None
    wait_seconds: Annotated[float | None, Field(description="in the queue, until answered or given up")] = None
    talk_seconds: float | None = None
    hangup_cause: int | None = None
    ended_by: Annotated[EndedBy, Width(16), Field(description="who ended the call: caller, operator, pbx, system")] = (
        EndedBy.UNKNOWN)
    transfers: int = 0
    ivr_path: Annotated[list[str], Field(description="the voice menu steps, as IVR_<event>:<fields>")] = []
    topic: Annotated[str, Width(64)] = ""
    after_hours: bool = False
    callback_number: Annotated[str, Width(32)] = ""


def widths(model: type[BaseModel]) -> dict[str, int]:
    """The stored widths of a model's text fields, by field name."""
    found = {}
    for name, info in model.model_fields.items():
        for meta in info.metadata:
            if isinstance(meta, Width):
                found[name] = meta.characters
    return found
