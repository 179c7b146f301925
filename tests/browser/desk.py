"""Steps at the operator desk that more than one browser test takes: the desk agent's user, the desk page up and
logged in, a citizen's call into the queue on a topic keyed in the voice menu, and a case opened from the call."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.model.contract import Role
from callcenter.model.ivr import Topic
from callcenter.sandbox.baresip import SipAgent
from callcenter.store import accounts
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call
from tests.browser.conftest import WebServer, sign_in
from tests.integration.conftest import MODEL, wait_cel
from tests.webclient import PASSWORD, add_users

WAIT = 30_000  # ms: Playwright's bound on each expectation
LINE = "02621022"  # open around the clock


def add_agent_user(db: Database) -> None:
    """The users of every role, and op203: the operator who logs in to the queue from the desk."""
    add_users(db)
    with db.session() as session:
        accounts.create_user(session, accounts.NewUser("op203", Role.OPERATOR, PASSWORD, operator="op203",
                                                       language="en"))


def this_call(db: Database, number: str, operator: str) -> Call | None:
    """The call ``operator`` answered from ``number`` (the number also has older calls)."""
    with db.session() as session:
        return session.scalars(select(Call).where(CALL.caller_number == number, CALL.operator == operator)).first()


def open_desk(page: Page, server: WebServer) -> None:
    """op203 signs in and opens the desk; its link to the PBX is up."""
    sign_in(page, server, "op203")
    page.goto(f"{server.url}/desk")
    expect(page.locator("#link-state")).to_have_attribute("data-state", "up", timeout=WAIT)


def my_state(page: Page, state: str) -> None:
    expect(page.locator("#my-state")).to_have_attribute("data-state", state, timeout=WAIT)


def call_about(citizen: SipAgent, number: str, topic_code: str) -> Topic:
    """The citizen calls the line and keys the topic in the voice menu; the topic keyed."""
    citizen.dial(LINE)
    wait_cel(number, "IVR_MENU")
    topic = next(t for t in MODEL.line_topics(MODEL.lines[LINE]) if t.code == topic_code)
    citizen.send_digit(topic.digit)
    return topic


def open_case_from_desk(page: Page, description: str, location: str, contact_name: str = "") -> str:
    """After the call, open a case from the desk (forwarded at once, no consent to pass the contact on); the case
    number the desk shows, to tell the citizen."""
    page.locator("#case-box summary").click()
    page.fill("#case-form textarea[name=description]", description)
    page.fill("#case-form input[name=location]", location)
    if contact_name:
        page.fill("#case-form input[name=contact_name]", contact_name)
    page.click("#case-form button.primary")
    expect(page.locator("#desk-message")).to_contain_text("Tell the citizen the case number", timeout=WAIT)
    return page.locator("#case-number-opened").inner_text()
