"""`make demo` shows the product: callers key topics, operators answer and talk, one caller gives up in the
queue; the history then holds answered calls with topics, operators and stored recordings, and the demo says so."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callcenter.settings import PROJECT_ROOT
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, Recording
from tests.integration.conftest import IvrProcess, ListenerProcess

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def test_the_demo_produces_answered_calls_with_topics_operators_and_recordings(
        db: Database, db_url: str, listener: ListenerProcess, ivr: IvrProcess) -> None:
    ivr.start()
    began = datetime.now(UTC)
    env = {**os.environ, "CALLCENTER_DB__URL": db_url}
    demo = subprocess.run([sys.executable, "-m", "callcenter", "simulate", "--calls", "2", "--talk", "6"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "gave up after" in demo.stdout and len(re.findall(r"talked \d+ s with an operator", demo.stdout)) == 2
    assert "/api/recordings/" in demo.stdout and "/api/calls" in demo.stdout
    with db.session() as session:
        # The listener also backfilled earlier calls from Asterisk's CEL file: only the demo's count here.
        calls = list(session.scalars(select(Call).where(CALL.started_at >= began).order_by(CALL.started_at)))
        stored = {r.linkedid for r in session.scalars(select(Recording).where(Recording.status == "stored"))}
    assert sorted(call.status for call in calls) == ["abandoned_queue", "answered", "answered"]
    for call in calls:
        assert call.topic and call.line == "02621022" and call.caller_name  # a topic keyed in the IVR
        if call.status == "answered":
            assert call.operator and call.linkedid in stored
