"""The pages in a real headless Chromium: sign in, filter the history, open a call and play its recording with a
seek, what a department user sees, switching language, statistics with a chart. Screenshots of the main pages go
to test-artifacts/screenshots."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from callcenter.store.db import Database
from tests.browser.conftest import ServerFactory, WebServer, screenshot, sign_in, wait_js
from tests.webclient import add_call, add_users, insert_calls, synthetic_calls

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
AUDIO_SECONDS = 20  # the recording's length, in the file and in its row (the call page shows both)


@pytest.fixture
def server(db: Database, server_factory: ServerFactory, tmp_path: Path) -> WebServer:
    """The app over a database with users of every role and a few calls, one with a 20 s recording."""
    store = tmp_path / "recordings"  # where the app (and a listener of the same test) keep recordings
    store.mkdir()
    audio = store / "call.ogg"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={AUDIO_SECONDS}",
                    "-c:a", "libopus", "-b:a", "24k", str(audio)], check=True)
    add_users(db)
    add_call(db, 1, "op101", "0905123456", audio, audio_seconds=AUDIO_SECONDS)
    for n, number in enumerate(("0912000111", "0987654321", "0905777888"), start=2):
        add_call(db, n, "op102", number)
    return server_factory()


def test_a_supervisor_filters_the_history_and_replays_a_recording_with_a_seek(page: Page, server: WebServer) -> None:
    sign_in(page, server, "super1")
    expect(page.locator("h1")).to_have_text("Call history")
    expect(page.locator("table.calls tbody tr")).to_have_count(4)
    page.fill("input[name=number]", "0905")
    page.click("form.filters button.primary")
    expect(page.locator("table.calls tbody tr")).to_have_count(2)  # 0905123456 and 0905777888
    page.fill("input[name=number]", "0905123")
    page.click("form.filters button.primary")
    expect(page.locator("table.calls tbody tr")).to_have_count(1)
    expect(page.locator("p.summary")).to_contain_text("1 call")
    screenshot(page, "history")
    page.locator("table.calls a", has_text=re.compile(r"\d")).first.click()
    page.wait_for_url(re.compile(r"/calls/\d+$"))
    player = page.locator("audio").first
    expect(player).to_be_visible()
    wait_js(page, "document.querySelector('audio').readyState >= 3")  # canplay
    duration = page.evaluate("document.querySelector('audio').duration")
    assert 19 < duration < 21
    page.evaluate("(() => { const a = document.querySelector('audio'); a.muted = true; a.currentTime = 12; "
                  "return a.play(); })()")
    wait_js(page, "document.querySelector('audio').currentTime > 12.2")  # it seeked and plays on
    screenshot(page, "call")


def test_a_department_user_sees_masked_numbers_and_no_player(page: Page, server: WebServer) -> None:
    sign_in(page, server, "dept1")
    body = page.locator("table.calls")
    expect(body).to_contain_text("0905•••456")
    expect(body).not_to_contain_text("0905123456")
    page.locator("table.calls tbody a").first.click()
    expect(page.locator("audio")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("Recordings are not available to your role.")


def test_the_page_switches_language(page: Page, server: WebServer) -> None:
    sign_in(page, server, "op101")
    expect(page.locator("h1")).to_have_text("Call history")
    page.click("header button[name=language]")
    expect(page.locator("h1")).to_have_text("Lịch sử cuộc gọi")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Lịch sử")
    page.click("header button[name=language]")
    expect(page.locator("h1")).to_have_text("Call history")


def test_statistics_draw_a_chart_and_the_other_pages_render(page: Page, server: WebServer, db: Database) -> None:
    zone = ZoneInfo("Asia/Ho_Chi_Minh")  # the users' time zone
    week = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    insert_calls(db, synthetic_calls(300, week, (datetime.now(zone) - week) / timedelta(days=1)))
    sign_in(page, server, "admin1")
    page.goto(f"{server.url}/stats")  # the last seven days by default
    wait_js(page, "window.Chart && Object.keys(window.Chart.instances).length === 1")
    expect(page.locator(".counter").first).to_have_text("304")  # and the four calls of the last hours
    expect(page.locator("table").filter(has_text="P90")).to_have_count(3)  # by line, topic, operator
    screenshot(page, "statistics")
    for name in ("audit", "users", "account", "live"):
        page.goto(f"{server.url}/{name}")
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, name)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info")  # Swagger UI served by the app itself
    screenshot(page, "api-docs")


@pytest.mark.console_allows("status of 401")  # the refused sign-in answers 401
def test_a_visitor_sees_only_the_sign_in_page(page: Page, server: WebServer) -> None:
    page.goto(f"{server.url}/calls")
    page.wait_for_url("**/sign-in?next=/calls")
    screenshot(page, "sign-in")
    page.fill("input[name=name]", "super1")
    page.fill("input[name=password]", "wrong password")
    page.click("button.primary")
    expect(page.locator("[role=alert]")).to_be_visible()


# Every visible form control must have an accessible name (a <label>, aria-label or aria-labelledby); buttons a text.
UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => el.offsetParent !== null)
  .filter(el => el.tagName === 'BUTTON' ? !(el.textContent.trim() || el.getAttribute('aria-label'))
                : !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))"""
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.parametrize("viewport", [(768, 1024), (1366, 768)], ids=["tablet", "laptop"])
def test_pages_fit_the_screen_and_every_control_is_labelled(page: Page, server: WebServer,
                                                            viewport: tuple[int, int]) -> None:
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    sign_in(page, server, "admin1")
    call = page.locator("table.calls tbody a").first.get_attribute("href")
    for path in ("/calls", call, "/live", "/stats", "/audit", "/users", "/account", "/cases", "/cases/handling",
                 "/worklist"):
        page.goto(f"{server.url}{path}")
        expect(page.locator("h1")).to_be_visible()
        assert page.evaluate(OVERFLOW) <= 0, f"{path} scrolls sideways at {viewport[0]} px"
        assert page.evaluate(UNLABELLED) == [], path
    page.goto(f"{server.url}/calls")
    page.keyboard.press("Tab")  # keyboard navigation starts at the top: the first Tab lands on a link or button
    assert page.evaluate("document.activeElement && document.activeElement.tagName") in ("A", "BUTTON")
