"""An operator's availability, changed through AMI with the control user: QueueAdd / QueueRemove for agents who log
in and out at the desk, QueuePause (with a reason) for everybody. Asterisk's own events then tell the live board
and the desk what happened, so the page shows the PBX's state, not what was asked for.

Several Asterisk nodes (``CALLCENTER_NODES``): each change goes to every node at once (an agent logs in to the
queues of each; their phone, registered on one, is reachable there and ``unreachable`` on the others, which the
queues skip), so a call on any node finds the operator as the desk says. A node that refuses fails the change
(503, naming the node); the others are given back what was asked before it (the intent, below), and the page shows
each node's state. A node that cannot be
reached at all (down for maintenance) is left out while another takes the change (logged), and the desk says "not
connected" when it has the phone. Such a node restores its queues from its own astdb when it comes back, as they
were before the change: given the database, each change is first written as the operator's intent and the nodes
it missed are noted (:mod:`callcenter.store.desk_intents`); the live feed applies it there (:func:`catch_up`). It
also gives a standing pause again to a node that restarted: static members (fixed desks) come back not paused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from callcenter.ami.client import AmiError
from callcenter.ami.control import node_failure, send_actions
from callcenter.model.hotline import HotlineModel
from callcenter.settings import NodeSettings, Settings
from callcenter.store import desk_intents
from callcenter.store.db import Database
from callcenter.store.desk_intents import Intent

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


async def _send(settings: Settings, model: HotlineModel, action: dict[str, str], harmless: str = "") -> set[str]:
    """Send ``action`` to every node; an AmiError (naming the node) when one refuses, unless it says ``harmless``.
    With several nodes, a refusal saying ``missing`` counts only when every node says it. The nodes left out
    because they could not be reached (while others took the action)."""
    nodes = settings.listener_nodes(model.pbx.ami)
    answers = await asyncio.gather(*(send_actions(settings, node.ami, [action]) for node in nodes),
                                   return_exceptions=True)
    failures = []
    for node, answer in zip(nodes, answers, strict=True):
        if isinstance(answer, BaseException) and not (harmless and harmless in str(answer)):
            failures.append((node.name, answer))
    if not failures:
        return set()
    if len(nodes) == 1:
        raise failures[0][1]
    away = [(name, exc) for name, exc in failures if _unreachable(exc)]
    left_out: set[str] = set()
    if away and len(away) < len(nodes):
        # A node down (maintenance) must not stop the desks on the others: the nodes that answered took the
        # change (an operator's phone is on one of them, or the desk says it is not connected).
        log.warning("%s: not sent to the node(s) away: %s", action.get("Action"),
                    "; ".join(node_failure(name, exc) for name, exc in away))
        failures = [failure for failure in failures if failure not in away]
        left_out = {name for name, _ in away}
        if not failures:
            return left_out
    refused = [(name, exc) for name, exc in failures if MISSING not in str(exc).lower()]
    if refused:  # a node down or refusing: say which (never "not found", which would read as "log in first")
        raise AmiError("; ".join(node_failure(name, exc) for name, exc in refused))
    if len(failures) == len(nodes):
        raise failures[0][1]  # not a member anywhere
    # not a member on some nodes (their queues may differ): the others took it
    return left_out


async def _send_each(settings: Settings, model: HotlineModel, actions: list[dict[str, str]],
                     harmless: str) -> set[str]:
    """:func:`_send` each action in turn; the nodes left out of any."""
    away: set[str] = set()
    for action in actions:
        away |= await _send(settings, model, action, harmless)
    return away


def _unreachable(exc: BaseException) -> bool:
    """Whether a node failed because it could not be reached at all (down, not refusing)."""
    return isinstance(exc, (OSError, TimeoutError)) or isinstance(exc.__cause__, (OSError, TimeoutError))


def _added(queue: str, operator: str) -> dict[str, str]:
    return {"Action": "QueueAdd", "Queue": queue, "Interface": interface(operator), "MemberName": operator,
            "StateInterface": interface(operator)}


def _removed(queue: str, operator: str) -> dict[str, str]:
    return {"Action": "QueueRemove", "Queue": queue, "Interface": interface(operator)}


def _paused(operator: str, paused: bool, reason: str = "") -> dict[str, str]:
    if paused:
        return {"Action": "QueuePause", "Interface": interface(operator), "Paused": "true", "Reason": reason}
    return {"Action": "QueuePause", "Interface": interface(operator), "Paused": "false"}


async def _recorded(settings: Settings, model: HotlineModel, db: Database | None, operator: str,
                    change: dict[str, Any], send: Callable[[], Awaitable[set[str]]]) -> None:
    """Send a change; given ``db``, write it first as the operator's intent, note the nodes it could not reach,
    and undo it there if it fails (it is what the PBX was told, nothing else); then see that the newest intent is
    what the nodes were told last (:func:`_newest_last`)."""
    if db is None:
        await send()
        return
    before, intent = await asyncio.to_thread(lambda: db.run(desk_intents.ask, operator, **change))
    try:
        away = await send()
    except Exception:
        await asyncio.to_thread(db.run, desk_intents.undo, before, operator, intent.version)
        if len(settings.listener_nodes(model.pbx.ami)) > 1:  # the nodes that took it are given the undo
            await _newest_last(settings, model, db, intent)
        raise
    if away:
        await asyncio.to_thread(db.run, desk_intents.missed_by, operator, intent.version, away)
    await _newest_last(settings, model, db, intent)


async def _newest_last(settings: Settings, model: HotlineModel, db: Database, sent: Intent) -> None:
    """After ``sent`` went to the nodes: if a newer change of the operator's was written meanwhile (a double click,
    another API process), it may have reached them first, and ``sent`` then undid it there (a resume that lands
    before the pause it follows leaves the operator paused). So the newest intent is sent again, whole, until the
    intent read after a send is the one sent. Whichever change's sender finishes last has then sent the newest.
    What a node does not take is left to the live feed, as a change that node missed (it looks every minute); the
    change that was sent is not failed for it (nor for the database being away now: logged)."""
    try:
        await _resend_newer(settings, model, db, sent)
    except Exception:
        log.exception("desk: could not check that %s's newest availability was sent last", sent.operator)


async def _resend_newer(settings: Settings, model: HotlineModel, db: Database, sent: Intent) -> None:
    for _ in range(5):  # a change a second from elsewhere would keep this going: enough is enough
        latest = await asyncio.to_thread(db.run, desk_intents.load, sent.operator)
        if latest is None or latest.version == sent.version:
            return
        if (latest.logged_in, latest.paused, latest.reason) == (sent.logged_in, sent.paused, sent.reason):
            sent = latest  # the same asked twice (a double click): whichever landed last, the nodes agree
            continue
        log.info("desk: %s's availability changed again (version %d) while version %d was being sent: the newest "
                 "sent again after it", sent.operator, latest.version, sent.version)
        away = await _send_whole(settings, model, latest)
        if away:
            await asyncio.to_thread(db.run, desk_intents.missed_by, sent.operator, latest.version, away)
        sent = latest


async def _send_whole(settings: Settings, model: HotlineModel, intent: Intent) -> set[str]:
    """Send every node the whole of ``intent`` (in or out of the queues the operator logs in to, then paused or
    not, with the reason), each node on its own; the nodes that did not take it (logged), for the live feed."""
    operator, actions = intent.operator, list[tuple[dict[str, str], str]]()
    if operator not in model.operators:  # removed from the model meanwhile: nothing of theirs to set
        return set()
    agent_of = _queues(model, operator, agents_only=True)
    if intent.logged_in is True:
        actions += [(_added(queue, operator), "Already there") for queue in agent_of]
    elif intent.logged_in is False:
        actions += [(_removed(queue, operator), "Not there") for queue in agent_of]
    if intent.paused is not None:  # None after a log-out (out of the queues a pause means nothing)
        actions.append((_paused(operator, intent.paused, intent.reason), MISSING))

    async def to(node: NodeSettings) -> None:
        for action, harmless in actions:
            try:
                await send_actions(settings, node.ami, [action])
            except AmiError as exc:
                if harmless.lower() not in str(exc).lower():  # e.g. a member added already
                    raise

    nodes = settings.listener_nodes(model.pbx.ami)
    answers = await asyncio.gather(*(to(node) for node in nodes), return_exceptions=True)
    failed = {node.name: answer for node, answer in zip(nodes, answers, strict=True)
              if isinstance(answer, BaseException)}
    if failed:
        log.warning("desk: %s's newest availability (version %d) was not taken again (%s): the live feed gives it "
                    "to those nodes", operator, intent.version,
                    "; ".join(node_failure(name, exc) for name, exc in failed.items()))
    return set(failed)


async def log_in(settings: Settings, model: HotlineModel, operator: str, db: Database | None = None) -> list[str]:
    """Add an agent to each queue they log in to; the queues. Logging in twice is harmless."""
    queues = _queues(model, operator, agents_only=True)
    if not queues:
        raise DeskError(f"{operator} is always in the queue (a fixed desk): pause instead of logging out and in")
    await _recorded(settings, model, db, operator, {"logged_in": True}, lambda: _send_each(
        settings, model, [_added(queue, operator) for queue in queues], harmless="Already there"))
    return queues


async def log_out(settings: Settings, model: HotlineModel, operator: str, db: Database | None = None) -> list[str]:
    """Remove an agent from the queues they logged in to; the queues. Logging out twice is harmless."""
    queues = _queues(model, operator, agents_only=True)
    if not queues:
        raise DeskError(f"{operator} is always in the queue (a fixed desk): pause instead of logging out")
    # Out of the queues, a pause means nothing (a new log-in adds the member afresh): no longer part of the intent.
    await _recorded(settings, model, db, operator, {"logged_in": False, "paused": None}, lambda: _send_each(
        settings, model, [_removed(queue, operator) for queue in queues], harmless="Not there"))
    return queues


async def pause(settings: Settings, model: HotlineModel, operator: str, reason: str,
                db: Database | None = None) -> None:
    """Pause an operator in every queue (no call is offered until they resume)."""
    if reason not in PAUSE_REASONS:
        raise DeskError(f"unknown pause reason {reason!r}; expected one of: {', '.join(PAUSE_REASONS)}")
    _queues(model, operator, agents_only=False)
    await _recorded(settings, model, db, operator, {"paused": True, "reason": reason},
                    lambda: _pause(settings, model, operator, _paused(operator, True, reason)))


async def resume(settings: Settings, model: HotlineModel, operator: str, db: Database | None = None) -> None:
    """End an operator's pause (their own, or the queue's after a call rang out)."""
    _queues(model, operator, agents_only=False)
    await _recorded(settings, model, db, operator, {"paused": False},
                    lambda: _pause(settings, model, operator, _paused(operator, False)))


async def _pause(settings: Settings, model: HotlineModel, operator: str, action: dict[str, str]) -> set[str]:
    try:
        return await _send(settings, model, action)
    except AmiError as exc:
        if MISSING in str(exc).lower():
            raise DeskError(f"{operator} is in no queue now (log in first)") from exc
        raise


def members_of(messages: Sequence[Mapping[str, str]], operator: str) -> dict[str, tuple[bool, str]]:
    """From a node's QueueStatus answer: the queues the operator is a member of there, each with whether the
    member is paused and why."""
    wanted = interface(operator)
    return {m.get("Queue", ""): (m.get("Paused") == "1", m.get("PausedReason", ""))
            for m in messages if m.get("Event") == "QueueMember" and m.get("Location") == wanted}


def catch_up(model: HotlineModel, intent: Intent, members: Mapping[str, tuple[bool, str]]) -> list[dict[str, str]]:
    """The actions that bring a node which missed ``intent`` to it, given the operator's membership there
    (:func:`members_of`): into or out of the queues they log in to, then paused or not (with the reason); none
    when the node already agrees, or the operator is no longer in the model."""
    operator = intent.operator
    if operator not in model.operators:
        return []
    actions, present = [], dict(members)
    for name, queue in model.queues.items():
        if operator not in queue.agents:
            continue
        if intent.logged_in is True and name not in present:
            actions.append(_added(name, operator))
            present[name] = (False, "")  # QueueAdd adds a member not paused
        elif intent.logged_in is False and name in present:
            actions.append(_removed(name, operator))
            del present[name]
    if intent.paused is not None and any(paused != intent.paused or (paused and reason != intent.reason)
                                         for paused, reason in present.values()):
        actions.append(_paused(operator, intent.paused, intent.reason))
    return actions
