"""The MixMonitor spool: ``<spool>/<linkedid>/<uniqueid>.wav`` (conversations) and ``msg-<uniqueid>.wav``
(voice messages left in the IVR). The contract is defined here once; asterisk-conf/extensions.conf follows it.

A WAV is closed when MixMonitor's post-process command has written ``<file>.done`` beside it, or when its call is
finished (the call log has it) and the file has not changed for a few seconds, or when it has not changed for
hours (``orphan_seconds``: Asterisk crashed mid-call, so neither marker nor call log will ever come). A WAV of a
running call matches none of these, so it is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DONE_SUFFIX = ".done"
MESSAGE_PREFIX = "msg-"
ID_PATTERN = re.compile(r"^([0-9]+)\.[0-9]+$")  # Asterisk's uniqueid/linkedid shape: epoch.sequence


@dataclass(frozen=True)
class SpoolFile:
    """One WAV in the spool and what its path says."""

    path: Path
    linkedid: str
    uniqueid: str
    kind: str  # "conversation" or "message"
    recorded_at: datetime  # when the channel started (the uniqueid's epoch), UTC

    @property
    def marker(self) -> Path:
        """The file MixMonitor's post-process command creates once the WAV is closed."""
        return self.path.with_name(self.path.name + DONE_SUFFIX)


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
    kind = "message" if stem.startswith(MESSAGE_PREFIX) else "conversation"
    uniqueid = stem.removeprefix(MESSAGE_PREFIX)
    recorded_at = started_at(uniqueid)
    if path.suffix != ".wav" or recorded_at is None or started_at(linkedid) is None:
        return None
    return SpoolFile(path=path, linkedid=linkedid, uniqueid=uniqueid, kind=kind, recorded_at=recorded_at)


def message_path(spool: str, linkedid: str, uniqueid: str) -> str:
    """Where the IVR records a voice message (as Asterisk sees the spool), or "" for ids off the contract."""
    if started_at(linkedid) is None or started_at(uniqueid) is None:
        return ""
    return f"{spool.rstrip('/')}/{linkedid}/{MESSAGE_PREFIX}{uniqueid}.wav"


def inside(root: Path, relative: str | Path) -> Path | None:
    """``root / relative`` resolved, or None when it would leave ``root`` (a tampered or hostile path)."""
    base = root.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) and path != base else None


def closed_files(spool: Path, call_finished: Callable[[str], bool], settle_seconds: float,
                 now: float, orphan_seconds: float = float("inf")) -> Iterator[SpoolFile]:
    """Every closed WAV in the spool, oldest call first."""
    if not spool.is_dir():
        return
    for path in sorted(spool.glob("*/*.wav")):
        found = parse(path)
        if found is None:
            continue
        if found.marker.exists():
            yield found
            continue
        try:
            idle = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if idle >= orphan_seconds or (idle >= settle_seconds and call_finished(found.linkedid)):
            yield found
