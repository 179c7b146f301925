"""The live board's state, pure: CEL events (the same as the call log reads) and queue-member events in, a
snapshot out. Stages follow the application each caller event carries (as the builder does), so a PBX's own
dialplan shows right too: ``arriving`` (answered, no menu yet), ``ivr``, ``queue`` (since: the wait so far),
``talking`` (with the operators connected).

Operators: their queue state (``free``, ``ringing``, ``on_call``, ``paused`` with the reason, ``unreachable``, and
``logged_out`` for agents who log in at the desk), and the call being offered to them (the queue's AgentCalled
until AgentConnect, then the conversation until AgentComplete): what the operator desk pops up.

Several Asterisk nodes: one Board per node (each rebuilt on its own reconnect); :func:`merged` is what the page
shows of them all: every node's calls (each says its node), and each operator once, in the state that matters most
across the nodes (:data:`STATE_RANK`), with the state on each node beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from callcenter.ami.events import CelEvent
from callcenter.calls.channels import Directory, endpoint_of, is_person
from callcenter.model.contract import IVR_APPS, IVR_EVENT_PREFIX, QUEUE_APP, Cel, IvrEvent

AUTOPAUSE_REASON = "Auto-Pause"  # the PausedReason app_queue gives a member who let a call ring out
# Asterisk's device states as QueueMemberStatus reports them, mapped to what a supervisor reads.
MEMBER_STATES = {"1": "free", "2": "on_call", "3": "on_call", "4": "unreachable", "5": "unreachable",
                 "6": "ringing", "7": "ringing", "8": "on_call"}
# Which node's state an operator shows when nodes differ: a conversation or a ringing phone first, then a pause (the
# operator must see the queue's auto-pause on any node, to resume), then free; unreachable (the phone registers on
# another node) and logged out last.
STATE_RANK = {state: rank for rank, state in
              enumerate(("on_call", "ringing", "paused", "free", "unreachable", "logged_out"))}


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
    queued: float = 0.0  # when the caller joined the queue (0: not yet)
    node: str = ""  # the Asterisk node that has the call


@dataclass
class LiveOperator:
    """An operator's state in the queue (from the queue's member status)."""

    id: str
    name: str
    state: str = "unreachable"  # free, ringing, on_call, paused, unreachable, logged_out
    paused_reason: str = ""
    since: float = 0.0
    agent: bool = False  # logs in and out at the desk (else always in the queue)
    queues: list[str] = field(default_factory=list)  # the queues they are in now


@dataclass
class Offer:
    """A call the queue offers an operator (``ringing``), then their conversation (``talking``)."""

    linkedid: str
    queue: str
    caller_number: str
    caller_name: str
    state: str = "ringing"
    since: float = 0.0  # when the offer (or the conversation) began
    line: str = ""
    topic: str = ""
    queued: float = 0.0  # when the caller joined the queue
    node: str = ""  # the Asterisk node that offers it


class Board:
    """Calls by linkedid and operators by id; :meth:`snapshot` is what the page shows."""

    def __init__(self, directory: Directory, names: Mapping[str, str], agents: frozenset[str] = frozenset(),
                 node: str = "") -> None:
        self.directory, self.node = directory, node
        self.calls: dict[str, LiveCall] = {}
        self.operators = {op: LiveOperator(op, name, agent=op in agents) for op, name in names.items()}
        self.offers: dict[str, Offer] = {}  # by operator id
        self.finished: dict[str, Offer] = {}  # each operator's last conversation (kept across reconnects)
        self.connected = False
        self.reset()

    def reset(self) -> None:
        """Forget the calls and queue states (after a reconnect the PBX is asked again)."""
        self.calls.clear()
        self.offers.clear()
        for operator in self.operators.values():
            operator.queues.clear()
            operator.state, operator.paused_reason = ("logged_out" if operator.agent else "unreachable"), ""

    def apply(self, event: CelEvent) -> bool:
        """Fold one CEL event in; whether the board changed."""
        if event.event == Cel.LINKEDID_END:
            ended = [op for op, offer in self.offers.items() if offer.linkedid == event.linkedid]
            for op in ended:
                self._end_offer(op, event.time)
            return self.calls.pop(event.linkedid, None) is not None or bool(ended)
        call = self.calls.get(event.linkedid)
        if call is None:
            if event.event != Cel.CHAN_START or event.uniqueid != event.linkedid:
                return False
            call = self.calls[event.linkedid] = LiveCall(event.linkedid, event.cid_num, event.cid_name,
                                                         event.exten if event.exten.isdigit() else "", event.time,
                                                         since=event.time, node=self.node)
            return True
        return self._update(call, event)

    def _stage(self, call: LiveCall, stage: str, at: float) -> bool:
        if call.stage == stage:
            return False
        call.stage, call.since = stage, at
        if stage == "queue" and not call.queued:
            call.queued = at
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

    def _operator(self, fields: Mapping[str, str]) -> LiveOperator | None:
        return self.operators.get(fields.get("MemberName", "") or endpoint_of(fields.get("Interface", "")))

    def member(self, fields: Mapping[str, str], now: float) -> bool:
        """A QueueMemberStatus / QueueMember / QueueMemberAdded / QueueMemberPause / QueueMemberRemoved event;
        whether the board changed."""
        operator = self._operator(fields)
        if operator is None:
            return False
        queue = fields.get("Queue", "")
        if fields.get("Event") == "QueueMemberRemoved":
            if queue in operator.queues:
                operator.queues.remove(queue)
            if operator.queues or operator.state == "logged_out":
                return False
            operator.state, operator.paused_reason, operator.since = "logged_out", "", now
            return True
        if queue and queue not in operator.queues:
            operator.queues.append(queue)
        paused = fields.get("Paused") == "1"
        state = "paused" if paused else MEMBER_STATES.get(fields.get("Status", ""), "unreachable")
        reason = fields.get("PausedReason", "") if paused else ""
        if (operator.state, operator.paused_reason) == (state, reason):
            return False
        operator.state, operator.paused_reason, operator.since = state, reason, now
        return True

    def agent_event(self, fields: Mapping[str, str], now: float) -> bool:
        """AgentCalled, AgentConnect, AgentRingNoAnswer, AgentComplete, AgentDump: the call offered to an operator
        (their desk's pop-up); whether it changed."""
        operator = self._operator(fields)
        if operator is None:
            return False
        name, linkedid = fields.get("Event", ""), fields.get("Linkedid", "")
        offer = self.offers.get(operator.id)
        if name == "AgentCalled":
            call = self.calls.get(linkedid)
            self.offers[operator.id] = Offer(linkedid, fields.get("Queue", ""), fields.get("CallerIDNum", ""),
                                             fields.get("CallerIDName", ""), since=now,
                                             line=call.line if call else "", topic=call.topic if call else "",
                                             queued=call.queued if call else 0.0, node=self.node)
            return True
        if offer is None or offer.linkedid != linkedid:
            return False
        if name == "AgentConnect":
            offer.state, offer.since = "talking", now
            return True
        if name in ("AgentRingNoAnswer", "AgentComplete", "AgentDump"):
            self._end_offer(operator.id, now)
            return True
        return False

    def _end_offer(self, operator: str, now: float) -> None:
        """The offer is over; a conversation is kept as the operator's last call (their after-call work)."""
        offer = self.offers.pop(operator)
        if offer.state == "talking":
            offer.state, offer.since = "ended", now
            self.finished[operator] = offer


def merged(boards: Sequence[Board]) -> dict[str, Any]:
    """What the page shows of several nodes' boards (one board: its own snapshot, with its node): connected only
    when every node's session is; the calls of all, by stage, oldest first; each operator once (see STATE_RANK),
    in the queues of any node, with ``nodes``: their state on each node."""
    calls = sorted((call for board in boards for call in board.calls.values()), key=lambda c: c.since)
    return {"connected": all(board.connected for board in boards),
            "nodes": [{"name": board.node, "connected": board.connected} for board in boards],
            "calls": {stage: [asdict(c) for c in calls if c.stage == stage]
                      for stage in ("arriving", "ivr", "queue", "talking")},
            "operators": [operator_across(boards, op) for op in boards[0].operators] if boards else []}


def operator_across(boards: Sequence[Board], operator: str) -> dict[str, Any]:
    """One operator over several nodes' boards: the state that ranks first (the latest change among equals), the
    queues they are in on any node, and their state on each node."""
    states = [board.operators[operator] for board in boards]
    shown = min(states, key=lambda op: (STATE_RANK.get(op.state, len(STATE_RANK)), -op.since))
    queues = sorted({queue for op in states for queue in op.queues})
    return {**asdict(shown), "queues": queues,
            "nodes": {board.node: op.state for board, op in zip(boards, states, strict=True)}}


def latest(offers: Sequence[Offer | None]) -> Offer | None:
    """The most recent of an operator's offers (or last calls) on several nodes."""
    return max((offer for offer in offers if offer is not None), key=lambda o: o.since, default=None)
