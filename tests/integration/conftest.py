"""Fixtures for tests against the real sandbox: Asterisk, baresip agents and a listener process."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.asterisk.secrets import sip_password
from callcenter.model.hotline import load
from callcenter.sandbox import asterisk, port_in_use
from callcenter.sandbox.baresip import SipAgent
from callcenter.sandbox.celwatch import CelWatch, CelWatchTimeout
from callcenter.settings import PROJECT_ROOT, Settings
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call

SETTINGS = Settings()
MODEL = load(SETTINGS.model_file)
ROOT = SETTINGS.sandbox.root
CEL = CelWatch(SETTINGS.ami.cel_file)


@pytest.fixture(scope="session")
def sandbox() -> Path:
    """The running sandbox Asterisk, restarted once with no registrations left from earlier runs."""
    if os.geteuid() != 0:
        pytest.fail("the sandbox tests need root (chroot); run them with `make test` as root")
    asterisk.provision(ROOT, SETTINGS.sandbox.suite)
    asterisk.restart_clean(ROOT, MODEL, SETTINGS)
    return ROOT


def cli(command: str) -> str:
    """One Asterisk CLI command in the sandbox; its output."""
    return asterisk.cli(ROOT, command).stdout


def wait_until(check: Callable[[], object], timeout: float, what: str, step: float = 0.2) -> object:
    """Poll ``check`` until it returns something truthy; fail the test with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def agents(sandbox: Path) -> Iterator[Callable[..., SipAgent]]:
    """Start baresip agents (``agents("op101", register=True)``); all are stopped after the test."""
    started: list[SipAgent] = []

    def start(user: str, **options: object) -> SipAgent:
        password = sip_password(SETTINGS.pbx.sip_secret, user)
        agent = SipAgent(sandbox, user, password, **options)  # type: ignore[arg-type]
        started.append(agent)
        return agent.start()

    yield start
    for agent in started:
        agent.stop()
    wait_until(lambda: "No objects found" in cli("pjsip show contacts"), 10, "operators to unregister")
    reset_queues()


def reset_queues() -> None:
    """Undo what a test did to the queues: pauses (its own, or the queue's after a phone rang out) end, and desk
    agents who logged in are logged out, so the next test starts from the model's queues."""
    for name, queue in MODEL.queues.items():
        shown = cli(f"queue show {name}")
        for line in shown.splitlines():
            member = re.search(r"\((PJSIP/[^) ]+)\)", line)
            if member is None:
                continue
            operator = member.group(1).removeprefix("PJSIP/")
            if operator in queue.agents:
                cli(f"queue remove member {member.group(1)} from {name}")
            elif "(paused" in line:
                cli(f"queue unpause member {member.group(1)} queue {name}")


def asterisk_udp_sockets() -> set[str]:
    """The local ``address:port`` of every UDP socket Asterisk has open (SIP, its resolver and, in calls, RTP)."""
    lines = subprocess.run(["ss", "-Hulnp"], capture_output=True, text=True, check=True).stdout.splitlines()
    return {line.split()[3] for line in lines if '"asterisk"' in line}


def caller_number() -> str:
    """A mobile number no other test uses, so each test finds its own calls in a shared CEL file."""
    return "09" + "".join(random.choice("0123456789") for _ in range(8))


@dataclass
class ListenerProcess:
    """``callcenter listen`` as a real process, with its log in a file."""

    db_url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ListenerProcess:
        env = {**os.environ, "CALLCENTER_AMI__RECONNECT_MIN": "0.5", "CALLCENTER_DB__URL": self.db_url, **self.env}
        with self.log.open("ab") as out:
            # Its own process group: the listener's ffmpeg children go with it when a test kills it.
            self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", "listen"], cwd=PROJECT_ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_log("AMI: logged in", count=self.text().count("AMI: logged in") + 1)
        return self

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def wait_log(self, needle: str, count: int = 1, timeout: float = 20) -> None:
        wait_until(lambda: self.text().count(needle) >= count, timeout, f"listener log {needle!r} x{count}")

    def kill(self) -> None:
        """SIGKILL the listener and its children (a crash, a power cut of that process)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def listener_factory(sandbox: Path, db_url: str, tmp_path: Path) -> Iterator[Callable[..., ListenerProcess]]:
    """Make (not start) listener processes over the test's database; all are stopped after the test."""
    made: list[ListenerProcess] = []

    def make(**env: str) -> ListenerProcess:
        env = {"CALLCENTER_RECORDINGS__STORE": str(tmp_path / "recordings"), **env}
        process = ListenerProcess(db_url, tmp_path / "listener.log", env)
        made.append(process)
        return process

    yield make
    for process in made:
        process.stop()


@pytest.fixture
def listener(listener_factory: Callable[..., ListenerProcess]) -> ListenerProcess:
    """A running listener."""
    return listener_factory().start()


def wait_for_calls(db: Database, numbers: list[str], timeout: float = 30) -> dict[str, Call]:
    """Wait until each caller number has a call-log row; return them by number (one row per number enforced)."""

    def found() -> dict[str, Call] | None:
        with db.session() as session:
            rows = session.scalars(select(Call).where(CALL.caller_number.in_(numbers))).all()
        by_number = {row.caller_number: row for row in rows}
        assert len(by_number) == len(rows), f"duplicate call rows: {[r.caller_number for r in rows]}"
        return by_number if len(by_number) == len(numbers) else None

    result = wait_until(found, timeout, f"call logs for {numbers}")
    assert isinstance(result, dict)
    return result


@dataclass
class IvrProcess:
    """``callcenter ivr`` as a real process (started only by tests that want the IVR up)."""

    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, model_file: Path | None = None, db_url: str | None = None) -> IvrProcess:
        """Start the server (with another model file; with the test's database for case lookups)."""
        env = {**os.environ, **({"CALLCENTER_MODEL_FILE": str(model_file)} if model_file else {}),
               **({"CALLCENTER_DB__URL": db_url} if db_url else {})}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", "ivr"], cwd=PROJECT_ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: port_in_use(MODEL.ivr.address.port), 15, "the FastAGI server to listen")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def ivr(tmp_path: Path) -> Iterator[IvrProcess]:
    """An IVR server handle; the port must be free (no stray server) so "IVR down" really means down."""
    port = MODEL.ivr.address.port
    assert not port_in_use(port), f"something already listens on the IVR port {port}"
    process = IvrProcess(tmp_path / "ivr.log")
    yield process
    process.stop()


def wait_cel(number: str, event: str, contains: str = "", count: int = 1, timeout: float = 60,
             app: str = "", since: float = 0.0) -> dict[str, Any]:
    """Wait until the caller's channel has raised ``count`` events ``event`` (whose extra has ``contains``, whose
    application is ``app``, since the epoch time ``since``), as Asterisk's own CEL file shows them; the last of
    them, as the file has it."""
    try:
        return CEL.wait(number, event, contains, count, timeout, app, since)
    except CelWatchTimeout as exc:
        pytest.fail(str(exc))


def wait_queue(number: str, count: int = 1, timeout: float = 60, since: float = 0.0) -> None:
    """Wait until the caller has joined the queue ``count`` times (APP_START of Queue)."""
    wait_cel(number, "APP_START", count=count, timeout=timeout, app="Queue", since=since)
