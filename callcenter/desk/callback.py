"""Click-to-call for the call-back worklist: AMI Originate (control user) rings the operator's own phone, then
the dialplan's [callback] context dials the citizen through [outbound], recording the citizen's channel. The call's
linkedid is chosen here (Originate's ChannelId becomes the first channel's uniqueid, which is the linkedid), so the
attempt is linked to the call being returned before the call-back even starts.

Several Asterisk nodes: the call starts on the node the operator's phone is registered on (each node is asked for
its ``DEVICE_STATE``); none: a clear refusal instead of a call that can never ring."""

from __future__ import annotations

import asyncio
import time
import uuid

from callcenter.ami.client import AmiError
from callcenter.ami.control import node_failure, send_actions
from callcenter.desk.availability import DeskError, interface
from callcenter.model.addresses import Address
from callcenter.model.hotline import HotlineModel
from callcenter.model.text import is_digits
from callcenter.settings import NodeSettings, Settings

RING_OPERATOR_MS = 30_000  # how long the operator's phone rings before the call-back is given up
# Device states (Asterisk's DEVICE_STATE()) of a phone that is not registered there.
ABSENT = frozenset({"UNAVAILABLE", "INVALID", "UNKNOWN", ""})
ASK_TIMEOUT = 5.0  # seconds a node may take to say whether it has the phone


def new_linkedid(now: float | None = None) -> str:
    """A fresh id for a call-back's call, on the ids' contract (``<prefix>-<epoch>.<sequence>``, as Asterisk's own
    with a systemname: ``Spool.ID_PATTERN``): its recording is kept under it and dated by its epoch, and the
    recordings worker leaves a file whose ids are off the contract alone. Unique by its random prefix."""
    return f"cb-{uuid.uuid4().hex}-{int(time.time() if now is None else now)}.0"


async def originate(settings: Settings, model: HotlineModel, operator: str, number: str, line: str, returning: str,
                    linkedid: str) -> None:
    """Ring ``operator``'s phone; when they answer, call ``number`` showing ``line``. Returns once Asterisk took
    the request (the call itself goes on asynchronously)."""
    if operator not in model.operators:
        raise DeskError(f"{operator!r} is not an operator of the telephony model")
    if not is_digits(number) or not 3 <= len(number) <= 20:
        raise DeskError(f"cannot call {number!r}: a number has 3 to 20 digits")
    await send_actions(settings, await phone_node(settings, model, operator), [{
        "Action": "Originate", "Channel": interface(operator), "Context": "callback", "Exten": number,
        "Priority": "1", "CallerID": f'"Call-back" <{number}>', "Timeout": str(RING_OPERATOR_MS), "Async": "true",
        "ChannelId": linkedid, "Variable": f"CALLBACK_OF={returning},CALLBACK_LINE={line or number}"}])


async def phone_node(settings: Settings, model: HotlineModel, operator: str) -> Address:
    """The AMI address of the node ``operator``'s phone is registered on (the only node, when there is one), as
    soon as one node says it has it; a DeskError when no node has it, an AmiError naming the nodes that did not
    answer when none of the others has. Asked with the live board's user (Getvar is a reporting action)."""
    nodes = settings.listener_nodes(model.pbx.ami)
    if len(nodes) == 1:
        return nodes[0].ami
    action = {"Action": "Getvar", "Variable": f"DEVICE_STATE({interface(operator)})"}

    async def ask(node: NodeSettings) -> tuple[NodeSettings, str | BaseException]:
        try:
            answer = await send_actions(settings, node.ami, [action], timeout=ASK_TIMEOUT, reporting=True)
        except (AmiError, OSError) as exc:
            return node, exc
        return node, str(answer[0].get("Value", ""))

    asked = [asyncio.ensure_future(ask(node)) for node in nodes]
    away = []
    try:
        for next_answer in asyncio.as_completed(asked):
            node, state = await next_answer
            if isinstance(state, BaseException):
                away.append(node_failure(node.name, state))
            elif state not in ABSENT:
                return node.ami
    finally:
        for task in asked:
            task.cancel()
    if away:
        raise AmiError(f"{operator}'s phone is on no node that answered ({'; '.join(away)})")
    raise DeskError(f"{operator}'s phone is not registered on any Asterisk node: it cannot ring")
