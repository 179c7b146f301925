"""Turn each closed spool WAV into a stored, verified compact file and one ``recordings`` row, exactly once.

Crash safety: the row is claimed first (unique per node + source path); the copy is written to ``<final>.part`` and
renamed into place only after it verifies; the row is marked stored; only then is the WAV deleted. A restart at
any point redoes at most the unfinished step: a ``.part`` is rewritten, a stored row just lets the WAV go.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callcenter.settings import RecordingsSettings
from callcenter.store.db import Database
from callcenter.store.models import Call, Recording
from recordings.spool import SpoolFile, closed_files
from recordings.transcode import Stored, TranscodeError, extension, transcode, verify

log = logging.getLogger(__name__)


class RecordingWorker:
    """Scan the spool and process what is closed (synchronous: the listener runs it in a thread)."""

    def __init__(self, settings: RecordingsSettings, db: Database, node: str) -> None:
        self.settings = settings
        self.db = db
        self.node = node

    def run_once(self) -> dict[str, int]:
        """Process every closed WAV that is due; return counts per outcome."""
        now = datetime.now(UTC)
        outcomes: dict[str, int] = {}
        for found in closed_files(self.settings.spool, self._call_finished, self.settings.settle_seconds,
                                  now.timestamp()):
            outcome = self.process(found, now)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    def _call_finished(self, linkedid: str) -> bool:
        with self.db.session() as session:
            query = select(Call.id).where(Call.node == self.node, Call.linkedid == linkedid)
            return session.scalar(query) is not None

    def target_for(self, found: SpoolFile) -> Path:
        """``<store>/<YYYY>/<MM>/<DD>/<linkedid>-<uniqueid>[-msg].<ext>``, dated by the channel's start (UTC)."""
        day = datetime.fromtimestamp(float(found.uniqueid), UTC)
        suffix = "-msg" if found.kind == "message" else ""
        name = f"{found.linkedid}-{found.uniqueid}{suffix}{extension(self.settings.format)}"
        return self.settings.store / f"{day:%Y/%m/%d}" / name

    def process(self, found: SpoolFile, now: datetime) -> str:
        """Store one WAV: 'stored', 'error', 'waiting' (retry not due yet) or 'cleaned' (was stored before)."""
        row = self._claim(found, now)
        if row.status == "stored":
            _remove_source(found)
            return "cleaned"
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            return "waiting"
        target = self.target_for(found)
        partial = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            stored = verify(partial, transcode(found.path, partial, self.settings.format, self.settings.bitrate))
            os.replace(partial, target)
        except (TranscodeError, OSError) as exc:
            partial.unlink(missing_ok=True)
            self._fail(row.id, exc, now)
            return "error"
        self._stored(row.id, found, target, stored)
        _remove_source(found)
        log.info("recording %s stored: %s (%.1f s, %d bytes)", found.path.name, target.name,
                 stored.duration_seconds, stored.size_bytes)
        return "stored"

    def _claim(self, found: SpoolFile, now: datetime) -> Recording:
        source = str(found.path)
        with self.db.session() as session:
            row = session.scalar(select(Recording).where(Recording.node == self.node,
                                                         Recording.source_path == source))
            if row is None:
                row = Recording(node=self.node, linkedid=found.linkedid, uniqueid=found.uniqueid, kind=found.kind,
                                source_path=source, status="pending", attempts=0, created_at=now,
                                recorded_at=datetime.fromtimestamp(float(found.uniqueid), UTC))
                session.add(row)
                session.flush()
            return row

    def _fail(self, row_id: int, error: Exception, now: datetime) -> None:
        with self.db.session() as session:
            row = session.get_one(Recording, row_id)
            row.attempts += 1
            delay = min(self.settings.retry_min * 2 ** (row.attempts - 1), self.settings.retry_max)
            row.status, row.error = "error", str(error)[:2000]
            row.next_attempt_at = now + timedelta(seconds=delay)
        log.error("recording %s failed (attempt %d, WAV kept, retry in %.0f s): %s", row.source_path, row.attempts,
                  delay, error)

    def _stored(self, row_id: int, found: SpoolFile, target: Path, stored: Stored) -> None:
        with self.db.session() as session:
            row = session.get_one(Recording, row_id)
            row.call_id = session.scalar(select(Call.id).where(Call.node == self.node,
                                                               Call.linkedid == found.linkedid))
            row.path = str(target.relative_to(self.settings.store))
            row.format, row.status, row.error, row.next_attempt_at = self.settings.format, "stored", None, None
            row.duration_seconds, row.size_bytes, row.sha256 = (stored.duration_seconds, stored.size_bytes,
                                                                stored.sha256)


def _remove_source(found: SpoolFile) -> None:
    """Delete the WAV (its copy is verified and recorded), its marker and the call's folder once empty."""
    found.path.unlink(missing_ok=True)
    found.marker.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other recordings of the call are still there
        found.path.parent.rmdir()
