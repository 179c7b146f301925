"""The operator desk in a real Chromium against the sandbox: an agent logs in to the queue from the page; a citizen
calls and the page pops up the caller, the line, the topic keyed in the voice menu, the caller's earlier calls and
open call-back requests before the phone is answered; after the call the operator keeps a note with the right topic,
which the call's page then shows (and the audit log records). Pauses are honoured by the queue (a paused operator's
phone does not ring), a call left ringing pauses the operator with the queue's reason, and logging out takes the
operator out of the queue; the supervisors' live board shows each state."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.model.contract import Role, Status
from callcenter.sandbox.baresip import SipAgent
from callcenter.store import cases
from callcenter.store.db import Database
from callcenter.store.models import Call, CelJournal, RecordingAccess
from tests.browser.conftest import ServerFactory, SignedIn, WebServer, screenshot, sign_in
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
from tests.factories import free_port, local_nodes
from tests.integration.conftest import (
    MODEL,
    SETTINGS,
    IvrProcess,
    ListenerProcess,
    caller_number,
    cli,
    wait_for_calls,
    wait_queue,
    wait_until,
)
from tests.webclient import add_call, insert_calls, synthetic_calls

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
NAME = "Nguyễn Thị Hoa"


def in_queue(operator: str) -> str:
    """The operator's line in the queue's CLI status ("" when not a member)."""
    return next((line for line in cli("queue show operators").splitlines() if f"(PJSIP/{operator})" in line), "")


@pytest.fixture
def board(signed_in: SignedIn) -> Callable[[WebServer], Page]:
    """A supervisor's live board in a second browser context."""
    def open_board(server: WebServer) -> Page:
        supervisor = signed_in(server, "super1")
        supervisor.goto(f"{server.url}/live")
        expect(supervisor.locator("#link-state")).to_have_attribute("data-state", "up", timeout=WAIT)
        return supervisor

    return open_board


def board_state(board: Page, operator: str, state: str) -> None:
    pill = board.locator("#operators tr", has_text=f"({operator})").locator(".pill")
    expect(pill).to_have_class(re.compile(rf"\bstate-{state}\b"), timeout=WAIT)


def test_an_agent_logs_in_sees_who_calls_before_answering_and_notes_the_call(
        page: Page, db: Database, server_factory: ServerFactory, listener: ListenerProcess, ivr: IvrProcess,
        agents: Callable[..., SipAgent], board: Callable[[WebServer], Page]) -> None:
    add_agent_user(db)
    number = caller_number()
    earlier, _ = add_call(db, 30, operator="op101", number=number)  # answered a day ago: an earlier call
    with db.session() as session:  # which became a case
        reported = cases.open_case(session, MODEL, cases.NewCase(topic="traffic", description="Đèn tín hiệu hỏng",
                                                                 call_ids=[earlier]),
                                   cases.Actor("op101", Role.OPERATOR)).number
    missed = synthetic_calls(1, datetime.now(UTC) - timedelta(hours=2), 0.01)[0]
    insert_calls(db, [missed | {"node": "sandbox", "linkedid": f"missed-{number}", "caller_number": number,
                                "line": LINE, "status": "missed", "operator": "", "talk_seconds": None,
                                "topic": "environment"}])  # two hours ago, not returned since: open
    ivr.start()
    server = server_factory(CALLCENTER_API__LIVE_BOARD="true")
    phone = agents("op203", register=True, wav_seconds=120, auto_answer=False)
    supervisor = board(server)
    board_state(supervisor, "op203", "logged_out")

    open_desk(page, server)
    my_state(page, "logged_out")
    page.click("#log-in")
    my_state(page, "free")
    assert in_queue("op203")
    board_state(supervisor, "op203", "free")

    citizen = agents("citizen1", wav_seconds=120, display_name=NAME, caller_number=number)
    topic = call_about(citizen, number, "construction")
    phone.wait_event("CALL_INCOMING", 30)
    # Before anybody answers, the page shows who calls and why
    expect(page.locator("#offer-state")).to_have_text("Incoming call", timeout=WAIT)
    expect(page.locator("#offer-number")).to_have_text(number)
    expect(page.locator("#offer-name")).to_have_text(NAME)
    expect(page.locator("#offer-line")).to_contain_text(LINE)
    expect(page.locator("#offer-topic")).to_have_text(topic.label.get("en"))
    expect(page.locator("#offer-earlier tr")).to_have_count(2, timeout=WAIT)
    expect(page.locator("#offer-requests li[data-request]")).to_have_count(1)
    expect(page.locator("#offer-requests")).to_contain_text("missed")
    expect(page.locator(f'#offer-cases li[data-case="{reported}"]')).to_contain_text("forwarded")
    screenshot(page, "desk-screen-pop")

    phone.command("accept")
    expect(page.locator("#offer-state")).to_have_text("Talking", timeout=WAIT)
    board_state(supervisor, "op203", "on_call")
    citizen.hangup()
    citizen.wait_event("CALL_CLOSED", 20)
    expect(page.locator("#note-form")).to_be_visible(timeout=WAIT)
    expect(page.locator("#last-caller")).to_contain_text(number)
    call = wait_until(lambda: this_call(db, number, "op203"), 30, "the call's log row")  # the note's row
    assert isinstance(call, Call) and call.status == Status.ANSWERED

    page.fill("#note-text", "Rác xây dựng đổ trên vỉa hè; đã hướng dẫn gửi ảnh.")
    page.select_option("#note-topic", "environment")
    page.click("#note-save")
    expect(page.locator("#desk-message")).to_have_text("Saved", timeout=WAIT)
    # A case from the call, opened on the desk: the citizen is told its number
    opened = open_case_from_desk(page, "Xà bần đổ trên vỉa hè đường Trần Phú", "Trước số 12 Trần Phú")
    with db.session() as session:
        case = cases.by_number(session, opened)
        assert case is not None and (case.topic, case.department, case.status) == (
            "construction", "construction", "forwarded")  # the topic keyed in the IVR, and its department
        assert [c.id for c in cases.calls_of(session, case.id)] == [call.id]

    page.goto(f"{server.url}/calls/{call.id}")
    expect(page.locator("#cases")).to_contain_text(opened)
    expect(page.locator("#notes")).to_contain_text("Rác xây dựng đổ trên vỉa hè")
    expect(page.locator("#corrected-topic")).to_have_text("Environment and sanitation")
    with db.session() as session:
        audited = session.scalars(select(RecordingAccess).where(RecordingAccess.call_id == call.id,
                                                                RecordingAccess.action == "note")).all()
    assert [(a.actor, a.allowed, a.detail) for a in audited] == [("op203", True, "topic=environment")]


def test_a_paused_operator_is_not_rung_a_ringing_out_one_is_paused_and_logging_out_leaves_the_queue(
        page: Page, db: Database, server_factory: ServerFactory, listener: ListenerProcess,
        agents: Callable[..., SipAgent], board: Callable[[WebServer], Page], tmp_path: Path) -> None:
    add_agent_user(db)
    server = server_factory(CALLCENTER_API__LIVE_BOARD="true")
    phone = agents("op203", register=True, wav_seconds=120, auto_answer=False)
    supervisor = board(server)
    open_desk(page, server)
    page.click("#log-in")
    my_state(page, "free")

    page.select_option("#pause-reason", "lunch")
    page.click("#pause")
    my_state(page, "paused")
    expect(page.locator("#my-reason")).to_have_text("(lunch)")
    board_state(supervisor, "op203", "paused")
    expect(supervisor.locator("#operators tr", has_text="(op203)")).to_contain_text("lunch")
    assert "paused" in in_queue("op203")

    # The only logged-in operator is paused: a caller waits the whole queue time and nobody's phone rings
    cli("dialplan set global QUEUE_WAIT_operators 4")
    try:
        number = caller_number()
        citizen = agents("citizen2", wav_seconds=60, caller_number=number)
        citizen.dial(LINE)
        wait_queue(number)
        citizen.wait_event("CALL_CLOSED", 30)
    finally:
        cli(f"dialplan set global QUEUE_WAIT_operators {MODEL.queues['operators'].wait_seconds}")
    call = wait_for_calls(db, [number])[number]
    assert (call.status, call.queue_result) == ("missed", "TIMEOUT")
    with db.session() as session:
        channels = {e.payload.get("channel", "") for e in session.scalars(
            select(CelJournal).where(CelJournal.linkedid == call.linkedid))}
    assert not any(channel.startswith("PJSIP/op203") for channel in channels), channels

    # Resumed, the phone rings; left ringing, the queue pauses the operator and the page says why
    page.click("#resume")
    my_state(page, "free")
    number = caller_number()
    citizen = agents("citizen3", wav_seconds=60, caller_number=number)
    citizen.dial(LINE)
    phone.wait_event("CALL_INCOMING", 30)
    expect(page.locator("#offer-number")).to_have_text(number, timeout=WAIT)
    my_state(page, "paused")  # after the queue's ring time (15 s) the queue gives up on op203
    expect(page.locator("#my-reason")).to_contain_text("paused by the queue", timeout=WAIT)
    expect(page.locator("#offer-body")).to_be_hidden()
    board_state(supervisor, "op203", "paused")
    screenshot(page, "desk-auto-paused")
    citizen.hangup()
    citizen.wait_event("CALL_CLOSED", 20)

    page.click("#log-out")
    my_state(page, "logged_out")
    board_state(supervisor, "op203", "logged_out")
    wait_until(lambda: not in_queue("op203"), 10, "op203 to leave the queue")


def test_a_node_away_is_named_on_the_desk_and_the_phone_s_node_keeps_it_connected(
        page: Page, db: Database, server_factory: ServerFactory, agents: Callable[..., SipAgent],
        signed_in: SignedIn, tmp_path: Path) -> None:
    """Two nodes, one of them away (nothing answers at its AMI address): op203's phone is registered on the node
    that is up, so once op203 is in its queue the desk is connected, and says which node is not; before, no
    connected node can tell that it has the phone: not connected, naming the node away. The board names it too."""
    add_agent_user(db)
    nodes = local_nodes(tmp_path, {SETTINGS.ami.node: MODEL.pbx.ami.port, "ghost": free_port()})
    server = server_factory(CALLCENTER_API__LIVE_BOARD="true",
                            CALLCENTER_NODES=json.dumps([node.model_dump(mode="json") for node in nodes]))
    agents("op203", register=True, wav_seconds=60)
    sign_in(page, server, "op203")
    page.goto(f"{server.url}/desk")
    link = page.locator("#link-state")
    expect(link).to_have_text("Not connected to the PBX (ghost)", timeout=WAIT)
    page.click("#log-in")  # reaches the node that is up; the one away is left out
    my_state(page, "free")
    expect(link).to_have_attribute("data-state", "partial", timeout=WAIT)  # in the warning colour
    expect(link).to_have_text("Connected to the PBX (not connected: ghost)")
    screenshot(page, "desk-node-away")
    supervisor = signed_in(server, "super1")
    supervisor.goto(f"{server.url}/live")
    expect(supervisor.locator("#link-state")).to_have_text("Not connected to the PBX (ghost)", timeout=WAIT)
    page.click("#log-out")
    my_state(page, "logged_out")
    expect(link).to_have_text("Not connected to the PBX (ghost)", timeout=WAIT)
