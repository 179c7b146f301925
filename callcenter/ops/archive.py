"""A backup folder: its layout, its index (``backup.json``), copying files with their digest, and progress.

```
BACKUP/
  backup.json                  written last: its presence means the backup finished (format, revision, tables,
                               every file with size, sha256 and the rows it belongs to, problems found)
  database/<table>.jsonl       one JSON array per row, columns as the index lists them (see dump.py)
  files/recordings/<path>      each stored recording, at its path below the recordings store
  files/attachments/<aa>/<sha256>   each case attachment, as the attachments folder keeps it
```
Everything is created private (folders 0700, files 0600): the backup holds recordings, password hashes and the
citizens' numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Literal, TextIO

from pydantic import BaseModel, Field

from recordings.files import create_private, fsync_dir, make_private_dirs

FORMAT = 1
INDEX = "backup.json"
DATABASE = "database"
FILES = "files"
BLOCK = 1 << 20
FileKind = Literal["recordings", "attachments"]


class BackupError(Exception):
    """A backup or restore refused or stopped; the message says why (nothing was changed unless it says so)."""


class TableDump(BaseModel):
    """One table's rows in ``database/<name>.jsonl``: its columns with their kinds, and the file's digest."""

    name: str
    columns: list[tuple[str, str]]  # (column, kind): kinds in dump.KINDS
    rows: int
    bytes: int
    sha256: str


class FileEntry(BaseModel):
    """A file of the recordings store or the attachments folder, and the rows that point at it."""

    kind: FileKind
    path: str  # relative to the store (and to files/<kind>/ in the backup)
    rows: list[int]  # recordings.id, or every case_attachments.id with this content
    size: int | None = None  # None: not in the backup (see problem)
    sha256: str | None = None
    problem: str = ""  # "" when the file is as the database says


class Index(BaseModel):
    """What ``backup.json`` says about a backup."""

    format: int = FORMAT
    created_at: str
    revision: str  # the Alembic revision of the dumped schema
    source: str  # the database engine it came from (sqlite, postgresql)
    tables: list[TableDump]
    files: list[FileEntry] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def relative(path: str) -> PurePosixPath:
    """A path from the index or the database, refused when it could leave the folder it is relative to."""
    pure = PurePosixPath(path)
    if not pure.parts or pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise BackupError(f"{path!r} is not a relative path inside the store")
    return pure


def write_index(folder: Path, index: Index) -> None:
    """Write ``backup.json`` durably, last: a backup without it is unfinished."""
    partial = folder / f".{INDEX}.part"
    with create_private(partial) as out:
        out.write(index.model_dump_json(indent=1).encode())
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, folder / INDEX)
    fsync_dir(folder)


def read_index(folder: Path) -> Index:
    """The backup's index, or a clear error when it is missing (unfinished backup) or not one this code reads."""
    path = folder / INDEX
    if not path.is_file():
        raise BackupError(f"{folder}: no {INDEX}: not a backup, or one that never finished")
    try:
        index = Index.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise BackupError(f"{path}: unreadable: {exc}") from exc
    if index.format != FORMAT:
        raise BackupError(f"{path}: backup format {index.format}, this callcenter reads format {FORMAT}")
    return index


def digest_of(path: Path) -> tuple[int, str]:
    """A file's size and SHA-256, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def copy_digest(source: Path, target: Path, root: Path) -> tuple[int, str]:
    """Copy ``source`` to a new private file ``target`` (its missing folders below ``root`` made 0700), synced to
    disk; return the size and SHA-256 of the bytes copied."""
    make_private_dirs(root, target.parent)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as handle, create_private(target) as out:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
            out.write(block)
            size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


class Progress:
    """``what: done/total files, MB`` on standard error, at most once a second and once at the end."""

    def __init__(self, what: str, files: int, size: int, out: TextIO | None = None) -> None:
        self.what, self.files, self.size = what, files, size
        self.done_files = self.done_size = 0
        self.out = out or sys.stderr
        self._shown = 0.0

    def advance(self, size: int) -> None:
        """One more file of ``size`` bytes done."""
        self.done_files += 1
        self.done_size += size
        now = time.monotonic()
        if now - self._shown >= 1.0 or self.done_files == self.files:
            self._shown = now
            print(f"{self.what}: {self.done_files}/{self.files} files, "
                  f"{self.done_size / 1e6:.1f}/{self.size / 1e6:.1f} MB", file=self.out, flush=True)
