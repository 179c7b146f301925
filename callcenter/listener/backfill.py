"""Fill whatever AMI did not deliver from Asterisk's own CEL file (read by :mod:`callcenter.listener.celfile`).

The file is read from the position saved in the database, one bounded chunk at a time; each chunk is journaled
together with the position after it, in one transaction, before the next is read. A failure (the database is
down) leaves the saved position where the last committed chunk ended, so nothing is skipped and a restart does not
read the whole file again. Finished calls still without a call log are built at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from callcenter.ami.events import CelEvent
from callcenter.listener.celfile import CelFile
from callcenter.ops import metrics
from callcenter.store.cursors import FilePosition

log = logging.getLogger(__name__)


class BackfillStore(Protocol):
    """What the backfill needs of the call-log store."""

    def file_position(self) -> FilePosition | None: ...

    def ingest(self, events: Sequence[CelEvent], source: str, position: FilePosition | None = None) -> list[str]: ...

    def build_missing(self) -> list[str]: ...


class Backfill:
    """Journals what the CEL file has and the journal lacks, then builds every finished call without a log."""

    def __init__(self, cel_file: CelFile, store: BackfillStore) -> None:
        self.cel_file = cel_file
        self.store = store

    def run(self) -> int:
        """One backfill (sync; runs in a worker thread); the number of calls built. Store errors propagate."""
        built = 0
        for chunk in self.cel_file.chunks(self.store.file_position()):
            metrics.CEL_EVENTS.labels("file").inc(len(chunk.events))
            built += len(self.store.ingest(chunk.events, "file", chunk.position))
        built += len(self.store.build_missing())
        if built:
            log.info("backfill: built %d call(s) from %s", built, self.cel_file.path)
        return built
