"""Stopping the listener keeps what it has read: systemd and ``callcenter run`` stop it with SIGTERM, a terminal
with SIGINT; either way the events read from AMI but still in its queue are spooled before the process ends."""

from __future__ import annotations

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
        assert child.stdout.readline().startswith("READY")  # one event in a slow append, 50 in the queue
        child.send_signal(signum)
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (tmp_path / "spool" / "listener.jsonl").read_bytes().count(b"\n") == 51
