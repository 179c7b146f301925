"""Browser tests: a real headless Chromium (Debian's package, driven by Playwright with its executable_path; no
browser download) against the real app served by uvicorn (``callcenter api``) over a real database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from callcenter.settings import PROJECT_ROOT
from callcenter.store.db import Database
from tests.factories import free_port
from tests.integration.conftest import agents, ivr, listener, listener_factory, sandbox  # noqa: F401 (fixtures)
from tests.webclient import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@dataclass
class WebServer:
    """``callcenter api`` as a real process on its own port."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(db_url: str, tmp_path: Path, **env: str) -> WebServer:
    """Start the app on a free port and wait until it answers."""
    port = free_port()
    log = tmp_path / "api.log"
    variables = {**os.environ, "CALLCENTER_DB__URL": db_url, "CALLCENTER_API__PORT": str(port),
                 "CALLCENTER_API__LIVE_BOARD": "false", "CALLCENTER_RECORDINGS__STORE": str(tmp_path / "recordings"),
                 "CALLCENTER_CASES__ATTACHMENTS": str(tmp_path / "attachments"),
                 **env}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "callcenter", "api"], cwd=PROJECT_ROOT, env=variables,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return WebServer(f"http://127.0.0.1:{port}", proc, log)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the app did not start: {log.read_text(errors='replace')[-2000:]}")


ServerFactory = Callable[..., WebServer]


@pytest.fixture
def server_factory(db: Database, db_url: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start app processes over the test's database; all are stopped afterwards."""
    started: list[WebServer] = []

    def start(**env: str) -> WebServer:
        server = start_server(db_url, tmp_path, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright for the browser tests. Package scope: its sync API keeps an event loop running in the main thread
    and a driver process as our child, so both must be gone before other tests run (and only one may run)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the page tests."""
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, server_factory: ServerFactory) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page; console errors fail the test, except those a test expects
    (``@pytest.mark.console_allows("text")``, e.g. the 401 of a refused sign-in). The page closes before the
    test's app servers stop (a live board's event stream would otherwise be cut under it)."""
    marker = request.node.get_closest_marker("console_allows")
    allowed = tuple(marker.args) if marker else ()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    unexpected = [error for error in errors if not any(text in error for text in allowed)]
    assert not unexpected, unexpected


SignedIn = Callable[[WebServer, str], Page]


@pytest.fixture
def signed_in(browser: Browser, server_factory: ServerFactory) -> Iterator[SignedIn]:
    """Another person at their own browser (a context of their own: their own cookies), signed in; closed before
    the test's app servers stop."""
    contexts = []

    def open_as(server: WebServer, name: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        contexts.append(context)
        page = context.new_page()
        sign_in(page, server, name)
        return page

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page: Page, server: WebServer, name: str, password: str = PASSWORD) -> None:
    """Sign in through the form."""
    page.goto(f"{server.url}/sign-in")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_url("**/calls**")


def wait_js(page: Page, expression: str, timeout: float = 10.0) -> object:
    """Poll a JavaScript expression until it is truthy (``page.wait_for_function`` would compile it inside the
    page, which the app's CSP rightly forbids; ``evaluate`` goes through the debugger protocol)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(100)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {expression}")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots (the README shows copies of them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
