"""Read Asterisk's own CEL file (cel_custom JSON lines) in bounded chunks, from a saved position, across rotations.

A file generation is recognised by the sha256 of its first line, not by size or inode alone: after a copytruncate
the file keeps its inode and may soon grow past the old offset (reading on from there skipped a whole call), and
after a rename rotation the old file's unread tail (with its LINKEDID_END) sits under another name. So, when the
saved position's fingerprint is not the current file's, the rest of the old generation is read first from whichever
sibling (``<name>.1``, ``<name>-20261130``, ``<name>.1.gz``, ...) has that fingerprint, then the new file from its
start. Each chunk (at most ``lines`` lines or ``size`` bytes) carries the position after it; the caller commits
the chunk and its position together before asking for the next, so memory stays bounded by one chunk.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

from callcenter.ami.events import CelEvent, Ordinals, from_file_line
from callcenter.store.cursors import FilePosition

log = logging.getLogger(__name__)
FINGERPRINT_BYTES = 4096  # a CEL line is well under this: the first line identifies the generation
MAX_LINE = 1024 * 1024  # a longer "line" is not CEL: it is skipped without holding it in memory
ORDINAL_WINDOW = 10  # seconds of ordinal counts carried in a position (equal events share their second)
SIBLINGS = 32  # rotated files looked at for an old generation, newest first


@dataclass(frozen=True)
class Chunk:
    """Events read in one step and the position right after them."""

    events: list[CelEvent]
    position: FilePosition


@dataclass(frozen=True)
class Generation:
    """One file on disk as the reader found it."""

    path: Path
    inode: int
    size: int
    fingerprint: str


def open_binary(path: Path) -> BufferedIOBase:
    """The file's bytes (a rotated file compressed by logrotate is read through gzip)."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def identify(path: Path) -> Generation | None:
    """The file's generation, or None when it is missing or has no complete first line yet."""
    try:
        with open_binary(path) as handle:
            head = handle.readline(FINGERPRINT_BYTES)
        status = path.stat()
    except (OSError, EOFError):  # missing, unreadable, or a gzip file still being written
        return None
    if not head.endswith(b"\n") and len(head) < FINGERPRINT_BYTES:
        return None
    return Generation(path, status.st_ino, status.st_size, hashlib.sha256(head).hexdigest())


class CelFile:
    """The CEL file at ``path``, read in chunks of at most ``lines`` lines or ``size`` bytes."""

    def __init__(self, path: Path, lines: int = 5000, size: int = 4 * 1024 * 1024) -> None:
        self.path = path
        self.lines = lines
        self.size = size
        self._said: set[str] = set()

    def chunks(self, start: FilePosition | None) -> Iterator[Chunk]:
        """Every complete line after ``start`` (None: the whole file), in file order, one chunk at a time."""
        current = identify(self.path)
        if current is None and not self.path.exists():
            self._once(logging.WARNING, "missing", "backfill: CEL file %s does not exist (yet); AMI is the only "
                       "source", self.path)
        if start is not None and current is not None and _continues(start, current):
            yield from _Pass(self, current, start).chunks()
            return
        if start is not None:
            yield from self._rotated_tail(start)
        if current is not None:
            yield from _Pass(self, current, None).chunks()

    def _rotated_tail(self, start: FilePosition) -> Iterator[Chunk]:
        """What is left of the generation ``start`` points into, now that the file at ``path`` is another one."""
        rotated = self._find(start)
        if rotated is None:
            self._once(logging.WARNING, start.fingerprint, "backfill: %s was rotated and its previous file (read up "
                       "to line %d) is not next to it any more: lines written after that are lost to the backfill",
                       self.path, start.line)
            return
        self._once(logging.INFO, f"{start.fingerprint}:{start.offset}", "backfill: %s was rotated; reading the "
                   "rest of %s after line %d", self.path, rotated.path, start.line)
        yield from _Pass(self, rotated, start).chunks()

    def _find(self, start: FilePosition) -> Generation | None:
        """The sibling file holding the generation ``start`` points into (a renamed file keeps its inode: first)."""
        siblings = sorted(_siblings(self.path), key=lambda found: found[1].st_mtime, reverse=True)[:SIBLINGS]
        siblings.sort(key=lambda found: found[1].st_ino != start.inode)
        for path, _ in siblings:
            found = identify(path)
            if found is not None and found.fingerprint == start.fingerprint:
                return found
        return None

    def _once(self, level: int, key: str, message: str, *args: object) -> None:
        """Log a condition the periodic backfill meets again and again only the first time."""
        if key not in self._said:
            self._said.add(key)
            log.log(level, message, *args)


def _siblings(path: Path) -> list[tuple[Path, os.stat_result]]:
    """Files named like ``path`` plus a suffix (where logrotate puts old generations), with their status."""
    found = []
    for sibling in path.parent.glob(f"{glob.escape(path.name)}?*"):
        with contextlib.suppress(OSError):  # removed meanwhile (logrotate deleting its oldest file)
            status = sibling.stat()
            if stat.S_ISREG(status.st_mode):
                found.append((sibling, status))
    return found


def _continues(start: FilePosition, current: Generation) -> bool:
    """The current file is the generation ``start`` points into (same first line, not shorter)."""
    return current.fingerprint == start.fingerprint and current.size >= start.offset


class _Pass:
    """One read of one generation from a position to its last complete line."""

    def __init__(self, owner: CelFile, generation: Generation, start: FilePosition | None) -> None:
        self.owner = owner
        self.generation = generation
        self.offset = start.offset if start else 0
        self.line = start.line if start else 0
        self.ordinals = Ordinals.restore(start.ordinals) if start else Ordinals()
        self.at_end = False

    def chunks(self) -> Iterator[Chunk]:
        with open_binary(self.generation.path) as handle:
            handle.seek(self.offset)
            while not self.at_end:
                chunk = self._chunk(handle)
                if chunk is not None:
                    yield chunk

    def _chunk(self, handle: BufferedIOBase) -> Chunk | None:
        events: list[CelEvent] = []
        begin, lines = self.offset, self.line
        while self.line - lines < self.owner.lines and self.offset - begin < self.owner.size:
            raw = self._next_line(handle)
            if raw is None:
                # Asterisk is still writing this line: stop here (what it appends meanwhile must not be read as a
                # line of its own); the next backfill reads it whole.
                self.at_end = True
                break
            self._parse(raw, events)
        return None if self.offset == begin else Chunk(events, self._position())

    def _next_line(self, handle: BufferedIOBase) -> bytes | None:
        """The next complete line, counted as read; None at the end of what is complete."""
        raw = handle.readline(MAX_LINE)
        skipped = 0
        while len(raw) == MAX_LINE and not raw.endswith(b"\n"):  # not CEL: skip it piece by piece
            skipped += len(raw)
            raw = handle.readline(MAX_LINE)
        if not raw.endswith(b"\n"):
            return None
        self.offset += skipped + len(raw)
        self.line += 1
        if skipped:
            log.warning("backfill: %s line %d skipped: longer than %d bytes", self.generation.path.name,
                        self.line, MAX_LINE)
            return b""
        return raw

    def _parse(self, raw: bytes, into: list[CelEvent]) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            return
        try:
            into.append(self.ordinals.assign(from_file_line(line)))
        except Exception as exc:  # MalformedEvent, or anything odd: one bad line never costs the good ones
            log.warning("backfill: %s line %d skipped: %s", self.generation.path.name, self.line, exc)

    def _position(self) -> FilePosition:
        """The position after this chunk. The ordinal counts are cut to the recent window here too: memory stays
        bounded on a long file, and reading on now or after a restart numbers the next events the same way."""
        recent = self.ordinals.recent(ORDINAL_WINDOW)
        self.ordinals = Ordinals.restore(recent)
        generation = self.generation
        return FilePosition(str(generation.path), generation.inode, self.offset, self.line, generation.fingerprint,
                            recent)
