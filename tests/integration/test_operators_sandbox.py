"""People change without cutting calls: an operator added through `callcenter operators add` while a call is up
registers and takes the next call; the call in progress goes on through the reload and is logged complete."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callcenter.sandbox.baresip import SipAgent
from callcenter.settings import PROJECT_ROOT
from callcenter.store.db import Database
from tests.integration.conftest import SETTINGS, ListenerProcess, caller_number, cli, wait_for_calls, wait_until

pytestmark = pytest.mark.sandbox
LINE = "02621022"


def callcenter(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as an administrator runs it."""
    return subprocess.run([sys.executable, "-m", "callcenter", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def model_file(sandbox: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the model to edit; afterwards the sandbox gets the shipped model's configuration back."""
    path = tmp_path / "hotline.toml"
    shutil.copy(SETTINGS.model_file, path)
    yield path
    restored = callcenter("asterisk", "reload")
    assert restored.returncode == 0, restored.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_operator_added_while_a_call_is_up_takes_the_next_call(
        db: Database, listener_factory: Callable[..., ListenerProcess], agents: Callable[..., SipAgent],
        model_file: Path) -> None:
    listener_factory(CALLCENTER_MODEL_FILE=str(model_file)).start()  # it follows the model file
    busy = agents("op101", register=True, wav_seconds=300)
    first_number = caller_number()
    first = agents("citizen3", wav_seconds=300, caller_number=first_number)
    first.dial(LINE)  # the IVR is down here: straight to the queue
    busy.wait_event("CALL_ESTABLISHED", 30)
    talk_started = time.monotonic()

    added = callcenter("--model", str(model_file), "operators", "add", "op104", "--name", "Nguyễn Văn An",
                       "--extension", "104", "--device", "softphone")
    assert added.returncode == 0, added.stderr
    assert "Asterisk reloaded" in added.stdout
    assert "op104" in cli("queue show operators")
    assert 'callerid' in cli("pjsip show endpoint op104") and "Nguyễn Văn An" in cli("pjsip show endpoint op104")

    newcomer = agents("op104", register=True, wav_seconds=3, transport="tcp")  # hangs up after 3 s
    second_number = caller_number()
    second = agents("citizen4", wav_seconds=300, caller_number=second_number)
    second.dial(LINE)
    newcomer.wait_event("CALL_ESTABLISHED", 30)  # op101 is busy: the new operator takes it
    second.wait_event("CALL_CLOSED", 20)
    assert not any(event.get("type") == "CALL_CLOSED" for event in first.events)  # the first call went on
    first.hangup()
    first.wait_event("CALL_CLOSED", 10)
    talked = time.monotonic() - talk_started

    calls = wait_for_calls(db, [first_number, second_number])
    old, new = calls[first_number], calls[second_number]
    assert (old.status, old.operator, old.operator_device) == ("answered", "op101", "ip_phone")
    assert old.talk_seconds is not None and abs(old.talk_seconds - talked) < 1.5, (old.talk_seconds, talked)
    assert (new.status, new.operator, new.operator_device) == ("answered", "op104", "softphone")

    newcomer.stop()  # the phone signs off before its account goes
    removed = callcenter("--model", str(model_file), "operators", "remove", "op104")
    assert removed.returncode == 0, removed.stderr
    wait_until(lambda: "op104" not in cli("queue show operators"), 10, "op104 to leave the queue")
    assert "Unable to find object op104" in cli("pjsip show endpoint op104")


def test_a_bad_change_is_refused_and_asterisk_keeps_its_configuration(sandbox: Path, model_file: Path) -> None:
    before = cli("dialplan show operator-directory")
    refused = callcenter("--model", str(model_file), "operators", "add", "op105", "--extension", "101")
    assert refused.returncode == 2 and "extensions used twice: ['101']" in refused.stderr
    assert cli("dialplan show operator-directory") == before
