"""File operations the recordings worker relies on: private modes, durable renames, no links followed.

Who creates what, and with which permissions:

- The store (``recordings.store``) is ours: folders 0700 and files 0600 whatever the umask, so only the service
  user (and root) can read a recording.
- The SQLite database is ours too: ``callcenter/store/db.py`` creates the file 0600 (SQLite gives its ``-wal`` and
  ``-shm`` files the database file's mode) and a missing folder 0700.
- The spool WAVs (MixMonitor) and the CEL file (``cel_custom``) are Asterisk's: Asterisk creates them with its own
  umask (``cel_custom`` opens the file with ``fopen(..., "a")``, so 0644 under the usual 022) and we never change
  them. To keep other local users out, run Asterisk with a umask of 027 (a systemd drop-in ``UMask=0027``) and/or
  make ``/var/log/asterisk/cel-custom/`` and the spool folder 0750, owned by asterisk with the callcenter user in
  their group: a closed folder protects whatever mode the files inside get.

Below the spool root (which the administrator configures and may be a link), nothing is followed: the worker
reads, repairs and deletes spool files through ``O_NOFOLLOW`` opens relative to the folder it walked, so a link
planted (or swapped in after a scan) cannot send it outside the spool.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import BinaryIO

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def make_private_dirs(root: Path, folder: Path) -> None:
    """Create ``root`` and ``folder`` below it, each missing level 0700 and made durable in its parent."""
    if not root.is_dir():
        root.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)  # another worker may be at it too
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        if not current.is_dir():
            current.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
            fsync_dir(current.parent)  # the new folder's name must survive a power loss like the file in it


def create_private(path: Path) -> BinaryIO:
    """A new file, 0600 from its first byte (never an existing file or a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, PRIVATE_FILE), "wb")


def publish(partial: Path, target: Path) -> None:
    """Rename a finished file into place durably: its data on disk first, then the rename, then the folder."""
    fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)  # without this a power loss can leave the new name pointing at an empty file
    finally:
        os.close(fd)
    os.replace(partial, target)
    fsync_dir(target.parent)


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (a rename, a new name) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _folder_fd(root: Path, relative: PurePath) -> int:
    """An open descriptor of ``relative``'s folder under ``root``, reached without following any link."""
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{relative} is not a path below {root}")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in relative.parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            os.close(folder)
            folder = inner
    except BaseException:
        os.close(folder)
        raise
    return folder


def open_under(root: Path, relative: PurePath, flags: int) -> int:
    """Open ``root / relative`` (an existing file) following no link below ``root``; the caller closes it."""
    folder = _folder_fd(root, relative)
    try:
        return os.open(relative.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    finally:
        os.close(folder)


def unlink_under(root: Path, relative: PurePath) -> None:
    """Delete ``root / relative`` if it is there (a link itself, never its target), following no link."""
    folder = _folder_fd(root, relative)
    try:
        os.unlink(relative.name, dir_fd=folder)
    except FileNotFoundError:
        pass
    finally:
        os.close(folder)
