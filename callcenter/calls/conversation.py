"""Who the caller talked to, and when: bridges followed through Asterisk's Local channel pairs.

An operator can reach the caller directly (both in one bridge) or through a pair of Local half-channels
(``Local/201@operators-00000000;1`` and ``;2``): an attended transfer by feature code, or a dialplan that dials
through Local, leaves the caller bridged with ``;1`` while the operator is bridged with ``;2``, and Asterisk does
not always optimise the pair away. Replaying the bridge events in order, the caller is *connected* to every person
channel in the bridges reachable from the caller's bridge through such pairs; an operator consulted but never
connected to the caller (a transfer given up) is not counted. Pure: events in, facts out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from callcenter.ami.events import CelEvent
from callcenter.calls.channels import LOCAL_TECH, is_person
from callcenter.model.contract import BRIDGE_ENTER, BRIDGE_EXIT


@dataclass
class Conversation:
    """The person channels connected to the caller in order, and when the caller was first connected and last
    disconnected (None when never)."""

    people: list[str] = field(default_factory=list)  # channel names
    connected_at: float | None = None
    disconnected_at: float | None = None


def _twin(channel: str) -> str:
    """``Local/x@ctx-0001;1`` <-> ``Local/x@ctx-0001;2``; any other channel has no twin."""
    if not channel.startswith(LOCAL_TECH) or not channel.endswith((";1", ";2")):
        return ""
    return channel[:-1] + ("2" if channel.endswith("1") else "1")


BRIDGE_EVENTS = frozenset({BRIDGE_ENTER, BRIDGE_EXIT})


class _Bridges:
    """Current bridge membership, and the set of channels reachable from one channel."""

    def __init__(self) -> None:
        self.members: dict[str, set[str]] = defaultdict(set)
        self.of: dict[str, set[str]] = defaultdict(set)  # channel -> bridges it is in

    def apply(self, event: CelEvent) -> None:
        bridge = str(event.extra.get("bridge_id", ""))
        if event.event == BRIDGE_ENTER and bridge:
            self.members[bridge].add(event.channel)
            self.of[event.channel].add(bridge)
        elif event.event == BRIDGE_EXIT and bridge:
            self.members[bridge].discard(event.channel)
            self.of[event.channel].discard(bridge)

    def reachable(self, channel: str) -> set[str]:
        """Every channel connected to ``channel`` through bridges and Local pairs."""
        seen, todo = {channel}, [channel]
        while todo:
            current = todo.pop()
            neighbours = {m for bridge in self.of[current] for m in self.members[bridge]}
            twin = _twin(current)
            if twin:
                neighbours.add(twin)
            todo += [n for n in neighbours if n not in seen]
            seen |= neighbours
        return seen


def conversation(events: Iterable[CelEvent], caller: str) -> Conversation:
    """Replay the bridge events (in time order) of one call whose caller channel is named ``caller``."""
    bridges = _Bridges()
    found = Conversation()
    connected = False
    for event in events:
        if event.event not in BRIDGE_EVENTS:
            continue
        bridges.apply(event)
        people = [c for c in bridges.reachable(caller) if c != caller and is_person(c)]
        found.people += sorted(c for c in people if c not in found.people)
        if people and not connected:
            found.connected_at = found.connected_at if found.connected_at is not None else event.time
        if connected and not people:
            found.disconnected_at = event.time
        connected = bool(people)
    return found
