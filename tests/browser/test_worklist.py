"""The call-back worklist in a real Chromium against the sandbox: an after-hours call-back request waits in the
list; an operator takes it, clicks "Call back"; the PBX rings the operator's own phone (AMI Originate), then dials
the number the caller left, which reaches a test citizen (the sandbox's public network); the citizen answers; when
the call ends the item closes as reached, the request's page lists the call-back with its result and links to its
call, whose page links back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.model.contract import RecordingStatus
from callcenter.sandbox.baresip import SipAgent
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, CallbackAttempt, Recording
from tests.browser.conftest import ServerFactory, screenshot, sign_in
from tests.browser.desk import LINE, WAIT, add_agent_user
from tests.integration.conftest import ROOT, ListenerProcess, caller_number, cli, wait_until
from tests.webclient import insert_calls, synthetic_calls

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]


def test_an_operator_takes_a_call_back_request_and_reaches_the_citizen_from_the_list(
        page: Page, db: Database, server_factory: ServerFactory, listener: ListenerProcess,
        agents: Callable[..., SipAgent]) -> None:
    add_agent_user(db)
    caller, left = caller_number(), caller_number()  # called from one number, asked to be called on another
    # Thirty days old: the oldest open item, first on the list's first page even in a long-lived sandbox, whose
    # CEL file the listener backfills with every earlier test's call-back requests.
    request = synthetic_calls(1, datetime.now(UTC) - timedelta(days=30), 0.01)[0] | {
        "node": "sandbox", "linkedid": f"request-{caller}", "caller_number": caller, "callback_number": left,
        "line": LINE, "status": "callback_requested", "operator": "", "talk_seconds": None, "after_hours": True,
        "topic": "traffic"}
    insert_calls(db, [request])
    with db.session() as session:
        request_id = session.scalars(select(Call.id).where(CALL.linkedid == request["linkedid"])).one()
    citizen = agents("citizen5", register=True, wav_seconds=60)  # answers at once
    cli(f"database put sandbox-pstn {left} citizen5")  # the public network reaches this number at citizen5
    try:
        phone = agents("op203", register=True, wav_seconds=60)  # the operator's own phone, answers at once
        server = server_factory()
        sign_in(page, server, "op203")
        page.goto(f"{server.url}/worklist")
        row = page.locator(f'tr[data-call="{request_id}"]')
        expect(row).to_contain_text(left)
        expect(row).to_contain_text("Traffic safety")
        row.get_by_role("button", name="Take").click()
        expect(row.locator("td.held")).to_have_text("op203")
        screenshot(page, "worklist")
        row.get_by_role("button", name="Call back").click()

        phone.wait_event("CALL_ESTABLISHED", 20)  # the operator's phone first
        citizen.wait_event("CALL_ESTABLISHED", 20)  # then the citizen, on the number they left
        with db.session() as session:
            linkedid = session.scalars(select(CallbackAttempt.linkedid)
                                       .where(CallbackAttempt.call_id == request_id)).one()
        # The citizen's channel records the conversation, in the call-back's own folder (its linkedid).
        folder = ROOT / "var/spool/asterisk/monitor" / linkedid
        wait_until(lambda: sum(wav.stat().st_size for wav in folder.glob("*.wav")) > 16_000, 20,
                   "a second of conversation recorded")
        citizen.hangup()
        citizen.wait_event("CALL_CLOSED", 20)
        phone.wait_event("CALL_CLOSED", 20)

        def closed() -> bool:
            # Looking at the worklist settles call-backs whose call has ended. The request may leave the list a
            # moment before its attempt is settled (the call-back's own answered call closes it too), so wait for
            # both.
            page.goto(f"{server.url}/worklist")
            with db.session() as session:
                result = session.scalars(select(CallbackAttempt.result)
                                         .where(CallbackAttempt.call_id == request_id)).one()
            return page.locator(f'tr[data-call="{request_id}"]').count() == 0 and result != "placed"

        wait_until(closed, 30, "the reached call-back to close the request and be settled")
    finally:
        cli(f"database del sandbox-pstn {left}")
    with db.session() as session:
        attempt = session.scalars(select(CallbackAttempt).where(CallbackAttempt.call_id == request_id)).one()
    assert (attempt.result, attempt.number, attempt.operator) == ("reached", left, "op203")

    # The call-back's conversation is recorded like any other, and stored under its call.
    recorded = wait_until(lambda: _stored_recordings(db, linkedid), 30, "the call-back's recording stored")
    assert isinstance(recorded, list) and [row.kind for row in recorded] == ["conversation"]

    page.goto(f"{server.url}/calls/{request_id}")
    listed = page.locator(f'#callbacks tr[data-attempt="{attempt.id}"]')
    expect(listed).to_contain_text("reached")
    wait_until(lambda: (page.reload(), listed.locator("a").count())[1], 30, "the call-back's call in the log")
    listed.locator("a").click()
    expect(page.locator("#returning")).to_contain_text(f"#{request_id}", timeout=WAIT)


def _stored_recordings(db: Database, linkedid: str) -> list[Recording]:
    with db.session() as session:
        return list(session.scalars(select(Recording).where(Recording.linkedid == linkedid,
                                                           Recording.status == RecordingStatus.STORED)))
