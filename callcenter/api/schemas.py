"""Response models of the history API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from callcenter.calls.record import CallRecord


class CallOut(CallRecord):
    """One call-log row: every field of the call record, plus the store's id, node and legal hold."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    node: str
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
