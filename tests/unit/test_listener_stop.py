"""Stopping the listener keeps what it has read: systemd and ``callcenter run`` stop it with SIGTERM, a terminal
with SIGINT; either way the events read from AMI but still in its queue are spooled before the process ends."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.settings import PROJECT_ROOT


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_listener_spools_the_events_still_in_its_queue(tmp_path: Path, signum: int) -> None:
    child = subprocess.Popen([sys.executable, "-m", "tests.unit.listener_stopped", str(tmp_path)], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], 60)[0], "the child said nothing in 60 s"
        said = child.stdout.readline()
        assert said.startswith("READY"), said  # one event in a held append, 50 in the queue
        child.send_signal(signum)
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (tmp_path / "spool" / "listener.jsonl").read_bytes().count(b"\n") == 51
