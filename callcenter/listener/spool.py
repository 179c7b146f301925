"""The listener's durable buffer: CEL events from AMI wait here, fsynced, until the store has committed them.

Every batch the AMI consumer takes off its queue is appended here first (one JSON line per event, fsynced), and
the delivery replays the file in order into the store, truncating it once all is committed. So a batch the
database refuses is never lost, newer events queue behind older ones in the same file, a restart replays what
the last process could not store, and the AMI reader never waits for the database: only for a local append.
(Replaying something already committed is harmless: the journal dedupes by event key, ordinals included.)

What this process appended is also kept in memory (up to ``MEMORY_BYTES`` of lines) and handed to the delivery
from there: reading the lines back and decoding them cost a tenth of the listener's CPU at full rate. The file is
read only for what an earlier process left, what did not fit in memory, and after a restart.

The file is bounded (``listener.spool_max_bytes``): what does not fit is dropped with an error that says what was
lost; only the CEL file backfill can bring that back. One listener at a time may use a spool (an flock says so).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

from sqlalchemy.engine import make_url

from callcenter.ami.events import FIELDS, CelEvent, event_in_order, event_of
from callcenter.ops import metrics
from callcenter.settings import PROJECT_ROOT
from callcenter.store import jsoncodec
from recordings.files import PRIVATE_FILE, PRIVATE_FOLDER, fsync_dir

log = logging.getLogger(__name__)
READ_BYTES = 1024 * 1024  # one replay step: about 5,000 events (~200 bytes a line), stored in one transaction
COMPACT_BYTES = 4 * 1024 * 1024  # committed bytes at the head worth rewriting the file for (see _compaction_due)
MEMORY_BYTES = 32 * 1024 * 1024  # lines appended by this process whose events are also kept in memory (at most
# about 160,000 events, ~160 MB: a pending event takes ~5 times its line in memory; normally almost nothing waits)


class SpoolBusy(RuntimeError):
    """Another listener process holds the spool."""


@dataclass(frozen=True)
class _Kept:
    """Events this process appended, kept in memory, and where their lines are in the file."""

    start: int
    end: int
    events: list[CelEvent]


@dataclass(frozen=True)
class Pending:
    """Spooled events in order, and the offset just after them (what to commit once they are stored)."""

    events: list[CelEvent]
    end: int


def spool_path(folder: Path | None, db_url: str, node: str) -> Path:
    """Where this node's spool for this database lives: ``folder``, or by default next to a SQLite database file
    (else the project's ``var/``), named by node and database so that no spool is replayed into another one."""
    url = make_url(db_url)
    if folder is None:
        local = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        folder = Path(url.database).parent if local and url.database else PROJECT_ROOT / "var"
    which = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return folder / f"listener-spool-{re.sub(r'[^A-Za-z0-9_.-]', '_', node)}-{which}.jsonl"


_values = attrgetter(*FIELDS)  # an event's values as a tuple, in FIELDS order


def _line(event: CelEvent) -> bytes:
    """The event as a JSON array of its fields in FIELDS order (a third of the bytes and half the time of an
    object with the names in every line). Lines that are objects (written before) are still read."""
    return jsoncodec.encode(_values(event)) + b"\n"


def _event(value: object) -> CelEvent:
    """The event of a decoded line: an array in FIELDS order, or an object with the field names."""
    if isinstance(value, list) and len(value) == len(FIELDS):
        return event_in_order(value)
    if isinstance(value, dict):
        return event_of(value)
    raise ValueError(f"not an event: {str(value)[:80]!r}")


class Spool:
    """An append-only JSON-lines file of events not yet stored; thread-safe (append and replay run in threads)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0  # events refused because the spool was full or the disk failed
        self._lock = threading.Lock()
        self._closed = False
        self._fd = _open_locked(path)
        self._size = os.fstat(self._fd).st_size
        self._done = 0  # bytes at the head already committed to the store
        self._kept: deque[_Kept] = deque()  # appended batches not yet committed, in file order
        self._kept_bytes = 0
        self._repair_torn_tail()

    @property
    def size(self) -> int:
        """Bytes in the file now."""
        return self._size

    @property
    def pending_bytes(self) -> int:
        """Bytes of events not yet stored."""
        return self._size - self._done

    @property
    def pending(self) -> bool:
        """Whether events wait to be stored."""
        return self._size > self._done

    def append(self, events: Sequence[CelEvent]) -> int:
        """Write the events durably (fsync) after those already here; return how many were kept."""
        lines, events = self._encoded(events)
        with self._lock:
            kept = self._fitting(lines)
            start = self._size
            try:
                self._write(b"".join(lines[:kept]))
            except OSError as exc:
                kept = self._write_failed(exc)
            if kept and self._kept_bytes + self._size - start <= MEMORY_BYTES:
                self._kept.append(_Kept(start, self._size, list(events[:kept])))
                self._kept_bytes += self._size - start
        if kept < len(events):
            self._report_dropped(events[kept:])
        return kept

    def _encoded(self, events: Sequence[CelEvent]) -> tuple[list[bytes], Sequence[CelEvent]]:
        """Each event's line, and the events that have one: an event no encoder takes (nothing parsed from AMI or
        the CEL file should be one) is logged and dropped alone, not with its batch."""
        try:
            return [_line(event) for event in events], events
        except (TypeError, ValueError, RecursionError):
            pass
        lines, kept = [], []
        for event in events:
            try:
                lines.append(_line(event))
                kept.append(event)
            except (TypeError, ValueError, RecursionError) as exc:
                self.dropped += 1
                metrics.CEL_DROPPED.inc()
                log.error("listener spool %s: CEL %s of call %s cannot be written (%s: %s); dropped",
                          self.path, event.event, event.linkedid, type(exc).__name__, exc)
        return lines, kept

    def _fitting(self, lines: list[bytes]) -> int:
        room, kept = self.max_bytes - self._size, 0
        while kept < len(lines) and len(lines[kept]) <= room:
            room -= len(lines[kept])
            kept += 1
        return kept

    def _write(self, data: bytes) -> None:
        if self._closed:
            raise OSError("the spool is closed (the listener is stopping)")
        if not data:
            return
        _write_all(self._fd, data)  # O_APPEND: whole lines after the last whole line
        self._size += len(data)

    def _write_failed(self, exc: OSError) -> int:
        log.error("listener spool %s: cannot write (%s)", self.path, exc)
        if not self._closed:  # (closed: its descriptor's number may be another file's now)
            with contextlib.suppress(OSError):  # no half-written line may stay for the next append to glue onto
                os.ftruncate(self._fd, self._size)
        return 0

    def _report_dropped(self, events: Sequence[CelEvent]) -> None:
        self.dropped += len(events)
        metrics.CEL_DROPPED.inc(len(events))
        calls = sorted({event.linkedid for event in events})
        log.error("listener spool %s is full or failing (%d of %d bytes): dropped %d CEL event(s) of %d call(s) "
                  "(linkedids %s), times %.0f to %.0f; only the CEL file backfill can bring them back",
                  self.path, self._size, self.max_bytes, len(events), len(calls), ", ".join(calls[:20]),
                  events[0].time, events[-1].time)

    def read(self, limit: int = READ_BYTES) -> Pending | None:
        """The oldest events not yet committed (whole lines, about ``limit`` bytes), or None when there are none:
        from the file up to the first batch kept in memory, then the batches in memory that follow and fit."""
        with self._lock:
            start = self._done
            first = self._kept[0] if self._kept else None
            data = b""
            if first is None or first.start > start or first.end - start > limit:
                # Up to the first batch in memory at most: a line boundary, as the file's end is.
                step = min(limit, first.start - start) if first is not None and first.start > start else limit
                data = os.pread(self._fd, step, start)
                if len(data) == step and not data.endswith(b"\n"):
                    data = data[:data.rfind(b"\n") + 1] or self._line_at(start)
            kept, end = self._from_memory(start + len(data), start + limit)
        if end == start:
            return None
        return Pending(self._parse(data, start) + kept if data else kept, end)

    def _from_memory(self, at: int, stop: int) -> tuple[list[CelEvent], int]:
        """The events of the batches in memory that follow each other from offset ``at`` and end by ``stop``, and
        the offset after them (under the lock)."""
        events: list[CelEvent] = []
        for kept in self._kept:
            if kept.start < at:
                continue
            if kept.start != at or kept.end > stop:
                break
            events.extend(kept.events)
            at = kept.end
        return events, at

    def _forget_kept(self) -> None:
        """Drop the batches in memory that are committed, or that a commit cut through (read from the file then)."""
        while self._kept and self._kept[0].start < self._done:
            kept = self._kept.popleft()
            self._kept_bytes -= kept.end - kept.start

    def _line_at(self, start: int) -> bytes:
        """The one line at ``start`` (longer than a read step: an event with a huge field)."""
        rest = os.pread(self._fd, self._size - start, start)
        return rest[:rest.find(b"\n") + 1]

    def _parse(self, data: bytes, start: int) -> list[CelEvent]:
        lines = data.splitlines()
        try:  # all lines at once (one decoder call); line by line only when one of them is damaged
            values = jsoncodec.loads(b"[" + b",".join(lines) + b"]")
            if len(values) == len(lines):
                return [_event(value) for value in values]
        except (ValueError, TypeError, RecursionError):
            pass
        events = []
        for number, line in enumerate(lines):
            try:
                events.append(_event(jsoncodec.loads(line)))
            except (ValueError, TypeError, RecursionError) as exc:  # a line damaged on disk: the rest are good
                log.error("listener spool %s: line %d after byte %d skipped: %s", self.path, number + 1, start, exc)
        return events

    def commit(self, end: int) -> None:
        """Everything before ``end`` is stored: forget it (truncate when nothing is left, compact a long head)."""
        with self._lock:
            self._done = max(self._done, end)
            self._forget_kept()
            if self._done >= self._size:
                os.ftruncate(self._fd, 0)
                os.fsync(self._fd)
                self._size = self._done = 0
            elif self._compaction_due():
                self._compact()

    def _compaction_due(self) -> bool:
        """Whether to rewrite the file without its committed head: once the head is long (``COMPACT_BYTES``) and
        at least as long as what follows it, or the file is near its bound (a stored head must not cost new events
        their room). A compaction copies everything after the head: rewriting at every few committed megabytes,
        draining a backlog of B bytes copied about B * B / 8 MB (a full 256 MB spool: 8 GB; in bench/ingest.py
        1.8 us of the listener's ~30 an event); this way about B in all."""
        head, rest = self._done, self._size - self._done
        return head >= COMPACT_BYTES and (head >= rest or self._size > self.max_bytes - COMPACT_BYTES)

    def _compact(self) -> None:
        """Rewrite the file without its committed head (under the lock; the head is only ever stored data)."""
        rest = os.pread(self._fd, self._size - self._done, self._done)
        temporary = self.path.with_name(self.path.name + ".new")
        temporary.unlink(missing_ok=True)  # left by a crash during an earlier compaction
        descriptor = _open_locked(temporary)
        try:
            _write_all(descriptor, rest)
            os.replace(temporary, self.path)
        except OSError:
            os.close(descriptor)
            raise
        os.close(self._fd)  # the new file is the spool now, whatever happens next: appends go to it
        cut = self._done
        self._kept = deque(_Kept(kept.start - cut, kept.end - cut, kept.events) for kept in self._kept)
        self._fd, self._size, self._done = descriptor, len(rest), 0
        fsync_dir(self.path.parent)

    def _repair_torn_tail(self) -> None:
        """A line the last process did not finish writing was never acknowledged: cut it, so that the next append
        does not glue onto it."""
        end = _end_of_last_line(self._fd, self._size)
        if end < self._size:
            log.warning("listener spool %s: an unfinished last line (the listener stopped while writing it) is cut",
                        self.path)
            os.ftruncate(self._fd, end)
            self._size = end

    def close(self) -> None:
        """Release the file (and its lock); an append still under way in a thread fails, and says so."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)


def _open_locked(path: Path) -> int:
    """Open (creating: 0600 in a 0700 folder, never through a link) and lock the spool for this process."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    created = not path.exists()
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(path, flags, PRIVATE_FILE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(descriptor)
        raise SpoolBusy(f"listener spool {path} is in use by another listener (same node and database)") from exc
    if created:
        try:
            fsync_dir(path.parent)  # the new file's name must survive a crash too
        except OSError:
            os.close(descriptor)
            raise
    return descriptor


def _write_all(descriptor: int, data: bytes) -> None:
    """Write and fsync ``data``; a short write is an error (the caller cuts the file back)."""
    written = os.write(descriptor, data)
    if written != len(data):
        raise OSError(f"short write ({written} of {len(data)} bytes)")
    os.fsync(descriptor)


def _end_of_last_line(descriptor: int, size: int, block: int = 64 * 1024) -> int:
    """The offset just after the file's last newline (0 if none), reading backwards a block at a time."""
    end = size
    while end > 0:
        start = max(0, end - block)
        found = os.pread(descriptor, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0
