"""An operator's availability, changed through AMI with the control user: QueueAdd / QueueRemove for agents who log
in and out at the desk, QueuePause (with a reason) for everybody. Asterisk's own events then tell the live board
and the desk what happened, so the page shows the PBX's state, not what was asked for.
"""

from __future__ import annotations

from callcenter.ami.client import AmiError
from callcenter.ami.control import send_actions
from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings

# Why an operator pauses (message ids; the page translates them). The queue's own auto-pause has its own reason.
PAUSE_REASONS = ("break", "lunch", "meeting", "training", "paperwork")


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
    try:
        await send_actions(settings, model.pbx.ami, [action])
    except AmiError as exc:
        if not harmless or harmless not in str(exc):
            raise


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
        if "not found" in str(exc).lower():
            raise DeskError(f"{operator} is in no queue now (log in first)") from exc
        raise
