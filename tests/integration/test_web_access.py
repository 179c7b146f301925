"""Who sees what, through the JSON API and the pages: every role against every endpoint, masking, the audit log
of recording access (with the status actually served), tokens, sessions, CSRF, lock-out, security headers."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callcenter.settings import Settings
from callcenter.store.db import Database
from callcenter.store.models import CALL, ApiToken, Call, RecordingAccess, User
from callcenter.web import auth
from tests.webclient import (
    PASSWORD,
    USERS,
    add_call,
    add_users,
    client,
    insert_calls,
    settings_for,
    sign_in,
    synthetic_calls,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def calls(db: Database, settings: Settings) -> dict[str, int]:
    """Two calls with a recording each: one taken by op101, one by op102 (a real Opus file in the store)."""
    settings.recordings.store.mkdir(parents=True)
    audio = settings.recordings.store / "a.ogg"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a",
                    "libopus", "-b:a", "24k", str(audio)], check=True)
    add_users(db)
    mine, mine_rec = add_call(db, 1, "op101", "0905123456", audio)
    other, other_rec = add_call(db, 2, "op102", "0912999888", audio)
    return {"mine": mine, "mine_rec": mine_rec or 0, "other": other, "other_rec": other_rec or 0}


@pytest.fixture
def as_user(db: Database, settings: Settings) -> Iterator[dict[str, TestClient]]:
    clients = {name: sign_in(client(db, settings), name) for name in USERS}
    yield clients
    for test in clients.values():
        test.close()


def _audit(db: Database) -> list[RecordingAccess]:
    with db.session() as session:
        return list(session.scalars(select(RecordingAccess).order_by(RecordingAccess.id)))


ROUTES = ["/api/calls", "/api/calls/{mine}", "/api/calls/{mine}/recordings", "/api/recordings/{mine_rec}/audio",
          "/api/live", "/api/stats?from=2026-11-01&to=2026-11-30"]
EXPECTED = {  # route index -> status by role
    "admin1": [200, 200, 200, 200, 200, 200], "super1": [200, 200, 200, 200, 200, 200],
    "op101": [200, 200, 200, 200, 403, 403], "op102": [200, 404, 403, 403, 403, 403],
    "dept1": [200, 200, 403, 403, 403, 403],
}


@pytest.mark.parametrize("user", list(USERS))
def test_every_role_against_every_api_route(user: str, calls: dict[str, int], as_user: dict[str, TestClient],
                                            db: Database, settings: Settings) -> None:
    got = [as_user[user].get(route.format(**calls)).status_code for route in ROUTES]
    assert got == EXPECTED[user]
    anonymous = client(db, settings)
    assert [anonymous.get(route.format(**calls)).status_code for route in ROUTES] == [401] * len(ROUTES)
    assert anonymous.get("/api/health").status_code == 200


def test_operators_see_their_own_calls_departments_see_numbers_masked(calls: dict[str, int],
                                                                      as_user: dict[str, TestClient]) -> None:
    numbers = {user: sorted(c["caller_number"] for c in as_user[user].get("/api/calls").json()["items"])
               for user in ("super1", "op101", "dept1")}
    assert numbers == {"super1": ["0905123456", "0912999888"], "op101": ["0905123456"],
                       "dept1": ["0905•••456", "0912•••888"]}
    detail = as_user["dept1"].get(f"/api/calls/{calls['mine']}").json()
    assert detail["caller_number"] == "0905•••456" and detail["events"] == []  # the timeline carries numbers
    assert detail["caller_name"] == ""  # nor the caller's name: a citizen's contact needs their consent


def test_departments_find_no_callers_number_in_the_voice_menu_nor_by_searching(
        calls: dict[str, int], as_user: dict[str, TestClient], db: Database) -> None:
    """The masked number must not be readable elsewhere: the call-back number the citizen keyed (and digits keyed
    where the menu expected none) are in the voice menu's steps; a search by number prefix, answered call or no
    call, would give the hidden digits one at a time, as would sorting by number."""
    with db.session() as session:
        call = session.get_one(Call, calls["mine"])
        call.ivr_path = ["IVR_START:line=02621022&lang=vi", "IVR_INVALID:menu=topic&input=0987654321",
                         "IVR_CALLBACK:number=0987654321&source=entered"]
    shown = as_user["dept1"].get(f"/api/calls/{calls['mine']}").json()["ivr_path"]
    assert shown == ["IVR_START:line=02621022&lang=vi", "IVR_INVALID:menu=topic&input=•••",
                     "IVR_CALLBACK:number=0987•••321&source=entered"]
    listed = as_user["dept1"].get("/api/calls").json()["items"]
    assert not any("0987654321" in step for item in listed for step in item["ivr_path"])
    page = as_user["dept1"].get(f"/calls/{calls['mine']}").text
    assert "0987654321" not in page and "0987•••321" in page
    assert as_user["super1"].get(f"/api/calls/{calls['mine']}").json()["ivr_path"][2].endswith("0987654321&"
                                                                                              "source=entered")

    refused = as_user["dept1"].get("/api/calls", params={"number": "0905123"})
    assert refused.status_code == 422 and "masked" in refused.json()["detail"][0]["msg"]
    assert as_user["super1"].get("/api/calls", params={"number": "0905123"}).json()["total"] == 1
    history = as_user["dept1"].get("/calls", params={"number": "0905123"}).text
    assert "masked for a department" in history and "0905•••456" not in history
    assert 'name="number"' not in as_user["dept1"].get("/calls").text  # no such field on their form
    assert as_user["dept1"].get("/calls.csv", params={"number": "0905"}).status_code == 422
    sorted_page = as_user["dept1"].get("/calls", params={"sort": "caller_number"}).text
    assert 'aria-sort="descending"' in sorted_page  # the default order (newest first), not by number
    header = sorted_page[sorted_page.index("<thead>"):sorted_page.index("</thead>")]
    assert "Caller" in header and "caller_number" not in header  # no column link to sort by it either


def test_every_recording_access_is_audited_with_who_and_the_status_served(
        calls: dict[str, int], as_user: dict[str, TestClient], db: Database, settings: Settings) -> None:
    audio = f"/api/recordings/{calls['mine_rec']}/audio"
    assert as_user["super1"].get(audio).status_code == 200
    assert as_user["super1"].get(audio, headers={"Range": "bytes=0-99"}).status_code == 206
    assert as_user["super1"].get(audio, headers={"Range": "bytes=999999-"}).status_code == 416
    assert as_user["super1"].head(audio).status_code == 200
    assert as_user["dept1"].get(audio).status_code == 403
    assert as_user["op102"].get(audio).status_code == 403
    assert as_user["super1"].get(audio + "?download=true").headers["content-disposition"].startswith("attachment")
    rows = [(r.actor, r.action, r.status_code, r.allowed) for r in _audit(db)]
    assert rows == [("super1", "play", 200, True), ("super1", "play", 206, True), ("super1", "play", 416, False),
                    ("super1", "play", 200, True), ("dept1", "play", 403, False), ("op102", "play", 403, False),
                    ("super1", "download", 200, True)]
    assert all(r.client for r in _audit(db))


def test_a_recording_not_attached_to_its_call_is_heard_only_by_whom_its_call_admits(
        calls: dict[str, int], as_user: dict[str, TestClient], db: Database) -> None:
    """The recordings worker may store a recording before its call is built (attached when the call is next
    written): its call is then looked up by node and linkedid; with no call at all, only staff may hear it."""
    from callcenter.store.models import Recording

    audio = f"/api/recordings/{calls['mine_rec']}/audio"
    with db.session() as session:
        session.get_one(Recording, calls["mine_rec"]).call_id = None  # op101's call, built, not attached yet
    assert [as_user[user].get(audio).status_code for user in ("op101", "op102", "super1")] == [200, 403, 200]
    with db.session() as session:
        session.get_one(Recording, calls["mine_rec"]).linkedid = "9.1"  # a call never built
    assert [as_user[user].get(audio).status_code for user in ("op101", "op102", "super1", "dept1")] == [
        403, 403, 200, 403]
    refused = [r for r in _audit(db) if r.actor == "op101"][-1]
    assert (refused.status_code, refused.allowed) == (403, False) and "supervisor" in refused.detail


def test_anonymous_refusals_cannot_grow_the_audit_table(calls: dict[str, int], db: Database,
                                                        settings: Settings) -> None:
    anonymous = client(db, settings)
    for _ in range(50):
        assert anonymous.get(f"/api/recordings/{calls['mine_rec']}/audio").status_code == 401
    assert len(_audit(db)) == 1  # one row per address per ten minutes


def test_a_damaged_recording_row_is_a_clear_refusal_not_a_crash(calls: dict[str, int],
                                                                 as_user: dict[str, TestClient],
                                                                 db: Database) -> None:
    from callcenter.store.models import Recording

    if db.engine.dialect.name == "sqlite":  # PostgreSQL text cannot hold a NUL: there no row can carry one
        with db.session() as session:
            row = session.get_one(Recording, calls["mine_rec"])
            row.path = "a\x00.ogg"
        assert as_user["super1"].get(f"/api/recordings/{calls['mine_rec']}/audio").status_code == 404
    with db.session() as session:
        row = session.get_one(Recording, calls["mine_rec"])
        row.path, row.format = "a.ogg", "flac"
    response = as_user["super1"].get(f"/api/recordings/{calls['mine_rec']}/audio")
    assert response.status_code == 409 and response.json() == {"detail": f"recording {calls['mine_rec']}: unknown "
                                                                          "format"}


@pytest.mark.parametrize("params", [{"to": "9999-12-31T23:00:00-05:00"}, {"from": "0001-01-01T00:00:00+05:00"},
                                    {"to": "0.5"}, {"from": "yesterday"}])
def test_odd_dates_are_422_in_the_documented_shape(params: dict[str, str], calls: dict[str, int],
                                                   as_user: dict[str, TestClient]) -> None:
    response = as_user["super1"].get("/api/calls", params=params)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list) and response.json()["detail"][0]["loc"][0] == "query"


@pytest.mark.parametrize(("url", "status"), [
    ("/calls?from=0001-01-01", 200), ("/calls?to=0001-01-05", 200), ("/calls?to=9999-12-31T23:59", 200),
    ("/calls.csv?from=0001-01-01", 422), ("/audit?to=0001-01-05", 422), ("/audit?from=0001-01-01&to=0001-01-02", 422)])
def test_the_pages_refuse_dates_outside_the_calendar_s_reach_clearly(url: str, status: int, calls: dict[str, int],
                                                                     as_user: dict[str, TestClient]) -> None:
    page = as_user["super1"].get(url)  # the history page shows its problem above an empty list
    assert page.status_code == status and "2999" in page.text, page.text


def test_api_tokens_act_with_their_users_role_until_revoked(calls: dict[str, int], as_user: dict[str, TestClient],
                                                            db: Database, settings: Settings) -> None:
    page = as_user["op101"]
    made = page.post("/account/tokens", data={"name": "script", "csrftoken": page.cookies.get("csrftoken", "")})
    token = made.text.split('<code class="token">')[1].split("<")[0]
    script = client(db, settings)
    found = script.get("/api/calls", headers={"Authorization": f"Bearer {token}"})
    assert found.status_code == 200 and [c["caller_number"] for c in found.json()["items"]] == ["0905123456"]
    assert script.get("/api/live", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    token_id = page.get("/account").text.split("/account/tokens/")[1].split("/")[0]
    page.post(f"/account/tokens/{token_id}/revoke", data={"csrftoken": page.cookies.get("csrftoken", "")})
    assert script.get("/api/calls", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_nul_character_anywhere_in_a_request_is_refused_before_any_route(
        calls: dict[str, int], as_user: dict[str, TestClient], db: Database, settings: Settings) -> None:
    """PostgreSQL's text cannot store a NUL: a token's name or a sign-in name carrying one was a server error there."""
    admin = as_user["admin1"]
    token = admin.cookies.get("csrftoken", "")
    answers = [admin.post("/account/tokens", data={"name": "t\x00", "csrftoken": token}, follow_redirects=False),
               admin.post("/account/tokens", content=f"name=t%00&csrftoken={token}".encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False),
               admin.post("/users", data={"name": "n\x00", "role": "supervisor", "password": "x" * 16,
                                          "csrftoken": token}, follow_redirects=False),
               client(db, settings).post("/sign-in", data={"name": "a\x00", "password": "x" * 12}),
               admin.get("/calls?number=0905%00"), admin.get("/cases/10000%00")]
    assert [(a.status_code, a.text) for a in answers] == [(400, "the request contains a NUL character (%00), which "
                                                                  "no field takes")] * len(answers)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 0
    huge = admin.post("/account/tokens", content=b"name=" + b"x" * (1024 * 1024 + 1),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413
    assert admin.post("/account/tokens", data={"name": "reports", "csrftoken": token}).status_code == 200


def test_ids_beyond_the_database_s_are_refused_and_change_nothing(calls: dict[str, int], db: Database,
                                                                  as_user: dict[str, TestClient]) -> None:
    admin = as_user["admin1"]
    for path in ("/users/99999999999999999999/disable", "/users/0/disable",
                 "/account/tokens/99999999999999999999/revoke", "/account/tokens/-1/revoke"):
        answer = admin.post(path, data={"csrftoken": admin.cookies.get("csrftoken", "")}, follow_redirects=False)
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][0] == "path", (path, answer.text)
    assert [as_user[name].get("/api/calls").status_code for name in USERS] == [200] * len(USERS)


def test_a_form_post_without_its_csrf_token_is_refused(calls: dict[str, int], as_user: dict[str, TestClient]) -> None:
    admin = as_user["admin1"]
    refused = admin.post("/users", data={"name": "intruder", "role": "admin", "password": PASSWORD})
    assert refused.status_code == 403
    assert "intruder" not in admin.get("/users").text
    accepted = admin.post("/users", data={"name": "newop", "role": "operator", "operator": "op103",
                                          "password": PASSWORD, "csrftoken": admin.cookies.get("csrftoken", "")})
    assert accepted.status_code == 200 and "newop" in accepted.text


def test_a_department_user_is_added_only_with_one_of_the_model_s_departments(db: Database,
                                                                            settings: Settings) -> None:
    """The form once stored a department user without a department: they saw no case, and Open311 told them
    they belonged to none. Another role's department is dropped, as `callcenter users add` never checks it."""
    add_users(db)
    admin = sign_in(client(db, settings), "admin1")
    assert '<option value="urban">Phòng Quản lý đô thị</option>' in admin.get("/users").text  # to choose from
    form = {"name": "newdept", "role": "department", "password": PASSWORD,
            "csrftoken": admin.cookies.get("csrftoken", "")}
    for department in ({}, {"department": ""}, {"department": "mars"}):
        refused = admin.post("/users", data={**form, **department})
        assert refused.status_code == 422 and "A department user needs one of the departments." in refused.text
    assert admin.post("/users", data={**form, "department": "urban"}, follow_redirects=False).status_code == 303
    operator = {**form, "name": "newop", "role": "operator", "operator": "op103", "department": "urban"}
    assert admin.post("/users", data=operator, follow_redirects=False).status_code == 303
    with db.session() as session:
        added = session.scalars(select(User).where(User.name.in_(("newdept", "newop")))).all()
        assert {user.name: user.department for user in added} == {"newdept": "urban", "newop": None}
    assert "department · Phòng Quản lý đô thị" in admin.get("/users").text  # the list says whose they are


def test_repeated_failures_lock_the_account_out(db: Database, settings: Settings) -> None:
    add_users(db)
    test = client(db, settings)
    test.get("/language/en")
    test.get("/sign-in")
    token = test.cookies.get("csrftoken", "")
    codes = [test.post("/sign-in", data={"name": "super1", "password": "wrong", "csrftoken": token}).status_code
             for _ in range(6)]
    assert codes == [401] * 5 + [429]
    right = test.post("/sign-in", data={"name": "super1", "password": PASSWORD, "csrftoken": token})
    assert right.status_code == 429 and "try again in" in right.text  # locked, even with the right password


def test_sessions_expire_when_idle_and_end_with_a_password_change(db: Database, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    add_users(db)
    now = [1_800_000_000.0]
    start = now[0]
    monkeypatch.setattr(auth, "clock", lambda: now[0])
    idle = sign_in(client(db, settings_for(tmp_path, session_idle_minutes=30, session_max_hours=12)), "super1")
    while now[0] + 29 * 60 - start <= 12 * 3600:
        now[0] += 29 * 60
        assert idle.get("/api/calls").status_code == 200  # seen again within 30 minutes: still signed in
    now[0] += 29 * 60
    assert idle.get("/api/calls").status_code == 401  # past twelve hours since signing in, however busy
    busy = sign_in(client(db, settings_for(tmp_path, session_idle_minutes=30)), "super1")
    now[0] += 31 * 60
    assert busy.get("/api/calls").status_code == 401  # idle too long
    settings = settings_for(tmp_path)
    first, second = sign_in(client(db, settings), "super1"), sign_in(client(db, settings), "super1")
    changed = second.post("/account/password", data={"current": PASSWORD, "new": PASSWORD + "!",
                                                      "csrftoken": second.cookies.get("csrftoken", "")})
    assert changed.status_code == 200
    assert first.get("/api/calls").status_code == 401  # the other session ended
    assert second.get("/api/calls").status_code == 200  # this one goes on


def test_disabled_users_are_out_at_once(db: Database, settings: Settings, calls: dict[str, int],
                                        as_user: dict[str, TestClient]) -> None:
    admin = as_user["admin1"]
    user_id = re.findall(r'action="/users/(\d+)/disable"', admin.get("/users").text)[0]  # another user
    admin.post(f"/users/{user_id}/disable", data={"csrftoken": admin.cookies.get("csrftoken", "")})
    statuses = [as_user[name].get("/api/calls").status_code for name in USERS if name != "admin1"]
    assert statuses.count(401) == 1


def test_pages_send_visitors_to_sign_in_and_refuse_other_roles(calls: dict[str, int], db: Database,
                                                                 settings: Settings,
                                                                 as_user: dict[str, TestClient]) -> None:
    anonymous = client(db, settings)
    for page in ("/calls", "/live", "/stats", "/audit", "/users", "/account", f"/calls/{calls['mine']}"):
        response = anonymous.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/sign-in?next=/")
    assert as_user["op101"].get("/users", headers={"Accept": "text/html"}).status_code == 403
    assert as_user["super1"].get("/users").status_code == 403
    assert as_user["dept1"].get("/live").status_code == 403
    page = as_user["dept1"].get(f"/calls/{calls['mine']}").text
    assert "0905•••456" in page and "<audio" not in page and "0905123456" not in page
    assert "Nguyễn Thị Quỳnh Mai" not in page
    assert "<audio" in as_user["op101"].get(f"/calls/{calls['mine']}").text
    assert as_user["op101"].get(f"/calls/{calls['other']}").status_code == 404


def test_security_headers_and_allowed_hosts(calls: dict[str, int], as_user: dict[str, TestClient]) -> None:
    page = as_user["super1"].get("/calls")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "connect-src 'self' wss://198.51.100.1:8089;" in csp  # the softphone's WebSocket (the model's pbx.webrtc)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text  # no inline script anywhere
    rebound = as_user["super1"].get("/api/calls", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400  # DNS rebinding: a name not on the allow-list


def test_docs_and_assets_come_from_the_app(calls: dict[str, int], as_user: dict[str, TestClient]) -> None:
    docs = as_user["super1"].get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    for asset in ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/chart.js/chart.umd.min.js",
                  "/static/app.css", "/static/live.js"):
        assert as_user["super1"].get(asset).status_code == 200


def test_csv_export_is_the_filtered_set_masked_as_on_screen(calls: dict[str, int],
                                                            as_user: dict[str, TestClient]) -> None:
    exported = as_user["dept1"].get("/calls.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("id,started_at") and len(lines) == 3
    assert "0905•••456" in exported.text and "0905123456" not in exported.text
    assert len(as_user["op101"].get("/calls.csv").text.splitlines()) == 2  # an operator's own call only


def test_the_history_pages_through_many_calls_with_its_filters_kept(db: Database, calls: dict[str, int],
                                                                     as_user: dict[str, TestClient]) -> None:
    insert_calls(db, synthetic_calls(120, datetime.now(UTC) - timedelta(days=5), 4))
    with db.session() as session:
        answered = session.scalar(select(func.count()).where(CALL.status == "answered")) or 0
    assert answered > 50
    first = as_user["super1"].get("/calls", params={"status": "answered"})
    assert "Page 1 of " + str(-(-answered // 50)) in first.text
    assert first.text.count('<a href="/calls/') == min(answered, 50)
    following = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert following is not None and "status=answered" in following.group(1)
    second = as_user["super1"].get("/calls" + following.group(1).replace("&amp;", "&"))  # relative to the page
    assert "Page 2 of" in second.text and 'rel="prev"' in second.text
    assert second.text.count('<a href="/calls/') == min(answered - 50, 50)
