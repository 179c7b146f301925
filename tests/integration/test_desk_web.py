"""After-call notes and the desk's refusals through the real app over a real database (no PBX needed): who may
note which call, what a bad note gets, that notes are kept and audited, and that the worklist's open items follow
the call log (an answered call from the same number closes earlier requests)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callcenter.model.hotline import load
from callcenter.settings import Settings
from callcenter.store import journal, worklist
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, CallbackAttempt, CallbackItem, CallNote, RecordingAccess
from tests.factories import T0, cel
from tests.webclient import (
    add_call,
    add_users,
    api_client,
    client,
    insert_calls,
    settings_for,
    sign_in,
    synthetic_calls,
)

MODEL = load(Settings().model_file)


@pytest.fixture
def call_of_op101(db: Database) -> int:
    add_users(db)
    call_id, _ = add_call(db, 3, operator="op101", number="0905000111")
    return call_id


def test_an_operator_notes_their_own_call_and_the_note_is_kept_and_audited(
        db: Database, tmp_path: Path, call_of_op101: int) -> None:
    test = api_client(db, settings_for(tmp_path), user="op101")
    answer = test.post(f"/api/calls/{call_of_op101}/notes", json={"text": " Hỏi thủ tục cấp phép ", "topic": "admin"})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"call_id": call_of_op101, "text": "Hỏi thủ tục cấp phép", "topic": "admin"}
    with db.session() as session:
        assert worklist.corrected_topic(session, call_of_op101) == "admin"
        notes = worklist.notes_of(session, call_of_op101)
        audited = session.scalars(select(RecordingAccess).where(RecordingAccess.action == "note")).all()
    assert [(n.author, n.operator, n.text) for n in notes] == [("op101", "op101", "Hỏi thủ tục cấp phép")]
    assert [(a.actor, a.call_id, a.status_code, a.detail) for a in audited] == [
        ("op101", call_of_op101, 201, "topic=admin")]


@pytest.mark.parametrize(("user", "body", "status"), [
    ("op102", {"text": "not my call"}, 404),  # another operator's call: as if it did not exist
    ("dept1", {"text": "departments do not note calls"}, 403),
    ("op101", {"text": "", "topic": ""}, 422),  # nothing to keep
    ("op101", {"text": "x", "topic": "weather"}, 422),  # no such topic
    ("op101", {"text": "x" * 4001}, 422),
    ("op101", {"text": "a\x00b"}, 422),  # PostgreSQL keeps no NUL in text: refused, not a server error
    ("op101", {"text": "\ud800"}, 422),  # a lone surrogate: no valid Unicode, echoed escaped in the answer
    ("op101", {"text": "x", "topic": "\ud800"}, 422),
    ("op101", {"text": float("inf")}, 422),  # sent as Infinity: no JSON number to echo
])
def test_bad_notes_get_a_clear_refusal_and_keep_nothing(db: Database, tmp_path: Path, call_of_op101: int,
                                                        user: str, body: dict[str, object], status: int) -> None:
    answer = api_client(db, settings_for(tmp_path), user=user).post(  # as Python writes JSON: \ud800, Infinity
        f"/api/calls/{call_of_op101}/notes", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]
    with db.session() as session:
        assert session.scalars(select(CallNote)).all() == []


def test_a_note_on_an_id_no_call_can_have_is_refused_as_the_call_s_own_route_refuses_it(
        db: Database, tmp_path: Path, call_of_op101: int) -> None:
    test = api_client(db, settings_for(tmp_path), user="super1")
    for call_id in (2**63, 99999999999999999999, 0, -1):
        answer = test.post(f"/api/calls/{call_id}/notes", json={"text": "a note"})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["path", "call_id"], answer.text
        assert test.get(f"/api/calls/{call_id}").status_code == 422
    with db.session() as session:
        assert session.scalars(select(CallNote)).all() == []


def test_a_supervisor_notes_from_the_call_page_and_the_page_shows_the_corrected_topic(
        db: Database, tmp_path: Path, call_of_op101: int) -> None:
    test = sign_in(client(db, settings_for(tmp_path)), "super1")
    page = test.get(f"/calls/{call_of_op101}")
    assert "No notes on this call yet." in page.text
    answer = test.post(f"/calls/{call_of_op101}/notes", data={"text": "Đã chuyển phòng Quản lý đô thị",
                                                              "topic": "urban_order",
                                                              "csrftoken": test.cookies.get("csrftoken", "")},
                       follow_redirects=False)
    assert answer.status_code == 303
    page = test.get(f"/calls/{call_of_op101}")
    assert "Đã chuyển phòng Quản lý đô thị" in page.text and 'id="corrected-topic"' in page.text


def test_the_desk_is_for_operators_linked_to_the_model(db: Database, tmp_path: Path) -> None:
    add_users(db)
    assert sign_in(client(db, settings_for(tmp_path)), "super1").get("/desk").status_code == 403
    desk = sign_in(client(db, settings_for(tmp_path)), "op101").get("/desk")
    assert desk.status_code == 200 and "Operator 101" in desk.text
    # op101 is always in the queue (a fixed desk): the page offers pause, not log in
    assert 'id="log-in"' not in desk.text and 'id="pause"' in desk.text


def test_a_bad_availability_change_is_refused_before_reaching_the_pbx(db: Database, tmp_path: Path) -> None:
    add_users(db)
    test = sign_in(client(db, settings_for(tmp_path)), "op101")
    token = test.cookies.get("csrftoken", "")
    for data, status in (({"action": "dance"}, 422), ({"action": "pause", "reason": "nap"}, 422),
                         ({"action": "login"}, 409)):
        answer = test.post("/desk/availability", data={**data, "csrftoken": token},
                           headers={"Accept": "application/json"})
        assert answer.status_code == status, (data, answer.text)
        assert answer.json()["detail"]
    # The plain form (without the page's script) is sent back to the desk, which says why.
    plain = test.post("/desk/availability", data={"action": "login", "csrftoken": token}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].startswith("/desk?problem=")
    page = test.get(plain.headers["location"]).text
    assert 'class="flash error" role="status">op101 is always in the queue (a fixed desk)' in page


def test_open_call_back_requests_close_once_the_number_got_through(db: Database) -> None:
    start = datetime.now(UTC) - timedelta(hours=5)
    base = synthetic_calls(1, start, 0.001)[0]
    rows = [base | {"linkedid": "a", "caller_number": "0905777888", "status": "missed", "started_at": start},
            base | {"linkedid": "b", "caller_number": "0905777888", "status": "callback_requested",
                    "started_at": start + timedelta(hours=1)},
            base | {"linkedid": "c", "caller_number": "0905999000", "status": "voice_message",
                    "started_at": start + timedelta(hours=2)},
            base | {"linkedid": "d", "caller_number": "0905777888", "status": "answered",
                    "started_at": start + timedelta(minutes=30)}]  # answered between a and b: closes a only
    insert_calls(db, rows)
    with db.session() as session:
        found = [call.linkedid for call, _ in session.execute(worklist.open_items()).all()]
        mine = [call.linkedid for call in worklist.open_requests(session, "0905777888")]
    assert found == ["b", "c"]  # oldest first
    assert mine == ["b"]


def _request(db: Database, number: str, status: str = "voice_message") -> int:
    row = synthetic_calls(1, datetime.now(UTC) - timedelta(hours=1), 0.001)[0] | {
        "linkedid": f"req-{number}", "caller_number": number, "status": status, "operator": "", "talk_seconds": None}
    insert_calls(db, [row])
    with db.session() as session:
        return int(session.scalars(select(Call.id).where(CALL.linkedid == row["linkedid"])).one())


def _act(test: TestClient, call_id: int, action: str) -> str:
    """Post a worklist action; the problem the page then reports ("" when none)."""
    answer = test.post(f"/worklist/{call_id}", data={"action": action, "csrftoken": test.cookies.get("csrftoken", "")},
                       follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return str(parse_qs(urlparse(answer.headers["location"]).query).get("problem", [""])[0])


def test_one_operator_at_a_time_holds_an_item_and_only_then_sees_the_message(db: Database, tmp_path: Path) -> None:
    add_users(db)
    call_id = _request(db, "0905333444")
    first, second = (sign_in(client(db, settings_for(tmp_path)), name) for name in ("op101", "op102"))
    assert first.get(f"/calls/{call_id}").status_code == 404  # nobody's call yet: not an operator's to see
    assert _act(first, call_id, "claim") == ""
    assert f'data-call="{call_id}"' in first.get("/worklist?mine=true").text
    assert first.get(f"/calls/{call_id}").status_code == 200  # held: the voice message can be heard
    assert _act(second, call_id, "claim") == "op101 is working on this call already"
    assert _act(second, call_id, "release") == "op101 holds this call, not you"
    assert _act(second, call_id, "close") == "take the call first (claim it), then close it"
    assert second.get(f"/calls/{call_id}").status_code == 404
    supervisor = sign_in(client(db, settings_for(tmp_path)), "super1")
    assert _act(supervisor, call_id, "release") == ""  # staff free an item somebody left held
    assert _act(second, call_id, "claim") == ""
    assert _act(second, call_id, "close") == ""
    assert f'data-call="{call_id}"' not in second.get("/worklist").text
    assert "not waiting to be returned" in _act(first, call_id, "claim")
    with db.session() as session:
        item = session.scalars(select(CallbackItem).where(CallbackItem.call_id == call_id)).one()
    assert (item.closed_reason, item.closed_by, item.claimed_by) == ("dismissed", "op102", "")


def test_the_worklist_shows_a_call_back_lost_by_the_pbx_as_failed_with_its_reason(db: Database,
                                                                                 tmp_path: Path) -> None:
    """A call-back whose call never reaches the call log stops showing as going on once the log went on half a
    day without it."""
    add_users(db)
    call_id = _request(db, "0905333555")
    holder = sign_in(client(db, settings_for(tmp_path)), "op101")
    assert _act(holder, call_id, "claim") == ""
    with db.session() as session:
        attempt = worklist.start_attempt(session, session.get_one(Call, call_id), "op101", "op101", "cb-lost-1.0")
        attempt.started_at = datetime.now(UTC) - worklist.PLACED_AT_MOST - timedelta(minutes=1)
        node = settings_for(tmp_path).listener_nodes(MODEL.pbx.ami)[0].name  # the journal has gone on since
        journal.append(session, node, [cel("CHAN_START", time.time() - T0, uniqueid="later-1.0",
                                           linkedid="later-1.0")], "ami")
    page = holder.get("/worklist").text
    assert 'title="its call never reached the call log of the nodes followed (sandbox) in 12 hours' in page
    with db.session() as session:
        assert session.scalars(select(CallbackAttempt.result)).one() == "failed"
    assert f'data-call="{call_id}"' in page  # the item stays open for another call-back


def test_the_operator_holding_an_item_notes_its_call_and_nobody_else_may(db: Database, tmp_path: Path) -> None:
    """Holding a worklist item lets an operator see its call, so note what the call-back found too."""
    add_users(db)
    call_id = _request(db, "0905333777")
    holder = sign_in(client(db, settings_for(tmp_path)), "op101")
    assert _act(holder, call_id, "claim") == ""
    notes = {user: api_client(db, settings_for(tmp_path), user=user).post(
        f"/api/calls/{call_id}/notes", json={"text": f"gọi lại ({user})"}).status_code for user in ("op101", "op102")}
    assert notes == {"op101": 201, "op102": 404}
    token = holder.cookies.get("csrftoken", "")
    page = holder.post(f"/calls/{call_id}/notes", data={"text": "để lại lời nhắn", "csrftoken": token},
                       follow_redirects=False)
    assert page.status_code == 303
    with db.session() as session:
        assert [n.text for n in worklist.notes_of(session, call_id)] == ["gọi lại (op101)", "để lại lời nhắn"]


def test_the_worklist_refuses_bad_input_clearly(db: Database, tmp_path: Path) -> None:
    add_users(db)
    call_id = _request(db, "0905333555")
    test = sign_in(client(db, settings_for(tmp_path)), "op101")
    assert _act(test, 2**63, "claim") == "no such call"
    assert _act(test, call_id, "call") == "take the call first (claim it), then call back"
    token = test.cookies.get("csrftoken", "")
    assert test.post(f"/worklist/{call_id}", data={"action": "explode", "csrftoken": token}).status_code == 422
    assert sign_in(client(db, settings_for(tmp_path)), "dept1").get("/worklist").status_code == 403
    answered = _request(db, "0905333666", status="answered")
    assert "not waiting to be returned" in _act(test, answered, "claim")
    assert "not waiting to be returned" in _act(test, answered, "release")
    assert "not waiting to be returned" in _act(test, answered + 1000, "release")  # no such call
    with db.session() as session:  # nothing refused left a row behind (a refused call-back once did, on SQLite)
        assert session.scalars(select(CallbackItem.call_id)).all() == []
