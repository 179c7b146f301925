"""Build one call-log record from the CEL events of one linkedid. Pure: events in, record out.

The log comes from standard CEL, so it is right for any dialplan (the project's own, or a PBX's that raises no
user events):
- the caller's channel is the one whose uniqueid is the linkedid; the line is the hotline number it dialled;
- the queue: the first caller event whose application is ``Queue`` (APP_START when cel.conf lists Queue, else the
  hold music's STREAM_BEGIN or the bridge), its name from the application data;
- operators: the person channels (not Asterisk's Local helpers) connected to the caller through bridges and Local
  channel pairs, in order, across blind and attended transfers (:mod:`callcenter.calls.conversation`); their
  device comes from the telephony model (:class:`Directory`);
- how it ended: the caller's HANGUP says who hung up (``hangupsource``): the caller (abandoned in the voice menu,
  in the queue, or before either), an operator, the dialplan (missed), or Asterisk itself (empty: a shutdown or
  restart cut the call, which is then failed). A call whose end never came (Asterisk crashed) is built ``cut``.
The project's user events add what only they know (the IVR's path and topic, after-hours outcomes, why the queue
gave up) and win where both speak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from callcenter.ami.events import CelEvent
from callcenter.calls.channels import Directory, endpoint_of
from callcenter.calls.conversation import Conversation, conversation
from callcenter.calls.record import CallRecord
from callcenter.model.contract import (
    DIALPLAN_HANGUP,
    IVR_APPS,
    IVR_EVENT_PREFIX,
    QUEUE_APP,
    QUEUE_MEMBER_APP,
    Cel,
    Direction,
    EndedBy,
    IvrEvent,
    IvrOutcome,
    Status,
    UserEvent,
)
from callcenter.model.text import is_digits


@dataclass
class _State:
    """What the handlers collect while walking the events in order."""

    record: CallRecord
    caller: str  # the caller channel's uniqueid (= the linkedid)
    directory: Directory
    queue_at: float | None = None
    caller_answered: bool = False
    in_ivr: bool = False
    hangup_seen: bool = False
    hangup_source: str = ""
    caller_channel: str = ""
    started: dict[str, float] = field(default_factory=dict)  # channel uniqueid -> CHAN_START
    answered: dict[str, float] = field(default_factory=dict)  # channel uniqueid -> ANSWER
    uniqueids: dict[str, str] = field(default_factory=dict)  # channel name -> uniqueid
    first_operator: str = ""  # uniqueid of the first operator's channel
    bridged_at: float | None = None
    unbridged_at: float | None = None
    voice_message: bool = False
    ivr_outcome: str = ""  # the last IVR_EXIT outcome


def _is_caller(state: _State, event: CelEvent) -> bool:
    return event.uniqueid == state.caller


def _observe(state: _State, event: CelEvent) -> None:
    """Every event: the application a channel runs says where the caller is (menu, queue)."""
    if _is_caller(state, event):
        if event.app == QUEUE_APP and state.queue_at is None:
            state.queue_at = event.time
            state.record.queue = event.appdata.split(",", 1)[0]
        elif event.app in IVR_APPS:
            state.in_ivr = True
    elif event.app == QUEUE_MEMBER_APP and state.queue_at is None:  # no caller event showed the queue
        state.queue_at = state.started.get(event.uniqueid, event.time)


def _on_chan_start(state: _State, event: CelEvent) -> None:
    state.started.setdefault(event.uniqueid, event.time)
    state.uniqueids.setdefault(event.channel, event.uniqueid)


def _on_answer(state: _State, event: CelEvent) -> None:
    if _is_caller(state, event):
        state.caller_answered = True
    else:
        state.answered.setdefault(event.uniqueid, event.time)


def _on_hangup(state: _State, event: CelEvent) -> None:
    if not _is_caller(state, event):
        return
    cause = str(event.extra.get("hangupcause"))
    state.record.hangup_cause = int(cause) if is_digits(cause) and len(cause) <= 3 else None  # Q.850: 0-127
    state.hangup_source = str(event.extra.get("hangupsource", ""))
    state.hangup_seen = True


def _on_transfer(state: _State, event: CelEvent) -> None:
    state.record.transfers += 1


def _on_queue_result(state: _State, event: CelEvent) -> None:
    state.record.queue_result = event.user_fields.get("status", "")


def _on_ivr(state: _State, event: CelEvent) -> None:
    fields = event.user_fields
    state.in_ivr = True
    state.record.ivr_path.append(f"{event.event}:{event.extra.get('extra', '')}")
    if fields.get("topic"):
        state.record.topic = fields["topic"]
    if event.event == IvrEvent.AFTER_HOURS.event_name:
        state.record.after_hours = True
    elif event.event == IvrEvent.MESSAGE.event_name:
        state.voice_message = True
    elif event.event == IvrEvent.CALLBACK.event_name:
        state.record.callback_number = fields.get("number", "")
    elif event.event == IvrEvent.EXIT.event_name:
        state.ivr_outcome = fields.get("outcome", "")


Handler = Callable[[_State, CelEvent], None]
HANDLERS: dict[str, Handler] = {
    Cel.CHAN_START: _on_chan_start,
    Cel.ANSWER: _on_answer,
    Cel.HANGUP: _on_hangup,
    Cel.BLINDTRANSFER: _on_transfer,
    Cel.ATTENDEDTRANSFER: _on_transfer,
    UserEvent.QUEUE_RESULT: _on_queue_result,
}


def _handler(event_name: str) -> Handler | None:
    if event_name.startswith(IVR_EVENT_PREFIX):
        return _on_ivr
    return HANDLERS.get(event_name)


# Dialplan contexts a call-back passes through on its way to the citizen (asterisk-conf/extensions.conf).
OUTBOUND_CONTEXTS = frozenset({"callback", "outbound"})


def _caller_event(events: list[CelEvent]) -> CelEvent:
    linkedid = events[0].linkedid
    return next((event for event in events if event.uniqueid == linkedid), events[0])


def _operators(state: _State, talk: Conversation) -> None:
    """The operators, in the order they were connected to the caller, and when the caller was connected."""
    record = state.record
    for channel in talk.people:
        endpoint = endpoint_of(channel)
        if not record.operators or record.operators[-1] != endpoint:
            record.operators.append(endpoint)
    if talk.people:
        record.operator = endpoint_of(talk.people[0])
        record.operator_device = state.directory.device(record.operator)
        state.first_operator = state.uniqueids.get(talk.people[0], "")
    state.bridged_at = talk.connected_at
    state.unbridged_at = talk.disconnected_at


def _caller_left(state: _State) -> bool:
    """Whether the caller hung up (rather than the PBX: the dialplan, a queue giving up)."""
    return bool(state.caller_channel) and state.hangup_source == state.caller_channel


def _ended_by(state: _State, cut: bool) -> EndedBy:
    """Who ended the call, from the caller's HANGUP; a call cut by a crash has none."""
    if not state.hangup_seen:
        return EndedBy.SYSTEM if cut else EndedBy.UNKNOWN
    source = state.hangup_source
    if source == state.caller_channel:
        return EndedBy.CALLER
    if source == DIALPLAN_HANGUP:
        return EndedBy.PBX
    return EndedBy.SYSTEM if source == "" else EndedBy.OPERATOR


def _status(state: _State) -> Status:
    if state.record.ended_by is EndedBy.SYSTEM:
        return Status.FAILED  # Asterisk itself cut the call; answered_at and operator show how far it got
    if state.bridged_at is not None and state.record.operator:
        return Status.ANSWERED
    if state.voice_message and state.ivr_outcome in ("", IvrOutcome.MESSAGE):  # a failed recording sends to the queue
        return Status.VOICE_MESSAGE
    if state.record.callback_number:
        return Status.CALLBACK_REQUESTED
    if state.record.queue_result or (state.caller_answered and not _caller_left(state)):
        return Status.MISSED  # the queue gave up, or the PBX ended the call before anyone answered
    if state.queue_at is not None:
        return Status.ABANDONED_QUEUE
    if state.in_ivr:
        return Status.ABANDONED_IVR
    if state.caller_answered:
        return Status.ABANDONED_BEFORE_QUEUE
    return Status.FAILED


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _times(state: _State, ended: float) -> None:
    """Answer, talk, ring and wait times (seconds, to the millisecond)."""
    record = state.record
    bridged = state.bridged_at if record.operator else None  # answered (and maybe then cut by Asterisk)
    if bridged is not None:
        record.answered_at = _when(bridged)
        end = state.unbridged_at if state.unbridged_at is not None else ended
        record.talk_seconds = round(max(0.0, end - bridged), 3)
        first = state.first_operator
        if first in state.answered and first in state.started:
            record.ring_seconds = round(state.answered[first] - state.started[first], 3)
    if state.queue_at is not None:
        record.wait_seconds = round(max(0.0, (bridged if bridged is not None else ended) - state.queue_at), 3)


def _line(first: CelEvent, events: list[CelEvent], directory: Directory) -> str:
    """The hotline number the caller dialled: a model line among the caller's extensions, else the number the
    call arrived on; none for an operator's own call."""
    caller = [e.exten for e in events if e.uniqueid == first.uniqueid]
    known = next((exten for exten in caller if exten in directory.lines), "")
    if known or directory.is_operator(endpoint_of(first.channel)):
        return known
    return first.exten if is_digits(first.exten) else ""


def build_call(events: Iterable[CelEvent], directory: Directory | None = None, cut: bool = False) -> CallRecord:
    """Fold the events of one linkedid (any order: they are sorted by time) into its call-log record. ``cut``: the
    call never ended in the journal because Asterisk went away (it restarted since); it ended with its last event."""
    ordered = sorted(events, key=lambda e: e.time)
    if not ordered:
        raise ValueError("no events to build a call from")
    directory = directory or Directory()
    first = _caller_event(ordered)
    record = CallRecord(linkedid=first.linkedid, started_at=_when(ordered[0].time), ended_at=_when(ordered[-1].time),
                        status=Status.FAILED, caller_number=first.cid_num, caller_name=first.cid_name,
                        line=_line(first, ordered, directory))
    called = ""
    if directory.is_operator(endpoint_of(first.channel)):
        record.direction = Direction.INTERNAL
        called = _called_citizen(first, ordered)
    state = _State(record=record, caller=first.uniqueid, caller_channel=first.channel, directory=directory)
    for event in ordered:
        _observe(state, event)
        handler = _handler(event.event)
        if handler is not None:
            handler(state, event)
    talk = conversation(ordered, first.channel)
    if called:
        _outbound(state, talk, called)
    else:
        _operators(state, talk)
    record.ended_by = _ended_by(state, cut)
    if called:  # the citizen is the "caller" of the log: the first channel was the operator's
        record.ended_by = {EndedBy.CALLER: EndedBy.OPERATOR, EndedBy.OPERATOR: EndedBy.CALLER}.get(
            record.ended_by, record.ended_by)
    record.status = _status(state)
    if called and record.status is not Status.ANSWERED and record.ended_by is not EndedBy.SYSTEM:
        record.status = Status.MISSED  # the citizen did not answer the call-back
    _times(state, ordered[-1].time)
    return record


def _called_citizen(first: CelEvent, events: list[CelEvent]) -> str:
    """The citizen's number an operator's call went out to (a call-back through the dialplan's outbound contexts),
    or "" for a call inside the PBX."""
    return next((e.exten for e in events if e.uniqueid == first.uniqueid and e.context in OUTBOUND_CONTEXTS
                 and is_digits(e.exten)), "")


def _outbound(state: _State, talk: Conversation, called: str) -> None:
    """A call-back: the operator is the one who placed it; the citizen (whoever answered at ``called``) is the
    other party, whose number the log shows as the caller's so that the citizen's calls list together."""
    record = state.record
    operator = endpoint_of(state.caller_channel)
    record.direction = Direction.OUTBOUND
    record.caller_number, record.caller_name = called, ""
    record.operator, record.operators = operator, [operator]
    record.operator_device = state.directory.device(operator)
    if talk.people:
        state.first_operator = state.uniqueids.get(talk.people[0], "")  # the citizen's ring time
    state.bridged_at = talk.connected_at
    state.unbridged_at = talk.disconnected_at
