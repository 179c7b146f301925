"""The vocabulary every part shares, defined once: call statuses, device types, CEL and user-event names, the
IVR's channel variables and outcomes, and the recordings spool layout.

This module imports nothing from the project. The listener, the IVR, the recordings worker, the renderer of the
Asterisk configuration and the API all import their names from here, so a name cannot drift between the dialplan,
the code that writes an event and the code that reads it.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Status(StrEnum):
    """How a call ended, from the citizen's point of view."""

    ANSWERED = "answered"  # an operator talked to the caller
    VOICE_MESSAGE = "voice_message"  # after hours: the caller left a message (a recording of kind "message")
    CALLBACK_REQUESTED = "callback_requested"  # after hours: the caller asked to be called back
    ABANDONED_QUEUE = "abandoned_queue"  # the caller hung up while waiting for an operator
    ABANDONED_IVR = "abandoned_ivr"  # the caller hung up in the voice menu (ivr_path shows how far)
    ABANDONED_BEFORE_QUEUE = "abandoned_before_queue"  # hung up after the PBX answered, before menu and queue
    MISSED = "missed"  # the queue gave up: nobody logged in or nobody answered in time
    FAILED = "failed"  # never answered by the PBX, or cut by Asterisk itself (restart, crash): see ended_by


class DeviceType(StrEnum):
    """What an operator takes calls on."""

    IP_PHONE = "ip_phone"  # a SIP desk phone (UDP)
    SOFTPHONE = "softphone"  # a SIP softphone on a computer (UDP or TCP)
    BROWSER = "browser"  # the operator desk's WebRTC softphone (secure WebSocket)
    UNKNOWN = "unknown"  # a channel the model does not list (a PBX's own extension)


class EndedBy(StrEnum):
    """Who ended the call (from the caller's HANGUP ``hangupsource``)."""

    CALLER = "caller"  # the citizen hung up
    OPERATOR = "operator"  # an operator (or another person on the call) hung up
    PBX = "pbx"  # the dialplan ended it (after a voice message, a queue that gave up, an unknown number)
    SYSTEM = "system"  # Asterisk itself: a shutdown, restart or crash cut the call
    UNKNOWN = ""  # not reported (an incomplete call)


class Role(StrEnum):
    """What a signed-in person may see and do (the web app and the API)."""

    OPERATOR = "operator"  # their own calls and recordings; the operator desk
    SUPERVISOR = "supervisor"  # every call and recording, the live board, statistics, the audit log
    DEPARTMENT = "department"  # cases forwarded to their department; never recordings; caller numbers masked
    ADMIN = "admin"  # everything a supervisor sees, plus users


class Direction(StrEnum):
    """Who started the call."""

    INBOUND = "inbound"  # a citizen called a hotline number
    INTERNAL = "internal"  # an operator called another operator or a number on the PBX
    OUTBOUND = "outbound"  # an operator called a citizen (call-backs)


class Cel(StrEnum):
    """Standard CEL event names (Asterisk's ``EventName``) that the call log reads."""

    CHAN_START = "CHAN_START"
    CHAN_END = "CHAN_END"
    ANSWER = "ANSWER"
    HANGUP = "HANGUP"
    APP_START = "APP_START"
    APP_END = "APP_END"
    BRIDGE_ENTER = "BRIDGE_ENTER"
    BRIDGE_EXIT = "BRIDGE_EXIT"
    BLINDTRANSFER = "BLINDTRANSFER"
    ATTENDEDTRANSFER = "ATTENDEDTRANSFER"
    LINKEDID_END = "LINKEDID_END"


# The names compared once or more per event on the ingest path, looked up once: on Python 3.11 reading an enum
# member off its class costs 0.1 us a time, a module global 0.02.
LINKEDID_END, BRIDGE_ENTER, BRIDGE_EXIT = Cel.LINKEDID_END, Cel.BRIDGE_ENTER, Cel.BRIDGE_EXIT


class UserEvent(StrEnum):
    """CELGenUserEvent names raised by the project's dialplan (not by the IVR). Only what standard CEL cannot
    say: a PBX without them still gets a correct call log."""

    QUEUE_RESULT = "QUEUE_RESULT"  # status=<QUEUESTATUS>: why the queue gave up (TIMEOUT, JOINEMPTY, ...)


IVR_EVENT_PREFIX = "IVR_"


class IvrEvent(StrEnum):
    """The IVR's user events and the fields each carries; sent as ``IVR_<name>`` (see :attr:`event_name`)."""

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

    @property
    def event_name(self) -> str:
        """The CEL event name the listener sees, e.g. ``IVR_TOPIC``."""
        return IVR_EVENT_PREFIX + self.value


class IvrVar(StrEnum):
    """Channel variables the IVR sets for the dialplan."""

    LANG = "IVR_LANG"  # vi or en
    TOPIC = "IVR_TOPIC"  # a topic code, or "unknown"
    OUTCOME = "IVR_OUTCOME"  # an IvrOutcome
    MESSAGE = "IVR_MESSAGE"  # the voice message file, when OUTCOME is message
    CALLBACK_NUMBER = "IVR_CALLBACK_NUMBER"  # the number to call back, when OUTCOME is callback


class IvrOutcome(StrEnum):
    """How the IVR hands the call back (``IVR_OUTCOME``)."""

    QUEUE = "queue"  # go on to the operators queue
    MESSAGE = "message"  # a voice message was left: hang up
    CALLBACK = "callback"  # a callback was requested: hang up
    HANGUP = "hangup"  # never set as a variable: the caller left while in the IVR


UNKNOWN_TOPIC = "unknown"  # the topic of a caller who chose none

# Dialplan applications during which a caller is "in the voice menu" (a hang-up there is abandoned_ivr), and the
# queue application; read from the application each CEL event carries, so cel.conf need not list them in `apps`.
IVR_APPS = frozenset({"AGI", "EAGI", "Read", "ReadExten", "Background", "WaitExten", "BackGround"})
QUEUE_APP = "Queue"
QUEUE_MEMBER_APP = "AppQueue"  # the application a channel rung by a queue carries
# Asterisk's hangupsource when the dialplan, not a person, ended the channel (an empty one: Asterisk itself).
DIALPLAN_HANGUP = "dialplan/builtin"


class RecordingStatus(StrEnum):
    """Where a recording is in its life (the ``recordings`` table)."""

    PENDING = "pending"  # seen in the spool, not yet taken
    PROCESSING = "processing"  # claimed by a worker (host:pid, with a lease)
    STORED = "stored"  # the compact copy is verified in the store; the WAV is gone
    EMPTY = "empty"  # MixMonitor wrote no audio (the caller never reached anyone): nothing to store
    ERROR = "error"  # the last attempt failed; the WAV is kept and retried
    PURGED = "purged"  # deleted by retention; the row stays


class RecordingKind(StrEnum):
    """What was recorded."""

    CONVERSATION = "conversation"  # MixMonitor while the caller was bridged with operators
    MESSAGE = "message"  # a voice message left in the IVR after hours


class Spool:
    """The MixMonitor spool layout: ``<spool>/<linkedid>/<uniqueid>.wav`` for conversations and
    ``<spool>/<linkedid>/msg-<uniqueid>.wav`` for voice messages; ``<file>.done`` once the file is closed.

    ``<linkedid>`` and ``<uniqueid>`` are Asterisk ids: ``<epoch>.<sequence>``, or
    ``<systemname>-<epoch>.<sequence>`` when asterisk.conf sets a ``systemname``."""

    DONE_SUFFIX = ".done"
    MESSAGE_PREFIX = "msg-"
    EXTENSION = ".wav"
    # The systemname part has no dot, so no id can be "." or ".." or reach out of its folder; group 1 is the epoch.
    ID_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_-]*-)?([0-9]+)\.[0-9]+$")

    @staticmethod
    def conversation(spool: str, linkedid: str, uniqueid: str) -> str:
        """Where MixMonitor records a conversation (``spool`` as the PBX sees it)."""
        return f"{spool.rstrip('/')}/{linkedid}/{uniqueid}{Spool.EXTENSION}"

    @staticmethod
    def message(spool: str, linkedid: str, uniqueid: str) -> str:
        """Where the IVR records a voice message (``spool`` as the PBX sees it)."""
        return f"{spool.rstrip('/')}/{linkedid}/{Spool.MESSAGE_PREFIX}{uniqueid}{Spool.EXTENSION}"
