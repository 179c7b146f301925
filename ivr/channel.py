"""The contract between the IVR flows, the AGI adapter and the dialplan.

Flows talk to the caller only through :class:`Channel`; ``ivr/adapter.py`` implements it over pyst2's AGI and
tests implement it with a scripted fake. What a flow reports goes out two ways:

* channel variables (``IvrVar``) the dialplan reads after ``AGI()`` returns;
* user events (``IvrEvent``) raised with CELGenUserEvent. The adapter prefixes the name with ``IVR_`` and sends
  the fields as a ``k=v&k=v`` payload with url-encoded values; the listener folds them into the call log
  (``ivr_path``, and ``topic`` from the ``topic=`` field of ``IVR_TOPIC``).

Dialplan contract: after ``AGI()`` returns, ``IVR_OUTCOME`` is ``message`` or ``callback`` when the caller left a
voice message or asked for a callback (the IVR has already said goodbye: hang up), and ``queue`` or empty
otherwise (empty: the IVR failed, was unreachable or the caller hung up): go on to the queue. The names are
defined once in :mod:`callcenter.model.contract`.
"""

from __future__ import annotations

from typing import Protocol


class Hangup(Exception):
    """The caller hung up, or the channel stopped answering commands: the flow must stop at once.

    Nothing can be reported after a hangup (Asterisk refuses commands on a dead channel), so flows let this
    propagate to :func:`ivr.flows.run`, which ends the session quietly.
    """


class Channel(Protocol):
    """What a flow may do with the caller's channel. Every method raises :class:`Hangup` when the call is gone.

    Prompts are names from the manifest (``ivr/prompts/manifest.py``); the channel maps them to files in the
    language chosen with :meth:`use_language`. Keys come back as strings exactly as Asterisk reports them, so
    a flow must expect anything (``*``, ``#``, letters, long strings) and validate.
    """

    def use_language(self, language: str) -> None:
        """Play prompts in ``language`` (``vi`` or ``en``) from now on."""

    def play(self, prompt: str, interrupt: str = "") -> str:
        """Play a prompt; return the key in ``interrupt`` that cut it short, or ``""``."""

    def wait_key(self, timeout: float) -> str:
        """Wait up to ``timeout`` seconds for one key; ``""`` when none came."""

    def collect(self, prompt: str, *, max_digits: int, timeout: float) -> str:
        """Play a prompt, then read up to ``max_digits`` keys; ``#`` ends early and is not returned.

        ``timeout`` is the wait for each key; ``""`` when nothing was keyed.
        """

    def message_path(self) -> str:
        """Where this call's voice message is recorded (a ``.wav`` path as Asterisk sees it), ``""`` if unknown."""

    def record(self, path: str, *, max_seconds: int, silence_seconds: int) -> bool:
        """Beep and record the caller to ``path`` until ``#``, silence or ``max_seconds``; False on failure."""

    def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable."""

    def user_event(self, name: str, **fields: str) -> None:
        """Raise a CELGenUserEvent named ``IVR_<name>`` with the fields as its payload."""
