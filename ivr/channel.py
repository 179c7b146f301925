"""The contract between the IVR flows, the AGI adapter and the dialplan.

Flows talk to the caller only through :class:`Channel`; ``ivr/adapter.py`` implements it over pyst2's AGI and
tests implement it with a scripted fake. What a flow reports goes out two ways:

* channel variables (:class:`Var`) the dialplan reads after ``AGI()`` returns;
* user events (:class:`Event`) raised with CELGenUserEvent. The adapter prefixes the name with ``IVR_`` and sends
  the fields as a ``k=v&k=v`` payload with url-encoded values; the listener folds them into the call log
  (``ivr_path``, and ``topic`` from the ``topic=`` field of ``IVR_TOPIC``).

Dialplan contract: after ``AGI()`` returns, ``IVR_OUTCOME`` is ``message`` or ``callback`` when the caller left a
voice message or asked for a callback (the IVR has already said goodbye: hang up), and ``queue`` or empty
otherwise (empty: the IVR failed, was unreachable or the caller hung up): go on to the queue.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Hangup(Exception):
    """The caller hung up, or the channel stopped answering commands: the flow must stop at once.

    Nothing can be reported after a hangup (Asterisk refuses commands on a dead channel), so flows let this
    propagate to :func:`ivr.flows.run`, which ends the session quietly.
    """


class Event(StrEnum):
    """The IVR's user events (sent as ``IVR_<name>``) and the fields each one carries."""

    START = "START"  # line, lang: the IVR took the call
    AFTER_HOURS = "AFTER_HOURS"  # line: outside working hours or on a holiday
    MENU = "MENU"  # menu, attempt: a menu is offered (main, after_hours, case, callback)
    KEY = "KEY"  # menu, digit: a valid key was pressed
    TIMEOUT = "TIMEOUT"  # menu, attempt: no input before the timeout
    INVALID = "INVALID"  # menu, input: a key or an entry that is not valid there
    TOPIC = "TOPIC"  # topic[, reason]: the chosen topic, or topic=unknown with the reason
    CASE_LOOKUP = "CASE_LOOKUP"  # number, result (found, not_found, error)[, status]
    MESSAGE = "MESSAGE"  # path: a voice message is being recorded to this file (Asterisk's path)
    CALLBACK = "CALLBACK"  # number, source (entered, callerid): the caller asked to be called back
    EXIT = "EXIT"  # outcome, reason: the IVR hands the call back to the dialplan


class Var(StrEnum):
    """Channel variables the IVR sets for the dialplan."""

    LANG = "IVR_LANG"  # vi or en
    TOPIC = "IVR_TOPIC"  # a topic code, or "unknown"
    OUTCOME = "IVR_OUTCOME"  # an Outcome
    MESSAGE = "IVR_MESSAGE"  # the voice message file, when OUTCOME is message
    CALLBACK_NUMBER = "IVR_CALLBACK_NUMBER"  # the number to call back, when OUTCOME is callback


class Outcome(StrEnum):
    """How the IVR hands the call back (``IVR_OUTCOME``)."""

    QUEUE = "queue"  # go on to the operators queue
    MESSAGE = "message"  # a voice message was left: hang up
    CALLBACK = "callback"  # a callback was requested: hang up
    HANGUP = "hangup"  # never set as a variable: the caller left while in the IVR


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
