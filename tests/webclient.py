"""Helpers for tests of the web app and the API with sign-in: an app over a test database, users of every role,
signed-in clients, and calls with recordings to look at."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient
from sqlalchemy import insert

from callcenter.api.app import create_app
from callcenter.calls.builder import build_call
from callcenter.model.contract import EndedBy, Role, Status
from callcenter.settings import Settings
from callcenter.store import accounts, journal, summary
from callcenter.store.db import Database
from callcenter.store.models import Recording, User, calls
from callcenter.store.writer import upsert_call
from tests.factories import DIRECTORY, answered_stream

PASSWORD = "correct horse battery staple"
USERS = {"admin1": (Role.ADMIN, None), "super1": (Role.SUPERVISOR, None), "op101": (Role.OPERATOR, "op101"),
         "op102": (Role.OPERATOR, "op102"), "dept1": (Role.DEPARTMENT, None)}


def settings_for(tmp_path: Path, **api: object) -> Settings:
    """Settings for an app under test: TestClient's host allowed, no live board, a store in tmp."""
    settings = Settings()
    settings.api = settings.api.model_copy(update={"allowed_hosts": ["testserver"], "live_board": False, **api})
    settings.recordings = settings.recordings.model_copy(update={"store": tmp_path / "store"})
    settings.cases = settings.cases.model_copy(update={"attachments": tmp_path / "attachments"})
    return settings


def add_users(db: Database) -> None:
    """One user of each role (two operators)."""
    with db.session() as session:
        for name, (role, operator) in USERS.items():
            accounts.create_user(session, accounts.NewUser(name, role, PASSWORD, operator=operator,
                                                           language="en"))


def client(db: Database, settings: Settings) -> TestClient:
    """An anonymous client of a new app."""
    return TestClient(create_app(settings, db))


def sign_in(test: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    """Sign ``test`` in as ``name`` through the form (with its CSRF token)."""
    test.get("/sign-in")
    response = test.post("/sign-in", data={"name": name, "password": password, "next": "/calls",
                                           "csrftoken": test.cookies.get("csrftoken", "")}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return test


def add_call(db: Database, n: int, operator: str = "op101", number: str = "0905123456",
             audio: Path | None = None, audio_seconds: float = 3.0) -> tuple[int, int | None]:
    """An answered call taken by ``operator`` that started ``n`` hours ago (inside the pages' default 30 days
    whatever day the tests run), with a stored recording when ``audio`` is a file in the store (``audio_seconds``
    long); returns (call id, recording id)."""
    stream = answered_stream()
    shift = (datetime.now(UTC) - timedelta(hours=n)).timestamp() - stream[0].time
    events = [replace(e, linkedid=f"{n}.1", uniqueid=e.uniqueid.replace("100", str(n)), cid_num=number,
                      channel=e.channel.replace("op101", operator), time=e.time + shift,
                      second=int(e.time + shift)) for e in stream]
    with db.session() as session:
        journal.append(session, "sandbox", events, "ami")
        upsert_call(session, "sandbox", build_call(events, DIRECTORY), datetime.now(UTC))
        from callcenter.store.models import Call
        call = session.query(Call).filter_by(linkedid=f"{n}.1").one()
        recording_id = None
        if audio is not None:
            row = Recording(call_id=call.id, node="sandbox", linkedid=call.linkedid, uniqueid=call.linkedid,
                            kind="conversation", source_path=f"/spool/{n}.wav", path=audio.name, format="opus",
                            status="stored", duration_seconds=audio_seconds, created_at=datetime.now(UTC),
                            recorded_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            recording_id = row.id
        return call.id, recording_id


def synthetic_calls(count: int, start: datetime, days: float, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` call-log rows spread at random over ``days`` days from ``start``: mostly answered, some missed,
    abandoned or voice messages, on both lines, three topics, two operators (for statistics and exports)."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        started = start.astimezone(UTC) + timedelta(seconds=rng.uniform(0, days * 86400))
        status = rng.choice([Status.ANSWERED] * 5 + [Status.MISSED, Status.ABANDONED_QUEUE, Status.VOICE_MESSAGE])
        rows.append({"node": "n1", "linkedid": f"{n}.1", "started_at": started,
                     "ended_at": started + timedelta(minutes=4), "status": status.value,
                     "caller_number": f"09{n:08d}", "caller_name": "", "line": rng.choice(["02621022", "1900868647"]),
                     "direction": "inbound", "queue": "operators", "queue_result": "",
                     "operator": rng.choice(["op101", "op102"]) if status is Status.ANSWERED else "",
                     "operator_device": None, "operators": [],
                     "answered_at": None, "ring_seconds": None, "wait_seconds": round(rng.uniform(0, 90), 3),
                     "talk_seconds": round(rng.uniform(30, 900), 3) if status is Status.ANSWERED else None,
                     "hangup_cause": 16, "ended_by": EndedBy.CALLER.value, "transfers": 0, "ivr_path": [],
                     "topic": rng.choice(["admin", "traffic", "environment", "urban_order", "security"]),
                     "after_hours": False,
                     "callback_number": "", "legal_hold": False, "built_at": started})
    return rows


def insert_calls(db: Database, rows: list[dict[str, Any]]) -> None:
    """Insert call-log rows as they are (in batches), then recompute the statistics summary (the writer keeps it
    up to date; rows inserted behind its back need the rebuild, as after a restore of calls alone)."""
    with db.session() as session:
        for first in range(0, len(rows), 2000):
            session.execute(insert(calls), rows[first:first + 2000])
        summary.rebuild(session)


def api_client(db: Database, settings: Settings, user: str = "super1") -> TestClient:
    """A client of a new app sending ``user``'s API token (the users of every role are added when missing); the
    settings are taken as given, with TestClient's host allowed and no live board."""
    with db.session() as session:
        if session.query(User).count() == 0:
            add_users(db)
    with db.session() as session:
        token = accounts.create_token(session, session.query(User).filter_by(name=user).one(), "tests")
    settings.api = settings.api.model_copy(update={"allowed_hosts": ["testserver"], "live_board": False})
    test = TestClient(create_app(settings, db))
    test.headers["Authorization"] = f"Bearer {token}"
    return test


def form_post(test: TestClient, path: str, files: list[tuple[str, bytes, str]] | None = None, /,
              **data: str) -> tuple[int, str]:
    """A form post as the pages send it (the CSRF token first; ``files`` as a multipart ``files`` field): its
    status and, for a redirect, the problem it reports, else where to."""
    answer = test.post(path, data={"csrftoken": test.cookies.get("csrftoken", ""), **data},
                       files=[("files", f) for f in files] if files else None, follow_redirects=False)
    location = answer.headers.get("location", "")
    return answer.status_code, parse_qs(urlparse(location).query).get("problem", [""])[0] or location
