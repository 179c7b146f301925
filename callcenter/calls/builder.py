"""Build one call-log record from the CEL events of one linkedid. Pure: events in, record out.

The caller's channel is the one whose uniqueid is the linkedid (it started the call); operators' channels are the
others. User events raised by the dialplan (see names.py) say which line was dialled, when the caller joined the
queue, which operator's phone answered and why the queue gave up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from callcenter.ami.events import CelEvent
from callcenter.calls import names
from callcenter.calls.names import DeviceType, Status


@dataclass
class CallRecord:
    """One row of the call log, times as epoch seconds (UTC)."""

    linkedid: str
    started_at: float
    ended_at: float
    status: Status
    caller_number: str = ""
    caller_name: str = ""
    line: str = ""
    direction: str = "inbound"
    queue: str = ""
    queue_result: str = ""
    operator: str = ""
    operator_device: DeviceType | None = None
    answered_at: float | None = None
    ring_seconds: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    hangup_cause: int | None = None
    transfers: int = 0
    operators: list[str] = field(default_factory=list)
    ivr_path: list[str] = field(default_factory=list)
    topic: str = ""
    after_hours: bool = False
    callback_number: str = ""


@dataclass
class _State:
    """What the handlers collect while walking the events in order."""

    record: CallRecord
    caller_uniqueid: str
    queue_entered_at: float | None = None
    caller_answered: bool = False
    operator_started: dict[str, float] = field(default_factory=dict)
    operator_answered: dict[str, float] = field(default_factory=dict)
    bridged_at: float | None = None
    unbridged_at: float | None = None
    ivr_started: bool = False
    voice_message: bool = False
    ivr_outcome: str = ""  # the last IVR_EXIT outcome


def endpoint_of(channel: str) -> str:
    """``PJSIP/op101-0000002a`` -> ``op101``."""
    tech_and_name = channel.split("/", 1)[-1]
    return tech_and_name.rsplit("-", 1)[0] if "-" in tech_and_name else tech_and_name


def _is_caller(state: _State, event: CelEvent) -> bool:
    return event.uniqueid == state.caller_uniqueid


def _on_chan_start(state: _State, event: CelEvent) -> None:
    if not _is_caller(state, event):
        state.operator_started.setdefault(event.uniqueid, event.time)


def _on_answer(state: _State, event: CelEvent) -> None:
    if _is_caller(state, event):
        state.caller_answered = True
    else:
        state.operator_answered.setdefault(event.uniqueid, event.time)
        if not state.record.operator:
            state.record.operator = endpoint_of(event.channel)


def _on_bridge_enter(state: _State, event: CelEvent) -> None:
    if _is_caller(state, event) and state.bridged_at is None:
        state.bridged_at = event.time


def _on_bridge_exit(state: _State, event: CelEvent) -> None:
    if _is_caller(state, event):
        state.unbridged_at = event.time


def _on_hangup(state: _State, event: CelEvent) -> None:
    if _is_caller(state, event):
        cause = event.extra.get("hangupcause")
        state.record.hangup_cause = int(str(cause)) if str(cause).isdigit() else None
        if state.bridged_at is not None and (state.unbridged_at is None or state.unbridged_at < state.bridged_at):
            state.unbridged_at = event.time


def _on_transfer(state: _State, event: CelEvent) -> None:
    state.record.transfers += 1


def _on_hotline(state: _State, event: CelEvent) -> None:
    state.record.line = event.user_fields.get("line", "") or state.record.line


def _on_queue_enter(state: _State, event: CelEvent) -> None:
    state.record.queue = event.user_fields.get("queue", "")
    state.queue_entered_at = event.time


def _on_operator_answer(state: _State, event: CelEvent) -> None:
    fields = event.user_fields
    endpoint = fields.get("endpoint") or endpoint_of(event.channel)
    state.record.operators.append(endpoint)
    if len(state.record.operators) == 1:
        state.record.operator = endpoint
        device = fields.get("device", "")
        state.record.operator_device = DeviceType(device) if device in DeviceType._value2member_map_ else (
            DeviceType.UNKNOWN)


def _on_queue_result(state: _State, event: CelEvent) -> None:
    state.record.queue_result = event.user_fields.get("status", "")


def _on_ivr(state: _State, event: CelEvent) -> None:
    fields = event.user_fields
    state.record.ivr_path.append(f"{event.event}:{event.extra.get('extra', '')}")
    if fields.get("topic"):
        state.record.topic = fields["topic"]
    if event.event == names.IVR_START:
        state.ivr_started = True
    elif event.event == names.IVR_AFTER_HOURS:
        state.record.after_hours = True
    elif event.event == names.IVR_MESSAGE:
        state.voice_message = True
    elif event.event == names.IVR_CALLBACK:
        state.record.callback_number = fields.get("number", "")
    elif event.event == names.IVR_EXIT:
        state.ivr_outcome = fields.get("outcome", "")


Handler = Callable[[_State, CelEvent], None]
HANDLERS: dict[str, Handler] = {
    names.CHAN_START: _on_chan_start,
    names.ANSWER: _on_answer,
    names.BRIDGE_ENTER: _on_bridge_enter,
    names.BRIDGE_EXIT: _on_bridge_exit,
    names.HANGUP: _on_hangup,
    names.BLINDTRANSFER: _on_transfer,
    names.ATTENDEDTRANSFER: _on_transfer,
    names.HOTLINE: _on_hotline,
    names.QUEUE_ENTER: _on_queue_enter,
    names.OPERATOR_ANSWER: _on_operator_answer,
    names.QUEUE_RESULT: _on_queue_result,
}


def _handler(event_name: str) -> Handler | None:
    if event_name.startswith(names.IVR_EVENT_PREFIX):
        return _on_ivr
    return HANDLERS.get(event_name)


def _caller_event(events: list[CelEvent]) -> CelEvent:
    linkedid = events[0].linkedid
    for event in events:
        if event.uniqueid == linkedid:
            return event
    return events[0]


def _status(state: _State) -> Status:
    if state.bridged_at is not None and state.record.operator:
        return Status.ANSWERED
    if state.voice_message and state.ivr_outcome in ("", "message"):  # a failed recording sends to the queue
        return Status.VOICE_MESSAGE
    if state.record.callback_number:
        return Status.CALLBACK_REQUESTED
    if state.record.queue_result:
        return Status.MISSED
    if state.queue_entered_at is not None:
        return Status.ABANDONED_QUEUE
    if state.ivr_started:
        return Status.ABANDONED_IVR
    if state.caller_answered:
        return Status.ABANDONED_BEFORE_QUEUE
    return Status.FAILED


def _finish(state: _State) -> CallRecord:
    record = state.record
    record.status = _status(state)
    if record.status is Status.ANSWERED:
        assert state.bridged_at is not None
        record.answered_at = state.bridged_at
        end = state.unbridged_at if state.unbridged_at is not None else record.ended_at
        record.talk_seconds = round(max(0.0, end - state.bridged_at), 3)
        first_op = min(state.operator_answered, key=state.operator_answered.__getitem__, default=None)
        if first_op is not None and first_op in state.operator_started:
            record.ring_seconds = round(state.operator_answered[first_op] - state.operator_started[first_op], 3)
    if state.queue_entered_at is not None:
        until = record.answered_at if record.answered_at is not None else record.ended_at
        record.wait_seconds = round(max(0.0, until - state.queue_entered_at), 3)
    if not record.line:
        record.direction = "internal"
    return record


def build_call(events: Iterable[CelEvent]) -> CallRecord:
    """Fold the events of one linkedid (in journal order) into its call-log record."""
    ordered = sorted(events, key=lambda e: e.time)
    if not ordered:
        raise ValueError("no events to build a call from")
    first = _caller_event(ordered)
    record = CallRecord(linkedid=first.linkedid, started_at=ordered[0].time, ended_at=ordered[-1].time,
                        status=Status.FAILED, caller_number=first.cid_num, caller_name=first.cid_name,
                        line=first.exten if first.exten.isdigit() else "")
    state = _State(record=record, caller_uniqueid=first.uniqueid)
    for event in ordered:
        handler = _handler(event.event)
        if handler is not None:
            handler(state, event)
    return _finish(state)
