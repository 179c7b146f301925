"""The call-log store the listener writes through: journal (with dedupe), then build and upsert the finished calls.

Runs in the delivery's worker thread, never on the event loop. A spooled batch is journaled and its finished calls
are built from the journal (every event of the linkedid, so a call is rebuilt whenever a backfill adds to it) and
upserted, all in one transaction: one commit (one fsync on SQLite) per batch instead of one per call. If storing
the built calls fails, the batch falls back to the one-call-per-transaction path, so one bad call costs only itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from callcenter.ami.events import CelEvent
from callcenter.calls.builder import build_call
from callcenter.calls.channels import Directory
from callcenter.model.contract import LINKEDID_END
from callcenter.ops import metrics
from callcenter.store import cursors, journal
from callcenter.store.cursors import FilePosition
from callcenter.store.db import Database
from callcenter.store.writer import upsert_calls

log = logging.getLogger(__name__)


def _observe_lag(events: Sequence[CelEvent], now: float) -> None:
    """How far behind Asterisk the journal is: each event's own time to its commit (``now``)."""
    metrics.LAG.observe_each([now - event.time for event in events])
    if events:
        metrics.LAST_LAG.set(max(0.0, now - events[-1].time))


class CallLogStore:
    """Synchronous store work for the listener (runs in a worker thread)."""

    def __init__(self, db: Database, node: str, directory: Directory | Callable[[], Directory]) -> None:
        self.db = db
        self.node = node
        # A fixed directory, or one that follows the model file (operators added while the listener runs).
        self._directory = directory if callable(directory) else (lambda: directory)
        self._checked = 0  # the journal id up to which every ended call is known to have its call log

    def ingest(self, events: Sequence[CelEvent], source: str, position: FilePosition | None = None) -> list[str]:
        """Journal the events (and the CEL file position they were read up to), then (re)build every finished call
        they touched, all in one transaction; return the built linkedids. If storing the built calls fails, the
        journal is committed alone and each call is then built in a transaction of its own."""
        try:
            with self.db.session() as session:
                appended, ended = self._journal(session, events, source, position)
                history = journal.history(session, self.node, ended, appended)
                built = self._build_together(session, ended, cut=False, history=history)
        except _TogetherFailed as failed:
            self._report_together(failed, len(ended))
            with self.db.session() as session:
                _, ended = self._journal(session, events, source, position)
            built = self._build_each(ended, cut=False)
        else:
            metrics.CALLS_BUILT.inc(len(built))
        if source == "ami":
            _observe_lag(events, time.time())
        return built

    def _journal(self, session: Session, events: Sequence[CelEvent], source: str,
                 position: FilePosition | None) -> tuple[journal.Appended, list[str]]:
        """Append the events (and the file position); what was new, and the finished linkedids among those that
        got new events."""
        appended = journal.append_new(session, self.node, events, source, likely_new=source == "ami")
        if position is not None:
            cursors.save(session, self.node, position)
        # A call whose LINKEDID_END is among the new events has ended: only the others are looked up (a call
        # can get events after its end, from a backfill). Every row read lets go of the interpreter lock once on
        # SQLite, and getting it back from a busy AMI reader takes a switch interval (see db.execute_rows).
        ended = {event.linkedid for event in appended.events if event.event == LINKEDID_END}
        others = {event.linkedid for event in appended.events} - ended
        return appended, sorted(ended) + journal.finished(session, self.node, others)

    def file_position(self) -> FilePosition | None:
        """Where the CEL file was read up to (the last committed chunk), or None if never."""
        with self.db.session() as session:
            return cursors.load(session, self.node)

    def build_missing(self) -> list[str]:
        """Build every finished call that has no call-log row yet. The first check looks at the whole journal; the
        next ones only at calls that ended since (a backfill runs after every finished call, and a year of history
        must not be scanned each time), unless a build failed: then the same stretch is checked again."""
        with self.db.session() as session:
            missing, checked = journal.finished_without_call(session, self.node, self._checked)
        built = self.build(missing)
        if len(built) == len(missing):
            self._checked = checked
        return built

    def finish_cut(self, live: frozenset[str], before: float) -> list[str]:
        """Build, as cut by Asterisk, the calls that never ended, went quiet before ``before`` and are not among
        the calls Asterisk still has (``live``): it lost them (a restart, a crash) and will never end them."""
        with self.db.session() as session:
            lost = [linkedid for linkedid in journal.unfinished_before(session, self.node, before)
                    if linkedid not in live]
        if lost:
            log.warning("%d call(s) never ended and Asterisk no longer has them (a restart or crash): logged as "
                        "cut: %s", len(lost), ", ".join(lost[:10]))
        return self.build(lost, cut=True)

    def build(self, linkedids: Sequence[str], cut: bool = False) -> list[str]:
        """Build and upsert the calls in one transaction (a call the builder fails on is logged and skipped); if
        storing them fails, each is built again in a transaction of its own, so one bad call costs only itself."""
        if not linkedids:
            return []
        try:
            with self.db.session() as session:
                built = self._build_together(session, linkedids, cut)
        except _TogetherFailed as failed:
            self._report_together(failed, len(linkedids))
            return self._build_each(linkedids, cut)
        metrics.CALLS_BUILT.inc(len(built))
        return built

    def _build_together(self, session: Session, linkedids: Sequence[str], cut: bool,
                        history: Mapping[str, list[CelEvent]] | None = None) -> list[str]:
        """Build every call from its journaled events (``history``, else read in few queries) and upsert them all
        at once in ``session``; raise :class:`_TogetherFailed` if that fails (the caller rolls back and goes call by
        call)."""
        if history is None:
            history = journal.events_for_many(session, self.node, linkedids)
        records, directory = [], None
        for linkedid in linkedids:
            try:
                directory = directory or self._directory()
                records.append(build_call(history[linkedid], directory, cut))
            except Exception:
                metrics.BUILD_FAILURES.inc()
                log.exception("call %s: building the call log failed; skipped", linkedid)
        try:
            upsert_calls(session, self.node, records, datetime.now(UTC))
        except Exception as exc:
            raise _TogetherFailed from exc
        return [record.linkedid for record in records]

    def _build_each(self, linkedids: Sequence[str], cut: bool) -> list[str]:
        """Build and upsert each call on its own: one broken call is logged and skipped."""
        built = []
        for linkedid in linkedids:
            try:
                directory = self._directory()
                with self.db.session() as session:
                    record = build_call(journal.events_for(session, self.node, linkedid), directory, cut)
                    upsert_calls(session, self.node, [record], datetime.now(UTC))
                built.append(linkedid)
                metrics.CALLS_BUILT.inc()
            except Exception:
                metrics.BUILD_FAILURES.inc()
                log.exception("call %s: building the call log failed; skipped", linkedid)
        return built

    @staticmethod
    def _report_together(failed: _TogetherFailed, count: int) -> None:
        log.warning("storing %d call log(s) in one transaction failed (%r); storing each on its own",
                    count, failed.__cause__)


class _TogetherFailed(Exception):
    """Upserting a batch of built calls failed: roll back, then store them one by one."""
