"""The live board's state, pure: CEL events (the same as the call log reads) and queue-member events in, a
snapshot out. Stages follow the application each caller event carries (as the builder does), so a PBX's own
dialplan shows right too: ``arriving`` (answered, no menu yet), ``ivr``, ``queue`` (since: the wait so far),
``talking`` (with the operators connected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from callcenter.ami.events import CelEvent
from callcenter.calls.channels import Directory, endpoint_of, is_person
from callcenter.model.contract import IVR_APPS, IVR_EVENT_PREFIX, QUEUE_APP, Cel, IvrEvent

# Asterisk's device states as QueueMemberStatus reports them, mapped to what a supervisor reads.
MEMBER_STATES = {"1": "free", "2": "on_call", "3": "on_call", "4": "unreachable", "5": "unreachable",
                 "6": "ringing", "7": "ringing", "8": "on_call"}


@dataclass
class LiveCall:
    """A call in progress."""

    linkedid: str
    caller_number: str
    caller_name: str
    line: str
    started: float
    stage: str = "arriving"
    since: float = 0.0  # when the current stage began (epoch seconds)
    topic: str = ""
    operators: list[str] = field(default_factory=list)


@dataclass
class LiveOperator:
    """An operator's state in the queue (from the queue's member status)."""

    id: str
    name: str
    state: str = "unreachable"  # free, ringing, on_call, paused, unreachable
    paused_reason: str = ""
    since: float = 0.0


class Board:
    """Calls by linkedid and operators by id; :meth:`snapshot` is what the page shows."""

    def __init__(self, directory: Directory, names: Mapping[str, str]) -> None:
        self.directory = directory
        self.calls: dict[str, LiveCall] = {}
        self.operators = {op: LiveOperator(op, name) for op, name in names.items()}
        self.connected = False

    def reset(self) -> None:
        """Forget the calls (after a reconnect the PBX is asked again)."""
        self.calls.clear()

    def apply(self, event: CelEvent) -> bool:
        """Fold one CEL event in; whether the board changed."""
        if event.event == Cel.LINKEDID_END:
            return self.calls.pop(event.linkedid, None) is not None
        call = self.calls.get(event.linkedid)
        if call is None:
            if event.event != Cel.CHAN_START or event.uniqueid != event.linkedid:
                return False
            call = self.calls[event.linkedid] = LiveCall(event.linkedid, event.cid_num, event.cid_name,
                                                         event.exten if event.exten.isdigit() else "", event.time,
                                                         since=event.time)
            return True
        return self._update(call, event)

    def _stage(self, call: LiveCall, stage: str, at: float) -> bool:
        if call.stage == stage:
            return False
        call.stage, call.since = stage, at
        return True

    def _update(self, call: LiveCall, event: CelEvent) -> bool:
        caller = event.uniqueid == call.linkedid
        if event.event.startswith(IVR_EVENT_PREFIX):
            topic = event.user_fields.get("topic", "") if event.event == IvrEvent.TOPIC.event_name else ""
            call.topic = topic or call.topic
            return bool(topic) or (call.stage == "arriving" and self._stage(call, "ivr", event.time))
        if event.event == Cel.BRIDGE_ENTER and not caller and is_person(event.channel):
            endpoint = endpoint_of(event.channel)
            if endpoint not in call.operators:
                call.operators.append(endpoint)
            self._stage(call, "talking", event.time)
            return True
        if caller and event.app == QUEUE_APP and call.stage in ("arriving", "ivr"):
            return self._stage(call, "queue", event.time)
        if caller and event.app in IVR_APPS and call.stage == "arriving":
            return self._stage(call, "ivr", event.time)
        return False

    def member(self, fields: Mapping[str, str], now: float) -> bool:
        """A QueueMemberStatus / QueueMember event (or a pause change); whether the board changed."""
        operator = self.operators.get(fields.get("MemberName", "") or endpoint_of(fields.get("Interface", "")))
        if operator is None:
            return False
        paused = fields.get("Paused") == "1"
        state = "paused" if paused else MEMBER_STATES.get(fields.get("Status", ""), "unreachable")
        reason = fields.get("PausedReason", "") if paused else ""
        if (operator.state, operator.paused_reason) == (state, reason):
            return False
        operator.state, operator.paused_reason, operator.since = state, reason, now
        return True

    def snapshot(self) -> dict[str, Any]:
        """Calls by stage (oldest first) and operators, as JSON-ready data."""
        calls = sorted(self.calls.values(), key=lambda c: c.since)
        return {"connected": self.connected,
                "calls": {stage: [asdict(c) for c in calls if c.stage == stage]
                          for stage in ("arriving", "ivr", "queue", "talking")},
                "operators": [asdict(op) for op in self.operators.values()]}
