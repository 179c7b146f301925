"""Split the decoded AMI text stream into messages at blank lines, in linear time and bounded memory.

panoramisk 1.4 (and our first protocol) glued every read onto all pending text and split the whole of it again:
a message that never reaches its blank line cost quadratic time (16 MiB took 47 s of event-loop time) and
unbounded memory. Here each read is searched once (plus the few characters a separator may straddle), and a
message that grows past the cap is dropped; the framer then skips to the next blank line and reads on from there.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
SEPARATOR = "\r\n\r\n"
STRADDLE = len(SEPARATOR) - 1  # a separator split across reads starts at most this far back
MAX_MESSAGE_CHARS = 1024 * 1024


class MessageFramer:
    """Cuts text fed in any pieces into AMI messages (the text between blank lines, separator removed)."""

    def __init__(self, limit: int = MAX_MESSAGE_CHARS) -> None:
        self.limit = limit
        self.oversized = 0  # messages dropped for growing past the cap
        self._parts: list[str] = []
        self._size = 0
        self._skipping = False  # inside a dropped message: everything up to the next blank line goes

    @property
    def pending_chars(self) -> int:
        """How many characters of an unfinished message are held."""
        return self._size

    def feed(self, text: str) -> list[str]:
        """Take the next piece of the stream; return the messages it completes, in order."""
        messages: list[str] = []
        if self._parts or self._skipping:  # first finish what an earlier read began (a separator may straddle)
            text = self._take(text, messages)
        start = 0  # then the read's own messages, cut by position (no copy of the rest after each)
        while (found := text.find(SEPARATOR, start)) >= 0:
            messages.append(text[start:found])
            start = found + len(SEPARATOR)
        if start < len(text):
            self._hold(text[start:])
        return messages

    def _take(self, text: str, messages: list[str]) -> str:
        """Consume ``text`` up to and including the first separator (or all of it); return the rest."""
        tail = self._tail()
        found = (tail + text).find(SEPARATOR)
        if found < 0:
            self._hold(text)
            return ""
        cut = found - len(tail)  # where the separator starts in ``text`` (negative: it began in the tail)
        if not self._skipping:
            pending = "".join(self._parts)
            messages.append(pending[:len(pending) + min(cut, 0)] + text[:max(cut, 0)])
        self._parts, self._size, self._skipping = [], 0, False
        return text[cut + len(SEPARATOR):]

    def _tail(self) -> str:
        """The last few characters held, where a separator split across reads may have begun."""
        tail = ""
        for part in reversed(self._parts):
            tail = part[-(STRADDLE - len(tail)):] + tail
            if len(tail) >= STRADDLE:
                break
        return tail

    def _hold(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        if self._size > self.limit:
            self._drop()
        elif self._skipping:
            self._keep_tail()

    def _drop(self) -> None:
        if not self._skipping:
            self.oversized += 1
            head = self._parts[0][:120]
            log.error("AMI: a message grew past %d characters without a blank line; dropped (it began %r), "
                      "reading on after the next blank line", self.limit, head)
        self._skipping = True
        self._keep_tail()

    def _keep_tail(self) -> None:
        """While skipping, only the characters that may start the next separator are kept."""
        tail = self._tail()
        self._parts, self._size = [tail], len(tail)
