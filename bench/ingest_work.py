"""The listener's work per CEL event, stage by stage, counted in instructions by valgrind's callgrind.

    python -m bench.ingest_work [--calls 550] [--base-calls 50] [--jobs 2] [--stages read,parse,...]

Timings on the 2-core development machine move by a third from one hour to the next (bench/ingest.py's raw read
gave 46,000 to 99,000 events/s on different days, and two runs a minute apart differ by 30%), so a change worth 3%
of the listener's CPU cannot be seen in them, however often the code before and after are alternated. The number
of instructions a run executes is the same from one run to the next within about 0.3%: this counts them for the
path bench/ingest.py times, on SQLite (whose work runs in the process and is counted too), composed as ``callcenter
listen`` composes it but without the socket and the event loop: the AMI bytes bench/ingest.py's server sends are
handed to the listener's protocol 64 KiB at a time, each CEL message's text goes to the listener's callback, the
events to the spool in batches of the consumer's size, and the delivery stores what is spooled (with its backfill
after a call's end, over a CEL file that does not exist) every ten batches. Left out: the event loop's hand-over
between the callback and the spool (an asyncio queue, about 1% of the listener by timing) and the socket's reads.
Each stage is run for two lengths of the same stream (``--base-calls`` and ``--calls`` calls); the difference in
instructions over the difference in events is the work an event costs, without the start (imports, migrations,
the first preparation of the journal's statements).

Each stage runs the path up to it:

    read      the protocol: UTF-8 decoding, cutting messages, dropping what is not a CEL event (none here)
    parse     + ``from_text``: the message read in one match, its event made
    ordinals  + ``Ordinals.assign``
    spool     + ``Spool.append`` (fsynced), the delivery reading it back (from memory, as at full rate), a store
              that keeps nothing, the commit
    journal   + ``CallLogStore.ingest`` without building: the journal, which calls ended, their history
    build     + building those calls (not written)
    store     + writing them (``upsert_calls``, the summary) and the backfill's look for ended calls without a
              log (skipped before: with no call written it would find every one, each time): the whole path

And, for reference, ``raw``: panoramisk's own protocol over the same bytes (bench/ingest.py's raw read, without the
socket). Its count is no measure of the ratio bench/ingest.py times: on 2026-12-02 the raw read took 168,000
instructions an event and the whole path 157,000, yet the path took 2.5 times the raw read's CPU time. The raw
read's instructions run faster (it touches little memory: short-lived strings and dicts); the path's time per event
grows with the stream's length while its instructions do not (158,200 an event over 2,750 calls, 157,100 over 550),
so memory (the journal's pages, the ordinals' window, what is kept for the delivery) costs it time that no
instruction count shows. Compare versions of the path by its rows, not by the raw row.

Counted: the interpreter, the garbage collector, SQLite, orjson, OpenSSL. Not counted: the kernel's work (the
spool's fsync, SQLite's writes), PostgreSQL's server, waits.

To compare two versions of the code, run this in both checkouts (a git worktree for the older one: ``cd
<worktree> && PYTHONPATH=$PWD <this venv>/bin/python -m bench.ingest_work``, as the venv's editable install points
at its own checkout) and compare the rows: a difference under 1% is noise.
Needs valgrind (``make bench-work`` installs it); a run takes about a minute per stage and length (two at a time
with ``--jobs 2``: 5 to 7 minutes in all).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bench.ami_stream import BANNER, ami_bytes, calls
from bench.results import record
from callcenter.ami.events import CelEvent, Ordinals, from_text
from callcenter.calls.channels import Directory
from callcenter.listener.delivery import Delivery
from callcenter.settings import PROJECT_ROOT
from callcenter.store.cursors import FilePosition

STAGES = ("read", "parse", "ordinals", "spool", "journal", "build", "store")
RAW = "raw"  # panoramisk's own protocol over the same bytes: the reference bench/ingest.py's target is set against
START = 1_790_000_000.0  # the stream's first call (a fixed time: the same stream for every run)
COLLECTED = re.compile(r"Collected : (\d+)")
CHUNK = 64 * 1024  # bytes handed to the protocol at a time (what bench/ami_stream.py's server writes at a time)
DRAIN_EVERY = 10  # batches spooled between two deliveries: ~5,000 events a transaction, as at full rate


def write_stream(count: int, path: Path) -> int:
    """The first ``count`` calls of bench/ingest.py's CEL-only stream, as the bytes its AMI server sends after the
    banner, into ``path``; how many CEL events."""
    made = [events for _, events in calls(count, START)]
    path.write_bytes(BANNER + ami_bytes(made, filtered=True))
    return sum(len(events) for events in made)


class _Sink:
    """The store for the stages before the journal: takes everything, stores nothing."""

    def ingest(self, events: Sequence[CelEvent], source: str, position: FilePosition | None = None) -> list[str]:
        return []

    def finish_cut(self, live: frozenset[str], before: float) -> list[str]:
        return []

    def file_position(self) -> FilePosition | None:
        return None

    def build_missing(self) -> list[str]:
        return []


def run_stage(stage: str, path: Path, calls_expected: int, events_expected: int) -> None:
    """The path up to ``stage`` over the AMI bytes in ``path`` (what runs under callgrind), composed as
    ``callcenter listen`` composes it, without the event loop: the protocol hands each CEL message's text to the
    callback, the events go to the spool in batches of the consumer's size, the delivery stores what is spooled."""
    from bench.ingest import MODEL, NODE
    from callcenter.ami.protocol import Utf8AMIProtocol
    from callcenter.listener import calllog
    from callcenter.listener.backfill import Backfill
    from callcenter.listener.celfile import CelFile
    from callcenter.listener.service import BATCH, CallLogStore, collect_for_throughput
    from callcenter.listener.spool import Spool
    from callcenter.model.hotline import load
    from callcenter.model.watch import ModelWatch
    from callcenter.settings import ListenerSettings
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade
    from callcenter.store.models import Call

    upto = STAGES.index(stage)
    data = path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="ingest-work-") as folder:
        url = f"sqlite:///{folder}/work.db"
        upgrade(url)
        db = Database(url)
        watch = ModelWatch(MODEL, load(MODEL))
        store = CallLogStore(db, NODE, lambda: Directory.from_model(watch.current()))
        if stage == "journal":
            store._build_together = lambda *_, **__: []  # type: ignore[method-assign]
        elif stage == "build":
            calllog.upsert_calls = lambda *_, **__: None  # type: ignore[assignment,attr-defined]
        if stage in ("journal", "build"):  # no call is written: the backfill's look for ended calls without a
            store.build_missing = lambda: []  # type: ignore[method-assign]  # log would find every one, each time
        sink = store if upto >= STAGES.index("journal") else _Sink()
        options = ListenerSettings()
        spool = Spool(Path(folder) / "spool.jsonl", options.spool_max_bytes)
        delivery = Delivery(spool, sink, Backfill(CelFile(Path(folder) / "no-cel-file.json"), sink),
                            options.retry_min, options.retry_max)
        ordinals, tz = Ordinals(), ZoneInfo("UTC")
        pending: list[CelEvent] = []
        if upto == STAGES.index("read"):
            def take(text: str) -> None:
                pass
        elif upto == STAGES.index("parse"):
            def take(text: str) -> None:
                pending.append(from_text(text, tz))
        else:
            def take(text: str) -> None:  # Listener._take
                pending.append(ordinals.assign(from_text(text, tz)))
        protocol = Utf8AMIProtocol(events=frozenset({"CEL"}), direct={"CEL": take})
        protocol.connection_made(_Transport())
        collect_for_throughput()  # as `callcenter listen` does
        parsed = batches = 0
        for start in range(0, len(data), CHUNK):
            protocol.data_received(data[start:start + CHUNK])
            parsed += len(pending)
            if upto >= STAGES.index("spool"):
                for at in range(0, len(pending), BATCH):
                    spool.append(pending[at:at + BATCH])
                    batches += 1
                    if batches % DRAIN_EVERY == 0:
                        _delivered(delivery)
            pending.clear()
        if upto >= STAGES.index("spool"):
            _delivered(delivery)
        if protocol.malformed or (upto >= STAGES.index("parse") and parsed != events_expected):
            raise RuntimeError(f"{parsed} events parsed of {events_expected}, {protocol.malformed} malformed")
        if stage == "store":
            with db.session() as session:
                stored = session.scalar(select(func.count()).select_from(Call))
            if stored != calls_expected:
                raise RuntimeError(f"{stored} calls stored of {calls_expected}")
        spool.close()
        db.dispose()


def run_raw(path: Path, events_expected: int) -> None:
    """The reference: panoramisk's own protocol reads the same bytes, 64 KiB at a time, and dispatches every
    message (bench/ingest.py's raw read, without the socket)."""
    from panoramisk.ami_protocol import AMIProtocol

    from bench.ingest import CelCounting

    data = path.read_bytes()
    protocol, factory = AMIProtocol(), CelCounting()
    protocol.connection_made(_Transport())
    protocol.factory = factory
    protocol.encoding = "utf8"
    for start in range(0, len(data), CHUNK):
        protocol.data_received(data[start:start + CHUNK])
    if factory.seen != events_expected:
        raise RuntimeError(f"the raw read dispatched {factory.seen} CEL events of {events_expected}")


def _delivered(delivery: Delivery) -> None:
    """Store what is spooled; the store's error, if any, ends the run (the delivery only returns it)."""
    error = delivery.deliver()
    if error is not None:
        raise RuntimeError("the store failed") from error


class _Transport:
    """What the protocol is given as its connection: nothing is sent back here."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def count(stage: str, path: Path, calls_in: int, events_in: int) -> tuple[int, float]:
    """Instructions executed by a run of ``stage`` over ``path`` (``calls_in`` calls, ``events_in`` CEL events)
    under callgrind, and its seconds."""
    started = time.monotonic()
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
                           "bench.ingest_work", "--child", stage, "--stream", str(path), "--expect",
                           str(calls_in), str(events_in)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"stage {stage} over {path.name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(found.group(1)), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=550, help="calls in the longer stream (default 550)")
    parser.add_argument("--base-calls", type=int, default=50, help="calls in the shorter one (default 50)")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages to count, comma-separated "
                        f"(default all: {','.join(STAGES)}); only a run of all is kept for bench.report")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once (default 2)")
    parser.add_argument("--child", choices=(*STAGES, RAW), help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, nargs=2, help=argparse.SUPPRESS)  # calls, CEL events
    args = parser.parse_args()
    if args.child == RAW:
        run_raw(args.stream, args.expect[1])
        return
    if args.child:
        run_stage(args.child, args.stream, *args.expect)
        return
    asked = args.stages.split(",")
    stages = [stage for stage in STAGES if stage in asked]
    if set(asked) - set(STAGES) or not stages:
        parser.error(f"--stages: among {', '.join(STAGES)}, comma-separated")
    if not 0 < args.base_calls < args.calls:
        parser.error("--base-calls must be above 0 and below --calls")
    if args.jobs < 1:
        parser.error("--jobs must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="ingest-work-") as folder:
        paths = {n: Path(folder) / f"stream-{n}.ami" for n in (args.base_calls, args.calls)}
        events = {n: write_stream(n, path) for n, path in paths.items()}
        added = events[args.calls] - events[args.base_calls]
        print(f"{args.base_calls} and {args.calls} calls ({events[args.base_calls]:,} and {events[args.calls]:,} "
              f"CEL events), {len(stages)} stages under callgrind, {args.jobs} at a time", flush=True)
        runs = [(stage, n) for stage in [*stages, RAW] for n in paths]
        counted: dict[tuple[str, int], int] = {}

        def one(run: tuple[str, int]) -> None:
            counted[run], seconds = count(run[0], paths[run[1]], run[1], events[run[1]])
            print(f"  {run[0]:<8} {run[1]:>5} calls: {counted[run]:,} instructions ({seconds:.0f} s)", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, runs))
    per = {stage: (counted[stage, args.calls] - counted[stage, args.base_calls]) / added for stage in stages}
    print(f"\n{'stage':<10}{'instructions/event':>20}{'since the row before':>22}")
    rows, before = [], None
    for stage in stages:
        own = "" if before is None else f"{per[stage] - before:,.0f}"
        print(f"{stage:<10}{per[stage]:>20,.0f}{own:>22}")
        rows.append((f"instructions per CEL event up to {stage}", f"{per[stage]:,.0f}" + (
            f" ({own} in this stage)" if own else "")))
        before = per[stage]
    raw = (counted[RAW, args.calls] - counted[RAW, args.base_calls]) / added
    print(f"{'raw':<10}{raw:>20,.0f}{'':>22}  panoramisk's own protocol over the same bytes (the reference)")
    rows.append(("panoramisk's raw read over the same bytes (the reference), instructions per CEL event",
                 f"{raw:,.0f}"))
    if stages == list(STAGES):
        print(f"\nthe whole path: {per[STAGES[-1]] / raw:.0%} of the raw read's instructions; by time it is not "
              "comparable (see the README)")
        record("ingest_work", rows)


if __name__ == "__main__":
    main()
