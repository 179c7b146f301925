"""``callcenter recordings ...``: operations on the recordings store, for cron jobs and people."""

from __future__ import annotations

import argparse

from callcenter.settings import Settings
from callcenter.store.db import Database
from callcenter.store.models import Call
from recordings.retention import purge, sweep
from recordings.worker import RecordingWorker


def run(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    """Dispatch one action; print what it did; exit non-zero when something needs attention."""
    spools = settings.node_spools()
    if args.action == "process":
        errors = 0
        for node, spool in spools.items():
            worker = RecordingWorker(settings.recordings.model_copy(update={"spool": spool}), db, node)
            try:
                outcomes = worker.run_once()
            finally:
                worker.close()
            done = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items())) or "nothing to process"
            print(f"{node}: {done}" if len(spools) > 1 else done)
            errors += outcomes.get("error", 0)
        return 1 if errors else 0
    if args.action == "purge":
        print(f"purged {purge(db, settings.recordings, spools=spools)} recording(s) older than "
              f"{settings.recordings.retention_days} days (legal holds kept)")
        return 0
    if args.action == "sweep":
        report = sweep(db, settings.recordings, spools)
        print("\n".join(report.lines()))
        return 1 if report.needs_attention() else 0
    return _hold(db, args.call_id, args.action == "hold")


def _hold(db: Database, call_id: int | None, hold: bool) -> int:
    if call_id is None:
        print("hold/release need a CALL_ID")
        return 2
    with db.session() as session:
        call = session.get(Call, call_id)
        if call is None:
            print(f"no call with id {call_id}")
            return 2
        call.legal_hold = hold
    print(f"call {call_id}: legal hold {'on' if hold else 'off'}")
    return 0
