"""Response models of the history API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class CallOut(BaseModel):
    """One call-log row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    node: str
    linkedid: str
    caller_number: str
    caller_name: str
    line: str
    direction: str
    queue: str
    queue_result: str
    operator: str
    operator_device: str | None
    operators: list[str]
    status: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    ring_seconds: float | None
    wait_seconds: float | None
    talk_seconds: float | None
    hangup_cause: int | None
    transfers: int
    ivr_path: list[str]
    topic: str
    after_hours: bool
    callback_number: str
    legal_hold: bool


class CallPage(BaseModel):
    """A page of calls with what a client needs to page on."""

    items: list[CallOut]
    page: int
    page_size: int
    total: int
    pages: int


class EventOut(BaseModel):
    """One CEL event in a call's timeline."""

    time: datetime
    event: str
    channel: str
    uniqueid: str
    app: str
    appdata: str
    extra: dict[str, Any]
    source: str


class CallDetail(CallOut):
    """A call with its event timeline."""

    events: list[EventOut]
