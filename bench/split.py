"""Experiment: what splitting the listener into a reader process and a store process would give at ingest.

    python -m bench.split [--calls 10000] [--db URL] [--runs 1]

Not a benchmark of code that runs (the listener is one process): it measures the two halves side by side, on the
bench's CEL-only stream (see :mod:`bench.ingest`), started together:

- the reader side: the listener as ``callcenter listen`` composes it (AMI client, queue, fsynced spool, delivery)
  with a store that stores nothing, until the delivery has handed it every event;
- the store side: ``CallLogStore.ingest`` in a second process, over the same calls in batches of 4,700 (as the
  delivery hands them over when it runs behind), until every call is stored.

"Both" is the later of the two ends, from the server's first byte, against panoramisk's raw read of the same
bytes in the same run. Not counted: the store process reading the spool back from its file (about 4 us an event,
which the one-process listener saves by handing events over in memory), and the requests the delivery sends
across (backfill, calls cut by a restart). On the 2-core development machine the AMI server, both halves and a
PostgreSQL server share the two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from bench.ami_stream import calls, serve
from bench.ingest import MODEL, NODE, Stream, _clear, compose_listener, make_stream, raw_read
from callcenter.ami.events import CelEvent, Ordinals
from callcenter.calls.channels import Directory
from callcenter.listener.service import CallLogStore, collect_for_throughput
from callcenter.model.hotline import load
from callcenter.store.cursors import FilePosition
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade

BATCH = 4_700


def store_side(url: str, count: int, pipe: Connection) -> None:
    """The store in a process of its own: make the calls' events, say ready, wait for go, store them all, send
    the end time and the CPU seconds it took."""
    ordinals = Ordinals()
    events = [ordinals.assign(event) for _, made in calls(count, time.time()) for event in made]
    upgrade(url)
    db = Database(url)
    _clear(db)
    store = CallLogStore(db, NODE, Directory.from_model(load(MODEL)))
    collect_for_throughput()
    pipe.send("ready")
    pipe.recv()  # go
    cpu = time.process_time()
    for start in range(0, len(events), BATCH):
        store.ingest(events[start:start + BATCH], "ami")
    pipe.send((time.time(), time.process_time() - cpu))
    _clear(db)
    db.dispose()


class NothingStored(CallLogStore):
    """A store that counts what the delivery hands it and stores nothing."""

    handed = 0

    def ingest(self, events: Sequence[CelEvent], source: str, position: FilePosition | None = None) -> list[str]:
        NothingStored.handed += len(events)
        return []

    def build_missing(self) -> list[str]:
        return []

    def finish_cut(self, live: frozenset[str], before: float) -> list[str]:
        return []

    def file_position(self) -> FilePosition | None:
        return None


async def one_run(stream: Stream, url: str, folder: Path) -> str:
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(stream.data, theirs), daemon=True)
    server.start()
    store_pipe, its_pipe = multiprocessing.Pipe()
    store = multiprocessing.Process(target=store_side, args=(url, stream.calls, its_pipe), daemon=True)
    try:
        port = ours.recv()
        raw = await raw_read(port, stream, ours.recv)
        store.start()
        await asyncio.to_thread(store_pipe.recv)  # ready
        nothing = NothingStored(Database(f"sqlite:///{folder}/unused.db"), NODE, Directory.from_model(load(MODEL)))
        NothingStored.handed = 0
        listener, spool = compose_listener(port, nothing, folder)
        cpu = time.process_time()
        store_pipe.send("go")
        task = asyncio.create_task(listener.run())
        try:
            started = await asyncio.to_thread(ours.recv)
            while NothingStored.handed < stream.events:
                if task.done():
                    raise RuntimeError("the listener stopped")
                await asyncio.sleep(0.005)
            reader_end, cpu = time.time(), time.process_time() - cpu
            store_end, store_cpu = await asyncio.to_thread(store_pipe.recv)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            spool.close()
        store.join()
    finally:
        for process in (server, store):
            if process.is_alive():
                process.kill()
                process.join()
    raw_rate = stream.events / raw.seconds
    both = stream.events / (max(reader_end, store_end) - started)
    per_call = 1000 / stream.calls
    return (f"raw read {raw_rate:,.0f} CEL events/s; reader side {stream.events / (reader_end - started):,.0f}/s "
            f"(CPU {cpu * per_call:.2f} s per 1,000 calls); store process {stream.events / (store_end - started):,.0f}"
            f"/s (CPU {store_cpu * per_call:.2f} s); both {both:,.0f}/s, {both / raw_rate:.0%} of raw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="calls in the CEL-only stream (default 10000)")
    parser.add_argument("--db", help="database URL for the store side (default: a temporary SQLite file)")
    parser.add_argument("--runs", type=int, default=1, help="runs, one after the other (default 1)")
    args = parser.parse_args()
    stream = make_stream(args.calls, filtered=True)
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            url = args.db or f"sqlite:///{folder}/bench.db"
            print(f"run {run + 1}: {asyncio.run(one_run(stream, url, Path(folder)))}", flush=True)


if __name__ == "__main__":
    main()
