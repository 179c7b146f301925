"""Turn each closed spool WAV into a stored, verified compact file and one ``recordings`` row, exactly once.

Crash safety: the row is created once (unique per node + source path) and *claimed* before any work, by a
compare-and-swap on its status (``processing``, with the claimant and a lease), so two workers never transcode the
same WAV. The copy is written to ``<final>.<pid>.part``, verified, synced to disk and renamed into place, and the
folder is synced; the row is marked stored (a durable commit); only then is the WAV deleted. A restart redoes at
most the unfinished step: a claim whose process is gone (same host) or whose lease ran out is taken over; a stored
row lets the WAV go only when its copy is in the store with the row's sha256, otherwise the WAV is stored again.

A WAV with no audio at all (MixMonitor's 44-byte header for a caller who hung up before an operator answered) is
recorded ``empty``, attached to its call, and deleted: nothing to store, nothing to retry. One file's failure is
logged with its path and never stops the others.

Several WAVs are stored at once (``workers`` threads, off the listener's event loop; each waits on its own ffmpeg
process for the encode, and verifies in PyAV, which releases the GIL while FFmpeg decodes): one scan hands every
closed WAV not already in hand to the pool, and a long recording never holds back the ones closed after it. The
claim above still decides who stores a WAV, so threads, listeners and ``callcenter recordings process`` can run
side by side.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.model.contract import RecordingKind, RecordingStatus
from callcenter.ops.metrics import RECORDINGS, RECORDINGS_BACKLOG
from callcenter.settings import RecordingsSettings
from callcenter.store.db import Database, insert_for
from callcenter.store.models import Call, Recording
from recordings.files import make_private_dirs, publish
from recordings.spool import Misfit, SpoolFile, inside, is_closed, open_wav, remove, scan
from recordings.transcode import TranscodeError, audio_bytes, extension, repair_header, sha256_of, transcode
from recordings.verify import Stored, verify

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=15)  # a claim older than this is taken over even from another host


class RecordingWorker:
    """Scan the spool and store what is closed, ``settings.workers`` WAVs at a time (its methods block: the
    listener calls them in a thread)."""

    def __init__(self, settings: RecordingsSettings, db: Database, node: str,
                 pool: ThreadPoolExecutor | None = None) -> None:
        """``pool``: threads shared with other nodes' workers (the caller shuts it down); by default its own."""
        self.settings = settings
        self.db = db
        self.node = node
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self._reported: set[Path] = set()  # misfits already logged, so each is logged once and not every scan
        self._own_pool = pool is None
        self._pool = pool or ThreadPoolExecutor(settings.workers, thread_name_prefix="recordings")
        self._lock = threading.Lock()
        self._in_hand: set[Path] = set()  # WAVs given to the pool and not finished: never given twice
        self._running: set[Path] = set()  # of those, the ones a thread is storing now

    def run_once(self) -> dict[str, int]:
        """Store every closed WAV that is due and wait for them; return counts per outcome."""
        return dict(Counter(future.result() for future in self.start_due()))

    def start_due(self) -> list[Future[str]]:
        """Give every closed WAV not already in hand to the pool and return at once (the listener's periodic job)."""
        now = datetime.now(UTC).timestamp()
        found = scan(self.settings.spool)
        self._report(found.misfits)
        with self._lock:
            in_hand = set(self._in_hand)  # taken after the scan, and a thread lets a WAV go before it forgets it
        held = [wav for wav in found.wavs if wav.path in in_hand]
        closed = [wav for wav in found.wavs if wav.path not in in_hand and is_closed(
            wav, self._call_finished, self.settings.settle_seconds, now, self.settings.orphan_seconds)]
        with self._lock:
            fresh = [wav for wav in closed if wav.path not in self._in_hand]
            self._in_hand.update(wav.path for wav in fresh)
            # Waiting: closed and not being stored now (due, queued, or failed and waiting for its retry).
            RECORDINGS_BACKLOG.labels(self.node).set(sum(wav.path not in self._running for wav in held + closed))
        return [self._pool.submit(self._one, wav) for wav in fresh]

    def close(self) -> None:
        """Let the WAVs being stored finish and forget the queued ones (the next scan finds them again); a shared
        pool is its owner's to shut down."""
        if self._own_pool:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, found: SpoolFile) -> str:
        """``process`` one WAV, any surprise confined to it (logged with its path; the next scan tries again)."""
        with self._lock:
            self._running.add(found.path)
        try:
            # Gone since the scan: another listener or `recordings process` stored it while it sat in the queue.
            outcome = str(self.process(found, datetime.now(UTC))) if os.path.lexists(found.path) else "waiting"
        except Exception:  # a bug or a database hiccup on one file must not stop every later recording
            log.exception("recording %s: unexpected failure, skipped", found.path)
            outcome = "error"
        finally:
            with self._lock:
                self._running.discard(found.path)
                self._in_hand.discard(found.path)
        if outcome != "waiting":  # not an outcome: asked again every scan
            RECORDINGS.labels(outcome).inc()
        return outcome

    def _report(self, misfits: list[Misfit]) -> None:
        for misfit in misfits:
            if misfit.path not in self._reported:
                log.warning("spool: %s: %s; left alone (listed by `callcenter recordings sweep`)",
                            misfit.path, misfit.reason)
        self._reported = {misfit.path for misfit in misfits}

    def _call_finished(self, linkedid: str) -> bool:
        with self.db.session() as session:
            return self._call_id(session, linkedid) is not None

    def _call_id(self, session: Session, linkedid: str) -> int | None:
        return session.scalar(select(Call.id).where(Call.node == self.node, Call.linkedid == linkedid))

    def target_for(self, found: SpoolFile) -> Path:
        """``<store>/<YYYY>/<MM>/<DD>/<node>/<linkedid>-<uniqueid>[-msg].<ext>``, dated by the channel's start
        (UTC). The node's folder keeps two Asterisk nodes' recordings apart even when their ids coincide (nodes
        without a systemname): one node's copy never replaces another's."""
        suffix = "-msg" if found.kind is RecordingKind.MESSAGE else ""
        name = f"{found.linkedid}-{found.uniqueid}{suffix}{extension(self.settings.format)}"
        return self.settings.store / f"{found.recorded_at:%Y/%m/%d}" / self.node / name

    def process(self, found: SpoolFile, now: datetime) -> str:
        """Store one WAV: 'stored', 'empty' (no audio), 'error', 'waiting' (not due, or another worker has it) or
        'cleaned' (already stored, copy verified)."""
        row = self._row(found, now)
        intact = row.status == RecordingStatus.STORED and self._copy_intact(row, found)
        if row.status == RecordingStatus.PURGED or intact:
            return self._let_go(found, "cleaned")
        if not self._take(row, now):
            return "waiting"
        try:
            result = self._store(found)
        except (TranscodeError, OSError, ValueError) as exc:
            self._fail(row.id, exc, now)
            return "error"
        if result is None:
            self._empty(row.id, found)
            return self._let_go(found, RecordingStatus.EMPTY)
        self._stored(row.id, found, *result)
        log.info("recording %s stored: %s (%.1f s, %d bytes)", found.path.name, result[0].name,
                 result[1].duration_seconds, result[1].size_bytes)
        return self._let_go(found, RecordingStatus.STORED)

    def _store(self, found: SpoolFile) -> tuple[Path, Stored] | None:
        """Put a verified copy durably in the store (see the module docstring); None when the WAV has no audio."""
        target = self.target_for(found)
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            with open_wav(self.settings.spool, found.path) as wav:  # no link followed, even one swapped in
                repair_header(wav)  # a WAV from a crashed Asterisk was never given its sizes
                if audio_bytes(wav) == 0:
                    return None
                make_private_dirs(self.settings.store, target.parent)
                for stale in target.parent.glob(f"{target.name}.*.part"):  # left by a worker that died; ours now
                    stale.unlink(missing_ok=True)
                seconds = transcode(wav, partial, self.settings.format, self.settings.bitrate)
            stored = verify(partial, seconds)
            publish(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target, stored

    def _copy_intact(self, row: Recording, found: SpoolFile) -> bool:
        """Whether the row's copy is in the store with the row's sha256: only then may its WAV go."""
        path = inside(self.settings.store, row.path) if row.path else None
        try:
            intact = path is not None and path.is_file() and sha256_of(path) == row.sha256
        except OSError:
            intact = False
        if not intact:
            log.warning("recording %s: row %d says stored, but its copy %s is missing or differs: storing the WAV "
                        "again", found.path, row.id, row.path)
        return intact

    def _let_go(self, found: SpoolFile, outcome: str) -> str:
        """Delete the WAV (its copy and row are durable, or it held no audio); return ``outcome``."""
        try:
            remove(self.settings.spool, found.path)
        except (OSError, ValueError) as exc:
            log.error("recording %s: %s, but deleting the WAV failed: %s", found.path, outcome, exc)
        return outcome

    def _row(self, found: SpoolFile, now: datetime) -> Recording:
        """The WAV's row, created on first sight (concurrent creators agree through the unique key)."""
        values = {"node": self.node, "linkedid": found.linkedid, "uniqueid": found.uniqueid, "kind": found.kind,
                  "source_path": str(found.path), "status": RecordingStatus.PENDING, "attempts": 0, "claimed_by": "",
                  "created_at": now, "recorded_at": found.recorded_at}
        with self.db.session() as session:
            statement = insert_for(session, Recording).values(values)
            session.execute(statement.on_conflict_do_nothing(index_elements=["node", "source_path"]))
            row = session.scalar(select(Recording).where(Recording.node == self.node,
                                                         Recording.source_path == str(found.path)))
            assert row is not None
            return row

    def _take(self, row: Recording, now: datetime) -> bool:
        """Claim the row for this process, or say it is not ours to work on now."""
        due = row.next_attempt_at is None or row.next_attempt_at <= now
        if row.status == RecordingStatus.PROCESSING and not (due or _dead_here(row.claimed_by)):
            return False
        if row.status == RecordingStatus.ERROR and not due:
            return False
        with self.db.session() as session:
            claimed = session.execute(
                update(Recording).where(Recording.id == row.id, Recording.status == row.status,
                                        Recording.claimed_by == row.claimed_by)
                .values(status=RecordingStatus.PROCESSING, claimed_by=self.me, next_attempt_at=now + LEASE))
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    def _mine(self, row_id: int) -> object:
        processing = Recording.status == RecordingStatus.PROCESSING
        return (Recording.id == row_id) & processing & (Recording.claimed_by == self.me)

    def _fail(self, row_id: int, error: Exception, now: datetime) -> None:
        with self.db.session() as session:
            row = session.scalar(select(Recording).where(self._mine(row_id)))  # type: ignore[arg-type]
            if row is None:
                return  # another worker took it over meanwhile: its outcome stands
            row.attempts += 1
            delay = min(self.settings.retry_min * 2 ** (row.attempts - 1), self.settings.retry_max)
            row.status, row.error, row.claimed_by = RecordingStatus.ERROR, str(error)[:2000], ""
            row.next_attempt_at = now + timedelta(seconds=delay)
        log.error("recording %s failed (attempt %d, WAV kept, retry in %.0f s): %s", row.source_path, row.attempts,
                  delay, error)

    def _stored(self, row_id: int, found: SpoolFile, target: Path, stored: Stored) -> None:
        with self.db.session() as session:
            # Not conditional on our claim: the copy is verified and in place, whoever holds the row now.
            row = session.get_one(Recording, row_id)
            row.call_id = self._call_id(session, found.linkedid)
            row.path = str(target.relative_to(self.settings.store))
            row.format, row.status = self.settings.format, RecordingStatus.STORED
            row.error, row.next_attempt_at = None, None
            row.claimed_by = ""
            row.duration_seconds, row.size_bytes, row.sha256 = (stored.duration_seconds, stored.size_bytes,
                                                                stored.sha256)

    def _empty(self, row_id: int, found: SpoolFile) -> None:
        with self.db.session() as session:
            row = session.get_one(Recording, row_id)
            row.call_id = self._call_id(session, found.linkedid)
            row.status, row.error, row.next_attempt_at, row.claimed_by = RecordingStatus.EMPTY, None, None, ""
            row.path = row.format = row.sha256 = None
            row.duration_seconds, row.size_bytes = 0.0, None
        log.info("recording %s has no audio (never bridged to an operator): recorded empty", found.path)

def _dead_here(claimant: str) -> bool:
    """True when the claim was made by a process on this host that no longer runs."""
    host, _, pid = claimant.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

