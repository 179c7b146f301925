"""The Open311 GeoReport v2 API through the real app over a real database: discovery and services in JSON and
XML, service requests with the spec's filters and error shapes, the API key and role boundaries (a department
sees its own cases only and cannot post), a posted request becoming a forwarded case the pages show, FixMyStreet's
update feed following the case through the store, and the citizen's contact never leaving."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callcenter.model.cases import CaseStatus
from callcenter.model.contract import Role
from callcenter.model.hotline import load
from callcenter.settings import Settings
from callcenter.store import accounts
from callcenter.store import cases as store
from callcenter.store.db import Database
from callcenter.store.models import Case, User
from tests.webclient import PASSWORD, add_call, add_users, client, settings_for, sign_in

MODEL = load(Settings().model_file)
V2 = "/open311/v2"
# The spec's fields, per object (GeoReport v2; updates as FixMyStreet reads them)
DISCOVERY_FIELDS = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT_FIELDS = {"specification", "url", "changeset", "type", "formats"}
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
DEFINITION_FIELDS = {"service_code", "attributes"}
REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}
POSTED_FIELDS = {"service_request_id", "service_notice", "account_id"}
UPDATE_FIELDS = {"update_id", "service_request_id", "status", "updated_datetime", "description", "media_url"}
ERROR_FIELDS = {"code", "description"}
EXTENSION = {"external_status_code"}  # FixMyStreet's: our exact status
CONTACT = ("Nguyễn Văn Tâm", "0905111222", "0912000111")  # name and phone on the case, the caller's number


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:
    """An API token for each user: one of every role, and two department users."""
    add_users(db)
    found = {}
    with db.session() as session:
        for name, department in (("env1", "environment"), ("urban1", "urban")):
            accounts.create_user(session, accounts.NewUser(name, Role.DEPARTMENT, PASSWORD, department=department))
        for user in session.scalars(select(User)):
            found[user.name] = accounts.create_token(session, user, "open311")
    return found


@pytest.fixture
def api(db: Database, tmp_path: Path) -> TestClient:
    return client(db, settings_for(tmp_path))


def actor(name: str, role: Role, department: str | None = None) -> store.Actor:
    return store.Actor(name, role, department)


OPERATOR, SUPERVISOR = actor("op101", Role.OPERATOR), actor("super1", Role.SUPERVISOR)
ENV = actor("env1", Role.DEPARTMENT, "environment")


def open_case(db: Database, topic: str = "environment", call_id: int | None = None, **extra: Any) -> str:
    new = store.NewCase(topic=topic, description=extra.pop("description", "Rác thải đổ trộm ở bờ kênh"),
                        location="Kênh Thầy Cai, ấp 3", latitude=10.82, longitude=106.63, contact_name=CONTACT[0],
                        contact_phone=CONTACT[1], call_ids=[call_id] if call_id else [], **extra)
    with db.session() as session:
        return store.open_case(session, MODEL, new, OPERATOR).number


def move(db: Database, number: str, to: CaseStatus, who: store.Actor, text: str = "") -> None:
    with db.session() as session:
        case = store.by_number(session, number)
        assert case is not None
        store.move(session, MODEL, case, to, who, text)


def get(api: TestClient, path: str, key: str | None = None, **query: str) -> Any:
    """A GET answered 200 (JSON parsed, XML as its root element)."""
    answer = api.get(f"{V2}/{path}", params={**query, **({"api_key": key} if key else {})})
    assert answer.status_code == 200, answer.text
    if path.endswith(".xml"):
        assert answer.headers["content-type"].startswith("text/xml")
        return ET.fromstring(answer.content)
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def refused(api: TestClient, path: str, code: int, key: str | None = None, method: str = "GET",
            **fields: str) -> str:
    """A request refused with ``code`` in the spec's error shape (JSON or XML); the description."""
    values = {**fields, **({"api_key": key} if key else {})}
    answer = (api.get(f"{V2}/{path}", params=values) if method == "GET"
              else api.post(f"{V2}/{path}", data=values))
    assert answer.status_code == code, answer.text
    if path.endswith(".xml"):
        root = ET.fromstring(answer.content)
        assert root.tag == "errors" and [e.tag for e in root] == ["error"]
        assert [c.tag for c in root[0]] == ["code", "description"] and root[0][0].text == str(code)
        return root[0][1].text or ""
    errors = answer.json()
    assert isinstance(errors, list) and len(errors) == 1 and set(errors[0]) == ERROR_FIELDS
    assert errors[0]["code"] == code
    return str(errors[0]["description"])


def fields(element: ET.Element) -> set[str]:
    return {child.tag for child in element}


def test_discovery_and_services_are_public_in_json_and_xml(api: TestClient) -> None:
    found = get(api, "discovery.json")
    assert set(found) >= DISCOVERY_FIELDS and len(found["endpoints"]) == 1
    endpoint = found["endpoints"][0]
    assert set(endpoint) == ENDPOINT_FIELDS and endpoint["type"] == "production"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2" and "text/xml" in endpoint["formats"]
    root = get(api, "discovery.xml")
    assert root.tag == "discovery" and fields(root) >= DISCOVERY_FIELDS
    xml_endpoint = root.find("endpoints/endpoint")
    assert xml_endpoint is not None and fields(xml_endpoint) == ENDPOINT_FIELDS
    assert [f.text for f in xml_endpoint.findall("formats/format")] == endpoint["formats"]

    services = get(api, "services.json")
    assert [s["service_code"] for s in services] == MODEL.topic_codes
    assert all(set(s) == SERVICE_FIELDS for s in services)
    environment = services[1]
    assert environment["service_name"] == "Môi trường và vệ sinh môi trường"  # Vietnamese by default
    assert environment["group"] == MODEL.departments["environment"].name
    assert (environment["metadata"], environment["type"]) == (False, "realtime")
    assert get(api, "services.json", locale="en")[1]["service_name"] == "Environment and sanitation"
    root = get(api, "services.xml", locale="en-US")
    assert root.tag == "services" and {e.tag for e in root} == {"service"} and len(root) == len(MODEL.topics)
    assert all(fields(e) == SERVICE_FIELDS for e in root) and root[1].findtext("metadata") == "false"
    assert root[1].findtext("service_name") == "Environment and sanitation"

    assert get(api, "services/traffic.json") == {"service_code": "traffic", "attributes": []}
    root = get(api, "services/traffic.xml")
    assert root.tag == "service_definition" and fields(root) == DEFINITION_FIELDS
    assert "no service" in refused(api, "services/potholes.json", 404)
    assert "no service" in refused(api, "services/potholes.xml", 404)
    assert "unknown format" in refused(api, "services.csv", 404)
    assert "locale" in refused(api, "services.json", 400, locale="fr")


def test_requests_and_updates_need_a_valid_api_key(db: Database, api: TestClient, tokens: dict[str, str],
                                                   tmp_path: Path) -> None:
    number = open_case(db)
    for path in ("requests.json", "requests.xml", f"requests/{number}.json", "servicerequestupdates.xml"):
        assert "api_key required" in refused(api, path, 403)
        assert "not valid" in refused(api, path, 403, key="cc_not-a-token")
    signed_in = sign_in(client(db, settings_for(tmp_path)), "super1")  # a session cookie is not a key
    assert signed_in.get(f"{V2}/requests.json").status_code == 403
    assert [r["service_request_id"] for r in get(api, "requests.json", tokens["super1"])] == [number]
    bearer = api.get(f"{V2}/requests.json", headers={"Authorization": f"Bearer {tokens['op101']}"})
    assert bearer.status_code == 200 and len(bearer.json()) == 1
    with db.session() as session:
        accounts.set_active(session.scalars(select(User).where(User.name == "op102")).one(), False)
    assert "not valid" in refused(api, "requests.json", 403, key=tokens["op102"])  # a disabled user's token
    assert "no department" in refused(api, "requests.json", 403, key=tokens["dept1"])  # a department user without one


def test_requests_carry_the_spec_fields_filters_and_never_the_contact(
        db: Database, api: TestClient, tokens: dict[str, str]) -> None:
    call_id, _ = add_call(db, 2, number=CONTACT[2])
    environment = open_case(db, call_id=call_id)
    urban = open_case(db, "urban_order", description="Lấn chiếm vỉa hè")
    fixed = open_case(db, description="Cống nghẹt")
    move(db, fixed, CaseStatus.RESOLVED, ENV, "Đã nạo vét")
    key = tokens["super1"]

    found = get(api, "requests.json", key)
    assert [r["service_request_id"] for r in found] == [fixed, urban, environment]  # newest first
    assert all(set(r) == REQUEST_FIELDS | EXTENSION for r in found)
    done, _, first = found
    assert (done["status"], done["external_status_code"], done["status_notes"]) == ("closed", "resolved",
                                                                                     "Đã nạo vét")
    assert (first["status"], first["external_status_code"]) == ("open", "forwarded")
    assert first["agency_responsible"] == MODEL.departments["environment"].name
    assert (first["address"], first["lat"], first["long"]) == ("Kênh Thầy Cai, ấp 3", 10.82, 106.63)
    assert first["service_name"] == "Môi trường và vệ sinh môi trường" and "48 hours" in first["service_notice"]
    requested = datetime.fromisoformat(first["requested_datetime"])
    assert first["requested_datetime"].endswith("+07:00") and abs(datetime.now(UTC) - requested) < timedelta(1)
    expected = datetime.fromisoformat(first["expected_datetime"])
    assert timedelta(hours=47) < expected - requested <= timedelta(hours=48)  # the topic's target time
    root = get(api, "requests.xml", key)
    assert root.tag == "service_requests" and {e.tag for e in root} == {"request"} and len(root) == 3
    assert all(fields(e) == REQUEST_FIELDS | EXTENSION for e in root)
    for answer in (api.get(f"{V2}/requests.{f}", params={"api_key": key}).text for f in ("json", "xml")):
        assert not any(secret in answer for secret in CONTACT)

    def numbers(**query: str) -> list[str]:
        return [r["service_request_id"] for r in get(api, "requests.json", key, **query)]
    assert numbers(service_code="urban_order") == [urban]
    assert numbers(service_code="urban_order,environment") == [fixed, urban, environment]
    assert numbers(status="closed") == [fixed] and numbers(status="open") == [urban, environment]
    assert numbers(status="open,closed") == numbers()
    assert numbers(service_request_id=f"{environment},{urban}", status="closed") == [urban, environment]
    assert numbers(service_request_id="99999") == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert numbers(start_date=later.isoformat()) == []
    assert numbers(end_date=(later - timedelta(days=1)).isoformat()) == []
    assert numbers(start_date=(later - timedelta(days=2)).isoformat(), end_date=later.isoformat()) == numbers()
    unencoded = (later - timedelta(days=1)).astimezone(timezone(timedelta(hours=7))).isoformat().replace("+", " ")
    assert numbers(end_date=unencoded) == []  # an offset's "+" sent unencoded arrives as a space: still read
    assert numbers(page_size="2") == [fixed, urban] and numbers(page_size="2", page="2") == [environment]

    for query, problem in (({"start_date": "yesterday"}, "start_date"), ({"end_date": "2026-02-30"}, "end_date"),
                           ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90 days"),
                           ({"start_date": "2026-03-01", "end_date": "2026-02-01"}, "before"),
                           ({"service_code": "potholes"}, "unknown potholes"),
                           ({"status": "pending"}, "open or closed"),
                           ({"status": "open\x00"}, "NUL"), ({"page_size": "1001"}, "page_size"),
                           ({"page": "0"}, "page"), ({"page": "²"}, "page"), ({"page_size": "²"}, "page_size"),
                           ({"service_request_id": "12a"}, "case numbers")):
        assert problem in refused(api, "requests.json", 400, key=key, **query), query
    assert "unknown potholes" in refused(api, "requests.xml", 400, key=key, service_code="potholes")

    assert get(api, f"requests/{urban}.json", key) == [found[1]]
    root = get(api, f"requests/{urban}.xml", key)
    assert root.tag == "service_requests" and len(root) == 1 and root[0].findtext("service_request_id") == urban
    assert "no service request" in refused(api, "requests/99999.json", 404, key=key)
    assert "no service request" in refused(api, "requests/not-a-case.xml", 404, key=key)


def test_a_department_key_sees_only_its_departments_requests_and_updates(
        db: Database, api: TestClient, tokens: dict[str, str]) -> None:
    environment, urban = open_case(db), open_case(db, "urban_order")
    key = tokens["env1"]
    assert [r["service_request_id"] for r in get(api, "requests.json", key)] == [environment]
    assert get(api, "requests.json", key, service_request_id=urban) == []
    assert "no service request" in refused(api, f"requests/{urban}.json", 404, key=key)
    assert get(api, f"requests/{environment}.json", key)[0]["service_request_id"] == environment
    window = {"start_date": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "end_date": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert {u["service_request_id"] for u in get(api, "servicerequestupdates.json", key, **window)} == {environment}
    everyone = get(api, "servicerequestupdates.json", tokens["super1"], **window)
    assert {u["service_request_id"] for u in everyone} == {environment, urban}


def case_count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Case)) or 0)


POST = {"service_code": "environment", "description": "Cây đổ chắn ngang đường", "lat": "10.8231",
        "long": "106.6297", "first_name": CONTACT[0], "phone": CONTACT[1], "email": "tam@example.org"}


def test_a_posted_request_becomes_a_forwarded_case_the_pages_show(
        db: Database, api: TestClient, tokens: dict[str, str], tmp_path: Path) -> None:
    answer = api.post(f"{V2}/requests.json", data={**POST, "api_key": tokens["op101"]})
    assert answer.status_code == 200 and "set-cookie" not in answer.headers, answer.text
    [posted] = answer.json()
    assert set(posted) == POSTED_FIELDS and posted["account_id"] is None
    number = posted["service_request_id"]
    assert MODEL.departments["environment"].name in posted["service_notice"]
    with db.session() as session:
        case = store.by_number(session, number)
        assert case is not None
        assert (case.status, case.department, case.created_by) == ("forwarded", "environment", "op101")
        assert (case.contact_name, case.contact_phone, case.contact_consent) == (CONTACT[0], CONTACT[1], False)
        assert (case.latitude, case.longitude, case.due_at is not None) == (10.8231, 106.6297, True)
    page = sign_in(client(db, settings_for(tmp_path)), "super1").get(f"/cases/{number}")
    assert page.status_code == 200 and "Cây đổ chắn ngang đường" in page.text
    shown = get(api, f"requests/{number}.json", tokens["env1"])[0]
    assert shown["external_status_code"] == "forwarded" and not any(s in str(shown) for s in CONTACT)

    api.cookies.set("proxy", "sticky")  # an unrelated cookie does not bring in the CSRF check
    xml = api.post(f"{V2}/requests.xml", data={**POST, "address_string": "Ngã tư Bảy Hiền", "lat": "", "long": "",
                                                 "api_key": tokens["super1"]})
    assert xml.status_code == 200, xml.text
    root = ET.fromstring(xml.content)
    assert root.tag == "service_requests" and [e.tag for e in root] == ["request"]
    assert fields(root[0]) == POSTED_FIELDS
    bearer = api.post(f"{V2}/requests.json", data=POST, headers={"Authorization": f"Bearer {tokens['admin1']}"})
    assert bearer.status_code == 200
    assert case_count(db) == 3


def test_a_post_is_refused_whole_for_a_bad_field_or_key(db: Database, api: TestClient,
                                                       tokens: dict[str, str]) -> None:
    key = tokens["op101"]
    for change, problem in (({"service_code": "potholes"}, "unknown 'potholes'"), ({"service_code": ""}, "required"),
                            ({"description": ""}, "description"), ({"description": "x" * 4001}, "4000"),
                            ({"description": "rác\x00"}, "NUL"), ({"lat": "91"}, "lat: between -90 and 90"),
                            ({"long": "abc"}, "long: a number"), ({"long": "nan"}, "long: between"),
                            ({"long": ""}, "both or neither"), ({"lat": "", "long": ""}, "lat and long"),
                            ({"lat": "", "long": "", "address_id": "A-12"}, "address_id"),
                            ({"phone": "call me"}, "phone"), ({"email": "nobody"}, "email"),
                            ({"media_url": "javascript:alert(1)"}, "media_url")):
        assert problem in refused(api, "requests.json", 400, key=key, method="POST", **{**POST, **change}), change
    assert "lat" in refused(api, "requests.xml", 400, key=key, method="POST", **{**POST, "lat": "x"})
    assert "api_key required" in refused(api, "requests.json", 403, method="POST", **POST)
    assert "not valid" in refused(api, "requests.xml", 403, key="cc_forged", method="POST", **POST)
    assert "department user may not" in refused(api, "requests.json", 403, key=tokens["env1"], method="POST",
                                                **POST)
    assert case_count(db) == 0


def test_the_update_feed_follows_the_case_through_the_store(db: Database, api: TestClient,
                                                           tokens: dict[str, str]) -> None:
    call_id, _ = add_call(db, 3, number=CONTACT[2])
    number = open_case(db)
    move(db, number, CaseStatus.IN_PROGRESS, ENV)
    with db.session() as session:
        case = store.by_number(session, number)
        assert case is not None
        store.progress(session, case, ENV, "Đã cử tổ thu gom")
        store.reassign(session, MODEL, case, "urban", SUPERVISOR, "nội bộ: chuyển nhầm")  # internal: not published
        store.reassign(session, MODEL, case, "environment", SUPERVISOR, "")
        store.link_call(session, case, call_id, OPERATOR)  # a caller's call: not published
    move(db, number, CaseStatus.RESOLVED, ENV, "Đã thu gom xong")
    window = {"start_date": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "end_date": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}

    updates = get(api, "servicerequestupdates.json", tokens["super1"], **window)
    assert all(set(u) == UPDATE_FIELDS | EXTENSION and u["service_request_id"] == number for u in updates)
    assert [(u["status"], u["external_status_code"], u["description"]) for u in updates] == [
        ("OPEN", "forwarded", ""), ("IN_PROGRESS", "in_progress", ""),
        ("IN_PROGRESS", "in_progress", "Đã cử tổ thu gom"), ("FIXED", "resolved", "Đã thu gom xong")]
    assert len({u["update_id"] for u in updates}) == 4 and all(u["updated_datetime"].endswith("+07:00")
                                                               for u in updates)
    text = api.get(f"{V2}/servicerequestupdates.xml", params={**window, "api_key": tokens["super1"]}).text
    assert "nội bộ" not in text and CONTACT[2] not in text
    root = ET.fromstring(text.encode())
    assert root.tag == "service_requests_updates" and {e.tag for e in root} == {"request_update"}
    assert all(fields(e) == UPDATE_FIELDS | EXTENSION for e in root)
    [request] = get(api, f"requests/{number}.json", tokens["super1"])
    assert (request["status"], request["status_notes"]) == ("closed", "Đã thu gom xong")
    assert request["updated_datetime"] == updates[-1]["updated_datetime"]

    move(db, number, CaseStatus.CLOSED, SUPERVISOR, "Người dân xác nhận")
    latest = get(api, "servicerequestupdates.json", tokens["super1"], **window)[-1]
    assert (latest["status"], latest["external_status_code"]) == ("CLOSED", "closed")
    assert get(api, "servicerequestupdates.json", tokens["super1"], **window, page_size="2", page="3") == [latest]
    assert "90 days" in refused(api, "servicerequestupdates.json", 400, key=tokens["super1"],
                                start_date="2026-01-01T00:00:00+07:00", end_date="2026-12-01T00:00:00+07:00")
    assert "page" in refused(api, "servicerequestupdates.json", 400, key=tokens["super1"], page="²")


def test_xml_answers_stay_well_formed_whatever_the_text(db: Database, api: TestClient,
                                                       tokens: dict[str, str]) -> None:
    number = open_case(db, description="Tiếng ồn \x07 <karaoke> & \x1b[31m")
    root = get(api, f"requests/{number}.xml", tokens["super1"])
    assert root[0].findtext("description") == "Tiếng ồn \ufffd <karaoke> & \ufffd[31m"
