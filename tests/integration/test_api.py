"""The history API over a real database (SQLite and PostgreSQL): paging, filters, bounds, errors. A supervisor's
API token signs every request (who may see what is tested in test_web_access)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callcenter.calls.builder import build_call
from callcenter.model.contract import Status
from callcenter.store import journal
from callcenter.store.db import Database
from callcenter.store.models import Call
from callcenter.store.writer import upsert_call
from tests.factories import DIRECTORY, T0, answered_stream
from tests.webclient import api_client, settings_for

START = datetime.fromtimestamp(T0 - 3600, UTC).isoformat()
END = datetime.fromtimestamp(T0 + 86400, UTC).isoformat()


def _seed(db: Database, count: int) -> None:
    """``count`` answered calls a minute apart; every third on the city line, every fourth missed, op101/op102."""
    with db.session() as session:
        for n in range(count):
            events = [replace(e, linkedid=f"{n}.0", uniqueid=e.uniqueid.replace("100", str(n)), time=e.time + 60 * n,
                              cid_num=f"09{n:08d}") for e in answered_stream(line="1900868647" if n % 3 == 0
                                                                             else "02621022")]
            record = build_call(events, DIRECTORY)
            if n % 4 == 0:
                record.status = Status.MISSED
            record.operator = "op102" if n % 2 else "op101"
            journal.append(session, "sandbox", events, "ami")
            upsert_call(session, "sandbox", record, datetime.now(UTC))


@pytest.fixture
def client(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    with api_client(db, settings_for(tmp_path, page_size_max=20)) as test_client:
        yield test_client


def _get(client: TestClient, **params: object) -> dict:  # type: ignore[type-arg]
    response = client.get("/api/calls", params={"from": START, "to": END, **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_pages_are_newest_first_and_complete(client: TestClient, db: Database) -> None:
    _seed(db, 25)
    first, second = _get(client, page_size=10), _get(client, page_size=10, page=2)
    third = _get(client, page_size=10, page=3)
    assert (first["total"], first["pages"]) == (25, 3)
    numbers = [c["caller_number"] for page in (first, second, third) for c in page["items"]]
    assert numbers == [f"09{n:08d}" for n in range(24, -1, -1)]


def test_page_size_is_capped(client: TestClient, db: Database) -> None:
    _seed(db, 25)
    body = _get(client, page_size=1000)
    assert body["page_size"] == 20 and len(body["items"]) == 20


def test_filters(client: TestClient, db: Database) -> None:
    _seed(db, 12)
    assert _get(client, line="1900868647")["total"] == 4
    assert _get(client, status="missed")["total"] == 3
    assert _get(client, operator="op102")["total"] == 6
    assert _get(client, number="0900000011")["total"] == 1
    assert _get(client, number="090000001")["total"] == 2  # prefix: 10 and 11
    assert _get(client, status="missed", line="1900868647")["total"] == 1  # n % 3 == 0 and n % 4 == 0: only n=0
    window = _get(client, **{"from": datetime.fromtimestamp(T0 + 60 * 5, UTC).isoformat(),
                             "to": datetime.fromtimestamp(T0 + 60 * 7, UTC).isoformat()})
    assert [c["caller_number"] for c in window["items"]] == ["0900000006", "0900000005"]


def test_detail_has_the_timeline(client: TestClient, db: Database) -> None:
    _seed(db, 1)
    call_id = _get(client)["items"][0]["id"]
    detail = client.get(f"/api/calls/{call_id}").json()
    assert detail["caller_name"] == "Nguyễn Thị Quỳnh Mai"
    assert [e["event"] for e in detail["events"]][:3] == ["CHAN_START", "ANSWER", "APP_START"]
    assert detail["events"][-1]["event"] == "LINKEDID_END"


@pytest.mark.parametrize("params", [{"status": "lost"}, {"page": 0}, {"page_size": 0}, {"number": "abc"},
                                   {"line": "12'; DROP TABLE calls;--"}, {"from": "yesterday"},
                                   {"from": END, "to": START}, {"from": "2020-01-01T00:00:00Z", "to": END},
                                   {"operator": "../../etc/passwd"}])
def test_bad_parameters_are_rejected_clearly(client: TestClient, db: Database, params: dict[str, object]) -> None:
    _seed(db, 2)
    response = client.get("/api/calls", params={"from": START, "to": END, **params})
    assert response.status_code == 422
    assert response.json()["detail"]
    assert _get(client)["total"] == 2


def test_unknown_call_is_404(client: TestClient) -> None:
    response = client.get("/api/calls/999999")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]
    assert client.get("/api/calls/not-a-number").status_code == 422
    assert client.get(f"/api/calls/{2**64}").status_code == 422
    assert client.get("/api/calls", params={"to": "0001-01-01T00:00:00Z"}).status_code == 422


def test_topic_filter(client: TestClient, db: Database) -> None:
    _seed(db, 3)
    with db.session() as session:
        session.get_one(Call, 2).topic = "environment"
    assert [c["id"] for c in _get(client, topic="environment")["items"]] == [2]


def test_very_long_caller_id_is_still_logged(db: Database) -> None:
    events = [replace(e, cid_name="Nguyễn " * 100, cid_num="9" * 100) if e.uniqueid == "100.1" else e
              for e in answered_stream()]
    with db.session() as session:
        upsert_call(session, "sandbox", build_call(events, DIRECTORY), datetime.now(UTC))
    with db.session() as session:
        call = session.get_one(Call, 1)
        assert len(call.caller_name) == 255 and call.caller_number == "9" * 64


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    assert "/api/calls" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_a_days_filter_in_local_time_splits_calls_at_local_midnight(client: TestClient, db: Database) -> None:
    """Supervisors ask for "30 November" in Ho Chi Minh City time: a call at 23:58 the day before is not in it,
    one at 00:02 is, although both are on 29 November in UTC."""
    from zoneinfo import ZoneInfo

    midnight = datetime(2026, 11, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
    with db.session() as session:
        for n, at in enumerate((midnight - 120, midnight + 120)):
            events = [replace(e, linkedid=f"m{n}.0", uniqueid=e.uniqueid.replace("100", f"m{n}"),
                              time=e.time - T0 + at, second=int(e.time - T0 + at), cid_num=f"0900{n}")
                      for e in answered_stream()]
            upsert_call(session, "sandbox", build_call(events, DIRECTORY), datetime.now(UTC))
    day = client.get("/api/calls", params={"from": "2026-11-30T00:00:00+07:00", "to": "2026-12-01T00:00:00+07:00"})
    assert day.status_code == 200, day.text
    assert [c["caller_number"] for c in day.json()["items"]] == ["09001"]
