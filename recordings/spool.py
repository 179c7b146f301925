"""The MixMonitor spool: ``<spool>/<linkedid>/<uniqueid>.wav`` (conversations) and ``msg-<uniqueid>.wav``
(voice messages left in the IVR). The layout is the contract's (``callcenter.model.contract.Spool``), which the
rendered dialplan follows too.

An id is Asterisk's ``<epoch>.<sequence>``, or ``<systemname>-<epoch>.<sequence>`` when asterisk.conf sets a
``systemname``. Anything else in the spool (another extension such as ``.WAV`` or ``.wav49``, a file outside a call
folder, an id whose epoch is no date, a symbolic link) is a *misfit*: never processed, reported by the worker's log
and by ``callcenter recordings sweep``, and deleted by retention once older than it. Links are never followed.

A WAV is closed when MixMonitor's post-process command has written ``<file>.done`` beside it, or when its call is
finished (the call log has it) and the file has not changed for a few seconds, or when it has not changed for
hours (``orphan_seconds``: Asterisk crashed mid-call, so neither marker nor call log will ever come). A WAV of a
running call matches none of these, so it is never touched.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import BinaryIO

from callcenter.model.contract import RecordingKind, Spool
from recordings.files import open_under, unlink_under

DONE_SUFFIX = Spool.DONE_SUFFIX
MESSAGE_PREFIX = Spool.MESSAGE_PREFIX
ID_PATTERN = Spool.ID_PATTERN

LINK = "symbolic link, not followed"
STRAY = "not in a call folder"
ODD_NAME = "name off the contract <linkedid>/[msg-]<uniqueid>.wav"
NOT_A_FILE = "not a regular file"
LONE_MARKER = "marker without a WAV on the contract"


@dataclass(frozen=True)
class SpoolFile:
    """One WAV in the spool and what its path says."""

    path: Path
    linkedid: str
    uniqueid: str
    kind: RecordingKind
    recorded_at: datetime  # when the channel started (the uniqueid's epoch), UTC

    @property
    def marker(self) -> Path:
        """The file MixMonitor's post-process command creates once the WAV is closed."""
        return self.path.with_name(self.path.name + DONE_SUFFIX)


@dataclass(frozen=True)
class Misfit:
    """A spool entry off the contract, which the worker leaves alone, and why."""

    path: Path
    reason: str


@dataclass
class Scan:
    """One look at the spool: the WAVs on the contract and every misfit, each sorted by path."""

    wavs: list[SpoolFile] = field(default_factory=list)
    misfits: list[Misfit] = field(default_factory=list)


def started_at(asterisk_id: str) -> datetime | None:
    """When the channel of a uniqueid/linkedid started (UTC), or None for an id off the contract."""
    match = ID_PATTERN.match(asterisk_id)
    if match is None:
        return None
    try:
        return datetime.fromtimestamp(int(match[1]), UTC)
    except (ValueError, OverflowError, OSError):  # an epoch past year 9999 (or beyond the C library's range)
        return None


def parse(path: Path) -> SpoolFile | None:
    """The spool file at ``path``, or None for anything that does not follow the naming contract."""
    stem, linkedid = path.stem, path.parent.name
    kind = RecordingKind.MESSAGE if stem.startswith(MESSAGE_PREFIX) else RecordingKind.CONVERSATION
    uniqueid = stem.removeprefix(MESSAGE_PREFIX)
    recorded_at = started_at(uniqueid)
    if path.suffix != ".wav" or recorded_at is None or started_at(linkedid) is None:
        return None
    return SpoolFile(path=path, linkedid=linkedid, uniqueid=uniqueid, kind=kind, recorded_at=recorded_at)


def inside(root: Path, relative: str | Path) -> Path | None:
    """``root / relative`` resolved, or None when it would leave ``root`` (a tampered or hostile path)."""
    base = root.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) and path != base else None


def scan(spool: Path) -> Scan:
    """Every entry of the spool, sorted, as WAVs on the contract or misfits; no link is followed."""
    found = Scan()
    if not spool.is_dir():
        return found
    for entry in _entries(spool):
        if entry.is_dir(follow_symlinks=False):
            _scan_call_folder(Path(entry.path), found)
        else:
            found.misfits.append(Misfit(Path(entry.path), LINK if entry.is_symlink() else STRAY))
    return found


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _scan_call_folder(folder: Path, found: Scan) -> None:
    entries = _entries(folder)
    wavs = [parse(Path(e.path)) if e.is_file(follow_symlinks=False) else None for e in entries]
    names = {wav.path.name for wav in wavs if wav is not None}
    for entry, wav in zip(entries, wavs, strict=True):
        if wav is not None:
            found.wavs.append(wav)
        elif not _is_marker(entry, names):
            found.misfits.append(Misfit(Path(entry.path), _reason(entry)))


def _is_marker(entry: os.DirEntry[str], wav_names: set[str]) -> bool:
    return (entry.name.endswith(DONE_SUFFIX) and entry.name.removesuffix(DONE_SUFFIX) in wav_names
            and entry.is_file(follow_symlinks=False))


def _reason(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return LINK
    if not entry.is_file(follow_symlinks=False):
        return NOT_A_FILE
    return LONE_MARKER if entry.name.endswith(DONE_SUFFIX) else ODD_NAME


def is_closed(found: SpoolFile, call_finished: Callable[[str], bool], settle_seconds: float, now: float,
              orphan_seconds: float = float("inf")) -> bool:
    """Whether MixMonitor is done with the WAV (see the module docstring)."""
    if os.path.lexists(found.marker):
        return True
    try:
        idle = now - found.path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return idle >= orphan_seconds or (idle >= settle_seconds and call_finished(found.linkedid))


@contextmanager
def open_wav(spool: Path, path: Path) -> Iterator[BinaryIO]:
    """A spool WAV opened for reading and header repair, reached through no link; OSError if it is no file."""
    with os.fdopen(open_under(spool, path.relative_to(spool), os.O_RDWR), "r+b") as wav:
        if not stat.S_ISREG(os.fstat(wav.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        yield wav


def remove(spool: Path, path: Path) -> None:
    """Delete a spool WAV with its marker, and its call folder once empty, following no link.

    The marker goes first: a crash in between leaves a WAV that the next scans find again (by its call log or its
    age) and let go by its row, never a marker without its WAV."""
    relative = path.relative_to(spool)
    unlink_under(spool, relative.with_name(relative.name + DONE_SUFFIX))
    remove_file(spool, path)


def remove_file(spool: Path, path: Path) -> None:
    """Delete one spool file (never through a link), and its call folder once empty."""
    relative = PurePath(path.relative_to(spool))
    unlink_under(spool, relative)
    if len(relative.parts) > 1:
        with contextlib.suppress(OSError):  # other files of the call are still there (rmdir follows no link)
            os.rmdir(path.parent)
