"""Response models of the history API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcenter.calls.record import CallRecord


class CallOut(CallRecord):
    """One call-log row: every field of the call record, plus the store's id, node and legal hold."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    node: str
    legal_hold: bool


class ErrorOut(BaseModel):
    """An error the API answers with (other than a validation error): what went wrong, in words."""

    detail: str


class CallPage(BaseModel):
    """A page of calls with what a client needs to page on."""

    items: list[CallOut]
    page: int
    page_size: int
    total: int = Field(description="how many calls match, exactly up to 10,000 (then 10,000: see total_exact)")
    total_exact: bool = Field(True, description="false when more than `total` calls match (counting stops at "
                                                "10,000); keep paging while pages are full")
    pages: int = Field(description="pages of `total` calls (at least this many when total_exact is false)")


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


class BucketOut(BaseModel):
    """Calls of one hour, day or week by outcome."""

    label: str
    answered: int = 0
    abandoned: int = 0
    missed: int = 0
    other: int = 0


class GroupOut(BaseModel):
    """One row of a breakdown: ``key`` is a line number, topic code or operator id (empty for calls with none:
    no topic chosen, no operator), ``all`` for the total."""

    key: str
    calls: int
    answered: int
    wait_avg: float | None
    wait_p90: float | None
    talk_avg: float | None


class StatsOut(BaseModel):
    """Statistics of a date range."""

    buckets: list[BucketOut]
    total: GroupOut
    by: dict[str, list[GroupOut]]


class LiveCallOut(BaseModel):
    """A call in progress; ``since`` is when its current stage began (epoch seconds)."""

    linkedid: str
    caller_number: str
    caller_name: str
    line: str
    started: float
    stage: str
    since: float
    topic: str
    operators: list[str]
    node: str = ""


class LiveOperatorOut(BaseModel):
    """An operator's state: free, ringing, on_call, paused, unreachable or logged_out. With several Asterisk
    nodes, the state that matters most across them (ringing or on a call, then paused, free, unreachable, logged
    out); ``nodes`` has the state on each."""

    id: str
    name: str
    state: str
    paused_reason: str
    since: float
    nodes: dict[str, str] = {}


class LiveNodeOut(BaseModel):
    """An Asterisk node the board follows, and whether its AMI session is up."""

    name: str
    connected: bool


class LiveOut(BaseModel):
    """The live board: calls by stage (arriving, ivr, queue, talking), operators, today's calls by status.
    ``connected`` is false while the board lacks the AMI session of any node (``nodes`` says which; a node that
    is away shows none of its calls)."""

    connected: bool
    nodes: list[LiveNodeOut] = []
    calls: dict[str, list[LiveCallOut]] = {}
    operators: list[LiveOperatorOut] = []
    today: dict[str, int] = {}
    event_time: float | None = None
    sent_at: float | None = None
