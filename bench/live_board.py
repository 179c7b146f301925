"""Live board latency: from a CEL event in Asterisk to the board's snapshot reaching a subscribed page.

    python -m bench.live_board [--calls 10] [--talk 2]

Needs the sandbox Asterisk (``make asterisk``). Starts the app (``callcenter api`` with the live board on, over a
throw-away SQLite database) and, unless one already listens, the IVR; registers one operator; places ``--calls``
real calls one after the other (menu, topic, queue, answer, talk, hang up) while a client reads the board's
server-sent events with an API token, as the page does. Every snapshot carries the time of the CEL event that
caused it (Asterisk's own clock, to the microsecond, same host); the figure is the receive time minus that.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from bench.results import record
from callcenter.model.contract import Role
from callcenter.model.hotline import HotlineModel, Line, load
from callcenter.sandbox import port_in_use
from callcenter.sandbox.asterisk import is_running
from callcenter.sandbox.simulate import Demo, open_line
from callcenter.settings import PROJECT_ROOT, Settings
from callcenter.store import accounts
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not port_in_use(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.1)


class BoardReader(threading.Thread):
    """Reads /live/events; keeps (receive time, event time) of each snapshot caused by a new CEL event."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.latencies: list[float] = []
        self.snapshots = 0
        self.connected = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self.stopping.is_set():
                raise

    def _read(self) -> None:
        last: float | None = None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        with httpx.Client(timeout=None) as client, \
                client.stream("GET", f"{self.url}/live/events", headers=headers) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                received = time.time()
                board = json.loads(line[5:])
                self.snapshots += 1
                if board.get("connected"):
                    self.connected.set()
                event_time = board.get("event_time")
                if event_time is not None and event_time != last:
                    if last is not None:  # the first snapshot may show an event from before we subscribed
                        self.latencies.append(received - event_time)
                    last = event_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10, help="calls to place, one after the other (default 10)")
    parser.add_argument("--talk", type=float, default=2.0, help="seconds each call talks (default 2)")
    args = parser.parse_args()
    settings = Settings()
    model = load(settings.model_file)
    if not is_running(settings.sandbox.root):
        raise SystemExit("the sandbox Asterisk is not running: `make asterisk` first")
    line, why = open_line(model, None)
    if line is None:
        raise SystemExit(why)
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        db = Database(url)
        with db.session() as session:
            user = accounts.create_user(session, accounts.NewUser("bench", Role.SUPERVISOR, os.urandom(12).hex()))
            token = accounts.create_token(session, user, "bench")
        db.dispose()
        port = _free_port()
        env = {**os.environ, "CALLCENTER_DB__URL": url, "CALLCENTER_API__PORT": str(port),
               "CALLCENTER_API__LIVE_BOARD": "true", "CALLCENTER_RECORDINGS__STORE": f"{folder}/store"}
        with Path(folder, "processes.log").open("wb") as log:
            try:
                _measure(args, settings, model, line, started, log, env, port, token)
            finally:
                for proc in reversed(started):
                    proc.terminate()
                    proc.wait(10)


def _measure(args: argparse.Namespace, settings: Settings, model: HotlineModel, line: Line,
             started: list[subprocess.Popen[bytes]], log: IO[bytes], env: dict[str, str], port: int,
             token: str) -> None:
    if not port_in_use(model.ivr.address.port):
        started.append(subprocess.Popen([sys.executable, "-m", "callcenter", "ivr"], cwd=PROJECT_ROOT,
                                        stdout=log, stderr=subprocess.STDOUT))
        _wait_port(model.ivr.address.port, started[-1], "the IVR")
    started.append(subprocess.Popen([sys.executable, "-m", "callcenter", "api"], cwd=PROJECT_ROOT, env=env,
                                    stdout=log, stderr=subprocess.STDOUT))
    _wait_port(port, started[-1], "the app")
    reader = BoardReader(f"http://127.0.0.1:{port}", token)
    reader.start()
    if not reader.connected.wait(30):
        raise SystemExit("the live board did not connect to AMI")
    demo = Demo(settings, model, line)
    operator = demo.agent(model.queues[line.queue].members[0], wav_seconds=3600, register=True)
    digit = model.line_topics(line)[0].digit
    try:
        for n in range(args.calls):
            print(f"call {n + 1}/{args.calls}: {demo.call('citizen1', demo.new_number(), digit, args.talk)}",
                  flush=True)
    finally:
        operator.stop()
    _report(reader, args.calls)
    reader.stopping.set()


def _report(reader: BoardReader, calls: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not reader.latencies:
        time.sleep(0.1)
    found = sorted(reader.latencies)
    if not found:
        raise SystemExit("no snapshot caused by a CEL event arrived")
    ms = [1000 * value for value in found]
    quantiles = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    print(f"\n{calls} call(s): {reader.snapshots} snapshots, {len(ms)} caused by a new CEL event")
    print(f"CEL event -> board snapshot at the client: median {statistics.median(ms):.1f} ms, "
          f"p90 {quantiles[89]:.1f} ms, p99 {quantiles[98]:.1f} ms, max {ms[-1]:.1f} ms")
    record("live_board", [(f"a CEL event in Asterisk to the board's snapshot at a client ({calls} real calls, "
                           f"{len(ms)} events)", f"median {statistics.median(ms):.1f} ms, p90 {quantiles[89]:.1f} ms, "
                                                 f"max {ms[-1]:.1f} ms")])


if __name__ == "__main__":
    main()
