"""Load through the real sandbox: many concurrent recorded calls, sustained, with nothing lost.

    python -m bench.load [--concurrent 100] [--minutes 5] [--steps 40,70,100,130] [--talk 60] [--db URL]

Needs root and the running sandbox Asterisk (``make asterisk``) and SIPp (``sip-tester``). For the run it renders
Asterisk's configuration from a copy of the model with enough IP-phone operators (``op1001..``, the queue's only
members) and restores the shipped model's configuration afterwards. Operators: one SIPp registers them all and
another answers every call at once, echoing the caller's RTP. Citizens: one SIPp per step places the calls with
digest auth, plays real G.711 audio, keys topic 1 after the greeting (through the real IVR, ``callcenter ivr``),
waits in the queue, talks ``--talk`` seconds and hangs up; ``--concurrent`` is how many calls SIPp holds at once
(IVR + queue + conversation), new ones starting as old ones end. MixMonitor records every conversation; the real
listener (``callcenter listen``: call log + recordings worker, SQLite in a temporary folder or ``--db``) stores
them. Asterisk's CEL file has every earlier call too: the listener backfills it first, before anything is timed.

Per step: calls placed (SIPp), call-log rows (lost: placed without a row; doubled: a number with two rows),
recordings stored for answered calls, hang-up (CEL LINKEDID_END, Asterisk's clock) -> call-log row (``built_at``)
and -> stored copy (its file's ctime: renamed into the store just before the row commits), p50/p95, CPU seconds
per call of the listener (every thread: event loop, call log, the worker's Python side and its in-process verify),
of its ffmpeg children (the worker's encodes), of Asterisk, of the IVR (and its per-call processes) and of SIPp,
each from /proc over the step (placing, then draining until every recording is stored); and the recordings backlog
over time.
Targets: hang-up -> call log p95 < 1 s, -> recording p95 < 10 s; the knee is the first step that breaks one.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import sipp
from bench.load_parts import Service, StepCalls, bench_model, cpu_seconds, machine_cpu, quantile, read_step
from bench.results import record
from callcenter.asterisk.secrets import sip_password
from callcenter.model.hotline import HotlineModel, load
from callcenter.sandbox import asterisk, port_in_use
from callcenter.settings import PROJECT_ROOT, Settings
from callcenter.store.db import Database

OPERATOR_PORT, OPERATOR_MEDIA = 5070, 42000
KEY_AT = 15.5  # after the greeting (13.4 s): the menu takes the key while its intro plays
LOG_TARGET, RECORDING_TARGET = 1.0, 10.0
CORES = os.cpu_count() or 1


@dataclass
class Step:
    """One load level and what came of it."""

    concurrent: int
    placed: int = 0
    sipp_ok: int = 0
    sipp_failed: int = 0
    wall: float = 0.0
    cpu: dict[str, float] | None = None
    calls: StepCalls | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrent", type=int, default=100, help="calls held at once (default 100)")
    parser.add_argument("--steps", default="", help="several levels, e.g. 40,70,100,130 (instead of --concurrent)")
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of new calls per level (default 5)")
    parser.add_argument("--talk", type=float, default=60.0, help="seconds each call talks after the IVR (default 60)")
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    levels = [int(n) for n in args.steps.split(",")] if args.steps else [args.concurrent]
    settings = Settings()
    _preflight(settings)
    signal.signal(signal.SIGTERM, _interrupted)  # the finally blocks restore the sandbox
    signal.signal(signal.SIGINT, _interrupted)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as name:
        folder = Path(name)
        steps = _run(args, levels, settings, load(settings.model_file), folder)
    _report(steps, args)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _preflight(settings: Settings) -> None:
    sipp.require_sipp()
    if os.geteuid() != 0:
        raise SystemExit("needs root (the sandbox is a chroot)")
    if not asterisk.is_running(settings.sandbox.root):
        raise SystemExit("the sandbox Asterisk is not running: `make asterisk` first")
    busy = [port for port in (OPERATOR_PORT, 5090, settings.metrics.listener_port, settings.metrics.ivr_port, 4573)
            if port_in_use(port)]
    if busy:
        raise SystemExit(f"ports in use: {busy} (another listener, IVR or SIPp?)")


def _run(args: argparse.Namespace, levels: list[int], settings: Settings, model: HotlineModel,
         folder: Path) -> list[Step]:
    model_file = folder / "hotline-bench.toml"
    operator_ids = bench_model(settings.model_file, model_file, max(levels) + 10)
    secret = settings.pbx.sip_secret
    ops = [(op, sip_password(secret, op)) for op in operator_ids]
    citizen = model.sandbox.citizen_ids[0]
    account = (citizen, sip_password(secret, citizen))
    db_url = args.db or f"sqlite:///{folder}/bench.db"
    store = folder / "store"
    env = {"CALLCENTER_MODEL_FILE": str(model_file), "CALLCENTER_DB__URL": db_url,
           "CALLCENTER_RECORDINGS__STORE": str(store), "CALLCENTER_LISTENER__SPOOL_DIR": str(folder / "spool")}
    aside = _set_spool_aside(settings, folder)
    started: list[Service | sipp.Sipp] = []
    try:
        _reload(env)
        sipp.register(folder, ops, OPERATOR_PORT, 3600)
        started.append(sipp.operators(folder, OPERATOR_PORT, OPERATOR_MEDIA))
        ivr = Service("ivr", folder / "ivr.log", env).start()
        started.append(ivr)
        listener = Service("listen", folder / "listener.log", env).start()
        started.append(listener)
        listener.wait_log("AMI: logged in", 60)
        print("listener up; waiting for its start-up backfill of Asterisk's CEL file", flush=True)
        listener.wait_idle()
        db = Database(db_url)
        line = next(iter(model.lines))
        topic = model.line_topics(model.lines[line])[0].code
        scenario = sipp.citizen_scenario(folder, KEY_AT + args.talk, KEY_AT)
        pids = {"listener": listener.pid, "asterisk": asterisk.pid(settings.sandbox.root) or 0, "ivr": ivr.pid,
                "sipp-operators": started[0].proc.pid if isinstance(started[0], sipp.Sipp) and started[0].proc else 0}
        run_tag = f"{random.randrange(10000):04d}"
        steps = []
        for index, level in enumerate(levels):
            step = _step(args, level, f"09{run_tag}{index}", folder, scenario, account, line, pids, db, store,
                         topic)
            steps.append(step)
        db.dispose()
        return steps
    finally:
        for proc in reversed(started):
            proc.stop()
        try:
            sipp.register(folder, ops, OPERATOR_PORT, 0)
        except SystemExit as exc:
            print(f"un-registering the bench operators: {exc}", file=sys.stderr)
        _reload({})
        _restore_spool(settings, aside)
        _keep_logs(folder)


def _reload(env: dict[str, str]) -> None:
    """Render Asterisk's configuration from the bench model (or, with no env, the shipped one) and reload."""
    subprocess.run([sys.executable, "-m", "callcenter", "asterisk", "reload"], cwd=PROJECT_ROOT,
                   env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)


def _set_spool_aside(settings: Settings, folder: Path) -> Path:
    """Move what other runs left in the sandbox's recordings spool out of the bench listener's way."""
    aside = folder / "spool-aside"
    aside.mkdir()
    for entry in settings.recordings.spool.iterdir():
        shutil.move(entry, aside / entry.name)
    return aside


def _restore_spool(settings: Settings, aside: Path) -> None:
    for entry in aside.iterdir():
        shutil.move(entry, settings.recordings.spool / entry.name)


def _keep_logs(folder: Path) -> None:
    """Copy the processes' logs to var/bench-load/ (the temporary folder goes)."""
    keep = PROJECT_ROOT / "var/bench-load"
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    for log in folder.glob("*.log"):
        shutil.copy(log, keep / log.name)
    for log in folder.glob("*.out"):
        shutil.copy(log, keep / log.name)
    for log in folder.glob("*-stat.csv"):
        shutil.copy(log, keep / log.name)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pid in pids.items():
        own, children = cpu_seconds(pid) if pid else (0.0, 0.0)
        out[name], out[f"{name}+children"] = own, children
    return out


def _children_cpu() -> float:
    """CPU of this process's finished children (the citizens' SIPp)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _step(args: argparse.Namespace, level: int, prefix: str, folder: Path, scenario: Path,
          account: tuple[str, str], line: str, pids: dict[str, int], db: Database, store: Path,
          topic: str) -> Step:
    """One level: calls start at an even rate (level / call length: the ramp takes one call, then one call
    starts as one ends), for ``--minutes``; then wait until every row and recording is in."""
    call_seconds = KEY_AT + args.talk + 2
    total = math.ceil(level * args.minutes * 60 / call_seconds)
    rate = 1.02 * level / call_seconds
    print(f"\n{level} at once: {total} calls, {rate:.2f} new calls/s, {call_seconds:.0f} s each", flush=True)
    before, start, children, machine = _cpu(pids), time.monotonic(), _children_cpu(), machine_cpu()
    since = datetime.now(UTC) - timedelta(seconds=5)
    uac = sipp.citizens(folder, scenario, account, prefix, line, level, rate, total, str(level))
    step = Step(level)
    try:
        uac.wait(total / rate + 3 * call_seconds + 300)
    finally:
        uac.stop()
    step.placed, step.sipp_ok, step.sipp_failed = (uac.count("OutgoingCall(C)"), uac.count("SuccessfulCall(C)"),
                                                   uac.count("FailedCall(C)"))
    step.calls = _drain(db, prefix, since, store, topic, step.placed)
    step.wall = time.monotonic() - start
    after = _cpu(pids)
    step.cpu = {name: after[name] - before[name] for name in after}
    step.cpu["sipp-citizens"] = _children_cpu() - children
    step.cpu["machine"] = machine_cpu() - machine
    _print_step(step)
    return step


def _drain(db: Database, prefix: str, since: datetime, store: Path, topic: str, placed: int,
           quiet: float = 120) -> StepCalls:
    """Wait until every placed call has its row and every answered call its stored recording; give up only
    after ``quiet`` seconds without a new row or recording (a slow worker is measured, not cut short)."""
    last, progress = (-1, -1), time.monotonic()
    while True:
        found = read_step(db, prefix, since, store, topic)
        if found.rows >= placed and found.answered_without_recording == 0:
            return found
        if (found.rows, found.recordings_stored) != last:
            last, progress = (found.rows, found.recordings_stored), time.monotonic()
        elif time.monotonic() - progress > quiet:
            return found
        time.sleep(2)


def _ms(values: list[float], q: float) -> str:
    return f"{1000 * quantile(values, q):,.0f}"


def _print_step(step: Step) -> None:
    calls = step.calls
    assert calls is not None and step.cpu is not None
    print(f"placed {step.placed} (SIPp ok {step.sipp_ok}, failed {step.sipp_failed}); rows {calls.rows} "
          f"({calls.distinct_numbers} numbers); statuses {calls.statuses}; topic keyed {calls.topic_keyed}; "
          f"answered {calls.answered}, recordings stored {calls.recordings_stored}, answered without one "
          f"{calls.answered_without_recording} ({calls.recorded_seconds / 3600:.2f} h of audio, "
          f"{calls.recorded_bytes / 1e6:.1f} MB); talking at once mean {calls.talking_mean:.0f} peak "
          f"{calls.talking_peak}", flush=True)
    print(f"hang-up -> log p50/p95/max {_ms(calls.log_latency, .5)}/{_ms(calls.log_latency, .95)}/"
          f"{1000 * max(calls.log_latency, default=0):,.0f} ms; -> recording p50/p95/max "
          f"{_ms(calls.recording_latency, .5)}/{_ms(calls.recording_latency, .95)}/"
          f"{1000 * max(calls.recording_latency, default=0):,.0f} ms", flush=True)
    print(f"CPU s over {step.wall:.0f} s: " + ", ".join(f"{k} {v:.1f}" for k, v in step.cpu.items()), flush=True)
    backlog = calls.backlog
    every = max(1, len(backlog) // 30)
    print(f"recordings of ended calls not yet stored, every {every} s: "
          + " ".join(str(n) for n in backlog[::every]), flush=True)


def _report(steps: list[Step], args: argparse.Namespace) -> None:
    head = ("at once", "talking", "placed", "rows", "lost", "doubled", "rec lost", "log p50", "log p95",
            "rec p50", "rec p95", "listener", "ffmpeg", "asterisk", "ivr", "asterisk core", "machine busy",
            "backlog max", "targets")
    print("\n" + " | ".join(head))
    print(" | ".join("---" for _ in head))
    rows: list[tuple[str, str]] = []
    for step in steps:
        calls, cpu = step.calls, step.cpu
        assert calls is not None and cpu is not None
        n = max(1, step.placed)
        ok = (quantile(calls.log_latency, .95) < LOG_TARGET, quantile(calls.recording_latency, .95) < RECORDING_TARGET)
        broken = [what for what, good in zip(("log", "recording"), ok, strict=True) if not good]
        lost = max(0, step.placed - calls.distinct_numbers)
        cells = (step.concurrent, f"{calls.talking_mean:.0f} (peak {calls.talking_peak})", step.placed, calls.rows,
                 lost, calls.rows - calls.distinct_numbers, calls.answered_without_recording,
                 _ms(calls.log_latency, .5), _ms(calls.log_latency, .95), _ms(calls.recording_latency, .5),
                 _ms(calls.recording_latency, .95), f"{1000 * cpu['listener'] / n:.0f} ms",
                 f"{1000 * cpu['listener+children'] / n:.0f} ms", f"{1000 * cpu['asterisk'] / n:.0f} ms",
                 f"{1000 * (cpu['ivr'] + cpu['ivr+children']) / n:.0f} ms",
                 f"{100 * cpu['asterisk'] / step.wall:.0f}%", f"{100 * cpu['machine'] / step.wall / CORES:.0f}%",
                 max(calls.backlog, default=0),
                 "met" if not broken else "BROKEN: " + ", ".join(broken))
        print(" | ".join(str(cell) for cell in cells))
        rows.append((f"{step.concurrent} calls held at once ({calls.talking_mean:.0f} talking), {step.placed} placed",
                     f"lost {lost}, recordings lost {calls.answered_without_recording}; hang-up -> log p95 "
                     f"{_ms(calls.log_latency, .95)} ms, -> recording p95 {_ms(calls.recording_latency, .95)} ms; "
                     + ("targets met" if not broken else "BROKEN: " + ", ".join(broken))))
    record("load", rows)
    print(f"\n(latencies in ms; CPU per call placed; {args.talk:.0f} s talk after the IVR; "
          f"{args.minutes:g} min of new calls per level; asterisk core: of one core; machine busy: all "
          f"{CORES} cores, other work on the machine included)")


if __name__ == "__main__":
    main()
