"""Names defined once: call statuses, CEL event names and the dialplan's user events."""

from __future__ import annotations

from enum import StrEnum

from ivr.channel import Event as IvrEvent  # the IVR's event vocabulary, defined once there


class Status(StrEnum):
    """How a call ended, from the citizen's point of view."""

    ANSWERED = "answered"  # an operator talked to the caller
    VOICE_MESSAGE = "voice_message"  # after hours: the caller left a message (a recording of kind "message")
    CALLBACK_REQUESTED = "callback_requested"  # after hours: the caller asked to be called back
    ABANDONED_QUEUE = "abandoned_queue"  # the caller hung up while waiting for an operator
    ABANDONED_IVR = "abandoned_ivr"  # the caller hung up in the IVR menu (ivr_path shows how far)
    ABANDONED_BEFORE_QUEUE = "abandoned_before_queue"  # hung up after the PBX answered, before IVR and queue
    MISSED = "missed"  # the queue gave up: nobody logged in or nobody answered in time
    FAILED = "failed"  # the call never got going (not answered by the PBX, error cause)


class DeviceType(StrEnum):
    """What the answering operator used."""

    IP_PHONE = "ip_phone"
    SOFTPHONE = "softphone"
    UNKNOWN = "unknown"


# Standard CEL event names.
CHAN_START = "CHAN_START"
CHAN_END = "CHAN_END"
ANSWER = "ANSWER"
HANGUP = "HANGUP"
BRIDGE_ENTER = "BRIDGE_ENTER"
BRIDGE_EXIT = "BRIDGE_EXIT"
BLINDTRANSFER = "BLINDTRANSFER"
ATTENDEDTRANSFER = "ATTENDEDTRANSFER"
LINKEDID_END = "LINKEDID_END"
APP_START = "APP_START"

# User events raised by asterisk-conf/extensions.conf with CELGenUserEvent.
HOTLINE = "HOTLINE"  # line=<number>
QUEUE_ENTER = "QUEUE_ENTER"  # queue=<name>
OPERATOR_ANSWER = "OPERATOR_ANSWER"  # endpoint=<op>&device=<type>
QUEUE_RESULT = "QUEUE_RESULT"  # status=<QUEUESTATUS>

# The IVR reports its path with user events named IVR_<step> (ivr/adapter.py adds the prefix); the vocabulary
# is in ivr/channel.py.
IVR_EVENT_PREFIX = "IVR_"
IVR_START = IVR_EVENT_PREFIX + IvrEvent.START
IVR_AFTER_HOURS = IVR_EVENT_PREFIX + IvrEvent.AFTER_HOURS
IVR_MESSAGE = IVR_EVENT_PREFIX + IvrEvent.MESSAGE
IVR_CALLBACK = IVR_EVENT_PREFIX + IvrEvent.CALLBACK
IVR_EXIT = IVR_EVENT_PREFIX + IvrEvent.EXIT
