"""An operator's availability, changed through AMI with the control user: QueueAdd / QueueRemove for agents who log
in and out at the desk, QueuePause (with a reason) for everybody. Asterisk's own events then tell the live board
and the desk what happened, so the page shows the PBX's state, not what was asked for.

Several Asterisk nodes (``CALLCENTER_NODES``): each change goes to every node at once (an agent logs in to the
queues of each; their phone, registered on one, is reachable there and ``unreachable`` on the others, which the
queues skip), so a call on any node finds the operator as the desk says. A node that refuses fails the change
(503, naming the node); the others keep what they took, and the page shows each node's state. A node that cannot be
reached at all (down for maintenance) is left out while another takes the change (logged): it rebuilds its queues
from its own configuration when it comes back, and the desk says "not connected" when it has the phone.
"""

from __future__ import annotations

import asyncio
import logging

from callcenter.ami.client import AmiError
from callcenter.ami.control import node_failure, send_actions
from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings

log = logging.getLogger(__name__)

# Why an operator pauses (message ids; the page translates them). The queue's own auto-pause has its own reason.
PAUSE_REASONS = ("break", "lunch", "meeting", "training", "paperwork")
MISSING = "not found"  # what app_queue answers a QueuePause for an interface in no queue


class DeskError(ValueError):
    """A change the model or the PBX refuses; the message says why."""


def interface(operator: str) -> str:
    """The queue interface of an operator (as queues_model.conf names members)."""
    return f"PJSIP/{operator}"


def _queues(model: HotlineModel, operator: str, agents_only: bool) -> list[str]:
    if operator not in model.operators:
        raise DeskError(f"{operator!r} is not an operator of the telephony model")
    return [name for name, queue in model.queues.items()
            if (operator in queue.agents if agents_only else queue.admits(operator))]


async def _send(settings: Settings, model: HotlineModel, action: dict[str, str], harmless: str = "") -> None:
    """Send ``action`` to every node; an AmiError (naming the node) when one refuses, unless it says ``harmless``.
    With several nodes, a refusal saying ``missing`` counts only when every node says it."""
    nodes = settings.listener_nodes(model.pbx.ami)
    answers = await asyncio.gather(*(send_actions(settings, node.ami, [action]) for node in nodes),
                                   return_exceptions=True)
    failures = []
    for node, answer in zip(nodes, answers, strict=True):
        if isinstance(answer, BaseException) and not (harmless and harmless in str(answer)):
            failures.append((node.name, answer))
    if not failures:
        return
    if len(nodes) == 1:
        raise failures[0][1]
    away = [(name, exc) for name, exc in failures if _unreachable(exc)]
    if away and len(away) < len(nodes):
        # A node down (maintenance) must not stop the desks on the others: the nodes that answered took the
        # change (an operator's phone is on one of them, or the desk says it is not connected).
        log.warning("%s: not sent to the node(s) away: %s", action.get("Action"),
                    "; ".join(node_failure(name, exc) for name, exc in away))
        failures = [failure for failure in failures if failure not in away]
        if not failures:
            return
    refused = [(name, exc) for name, exc in failures if MISSING not in str(exc).lower()]
    if refused:  # a node down or refusing: say which (never "not found", which would read as "log in first")
        raise AmiError("; ".join(node_failure(name, exc) for name, exc in refused))
    if len(failures) == len(nodes):
        raise failures[0][1]  # not a member anywhere
    # not a member on some nodes (their queues may differ): the others took it


def _unreachable(exc: BaseException) -> bool:
    """Whether a node failed because it could not be reached at all (down, not refusing)."""
    return isinstance(exc, (OSError, TimeoutError)) or isinstance(exc.__cause__, (OSError, TimeoutError))


async def log_in(settings: Settings, model: HotlineModel, operator: str) -> list[str]:
    """Add an agent to each queue they log in to; the queues. Logging in twice is harmless."""
    queues = _queues(model, operator, agents_only=True)
    if not queues:
        raise DeskError(f"{operator} is always in the queue (a fixed desk): pause instead of logging out and in")
    for queue in queues:
        await _send(settings, model, {"Action": "QueueAdd", "Queue": queue, "Interface": interface(operator),
                                      "MemberName": operator, "StateInterface": interface(operator)},
                    harmless="Already there")
    return queues


async def log_out(settings: Settings, model: HotlineModel, operator: str) -> list[str]:
    """Remove an agent from the queues they logged in to; the queues. Logging out twice is harmless."""
    queues = _queues(model, operator, agents_only=True)
    if not queues:
        raise DeskError(f"{operator} is always in the queue (a fixed desk): pause instead of logging out")
    for queue in queues:
        await _send(settings, model, {"Action": "QueueRemove", "Queue": queue, "Interface": interface(operator)},
                    harmless="Not there")
    return queues


async def pause(settings: Settings, model: HotlineModel, operator: str, reason: str) -> None:
    """Pause an operator in every queue (no call is offered until they resume)."""
    if reason not in PAUSE_REASONS:
        raise DeskError(f"unknown pause reason {reason!r}; expected one of: {', '.join(PAUSE_REASONS)}")
    _queues(model, operator, agents_only=False)
    await _pause(settings, model, operator, {"Paused": "true", "Reason": reason})


async def resume(settings: Settings, model: HotlineModel, operator: str) -> None:
    """End an operator's pause (their own, or the queue's after a call rang out)."""
    _queues(model, operator, agents_only=False)
    await _pause(settings, model, operator, {"Paused": "false"})


async def _pause(settings: Settings, model: HotlineModel, operator: str, fields: dict[str, str]) -> None:
    try:
        await _send(settings, model, {"Action": "QueuePause", "Interface": interface(operator), **fields})
    except AmiError as exc:
        if MISSING in str(exc).lower():
            raise DeskError(f"{operator} is in no queue now (log in first)") from exc
        raise
