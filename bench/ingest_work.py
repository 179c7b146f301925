"""The listener's work per CEL event, stage by stage, counted in instructions by valgrind's callgrind.

    python -m bench.ingest_work [--calls 550] [--base-calls 50] [--jobs 2] [--stages read,parse,...]

Timings on the 2-core development machine move by a third from one hour to the next (bench/ingest.py's raw read
gave 46,000 to 99,000 events/s on different days, and two runs a minute apart differ by 30%), so a change worth 3%
of the listener's CPU cannot be seen in them, however often the code before and after are alternated. The number
of instructions a run executes is the same from one run to the next within about 0.3%: this counts them for the
path bench/ingest.py times, without its socket and event loop, on SQLite (whose work runs in the process and is
counted too). Each stage is run for two lengths of the same stream (``--base-calls`` and ``--calls`` calls); the
difference in instructions over the difference in events is the work an event costs, without the start (imports,
migrations, the first preparation of the journal's statements).

Each stage runs the path up to it:

    read      the harness alone: the stream's CEL messages read from a file (what a stage's figure is above)
    parse     + ``from_text``: the message read in one match, its event made
    ordinals  + ``Ordinals.assign``
    spool     + ``Spool.append`` (fsynced), read back (from memory, as at full rate) and committed
    journal   + ``CallLogStore.ingest`` without building: the journal, which calls ended, their history
    build     + building those calls (not written)
    store     + writing them (``upsert_calls``, the summary): the whole path

Counted: the interpreter, the garbage collector, SQLite, orjson, OpenSSL. Not counted: the kernel's work (the
spool's fsync, SQLite's writes), PostgreSQL's server, waits.

To compare two versions of the code, run this in both checkouts (a git worktree for the older one: ``cd
<worktree> && PYTHONPATH=$PWD <this venv>/bin/python -m bench.ingest_work``, as the venv's editable install points
at its own checkout) and compare the rows: a difference under 1% is noise.
Needs valgrind (``make bench-work`` installs it); a run takes about a minute per stage and length (two at a time
with ``--jobs 2``: about 5 minutes in all).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.ami_stream import calls, cel_message
from bench.results import record
from callcenter.settings import PROJECT_ROOT

STAGES = ("read", "parse", "ordinals", "spool", "journal", "build", "store")
SEPARATOR = "\x00"  # between messages in the stream's file (no message holds one)
START = 1_790_000_000.0  # the stream's first call (a fixed time: the same stream for every run)
COLLECTED = re.compile(r"Collected : (\d+)")
BATCH = 500  # events the listener's consumer spools at once (callcenter.listener.service.BATCH)
DRAIN_EVERY = 10  # batches spooled between two drains: ~5,000 events a transaction, as at full rate


def write_stream(count: int, path: Path) -> int:
    """The first ``count`` calls of bench/ingest.py's stream, their CEL messages as the protocol hands them to the
    listener (stripped), into ``path``; how many events."""
    events = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        for _, made in calls(count, START):
            for event in made:
                out.write(cel_message(event).strip() + SEPARATOR)
                events += 1
    return events


def run_stage(stage: str, path: Path) -> None:
    """The path up to ``stage`` over the messages in ``path`` (what runs under callgrind)."""
    from sqlalchemy import func, select

    from bench.ingest import MODEL
    from callcenter.ami.events import Ordinals, from_text
    from callcenter.calls.channels import Directory
    from callcenter.listener import calllog
    from callcenter.listener.service import CallLogStore, collect_for_throughput
    from callcenter.listener.spool import Spool
    from callcenter.model.hotline import load
    from callcenter.store.db import Database
    from callcenter.store.migrate import upgrade
    from callcenter.store.models import Call

    texts = path.read_bytes().decode("utf-8").split(SEPARATOR)[:-1]  # as written: the lines end in CR LF
    folder = Path(tempfile.mkdtemp(prefix="ingest-work-"))
    url = f"sqlite:///{folder}/work.db"
    upgrade(url)
    db = Database(url)
    store = CallLogStore(db, "bench", Directory.from_model(load(MODEL)))
    if stage == "journal":
        store._build_together = lambda *_, **__: []  # type: ignore[method-assign]
    elif stage == "build":
        calllog.upsert_calls = lambda *_, **__: None  # type: ignore[assignment,attr-defined]
    spool = Spool(folder / "spool.jsonl", 1 << 40)
    ordinals, tz = Ordinals(), ZoneInfo("UTC")
    collect_for_throughput()  # as `callcenter listen` does
    upto = STAGES.index(stage)
    for number, start in enumerate(range(0, len(texts), BATCH)):
        some = texts[start:start + BATCH]
        if upto < STAGES.index("parse"):
            continue
        events = [from_text(text, tz) for text in some]
        if upto < STAGES.index("ordinals"):
            continue
        events = [ordinals.assign(event) for event in events]
        if upto < STAGES.index("spool"):
            continue
        spool.append(events)
        if number % DRAIN_EVERY == DRAIN_EVERY - 1 or start + BATCH >= len(texts):
            while (pending := spool.read()) is not None:
                if upto >= STAGES.index("journal"):
                    store.ingest(pending.events, "ami")
                spool.commit(pending.end)
    if stage == "store":
        with db.session() as session:
            stored = session.scalar(select(func.count()).select_from(Call))
        if stored != sum("\r\nEventName: LINKEDID_END\r\n" in text for text in texts):
            raise RuntimeError(f"{stored} calls stored from {len(texts)} events")
    spool.close()
    db.dispose()


def count(stage: str, path: Path) -> tuple[int, float]:
    """Instructions executed by a run of ``stage`` over ``path`` under callgrind, and its seconds."""
    started = time.monotonic()
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
                           "bench.ingest_work", "--child", stage, "--messages", str(path)],
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
                        f"(default all: {','.join(STAGES)})")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once (default 2)")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_stage(args.child, args.messages)
        return
    stages = [stage for stage in STAGES if stage in args.stages.split(",")]
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown or not stages or not 0 < args.base_calls < args.calls:
        parser.error(f"stages among {', '.join(STAGES)} (not {', '.join(sorted(unknown))}); 0 < --base-calls "
                     "< --calls")
    with tempfile.TemporaryDirectory(prefix="ingest-work-") as folder:
        paths = {n: Path(folder) / f"stream-{n}.txt" for n in (args.base_calls, args.calls)}
        events = {n: write_stream(n, path) for n, path in paths.items()}
        added = events[args.calls] - events[args.base_calls]
        print(f"{args.base_calls} and {args.calls} calls ({events[args.base_calls]:,} and {events[args.calls]:,} "
              f"CEL events), {len(stages)} stages under callgrind, {args.jobs} at a time", flush=True)
        runs = [(stage, n) for stage in stages for n in paths]
        counted: dict[tuple[str, int], int] = {}

        def one(run: tuple[str, int]) -> None:
            counted[run], seconds = count(run[0], paths[run[1]])
            print(f"  {run[0]:<8} {run[1]:>5} calls: {counted[run]:,} instructions ({seconds:.0f} s)", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, runs))
    per = {stage: (counted[stage, args.calls] - counted[stage, args.base_calls]) / added for stage in stages}
    print(f"\n{'stage':<10}{'instructions/event':>20}{'this stage':>12}")
    rows, before = [], None
    for stage in stages:
        own = "" if before is None else f"{per[stage] - before:,.0f}"
        print(f"{stage:<10}{per[stage]:>20,.0f}{own:>12}")
        rows.append((f"instructions per CEL event up to {stage}", f"{per[stage]:,.0f}" + (
            f" ({own} in this stage)" if own else "")))
        before = per[stage]
    record("ingest_work", rows)


if __name__ == "__main__":
    main()
