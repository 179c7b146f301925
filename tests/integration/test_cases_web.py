"""Cases through the real app over a real database: the hotline opens and forwards a case from a call, the
department works it to a result, supervisors close, reopen, reassign and see what is overdue; departments see only
their own cases and a citizen's contact only with consent; every move outside the flow is refused with the reason
and changes nothing; the IVR's lookup reads the stored status and the day of the last update."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callcenter.model.contract import Role
from callcenter.store import accounts
from callcenter.store.db import Database
from callcenter.store.models import Case, CaseCall, CaseUpdate
from ivr.cases import StoredCases
from tests.webclient import PASSWORD, add_call, add_users, client, form_post, settings_for, sign_in


@pytest.fixture
def users(db: Database) -> None:
    add_users(db)
    with db.session() as session:
        for name, department in (("env1", "environment"), ("urban1", "urban")):
            accounts.create_user(session, accounts.NewUser(name, Role.DEPARTMENT, PASSWORD, department=department,
                                                           language="en"))


def as_user(db: Database, tmp_path: Path, name: str) -> TestClient:
    return sign_in(client(db, settings_for(tmp_path)), name)


def open_case(test: TestClient, call_id: int, consent: bool = False, **extra: str) -> str:
    fields = {"call_id": str(call_id), "topic": "environment", "description": "Rác thải đổ trộm ở bờ kênh",
              "location": "Kênh Thầy Cai, ấp 3", "latitude": "10.82", "longitude": "106.63",
              "contact_name": "Nguyễn Văn Tâm", "contact_phone": "0905111222", "forward": "true", **extra}
    if consent:
        fields["consent"] = "true"
    status, where = form_post(test, "/cases", **fields)
    assert status == 303 and where.endswith("?opened=1"), (status, where)
    return where.split("/cases/")[1].split("?")[0]


def test_a_case_goes_from_the_call_to_the_department_and_back_to_a_close(
        db: Database, tmp_path: Path, users: None) -> None:
    call_id, _ = add_call(db, 2, operator="op101", number="0905111222")
    operator = as_user(db, tmp_path, "op101")
    number = open_case(operator, call_id)
    page = operator.get(f"/cases/{number}?opened=1").text
    assert "Tell the citizen the case number" in page and 'data-status="forwarded"' in page
    assert f"/cases/{number}" in operator.get(f"/calls/{call_id}").text  # the call lists its case
    with db.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert (case.department, case.created_by) == ("environment", "op101")
        assert case.due_at is not None and case.forwarded_at is not None
        assert case.due_at - case.forwarded_at == timedelta(hours=48)  # the topic's target time

    department = as_user(db, tmp_path, "env1")
    assert f'data-case="{number}"' in department.get("/cases").text
    page = department.get(f"/cases/{number}").text
    assert "Nguyễn Văn Tâm" not in page and "did not agree to share" in page  # no consent: no contact
    other = as_user(db, tmp_path, "urban1")
    assert f'data-case="{number}"' not in other.get("/cases").text
    assert other.get(f"/cases/{number}").status_code == 404
    assert form_post(other, f"/cases/{number}/status", to="in_progress")[0] == 404  # not theirs: as if it did not exist

    assert form_post(department, f"/cases/{number}/status", to="in_progress")[1] == f"/cases/{number}"
    assert form_post(department, f"/cases/{number}/progress", text="Đã cử tổ thu gom")[1] == f"/cases/{number}"
    assert "write something" in form_post(department, f"/cases/{number}/status", to="resolved", text="")[1]
    page = f"/cases/{number}"
    assert form_post(department, f"{page}/status", to="resolved", text="Đã thu gom xong")[1] == page
    assert "may not make a resolved case closed" in form_post(department, f"/cases/{number}/status", to="closed")[1]
    assert "may not" in form_post(operator, f"/cases/{number}/status", to="closed")[1]

    supervisor = as_user(db, tmp_path, "super1")
    assert form_post(supervisor, f"{page}/status", to="closed", text="Người dân xác nhận")[1] == page
    assert "cannot become forwarded" in form_post(supervisor, f"/cases/{number}/status", to="forwarded")[1]
    assert form_post(supervisor, f"/cases/{number}/status", to="reopened", text="Tái diễn")[1] == f"/cases/{number}"
    with db.session() as session:
        updates = session.scalars(select(CaseUpdate).join(Case, Case.id == CaseUpdate.case_id)
                                  .where(Case.number == number).order_by(CaseUpdate.id)).all()
    assert [(u.kind, u.to_status, u.author) for u in updates] == [
        ("opened", "new", "op101"), ("link", "", "op101"), ("status", "forwarded", "op101"),
        ("status", "in_progress", "env1"), ("progress", "", "env1"), ("status", "resolved", "env1"),
        ("status", "closed", "super1"), ("status", "reopened", "super1")]


def test_returned_cases_are_forwarded_again_reassigned_and_calls_link_by_number(
        db: Database, tmp_path: Path, users: None) -> None:
    first, _ = add_call(db, 3, operator="op101", number="0905222333")
    second, _ = add_call(db, 1, operator="op101", number="0905444555")
    operator = as_user(db, tmp_path, "op101")
    number = open_case(operator, first, consent=True, topic="urban_order")
    urban = as_user(db, tmp_path, "urban1")
    assert "Nguyễn Văn Tâm" in urban.get(f"/cases/{number}").text  # consent given: the contact is shown
    assert "write something" in form_post(urban, f"/cases/{number}/status", to="returned")[1]  # a reason is needed
    assert form_post(urban, f"/cases/{number}/status", to="returned", text="Không thuộc thẩm quyền")[1].startswith("/")
    assert form_post(operator, f"/cases/{number}/status", to="forwarded", department="construction")[1].startswith("/")
    supervisor = as_user(db, tmp_path, "super1")
    assert form_post(supervisor, f"/cases/{number}/reassign", department="environment")[1].startswith("/")
    assert "only supervisors" in form_post(operator, f"/cases/{number}/reassign", department="urban")[1]
    assert form_post(operator, f"/cases/{number}/calls", call_id="²")[1] == "call: an id"
    status, where = form_post(operator, f"/calls/{second}/case", number=number)
    assert status == 303 and "problem" not in where
    assert form_post(operator, f"/calls/{second}/case", number=number)[0] == 303  # twice: one link, logged once
    with db.session() as session:
        case_id = session.scalars(select(Case.id).where(Case.number == number)).one()
        assert session.scalars(select(CaseCall.call_id).where(CaseCall.case_id == case_id)).all() == [first, second]
        assert len(session.scalars(select(CaseUpdate).where(CaseUpdate.case_id == case_id,
                                                            CaseUpdate.kind == "link")).all()) == 2
    bad = form_post(operator, f"/calls/{second}/case", number=number[:-1] + str((int(number[-1]) + 1) % 10))[1]
    assert "check" in bad  # a mistyped number is caught by its check digit
    page = supervisor.get(f"/cases/{number}").text
    assert page.count('href="/calls/') == 2 and "Phòng Tài nguyên và Môi trường" in page


def test_an_operator_links_to_a_case_only_the_calls_they_may_see(db: Database, tmp_path: Path, users: None) -> None:
    """Linking shows the call on the case's page and the case on the caller's screen-pop: an operator may link
    only calls they took part in (or work on), as they may open only those; another's is an unknown call."""
    mine, _ = add_call(db, 6, operator="op102", number="0905000111")
    theirs, _ = add_call(db, 7, operator="op101", number="0905000222")
    operator = as_user(db, tmp_path, "op102")
    assert operator.get(f"/calls/{theirs}").status_code == 404
    token = operator.cookies.get("csrftoken", "")
    answer = operator.post("/cases", data={"call_id": str(theirs), "topic": "environment", "description": "x",
                                           "csrftoken": token}, headers={"Accept": "application/json"})
    assert answer.status_code == 422 and f"no call with id {theirs}" in answer.json()["detail"]
    number = open_case(operator, mine)
    assert form_post(operator, f"/cases/{number}/calls", call_id=str(theirs))[1] == f"no call with id {theirs}"
    assert operator.post(f"/calls/{theirs}/case", data={"number": number, "csrftoken": token},
                         follow_redirects=False).status_code == 404
    with db.session() as session:
        assert session.scalars(select(CaseCall.call_id)).all() == [mine]
    supervisor = as_user(db, tmp_path, "super1")  # who sees every call links any
    assert form_post(supervisor, f"/calls/{theirs}/case", number=number)[0] == 303
    with db.session() as session:
        assert sorted(session.scalars(select(CaseCall.call_id)).all()) == sorted([mine, theirs])


def test_the_overdue_report_lists_cases_past_their_topic_s_target(db: Database, tmp_path: Path, users: None) -> None:
    call_id, _ = add_call(db, 4, operator="op101", number="0905666777")
    operator = as_user(db, tmp_path, "op101")
    late, fresh = open_case(operator, call_id), open_case(operator, call_id, topic="traffic")
    with db.session() as session:
        case = session.scalars(select(Case).where(Case.number == late)).one()
        case.due_at = datetime.now(UTC) - timedelta(hours=1)
    report = as_user(db, tmp_path, "super1").get("/cases?overdue=true").text
    assert f'data-case="{late}"' in report and f'data-case="{fresh}"' not in report
    assert as_user(db, tmp_path, "super1").get("/cases?status=bogus").status_code == 200


def test_bad_case_input_is_refused_and_keeps_nothing(db: Database, tmp_path: Path, users: None) -> None:
    call_id, _ = add_call(db, 5, operator="op101", number="0905888999")
    operator = as_user(db, tmp_path, "op101")
    token = operator.cookies.get("csrftoken", "")
    for fields, expected in (({"topic": "weather"}, "unknown topic"), ({"description": " "}, "write something"),
                             ({"latitude": "north"}, "latitude"), ({"latitude": "123"}, "between -90 and 90"),
                             ({"department": "nowhere"}, "unknown department"),
                             ({"contact_phone": "call me"}, "digits only"), ({"contact_phone": "١٢٣٤"}, "digits only"),
                             ({"latitude": "10", "longitude": ""}, "both or neither"), ({"call_id": "²"}, "an id")):
        data = {"call_id": str(call_id), "topic": "environment", "description": "x", "csrftoken": token, **fields}
        answer = operator.post("/cases", data=data, headers={"Accept": "application/json"})
        assert answer.status_code == 422 and expected in answer.json()["detail"], (fields, answer.text)
    assert as_user(db, tmp_path, "env1").post("/cases", data={"topic": "environment", "description": "x"},
                                               follow_redirects=False).status_code in (403, 303)
    with db.session() as session:
        assert session.scalars(select(Case)).all() == []


def test_a_case_number_in_other_digits_or_too_long_names_no_case(db: Database, tmp_path: Path, users: None) -> None:
    call_id, _ = add_call(db, 5, operator="op101", number="0905888777")
    supervisor = as_user(db, tmp_path, "super1")
    open_case(supervisor, call_id)
    long = "1" * 4400  # beyond the 4300 digits int() reads; one of the ten endings has a right check digit
    for odd in ("²²²²²", *(long + digit for digit in "0123456789")):
        assert supervisor.get(f"/cases/{odd}").status_code == 404
    assert form_post(supervisor, "/cases/²²²²²/status", to="closed")[0] == 404
    status, problem = form_post(supervisor, f"/calls/{call_id}/case", number="²²²²²")
    assert status == 303 and "no case '²²²²²'" in problem
    with db.session() as session:
        assert [c.status for c in session.scalars(select(Case))] == ["forwarded"]
        assert [u.kind for u in session.scalars(select(CaseUpdate))] == ["opened", "link", "status"]


def test_the_ivr_reads_the_stored_status_and_the_day_of_the_last_update(
        db: Database, db_url: str, tmp_path: Path, users: None) -> None:
    call_id, _ = add_call(db, 6, operator="op101", number="0905000999")
    number = open_case(as_user(db, tmp_path, "op101"), call_id)
    found = StoredCases(db_url).lookup(number)
    assert found is not None and (found.number, found.status, found.prompt) == (
        number, "forwarded", "case-status-forwarded")
    assert found.updated == datetime.now(UTC).astimezone(StoredCases(db_url).zone).date()
    assert StoredCases(db_url).lookup(number[:-1] + str((int(number[-1]) + 3) % 10)) is None


def test_handling_times_by_department_and_topic(db: Database, tmp_path: Path, users: None) -> None:
    from callcenter.model.cases import CaseStatus
    from callcenter.store import cases as store
    from tests.integration.conftest import MODEL

    now = datetime.now(UTC)
    hotline, department = store.Actor("op101", Role.OPERATOR), store.Actor("env1", Role.DEPARTMENT, "environment")
    with db.session() as session:
        made = [store.open_case(session, MODEL, store.NewCase(topic="environment", description=f"report {n}"),
                                hotline) for n in range(3)]
        for case, hours in zip(made[:2], (10, 60), strict=True):  # resolved after 10 h and 60 h (target: 48 h)
            store.move(session, MODEL, case, CaseStatus.RESOLVED, department, "done")
            case.forwarded_at = now - timedelta(hours=hours + 1)
            session.flush()
            update = session.scalars(select(CaseUpdate).where(CaseUpdate.case_id == case.id,
                                                              CaseUpdate.to_status == "resolved")).one()
            update.at = case.forwarded_at + timedelta(hours=hours)
        made[2].due_at = now - timedelta(hours=1)  # still at the department, past its target
        store.open_case(session, MODEL, store.NewCase(topic="traffic", description="not forwarded", forward=False),
                        hotline)
    page = as_user(db, tmp_path, "super1").get("/cases/handling").text
    row = page.split('data-dimension="department"')[1].split('data-key="environment"')[1].split(">")[0]
    assert 'data-forwarded="3"' in row and 'data-resolved="2"' in row and 'data-average="35.0"' in row
    assert 'data-on-time="50"' in row and 'data-overdue="1"' in row
    traffic = page.split('data-dimension="topic"')[1].split('data-key="traffic"')[1].split(">")[0]
    assert 'data-forwarded="0"' in traffic and 'data-resolved="0"' in traffic
    assert as_user(db, tmp_path, "env1").get("/cases/handling").status_code == 403
    assert as_user(db, tmp_path, "super1").get("/cases/handling?from=2026-12-31&to=2026-01-01").status_code == 422
