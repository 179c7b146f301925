"""IVR call flows, written against a small channel interface so they can be tested without Asterisk.

Until the IVR issue lands, the only flow passes the caller straight on to the queue; it still reports itself
on the channel (IVR_STATUS) so the call log shows the IVR was reached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Channel(Protocol):
    """What a flow may do with the caller's channel."""

    def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable."""

    def user_event(self, name: str, **fields: str) -> None:
        """Raise a CELGenUserEvent, which the listener folds into the call log."""


def passthrough(channel: Channel, args: dict[str, str]) -> None:
    """No menu yet: report that the IVR was reached, mark the channel and return to the dialplan (the queue)."""
    channel.user_event("START", line=args.get("line", ""))
    channel.set_variable("IVR_STATUS", "passthrough")


FLOWS: dict[str, Callable[[Channel, dict[str, str]], None]] = {
    "hotline": passthrough,
}
