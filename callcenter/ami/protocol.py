"""panoramisk's AMI protocol with the read path fixed for a hotline that hears Vietnamese names.

panoramisk 1.4 decodes every TCP chunk on its own with ``errors='ignore'``: a UTF-8 character split across two
reads silently vanishes ("Nguyễn" becomes "Nguyn"). Here bytes go through one incremental decoder per connection,
so a character split across reads is completed by the next read; bytes that are really invalid become U+FFFD
instead of disappearing. A message that fails to parse or dispatch is logged and skipped; it never drops the link.
Messages are cut from the stream by :class:`~callcenter.ami.framing.MessageFramer` (linear time, capped size).

A client that needs only some events (the listener: CEL) names them: any other event is dropped by a look at its
first line, before it is parsed, unless it answers one of our actions (it carries an ActionID: the CoreShowChannel
items of the live-calls check). Without an AMI ``eventfilter`` a real call sends ~10 messages per CEL event.

A client may also take some events ``direct``: their text (the message, stripped) goes to its callback instead of
through panoramisk's Message and its dispatch, which cost about as much as everything else the listener does with
an event before spooling it (the listener reads a CEL event's text in one match, see
:func:`callcenter.ami.events.from_text`).
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from panoramisk.utils import EOL

from callcenter.ami.framing import MAX_MESSAGE_CHARS, MessageFramer

log = logging.getLogger(__name__)
BANNER = "Asterisk Call Manager/"
EVENT = "Event: "
ACTION_ID = EOL + "ActionID: "
BANNER_MAX = len(BANNER) + 256  # a version number is short: a longer first line is no banner
TextCallback = Callable[[str], None]  # takes a message's text


class Utf8AMIProtocol(AMIProtocol):  # type: ignore[misc]
    """AMIProtocol whose ``data_received`` decodes incrementally and survives malformed messages."""

    version: str | None

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS, events: frozenset[str] | None = None,
                 direct: Mapping[str, TextCallback] | None = None) -> None:
        """``events``: the event names to parse and dispatch (None: all). ``direct``: event names whose text goes
        straight to a callback instead of being parsed and dispatched as a Message."""
        super().__init__()
        self.max_message_chars = max_message_chars
        self.events = events
        self.direct = dict(direct or {})

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._framer = MessageFramer(self.max_message_chars)
        self._head: str | None = ""  # the stream's start until the banner line is complete; None after
        self.malformed = 0
        self.unwanted = 0  # events dropped unparsed (not among ``events``)

    @property
    def oversized(self) -> int:
        """Messages dropped for growing past ``max_message_chars`` without a blank line."""
        return self._framer.oversized

    @property
    def pending_chars(self) -> int:
        """Characters of an unfinished message held now."""
        return self._framer.pending_chars

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if self._head is not None:
            text = self._after_banner(text)
        for chunk in self._framer.feed(text):
            self._handle_chunk(chunk.strip())

    def _after_banner(self, text: str) -> str:
        """Take Asterisk's first line (``Asterisk Call Manager/<version>``) off the stream; return what follows."""
        head = (self._head or "") + text
        complete = head.startswith(BANNER) and EOL in head
        arriving = head.startswith(BANNER) and len(head) < BANNER_MAX  # the banner may come a byte at a time
        if BANNER.startswith(head) or (arriving and not complete):
            self._head = head
            return ""
        self._head = None
        if not complete:
            return head  # no banner: the stream is read as messages from its first byte
        banner, _, rest = head.partition(EOL)
        self.version = banner[len(BANNER):].strip()
        log.info("AMI protocol version %s", self.version)
        return rest

    def _handle_chunk(self, chunk: str) -> None:
        if not chunk:
            return
        name = _event_name(chunk)
        try:
            if name is not None and ACTION_ID not in chunk:  # an answer to an action goes to its waiting future
                if self.events is not None and name not in self.events:
                    self.unwanted += 1
                    return
                if name in self.direct:
                    self.direct[name](chunk)
                    return
            message = Message.from_line(chunk)
            if message is None:
                self.malformed += 1
                log.warning("AMI: skipped a message with neither Event nor Response: %.120r", chunk)
                return
            self.handle_message(message)
        except Exception:
            self.malformed += 1
            log.exception("AMI: skipped a message that failed to parse or dispatch: %.120r", chunk)


def _event_name(chunk: str) -> str | None:
    """The event's name, if the message is an event (Asterisk writes ``Event:`` first, as named)."""
    if not chunk.startswith(EVENT):
        return None
    end = chunk.find(EOL)
    return chunk[len(EVENT):end if end >= 0 else len(chunk)].strip()

