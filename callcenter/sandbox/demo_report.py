"""What the demo shows at the end: the call log rows its calls produced, with topics, operators and recordings."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select

from callcenter.model.contract import RecordingStatus
from callcenter.settings import Settings
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, Recording

WAIT_FOR_LOG = 60.0  # seconds: the listener logs a call within seconds of its end; recordings take a few more


def _rows(db: Database, numbers: Sequence[str]) -> list[tuple[Call, list[Recording]]]:
    with db.session() as session:
        calls = list(session.scalars(select(Call).where(CALL.caller_number.in_(numbers))
                                     .order_by(CALL.started_at)))
        return [(call, list(session.scalars(select(Recording).where(Recording.linkedid == call.linkedid))))
                for call in calls]


def _settled(call: Call, recordings: list[Recording]) -> bool:
    """Whether a call's recordings are done (and an answered call has one)."""
    busy = (RecordingStatus.PENDING, RecordingStatus.PROCESSING)
    return all(r.status not in busy for r in recordings) and (bool(recordings) or call.status != "answered")


def _wait(db: Database, numbers: Sequence[str]) -> list[tuple[Call, list[Recording]]]:
    deadline = time.monotonic() + WAIT_FOR_LOG
    rows = _rows(db, numbers)
    while time.monotonic() < deadline:
        done = len(rows) == len(numbers) and all(_settled(call, recs) for call, recs in rows)
        if done:
            break
        time.sleep(1)
        rows = _rows(db, numbers)
    return rows


def report(settings: Settings, numbers: Sequence[str], outcomes: Sequence[str]) -> int:
    """Print the demo's call log; 0 when every call is logged as planned, 1 otherwise."""
    api = f"http://{settings.api.host}:{settings.api.port}"
    db = Database(settings.db.url)
    try:
        rows = _wait(db, numbers)
    finally:
        db.dispose()
    print(f"\n{'caller':<12} {'status':<16} {'topic':<13} {'operator':<9} {'talk':>6}  recording")
    for call, recordings in rows:
        stored = [r for r in recordings if r.status == RecordingStatus.STORED]
        audio = f"{api}/api/recordings/{stored[0].id}/audio" if stored else "-"
        talk = f"{call.talk_seconds:.0f} s" if call.talk_seconds is not None else "-"
        print(f"{call.caller_number:<12} {call.status:<16} {call.topic or '-':<13} {call.operator or '-':<9} "
              f"{talk:>6}  {audio}")
    print(f"\nThe whole history: {api}/api/calls (API docs at {api}/docs)")
    if len(rows) < len(numbers):
        print(f"{len(numbers) - len(rows)} call(s) not logged yet: is the listener running (`make run`)?")
        return 1
    return 0 if all("talked" in o or "gave up" in o for o in outcomes) else 1
