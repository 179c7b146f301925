"""Faults that must lose nothing, against the real parts: the listener killed again and again during continuous
calls, the AMI link going silent (no FIN, no RST) while calls end, recordings without ffmpeg, and Asterisk
crashing or restarting during calls."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tomlkit
from sqlalchemy import func, select

from callcenter.sandbox import asterisk
from callcenter.sandbox.baresip import SipAgent
from callcenter.settings import PROJECT_ROOT
from callcenter.store.db import Database
from callcenter.store.models import CelJournal, Recording
from tests.integration.conftest import (
    MODEL,
    SETTINGS,
    ListenerProcess,
    caller_number,
    wait_cel,
    wait_for_calls,
    wait_until,
)
from tests.integration.tcp_proxy import SilentProxy
from tests.integration.traffic import Traffic

pytestmark = [pytest.mark.sandbox, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
LINE = "02621022"
OPERATORS = ["op101", "op102", "op103"]


def _journal_matches_cel_file(db: Database, linkedids: list[str]) -> None:
    """Every event Asterisk wrote for these calls is journaled exactly once."""
    counts: dict[str, int] = {}
    for line in SETTINGS.ami.cel_file.read_text(encoding="utf-8").splitlines():
        linkedid = json.loads(line)["linkedid"]
        counts[linkedid] = counts.get(linkedid, 0) + 1
    with db.session() as session:
        rows = session.execute(select(CelJournal.linkedid, func.count()).where(
            CelJournal.linkedid.in_(linkedids)).group_by(CelJournal.linkedid)).all()
    journaled = {linkedid: count for linkedid, count in rows}
    assert journaled == {linkedid: counts[linkedid] for linkedid in linkedids}


def _size(path: Path) -> int:
    """A spool file's size, 0 once the worker has taken it away."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _recorded_once(db: Database, linkedids: list[str], crashed: frozenset[str] = frozenset()) -> None:
    """Each answered call has exactly one recording, stored, and no WAV is left in the spool. A call cut by an
    Asterisk crash may have lost its audio (MixMonitor had not written it out): recorded as empty, never pending."""
    def done() -> bool:
        with db.session() as session:
            rows = session.scalars(select(Recording).where(Recording.linkedid.in_(linkedids))).all()
        return len(rows) == len(linkedids) and all(
            row.status == "stored" or (row.status == "empty" and row.linkedid in crashed) for row in rows)

    wait_until(done, 120, "every recording stored once")
    with db.session() as session:
        rows = session.execute(select(Recording.linkedid, func.count()).where(
            Recording.linkedid.in_(linkedids)).group_by(Recording.linkedid)).all()
    assert {count for _, count in rows} == {1}
    assert not [p for p in SETTINGS.recordings.spool.glob("*/*.wav") if p.parent.name in linkedids]


def test_listener_killed_at_random_moments_during_continuous_calls_loses_and_doubles_nothing(
        db: Database, listener: ListenerProcess, agents: Callable[..., SipAgent]) -> None:
    seed = int(os.environ.get("FAULT_SEED", time.time()))
    rng = random.Random(seed)
    for operator in OPERATORS:
        agents(operator, register=True, wav_seconds=3600)
    traffic = Traffic(agents, LINE, ["citizen10", "citizen11", "citizen12"], seconds=5.0).start()
    for _ in range(3):
        time.sleep(rng.uniform(2.0, 9.0))  # a random moment: the fault's timing, not a wait for anything
        listener.kill()
        time.sleep(rng.uniform(0.2, 3.0))  # calls go on while no listener runs
        listener.start()
    numbers = traffic.stop()
    assert not traffic.failures, (seed, traffic.failures)
    calls = wait_for_calls(db, numbers, timeout=90)  # one row per caller: nothing lost, nothing doubled
    assert {call.status for call in calls.values()} == {"answered"}, (seed, calls)
    linkedids = [call.linkedid for call in calls.values()]
    _journal_matches_cel_file(db, linkedids)
    _recorded_once(db, linkedids)


@pytest.fixture
def proxy(sandbox: Path) -> Iterator[SilentProxy]:
    """A TCP stand-in in front of Asterisk's AMI that can go silent."""
    stand_in = SilentProxy((MODEL.pbx.ami.host, MODEL.pbx.ami.port)).start()
    yield stand_in
    stand_in.stop()


def test_ami_link_going_silent_is_noticed_within_seconds_and_nothing_is_lost(
        db: Database, listener_factory: Callable[..., ListenerProcess], agents: Callable[..., SipAgent],
        proxy: SilentProxy, tmp_path: Path) -> None:
    document = tomlkit.parse(SETTINGS.model_file.read_text(encoding="utf-8"))
    document["pbx"]["ami"] = f"127.0.0.1:{proxy.port}"  # type: ignore[index]
    model_file = tmp_path / "hotline.toml"
    model_file.write_text(tomlkit.dumps(document), encoding="utf-8")
    listener = listener_factory(CALLCENTER_MODEL_FILE=str(model_file), CALLCENTER_AMI__PING_INTERVAL="1",
                                CALLCENTER_AMI__PING_TIMEOUT="2", CALLCENTER_AMI__BACKFILL_INTERVAL="3600").start()
    for operator in OPERATORS[:2]:
        agents(operator, register=True, wav_seconds=3600)
    traffic = Traffic(agents, LINE, ["citizen10", "citizen11"], seconds=4.0).start()
    wait_until(lambda: traffic.numbers, 10, "the first call")
    deaths, sessions = listener.text().count("AMI link dead"), listener.text().count("AMI: logged in")
    proxy.go_silent()  # the link stays open and says nothing: no FIN, no RST
    silent_at = time.monotonic()
    listener.wait_log("AMI link dead", count=deaths + 1, timeout=30)
    noticed = time.monotonic() - silent_at
    listener.wait_log("AMI: logged in", count=sessions + 1, timeout=30)  # a new session through the stand-in
    numbers = traffic.stop()
    calls = wait_for_calls(db, numbers, timeout=60)
    assert {call.status for call in calls.values()} == {"answered"}
    _journal_matches_cel_file(db, [call.linkedid for call in calls.values()])
    print(f"silent AMI link noticed after {noticed:.1f} s")  # ping every 1 s, answer awaited 2 s


def test_without_ffmpeg_calls_are_still_logged_and_their_recordings_wait_for_it(
        db: Database, listener_factory: Callable[..., ListenerProcess], agents: Callable[..., SipAgent],
        tmp_path: Path) -> None:
    broken = listener_factory(PATH=str(tmp_path / "empty-bin"), CALLCENTER_RECORDINGS__RETRY_MIN="1").start()
    agents("op101", register=True, wav_seconds=3600)
    traffic = Traffic(agents, LINE, ["citizen10"], seconds=4.0).start()
    wait_until(lambda: traffic.numbers, 10, "the call")
    [number] = traffic.stop()
    call = wait_for_calls(db, [number])[number]
    assert call.status == "answered"  # the call log does not depend on the recordings

    def failed() -> Recording | None:
        with db.session() as session:
            return session.scalar(select(Recording).where(Recording.linkedid == call.linkedid,
                                                          Recording.status == "error"))

    row = wait_until(failed, 30, "the recording to fail for want of ffmpeg")
    assert isinstance(row, Recording) and row.error and "install ffmpeg" in row.error
    broken.stop()
    listener_factory(CALLCENTER_RECORDINGS__RETRY_MIN="1").start()  # ffmpeg is on PATH again
    _recorded_once(db, [call.linkedid])


@pytest.mark.parametrize("how", ["crash", "restart"])
def test_asterisk_going_down_during_calls_logs_the_cut_calls_failed_and_loses_nothing_else(
        how: str, db: Database, listener_factory: Callable[..., ListenerProcess],
        agents: Callable[..., SipAgent]) -> None:
    listener = listener_factory(CALLCENTER_LISTENER__LIVE_CHECK="5").start()  # asks Asterisk for its calls often
    for operator in OPERATORS:
        agents(operator, register=True, wav_seconds=3600)
    before = Traffic(agents, LINE, ["citizen10"], seconds=3.0).start()
    wait_until(lambda: len(before.numbers) >= 2, 30, "a call before the fault")
    before_numbers = before.stop()
    cut_numbers = [caller_number(), caller_number()]
    citizens = [agents(f"citizen{n + 11}", wav_seconds=600, caller_number=number)
                for n, number in enumerate(cut_numbers)]
    earlier = set(SETTINGS.recordings.spool.glob("*/*.wav"))
    for citizen in citizens:
        citizen.dial(LINE)
    for number in cut_numbers:
        wait_cel(number, "BRIDGE_ENTER", timeout=30)  # both are talking to an operator
    # and MixMonitor has written audio of both: a call cut the instant it is bridged has none to keep, and is
    # rightly recorded "empty" (it happened in CI)
    wait_until(lambda: sum(_size(wav) > 16_044 for wav in SETTINGS.recordings.spool.glob("*/*.wav")
                           if wav not in earlier) >= 2, 30, "a second of audio in both calls' recordings")
    if how == "crash":
        pid = asterisk.pid(SETTINGS.sandbox.root)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # no hang-up, no CEL, nothing: gone
        wait_until(lambda: not asterisk.is_running(SETTINGS.sandbox.root), 10, "Asterisk to die")
    else:
        asterisk.stop(SETTINGS.sandbox.root)  # `core stop now`: Asterisk hangs up every call itself
    asterisk.start(SETTINGS.sandbox.root, MODEL, SETTINGS)
    listener.wait_log("AMI: logged in", count=2, timeout=60)
    after = Traffic(agents, LINE, ["citizen10"], seconds=3.0).start()
    wait_until(lambda: len(after.numbers) >= 2, 60, "a call after the restart")
    after_numbers = after.stop()

    calls = wait_for_calls(db, before_numbers + cut_numbers + after_numbers, timeout=90)
    for number in before_numbers + after_numbers:
        assert calls[number].status == "answered", (number, calls[number].status)
    for number in cut_numbers:
        cut = calls[number]
        assert (cut.status, cut.ended_by) == ("failed", "system"), (how, number)
        assert cut.operator in OPERATORS and cut.answered_at is not None  # how far the call got
        if how == "restart":
            assert cut.hangup_cause == 16  # the cause Asterisk gave when it hung up
    crashed = frozenset(calls[number].linkedid for number in cut_numbers) if how == "crash" else frozenset()
    _recorded_once(db, [calls[number].linkedid for number in before_numbers + cut_numbers + after_numbers], crashed)


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A PostgreSQL cluster of this test's own (scripts/postgres.sh with its own folder and port): the test starts
    and stops it, and nothing else uses it. Yields ``control("start"|"stop")`` returning the script's output."""
    env = {**os.environ, "CALLCENTER_PG_DIR": f"/var/tmp/callcenter-pg-fault-{os.getpid()}",
           "CALLCENTER_PG_PORT": str(_free_port()), "CALLCENTER_PG_DB": "fault"}

    def control(action: str) -> str:
        done = subprocess.run([str(PROJECT_ROOT / "scripts/postgres.sh"), action], env=env, capture_output=True,
                              text=True, check=True, timeout=60)
        return done.stdout.strip()

    yield control
    control("stop")
    shutil.rmtree(env["CALLCENTER_PG_DIR"], ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_postgresql_stopped_for_a_minute_under_continuous_calls_loses_nothing(
        private_postgres: Callable[[str], str], listener_factory: Callable[..., ListenerProcess],
        agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    url = private_postgres("start")  # the test's own PostgreSQL is the one that fails (not the suite's database)
    # No CEL file (a listener on another host than Asterisk): what AMI delivered is all there is.
    listener = listener_factory(CALLCENTER_DB__URL=url, CALLCENTER_AMI__CEL_FILE=str(tmp_path / "no-cel.json"),
                                CALLCENTER_RECORDINGS__RETRY_MIN="2", CALLCENTER_LISTENER__RETRY_MAX="5")
    listener.db_url = url
    listener.start()
    for operator in OPERATORS:
        agents(operator, register=True, wav_seconds=3600)
    traffic = Traffic(agents, LINE, ["citizen10", "citizen11", "citizen12"], seconds=5.0).start()
    wait_until(lambda: len(traffic.numbers) >= 3, 30, "calls before the outage")
    sessions = listener.text().count("AMI: logged in")
    private_postgres("stop")
    time.sleep(60)  # the outage itself: calls go on, the listener must hold what AMI gives it
    assert listener.text().count("AMI: logged in") == sessions, "Asterisk dropped the listener as a slow reader"
    assert "AMI: connection lost" not in listener.text()
    private_postgres("start")
    numbers = traffic.stop()
    assert not traffic.failures, traffic.failures
    database = Database(url)
    try:
        calls = wait_for_calls(database, numbers, timeout=120)
        assert {call.status for call in calls.values()} == {"answered"}
        linkedids = [call.linkedid for call in calls.values()]
        _journal_matches_cel_file(database, linkedids)
        _recorded_once(database, linkedids)
    finally:
        database.dispose()
