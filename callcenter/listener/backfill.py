"""Read Asterisk's own CEL file (cel_custom JSON lines) to fill whatever AMI did not deliver.

A cursor remembers how far the file was read (and the ordinals so far), so a periodic backfill reads only what
is new; a rotated or truncated file is read again from the start. A process restart reads the whole file once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from callcenter.ami.events import CelEvent, Ordinals, from_file_line

log = logging.getLogger(__name__)


class CelFileCursor:
    """Incremental reader of one cel_custom JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode: int | None = None
        self._offset = 0
        self._line = 0
        self._ordinals = Ordinals()
        self._warned = False

    def reset(self) -> None:
        """Read the whole file again next time (after events read could not be stored; dedupe makes it safe)."""
        self._inode = None

    def _reset_if_replaced(self) -> bool:
        stat = self.path.stat()
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            self._inode, self._offset, self._line, self._ordinals = stat.st_ino, 0, 0, Ordinals()
        return stat.st_size > self._offset

    def read_new(self) -> list[CelEvent]:
        """Every complete, well-formed line added since the last call; bad lines are logged and skipped."""
        if not self.path.exists():
            if not self._warned:
                log.warning("backfill: CEL file %s does not exist (yet); AMI is the only source", self.path)
                self._warned = True
            return []
        if not self._reset_if_replaced():
            return []
        events: list[CelEvent] = []
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # Asterisk is still writing this line; the next backfill reads it whole
                self._offset += len(raw)
                self._line += 1
                self._parse(raw, events)
        return events

    def _parse(self, raw: bytes, into: list[CelEvent]) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            return
        try:
            into.append(self._ordinals.assign(from_file_line(line)))
        except Exception as exc:  # MalformedEvent, or anything odd: one bad line never costs the good ones
            log.warning("backfill: %s line %d skipped: %s", self.path.name, self._line, exc)
