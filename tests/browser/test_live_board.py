"""The live board in a real Chromium while a real call goes through the sandbox Asterisk: a citizen calls, the
board shows the call in the voice menu, then waiting, then in conversation with the operator who answered; the
operator's state follows (free, ringing, on a call, free); when the call ends it leaves the board, today's
counter counts it, and the history lists it. The listener, the IVR and the app run as real processes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from callcenter.sandbox.baresip import SipAgent
from callcenter.store.db import Database
from tests.browser.conftest import ServerFactory, screenshot, sign_in
from tests.integration.conftest import MODEL, IvrProcess, ListenerProcess, caller_number, wait_cel
from tests.webclient import add_users

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
NAME = "Trần Văn Bình"
WAIT = 30_000  # ms: Playwright's bound on each expectation (the wait itself ends as soon as the page shows it)


def test_the_board_follows_a_call_from_the_menu_to_the_history(
        page: Page, db: Database, server_factory: ServerFactory, listener_factory: Callable[..., ListenerProcess],
        ivr: IvrProcess, agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    add_users(db)
    # No CEL file to backfill from: the log holds this test's call only, so today's counter must read 1
    listener_factory(CALLCENTER_AMI__CEL_FILE=str(tmp_path / "no-cel.json")).start()
    ivr.start()
    server = server_factory(CALLCENTER_API__LIVE_BOARD="true")
    operator = agents("op101", register=True, wav_seconds=120, auto_answer=False)
    sign_in(page, server, "super1")
    page.goto(f"{server.url}/live")
    expect(page.locator("#link-state")).to_have_attribute("data-state", "up", timeout=WAIT)
    state = page.locator("#operators tr", has_text="(op101)").locator(".pill")
    expect(state).to_have_class(re.compile(r"\bstate-free\b"), timeout=WAIT)

    number, line = caller_number(), "02621022"  # the operations center's line, open around the clock
    citizen = agents("citizen1", wav_seconds=120, display_name=NAME, caller_number=number)
    citizen.dial(line)
    in_menu = page.locator('tbody[data-stage="ivr"] tr', has_text=number)
    expect(in_menu).to_contain_text(NAME, timeout=WAIT)
    expect(page.locator('[data-stage-count="ivr"]')).to_have_text("1")
    wait_cel(number, "IVR_MENU")
    topic = MODEL.line_topics(MODEL.lines[line])[0]
    citizen.send_digit(topic.digit)
    waiting = page.locator('tbody[data-stage="queue"] tr', has_text=number)
    expect(waiting).to_contain_text(topic.label.get("en"), timeout=WAIT)
    expect(in_menu).to_have_count(0)

    operator.wait_event("CALL_INCOMING", 30)
    expect(state).to_have_class(re.compile(r"\bstate-ringing\b"), timeout=WAIT)
    operator.command("accept")
    talking = page.locator('tbody[data-stage="talking"] tr', has_text=number)
    expect(talking).to_contain_text("op101", timeout=WAIT)
    expect(waiting).to_have_count(0)
    expect(state).to_have_class(re.compile(r"\bstate-on_call\b"), timeout=WAIT)
    expect(talking.locator("td.num")).not_to_have_text("0:00", timeout=WAIT)  # the talk timer runs
    screenshot(page, "live-board")

    citizen.hangup()
    citizen.wait_event("CALL_CLOSED", 20)
    expect(page.locator("tr[data-linkedid]", has_text=number)).to_have_count(0, timeout=WAIT)
    expect(state).to_have_class(re.compile(r"\bstate-free\b"), timeout=WAIT)
    expect(page.locator('[data-count="answered"]')).to_have_text("1", timeout=WAIT)  # from the call log

    page.goto(f"{server.url}/calls")
    row = page.locator("table.calls tbody tr", has_text=number)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("op101")
