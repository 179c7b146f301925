"""Retention: purge old recordings (keeping their rows), respect legal holds, and sweep for inconsistencies."""

from __future__ import annotations

import logging
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.model.contract import RecordingStatus
from callcenter.settings import RecordingsSettings
from callcenter.store.db import Database
from callcenter.store.models import Call, Recording
from recordings.spool import Misfit, inside, remove, remove_file, scan

log = logging.getLogger(__name__)
# Rows whose audio may still exist somewhere (the store, or a WAV in the spool) and must go at retention.
KEPT_AUDIO = (RecordingStatus.STORED, RecordingStatus.PENDING, RecordingStatus.ERROR)


def purge(db: Database, settings: RecordingsSettings, now: datetime | None = None,
          spools: Mapping[str, Path] | None = None) -> int:
    """Delete recordings older than ``retention_days`` unless their call is on legal hold; return how many.

    Stored copies go, and so do WAVs that never made it (still pending or in error): confidential audio is not
    kept past retention because a transcode kept failing. Rows stay, marked purged. Spool files off the naming
    contract go too once that old (by their time of change), except in the folder of a call on legal hold.
    ``spools``: each node's spool (several Asterisk nodes); a row's WAV is looked for in its own node's spool
    only (two nodes may use the same ids); a row of a node not listed whose WAV may remain is left alone. Without
    it: ``settings.spool``."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    held = select(Call.linkedid).where(Call.legal_hold.is_(True), Call.node == Recording.node)
    with db.session() as session:
        rows = session.scalars(select(Recording).where(
            Recording.status.in_(KEPT_AUDIO), Recording.recorded_at < cutoff,
            Recording.linkedid.not_in(held.scalar_subquery()))).all()
        purged = 0
        for row in rows:
            spool = settings.spool if spools is None else spools.get(row.node)
            if spool is None and row.status != RecordingStatus.STORED:  # its WAV may still be there: not purged
                log.warning("retention: recording %d of node %s is past retention but its WAV is in a spool not "
                            "followed here; left for that node's listener", row.id, row.node)
                continue
            if not _mark_purged(session, row, now):
                continue  # a worker took it meanwhile (an error retried): the next purge looks at it again
            _delete(settings.store, row.path)
            if spool is not None:
                _delete_wav(spool, row.source_path)
            purged += 1
        held_anywhere = set(session.scalars(select(Call.linkedid).where(Call.legal_hold.is_(True))))
    if purged:
        log.info("retention: purged %d recording(s) older than %d days", purged, settings.retention_days)
    for spool in _spools(settings, spools):
        _purge_misfits(spool, settings.retention_days, cutoff, held_anywhere)
    return purged


def _mark_purged(session: Session, row: Recording, now: datetime) -> bool:
    """Mark the row purged if it still has the status it was read with (compare-and-set, as the worker claims
    rows): a worker that took an old row in error meanwhile would otherwise store a fresh copy of audio past its
    retention over the purged mark, or a copy it stored just now would be left in the store, its row purged."""
    done = session.execute(update(Recording).where(Recording.id == row.id, Recording.status == row.status)
                           .values(status=RecordingStatus.PURGED, deleted_at=now))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _spools(settings: RecordingsSettings, spools: Mapping[str, Path] | None) -> list[Path]:
    return [settings.spool] if spools is None else list(dict.fromkeys(spools.values()))


def _delete(root: Path, relative: str | None) -> None:
    """Delete a file only if it lies inside ``root`` (a tampered row must not reach anything else)."""
    path = inside(root, relative) if relative else None
    if path is not None:
        path.unlink(missing_ok=True)
    elif relative:
        log.error("retention: refused to delete %r: outside %s", relative, root)


def _delete_wav(spool: Path, source: str) -> None:
    """Delete a row's WAV and marker, only below the spool and never through a link."""
    try:
        remove(spool, Path(source))
    except (ValueError, OSError) as exc:  # outside the spool, or a link where a call folder should be
        log.error("retention: refused to delete %r: %s", source, exc)


def _purge_misfits(spool: Path, days: int, cutoff: datetime, held: set[str]) -> None:
    """Delete regular spool files off the contract changed before ``cutoff`` (links and folders stay)."""
    for misfit in scan(spool).misfits:
        if misfit.path.parent.name in held or not _file_older_than(misfit.path, cutoff):
            continue
        try:
            remove_file(spool, misfit.path)
        except (ValueError, OSError) as exc:
            log.error("retention: could not delete %s: %s", misfit.path, exc)
            continue
        log.warning("retention: deleted %s (%s), older than %d days", misfit.path, misfit.reason, days)


def _file_older_than(path: Path, cutoff: datetime) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff.timestamp()


# How long a stored recording may wait for its call log before the sweep names it: a call is built moments after
# it ends, but a WAV with its marker is stored without waiting for it.
CALL_LOG_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Unclaimed:
    """A stored recording no call log claims (Asterisk lost the call's end, or its events never reached us): the
    history does not show it; supervisors reach it by its id."""

    id: int
    node: str
    linkedid: str
    recorded_at: datetime | None


@dataclass
class SweepReport:
    """Files in the store that no row knows, stored rows whose file is gone, stored recordings no call log claims,
    and spool entries off the contract."""

    files_without_rows: list[Path] = field(default_factory=list)
    rows_without_files: list[int] = field(default_factory=list)
    spool_misfits: list[Misfit] = field(default_factory=list)
    without_call: list[Unclaimed] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable report lines."""
        out = [f"file without row: {path}" for path in self.files_without_rows]
        out += [f"row without file: recording {row_id}" for row_id in self.rows_without_files]
        out += [f"recording without a call log: recording {row.id} (node {row.node}, linkedid {row.linkedid}, "
                f"recorded {_when(row.recorded_at)}"
                f"; its audio: /api/recordings/{row.id}/audio)" for row in self.without_call]
        out += [f"off the spool contract: {misfit.path} ({misfit.reason})" for misfit in self.spool_misfits]
        return out or ["store and database agree"]

    def needs_attention(self) -> bool:
        """Whether anything was found."""
        return bool(self.files_without_rows or self.rows_without_files or self.spool_misfits or self.without_call)


def _when(moment: datetime | None) -> str:
    return "at an unknown time" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def sweep(db: Database, settings: RecordingsSettings, spools: Mapping[str, Path] | None = None,
          now: datetime | None = None) -> SweepReport:
    """Compare the store folder with the stored rows, list the stored recordings no call log has claimed an hour
    after they were stored, and the misfits of the spool (of each node's spool in ``spools``); nothing is
    changed."""
    misfits = [misfit for spool in _spools(settings, spools) for misfit in scan(spool).misfits]
    report = SweepReport(spool_misfits=misfits)
    with db.session() as session:
        stored = list(session.scalars(select(Recording).where(Recording.status == RecordingStatus.STORED)))
        known = {row.path: row.id for row in stored}
        before = (now or datetime.now(UTC)) - CALL_LOG_GRACE
        report.without_call = [Unclaimed(row.id, row.node, row.linkedid, row.recorded_at) for row in stored
                               if row.call_id is None and row.created_at < before]
    on_disk = {str(p.relative_to(settings.store)) for p in settings.store.rglob("*") if p.is_file()} if (
        settings.store.is_dir()) else set()
    report.files_without_rows = sorted(settings.store / p for p in on_disk - set(known))
    report.rows_without_files = sorted(row_id for path, row_id in known.items() if path not in on_disk)
    return report
