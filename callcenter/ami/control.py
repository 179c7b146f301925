"""Short AMI sessions with the control user: reload configuration, queue membership and pauses, originate.

The listener's own user may only read events; changing what Asterisk does takes the control user
(``CALLCENTER_PBX__CONTROL_USERNAME`` / ``__CONTROL_SECRET``), which the renderer writes into manager_model.conf.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from callcenter.ami.client import AmiConnection, AmiError
from callcenter.model.addresses import Address
from callcenter.settings import Settings

# What `callcenter asterisk reload` reloads: endpoints, queues, the dialplan and AMI users. None cuts a call.
RELOAD_MODULES = ("res_pjsip.so", "app_queue.so", "pbx_config.so", "manager")


async def send_actions(settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                       timeout: float = 15.0, reporting: bool = False) -> list[Any]:
    """Log in as the control user (``reporting``: as the live board's user, which may only ask, e.g. Getvar),
    send each action in turn, return the responses; AmiError on any failure."""
    username, secret = ((settings.api.live_username, settings.api.live_secret) if reporting
                        else (settings.pbx.control_username, settings.pbx.control_secret))
    connection = AmiConnection(settings.ami, address, events="off", username=username, secret=secret)
    await connection.open(timeout)
    try:
        responses = []
        for action in actions:
            # as_list=False: panoramisk would otherwise wait for more after QueueAdd's "Added ... to queue".
            response = await asyncio.wait_for(connection.send_action(dict(action), as_list=False), timeout)
            if not getattr(response, "success", False):
                raise AmiError(f"AMI {action.get('Action')} {action.get('Module', '')} failed: "
                               f"{response.get('Message', response)}")
            responses.append(response)
        return responses
    finally:
        connection.close()


async def wait_booted(settings: Settings, address: Address, timeout: float = 30.0) -> None:
    """Return once Asterisk at ``address`` has fully booted (its modules loaded: the queues have restored their
    members from the astdb); AmiError if it cannot be reached or has not booted within ``timeout``. The control
    user reads system events: Asterisk says FullyBooted right after the login if it has booted, else when it has."""
    connection = AmiConnection(settings.ami, address, events="system", username=settings.pbx.control_username,
                               secret=settings.pbx.control_secret)
    booted = asyncio.Event()
    connection.on("FullyBooted", lambda _message: booted.set())
    await connection.open(min(timeout, 15.0))
    try:
        await asyncio.wait_for(booted.wait(), timeout)
    except TimeoutError:
        raise AmiError(f"Asterisk at {address} has not finished booting in {timeout:.0f} s") from None
    finally:
        connection.close()


def node_failure(node: str, exc: BaseException) -> str:
    """What went wrong on one of several nodes, for a message that names every node that failed."""
    return f"node {node}: {str(exc) or type(exc).__name__}"


def reload_modules(settings: Settings, address: Address, modules: Sequence[str] = RELOAD_MODULES) -> None:
    """Reload Asterisk modules through AMI (configuration re-read; running calls go on)."""
    asyncio.run(send_actions(settings, address, [{"Action": "Reload", "Module": name} for name in modules]))
