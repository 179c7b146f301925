"""panoramisk's AMI protocol with the read path fixed for a hotline that hears Vietnamese names.

panoramisk 1.4 decodes every TCP chunk on its own with ``errors='ignore'``: a UTF-8 character split across two
reads silently vanishes ("Nguyễn" becomes "Nguyn"). Here bytes go through one incremental decoder per connection,
so a character split across reads is completed by the next read; bytes that are really invalid become U+FFFD
instead of disappearing. A message that fails to parse or dispatch is logged and skipped; it never drops the link.
"""

from __future__ import annotations

import codecs
import logging
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from panoramisk.utils import EOL

log = logging.getLogger(__name__)
SEPARATOR = EOL + EOL
BANNER = "Asterisk Call Manager/"


class Utf8AMIProtocol(AMIProtocol):  # type: ignore[misc]
    """AMIProtocol whose ``data_received`` decodes incrementally and survives malformed messages."""

    version: str | None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.malformed = 0

    def data_received(self, data: bytes) -> None:
        text = self._pending + self._decoder.decode(data)
        if self.version is None and text.startswith(BANNER) and EOL in text:
            banner, _, text = text.partition(EOL)
            self.version = banner[len(BANNER):].strip()
            log.info("AMI protocol version %s", self.version)
        *messages, self._pending = text.split(SEPARATOR)
        for chunk in messages:
            self._handle_chunk(chunk.strip())

    def _handle_chunk(self, chunk: str) -> None:
        if not chunk:
            return
        try:
            message = Message.from_line(chunk)
            if message is None:
                self.malformed += 1
                log.warning("AMI: skipped a message with neither Event nor Response: %.120r", chunk)
                return
            self.handle_message(message)
        except Exception:
            self.malformed += 1
            log.exception("AMI: skipped a message that failed to parse or dispatch: %.120r", chunk)
