"""Pieces of the load bench (``bench/load.py``): the bench's telephony model, the processes it runs and watches
(CPU from /proc), the sampler of the listener's backlog, and what the database says about each step's calls."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import tomlkit
from sqlalchemy import select

from callcenter.model.contract import RecordingStatus
from callcenter.settings import PROJECT_ROOT
from callcenter.store.db import Database
from callcenter.store.models import CALL, CelJournal, Recording, calls

TICK = os.sysconf("SC_CLK_TCK")
FIRST_OPERATOR = 1001


def bench_model(source: Path, target: Path, count: int) -> list[str]:
    """Copy the model with ``count`` IP-phone operators ``op1001..`` as the queues' only members (desk agents
    removed); return their ids. Everything else (lines, topics, IVR, citizens) stays as shipped."""
    document = tomlkit.parse(source.read_text(encoding="utf-8"))
    ids = [f"op{FIRST_OPERATOR + n}" for n in range(count)]
    table = tomlkit.table(is_super_table=True)
    for op in ids:
        table.add(op, {"name": f"Bench operator {op[2:]}", "extension": op[2:], "device": "ip_phone"})
    document["operators"] = table
    for queue in document["queues"].values():  # type: ignore[union-attr]
        queue["members"], queue["agents"] = ids, []
    target.write_text(tomlkit.dumps(document), encoding="utf-8")
    return ids


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own user+system CPU of every thread, CPU of its finished and waited-for children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime) / TICK, (cutime + cstime) / TICK


@dataclass
class Service:
    """A ``callcenter`` command run as a real process with its own log."""

    command: str
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", self.command], cwd=PROJECT_ROOT,
                                         env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                raise SystemExit(f"{self.command} did not start ({needle!r} not in {self.log})")
            time.sleep(0.2)

    def wait_idle(self, below: float = 0.05, timeout: float = 300) -> None:
        """Until the process (and its children) used less than ``below`` of a core over a second: the start-up
        backfill of Asterisk's CEL file is done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = sum(cpu_seconds(self.pid))
            time.sleep(1)
            if sum(cpu_seconds(self.pid)) - before < below:
                return
        raise SystemExit(f"{self.command} stayed busy for {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (every core, every process: other work included), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1), inclusive method; NaN when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


@dataclass
class StepCalls:
    """What the database holds of one step's calls (numbers starting with its prefix)."""

    rows: int = 0
    distinct_numbers: int = 0
    answered: int = 0
    topic_keyed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    recordings_stored: int = 0
    recorded_seconds: float = 0.0
    recorded_bytes: int = 0
    answered_without_recording: int = 0
    log_latency: list[float] = field(default_factory=list)
    recording_latency: list[float] = field(default_factory=list)
    talking_mean: float = 0.0
    talking_peak: int = 0
    backlog: list[int] = field(default_factory=list)  # each second: calls hung up whose recording is not stored
    first_start: float = 0.0
    last_end: float = 0.0


def read_step(db: Database, prefix: str, since: datetime, store: Path, topic: str) -> StepCalls:
    """Rows, statuses, recordings and latencies of the calls since ``since`` whose number starts with ``prefix``
    (the listener's start-up backfill brings every earlier call of the sandbox into the database too)."""
    out = StepCalls()
    with db.session() as session:
        rows = session.execute(select(calls).where(CALL.caller_number.like(prefix + "%"),
                                                   CALL.started_at >= since)).mappings().all()
        linkedids = [row["linkedid"] for row in rows]
        ends = dict(session.execute(select(CelJournal.linkedid, CelJournal.event_time).where(
            CelJournal.linkedid.in_(linkedids), CelJournal.event == "LINKEDID_END")).tuples().all())
        recordings = session.scalars(select(Recording).where(Recording.linkedid.in_(linkedids))).all()
    out.rows, out.distinct_numbers = len(rows), len({row["caller_number"] for row in rows})
    for row in rows:
        out.statuses[row["status"]] = out.statuses.get(row["status"], 0) + 1
        out.topic_keyed += row["topic"] == topic
        if row["linkedid"] in ends:
            out.log_latency.append(row["built_at"].timestamp() - ends[row["linkedid"]])
    stored = {rec.linkedid: rec for rec in recordings if rec.status == RecordingStatus.STORED and rec.path}
    out.recordings_stored = len(stored)
    out.recorded_seconds = sum(rec.duration_seconds or 0.0 for rec in stored.values())
    out.recorded_bytes = sum(rec.size_bytes or 0 for rec in stored.values())
    waits = []
    for rec in stored.values():
        if rec.linkedid in ends:
            done = (store / str(rec.path)).stat().st_ctime
            out.recording_latency.append(done - ends[rec.linkedid])
            waits.append((ends[rec.linkedid], done))
    out.backlog = _backlog(waits)
    answered = [row for row in rows if row["answered_at"] is not None]
    out.answered = len(answered)
    out.answered_without_recording = sum(row["linkedid"] not in stored for row in answered)
    _talking(out, [(row["answered_at"], row["ended_at"]) for row in answered],
               [row["started_at"] for row in rows], [row["ended_at"] for row in rows])
    return out


def _backlog(waits: list[tuple[float, float]]) -> list[int]:
    """For each second from the first hang-up to the last store: recordings of ended calls not yet stored."""
    if not waits:
        return []
    first, last = int(min(end for end, _ in waits)), int(max(done for _, done in waits)) + 1
    return [sum(end <= second < done for end, done in waits) for second in range(first, last + 1)]


def _talking(out: StepCalls, talks: list[tuple[datetime, datetime]], starts: list[datetime],
             ends: list[datetime]) -> None:
    """Calls in conversation at once, each second between the first start and the last end."""
    if not talks:
        return
    out.first_start, out.last_end = min(starts).timestamp(), max(ends).timestamp()
    spans = [(a.timestamp(), b.timestamp()) for a, b in talks]
    counts = [sum(a <= second < b for a, b in spans)
              for second in range(int(out.first_start), int(out.last_end) + 1)]
    out.talking_peak = max(counts)
    busy = [count for count in counts if count >= 0.9 * out.talking_peak]  # the plateau, not the ramps
    out.talking_mean = statistics.fmean(busy)
