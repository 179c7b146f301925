"""``callcenter run``: start each part as its own process and restart any that exits, with backoff."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from callcenter.settings import Settings

log = logging.getLogger(__name__)


def _spawn(command: str, settings: Settings) -> subprocess.Popen[bytes]:
    # The database URL may hold a password: it goes through the environment, never the command line (ps).
    env = {**os.environ, "CALLCENTER_DB__URL": settings.db.url, "CALLCENTER_MODEL_FILE": str(settings.model_file)}
    return subprocess.Popen([sys.executable, "-m", "callcenter", command], env=env)


def supervise(commands: list[str], settings: Settings, max_backoff: float = 30.0) -> int:
    """Run until SIGINT/SIGTERM; a part that dies is restarted after 1, 2, 4, ... seconds."""
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs = {name: _spawn(name, settings) for name in commands}
    backoff = dict.fromkeys(commands, 1.0)
    restart_at: dict[str, float] = {}
    while not stopping:
        time.sleep(0.5)
        if stopping:
            break
        for name, proc in procs.items():
            if proc.poll() is not None and name not in restart_at:
                log.error("%s exited with %s; restarting in %.0f s", name, proc.returncode, backoff[name])
                restart_at[name] = time.monotonic() + backoff[name]
                backoff[name] = min(backoff[name] * 2, max_backoff)
        for name, when in list(restart_at.items()):
            if time.monotonic() >= when:
                procs[name] = _spawn(name, settings)
                del restart_at[name]
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0
