"""Click-to-call for the call-back worklist: AMI Originate (control user) rings the operator's own phone, then
the dialplan's [callback] context records the conversation and dials the citizen through [outbound]. The call's
linkedid is chosen here (Originate's ChannelId becomes the first channel's uniqueid, which is the linkedid), so the
attempt is linked to the call being returned before the call-back even starts."""

from __future__ import annotations

import uuid

from callcenter.ami.control import send_actions
from callcenter.desk.availability import DeskError, interface
from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings

RING_OPERATOR_MS = 30_000  # how long the operator's phone rings before the call-back is given up


def new_linkedid() -> str:
    """A fresh id for a call-back's call (Asterisk accepts any unique string as a channel id)."""
    return f"cb-{uuid.uuid4()}"


async def originate(settings: Settings, model: HotlineModel, operator: str, number: str, line: str, returning: str,
                    linkedid: str) -> None:
    """Ring ``operator``'s phone; when they answer, call ``number`` showing ``line``. Returns once Asterisk took
    the request (the call itself goes on asynchronously)."""
    if operator not in model.operators:
        raise DeskError(f"{operator!r} is not an operator of the telephony model")
    if not number.isdigit() or not 3 <= len(number) <= 20:
        raise DeskError(f"cannot call {number!r}: a number has 3 to 20 digits")
    await send_actions(settings, model.pbx.ami, [{
        "Action": "Originate", "Channel": interface(operator), "Context": "callback", "Exten": number,
        "Priority": "1", "CallerID": f'"Call-back" <{number}>', "Timeout": str(RING_OPERATOR_MS), "Async": "true",
        "ChannelId": linkedid, "Variable": f"CALLBACK_OF={returning},CALLBACK_LINE={line or number}"}])
