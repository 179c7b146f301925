"""The whole story of a case, against the sandbox and in a real Chromium: a citizen calls and keys the topic, the
desk agent answers and opens a case forwarded to the topic's department, and reads out its number; the
department's user (their own browser) finds it with its due date, starts it, posts progress and reports the
result, never seeing the recording or the citizen's contact (no consent given); the citizen calls again, keys
the number in the voice menu and hears "resolved" and the day of the last update, which the call log shows; the
supervisor's overdue report lists a case past its topic's target and not the resolved one."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import FilePayload, Page, expect
from sqlalchemy import select

from callcenter.model.contract import Role, Status
from callcenter.sandbox.baresip import SipAgent
from callcenter.store import accounts, cases
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, Case, CaseUpdate, Recording
from callcenter.web.i18n import Formats
from tests.browser.conftest import ServerFactory, SignedIn, WebServer, screenshot
from tests.browser.desk import (
    LINE,
    WAIT,
    add_agent_user,
    call_about,
    my_state,
    open_case_from_desk,
    open_desk,
    this_call,
)
from tests.factories import PDF, png
from tests.integration.conftest import (
    MODEL,
    ROOT,
    IvrProcess,
    ListenerProcess,
    caller_number,
    cli,
    wait_cel,
    wait_until,
)
from tests.webclient import PASSWORD

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
ZONE = "Asia/Ho_Chi_Minh"  # the users' time zone (NewUser's default)
CITIZEN = "Lê Văn Tám"
DEPARTMENT_USER = "xaydung1"
PROMPT_LOG = "callcenter-story-prompts.log"


def add_department_user(db: Database, department: str) -> None:
    with db.session() as session:
        accounts.create_user(session, accounts.NewUser(DEPARTMENT_USER, Role.DEPARTMENT, PASSWORD,
                                                       department=department, language="en"))


def case_row(db: Database, number: str) -> Case:
    with db.session() as session:
        case = cases.by_number(session, number)
        assert case is not None
        return case


@contextmanager
def prompts_played() -> Iterator[Callable[[], list[str]]]:
    """The prompts Asterisk plays meanwhile, in order: a temporary log channel at verbose level 3 (the level of
    "Playing 'file'"; the sandbox logs at 2), removed afterwards."""
    path = ROOT / "var/log/asterisk" / PROMPT_LOG
    path.unlink(missing_ok=True)
    cli(f"logger add channel {PROMPT_LOG} verbose(3)")
    try:
        yield lambda: re.findall(r"Playing '(?:[^']*/)?([\w-]+)\.", path.read_text(errors="replace")
                                 if path.exists() else "")
    finally:
        cli(f"logger remove channel {PROMPT_LOG}")
        path.unlink(missing_ok=True)


def stored_recording(db: Database, linkedid: str) -> Recording | None:
    with db.session() as session:
        return session.scalar(select(Recording).where(Recording.linkedid == linkedid, Recording.status == "stored"))


def talked(since: float, seconds: float = 2.0) -> bool:
    """A recording begun since ``since`` holds ``seconds`` of conversation (MixMonitor writes only while the call is
    bridged, 8 kHz 16-bit: 16,000 bytes a second), so the call leaves a stored recording, not an empty one."""
    for wav in (ROOT / "var/spool/asterisk/monitor").glob("*/*.wav"):
        try:
            found = wav.stat()
        except FileNotFoundError:  # stored and deleted by the listener meanwhile
            continue
        if found.st_mtime >= since and found.st_size > 44 + 16_000 * seconds:
            return True
    return False


def no_recording_nor_contact(page: Page, contact: tuple[str, ...]) -> None:
    """Nothing on the department's page plays or links a recording, nor shows the citizen's contact."""
    expect(page.locator("audio")).to_have_count(0)
    expect(page.locator('a[href*="/recordings"]')).to_have_count(0)
    for text in contact:
        expect(page.locator("body")).not_to_contain_text(text)


def take_the_call(page: Page, server: WebServer, db: Database, phone: SipAgent, citizen: SipAgent,
                  number: str) -> tuple[Call, str]:
    """Step 1: the citizen calls about construction waste, op203 answers at the desk and opens a case from the
    call; the call's log row and the case number the desk shows (read out to the citizen)."""
    open_desk(page, server)
    page.click("#log-in")
    my_state(page, "free")
    topic = call_about(citizen, number, "construction")
    phone.wait_event("CALL_INCOMING", 30)
    expect(page.locator("#offer-topic")).to_have_text(topic.label.get("en"), timeout=WAIT)
    since = time.time()
    phone.command("accept")
    expect(page.locator("#offer-state")).to_have_text("Talking", timeout=WAIT)
    wait_until(lambda: talked(since), 20, "two seconds of conversation in the call's recording")
    citizen.hangup()
    citizen.wait_event("CALL_CLOSED", 20)
    expect(page.locator("#note-form")).to_be_visible(timeout=WAIT)
    call = wait_until(lambda: this_call(db, number, "op203"), 30, "the call's log row")
    assert isinstance(call, Call) and call.status == Status.ANSWERED
    opened = open_case_from_desk(page, "Xà bần đổ chắn lối đi trước công trình", "Số 40 Nguyễn Huệ",
                                 contact_name=CITIZEN)
    screenshot(page, "story-1-desk-case-opened")
    case = case_row(db, opened)
    assert (case.topic, case.department, case.status, case.contact_consent, case.contact_phone) == (
        "construction", topic.department, "forwarded", False, number)
    return call, opened


def department_resolves(page: Page, server: WebServer, number: str, due: str, contact: tuple[str, ...]) -> None:
    """Step 2: the department's user finds the case with its due date, starts it, posts progress and reports the
    result, all from the pages."""
    page.goto(f"{server.url}/cases")
    row = page.locator(f'tr[data-case="{number}"]')
    expect(row.locator("td").nth(5)).to_have_text(due, timeout=WAIT)  # the Due column
    expect(row).to_contain_text("forwarded")
    screenshot(page, "story-2-department-cases")
    row.locator(f'a[href="/cases/{number}"]').click()
    page.wait_for_url(f"**/cases/{number}")
    expect(page.locator("#case-contact")).to_have_text("The citizen did not agree to share their contact.")
    no_recording_nor_contact(page, contact)

    page.click('button[data-move="in_progress"]')
    expect(page.locator("#case-status")).to_have_attribute("data-status", "in_progress", timeout=WAIT)
    page.fill("#progress-text", "Đã cử cán bộ kiểm tra hiện trường, yêu cầu chủ công trình dọn trong ngày.")
    page.set_input_files('form[action$="/progress"] input[type=file]',  # a photo of the site, from the browser
                         FilePayload(name="hiện trường.png", mimeType="image/png", buffer=png(40, 30)))
    page.click("#post-progress")
    progress = page.locator('#case-updates li[data-kind="progress"]')
    expect(progress).to_contain_text("Đã cử cán bộ", timeout=WAIT)
    photo = progress.locator('li[data-file="hiện trường.png"] img')
    expect(photo).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 40", arg=photo.element_handle())
    page.fill('form[action$="/status"] textarea[name=text]', "Chủ công trình đã dọn xà bần; lối đi thông thoáng.")
    page.set_input_files('form[action$="/status"] input[type=file]',
                         FilePayload(name="biên bản.pdf", mimeType="application/pdf", buffer=PDF))
    page.click('button[data-move="resolved"]')
    expect(page.locator("#case-status")).to_have_attribute("data-status", "resolved", timeout=WAIT)
    expect(page.locator("#case-updates")).to_contain_text("lối đi thông thoáng")
    expect(page.locator('#case-updates li[data-file="biên bản.pdf"] a[download]')).to_be_visible()
    expect(page.locator("button[data-move]")).to_have_count(0)  # nothing left for the department to do
    no_recording_nor_contact(page, contact)
    screenshot(page, "story-2-department-resolved")


def lookup_call(db: Database, number: str, case_number: str) -> Call | None:
    """The citizen's call whose voice-menu path has the lookup of ``case_number``."""
    with db.session() as session:
        found = session.scalars(select(Call).where(CALL.caller_number == number)).all()
    return next((c for c in found if any(s.startswith(f"IVR_CASE_LOOKUP:number={case_number}&")
                                         for s in c.ivr_path)), None)


def hear_the_status(citizen: SipAgent, number: str, case_number: str, expected: list[str]) -> list[str]:
    """Step 3: the citizen calls again, keys the case-status option and the case number; the prompts played once
    the status has been read out (the status, then the day of the last update)."""
    since = time.time()
    with prompts_played() as played:
        citizen.dial(LINE)
        wait_cel(number, "IVR_MENU", since=since)
        citizen.send_digit(MODEL.ivr.menu.case_status_digit)
        wait_cel(number, "IVR_MENU", "menu=case", since=since)
        for key in case_number + "#":
            citizen.send_digit(key)
        wait_cel(number, "IVR_CASE_LOOKUP", since=since, timeout=30)

        def heard() -> list[str] | None:
            prompts = played()
            if "case-status-is" not in prompts:
                return None
            after = prompts[prompts.index("case-status-is") + 1:]
            return after if len(after) >= len(expected) else None

        spoken = wait_until(heard, 30, "the status and the day to be read out")
        citizen.hangup()
        citizen.wait_event("CALL_CLOSED", 20)
    assert isinstance(spoken, list)
    return spoken


def make_overdue(db: Database) -> str:
    """Step 4's second case: forwarded to the traffic police, then past its topic's target.

    Only a clock can make a case overdue: a topic's ``target_hours`` is a whole number of hours (at least 1, and
    rightly so: a department's target is never minutes), the store stamps ``forwarded_at``/``due_at`` from the
    wall clock with no clock to inject, and no time-travel tool is installed. So the case is opened and forwarded
    through the store, as the desk does, and then every time of it is moved back by its target and an hour: the
    row is what it would be had it been opened then (the only direct write to the database in this test)."""
    with db.session() as session:
        late = cases.open_case(session, MODEL, cases.NewCase(topic="traffic", description="Đèn tín hiệu ngã tư tắt"),
                               cases.Actor("op203", Role.OPERATOR))
        target = next(t.target_hours for t in MODEL.topics if t.code == "traffic")
        back = timedelta(hours=target + 1)
        assert late.forwarded_at is not None and late.due_at is not None
        late.created_at, late.updated_at = late.created_at - back, late.updated_at - back
        late.forwarded_at, late.due_at = late.forwarded_at - back, late.due_at - back
        for update in session.scalars(select(CaseUpdate).where(CaseUpdate.case_id == late.id)):
            update.at -= back
        return late.number


def test_a_case_from_a_call_to_the_department_s_result_heard_by_phone_and_the_overdue_report(
        page: Page, db: Database, db_url: str, server_factory: ServerFactory, listener: ListenerProcess,
        ivr: IvrProcess, agents: Callable[..., SipAgent], signed_in: SignedIn) -> None:
    add_agent_user(db)
    department = next(t.department for t in MODEL.topics if t.code == "construction")
    add_department_user(db, department)
    number = caller_number()
    ivr.start(db_url=db_url)
    server = server_factory(CALLCENTER_API__LIVE_BOARD="true")
    phone = agents("op203", register=True, wav_seconds=120, auto_answer=False)
    citizen = agents("citizen1", wav_seconds=120, display_name=CITIZEN, caller_number=number)

    # 1. The call, answered at the desk; a case opened from it and forwarded
    call, opened = take_the_call(page, server, db, phone, citizen, number)
    due = Formats("en", ZONE).moment(case_row(db, opened).due_at)

    # 2. The department, in its own browser, works the case to a result; the call has a stored recording (a
    # supervisor hears it), which the department's pages never offer
    wait_until(lambda: stored_recording(db, call.linkedid), 60, "the call's recording to be stored")
    works = signed_in(server, DEPARTMENT_USER)
    department_resolves(works, server, opened, due, (CITIZEN, number))
    works.goto(f"{server.url}/cases/{opened}")
    works.locator("#case-calls a").first.click()  # the call the case came from: no player for a department
    works.wait_for_url(f"**/calls/{call.id}")
    no_recording_nor_contact(works, (CITIZEN, number))
    screenshot(works, "story-2-department-call")

    # 3. The citizen calls again and hears "resolved" and the day of the last update (the result)
    resolved = case_row(db, opened)
    assert resolved.status == "resolved"
    day = resolved.updated_at.astimezone(ZoneInfo(ZONE))
    expected = ["case-status-resolved", "case-updated", f"num-{day.day}", "month", f"num-{day.month}"]
    assert hear_the_status(citizen, number, opened, expected)[:len(expected)] == expected
    again = wait_until(lambda: lookup_call(db, number, opened), 30, "the second call's log row")
    assert isinstance(again, Call) and again.id != call.id
    assert f"IVR_CASE_LOOKUP:number={opened}&result=found&status=resolved" in again.ivr_path

    # 4. The supervisor: the call log shows the lookup; the overdue report lists the late case, not the resolved
    late = make_overdue(db)
    supervisor = signed_in(server, "super1")
    supervisor.goto(f"{server.url}/calls/{again.id}")
    expect(supervisor.locator("ol.path")).to_contain_text(f"IVR_CASE_LOOKUP:number={opened}&result=found"
                                                         "&status=resolved", timeout=WAIT)
    screenshot(supervisor, "story-3-call-with-lookup")
    supervisor.goto(f"{server.url}/cases")
    expect(supervisor.locator(f'tr[data-case="{opened}"]')).to_contain_text("resolved", timeout=WAIT)
    supervisor.click("#overdue-link")
    supervisor.wait_for_url("**/cases?overdue=true")
    expect(supervisor.locator(f'tr[data-case="{late}"].overdue')).to_contain_text("overdue", timeout=WAIT)
    expect(supervisor.locator(f'tr[data-case="{opened}"]')).to_have_count(0)
    expect(supervisor.locator("#case-count")).to_have_text("1")
    screenshot(supervisor, "story-4-overdue-report")
