"""Experiment: what splitting the listener into a reader process and a store process would give at ingest.

    python -m bench.split [--calls 10000] [--db URL] [--runs 1] [--hand-over spool|memory]

Not a benchmark of code that runs (the listener is one process): it measures the two halves side by side, on the
bench's CEL-only stream (see :mod:`bench.ingest`), started together:

``--hand-over spool`` (the default): the halves as a split listener would run them.

- the reader side: the listener as ``callcenter listen`` composes it (AMI client, queue, fsynced spool) without
  its delivery (nor the events its spool keeps in memory for one), until every event is in the spool file;
- the store side: a second process follows that file as it grows, reads each new stretch of whole lines (up to
  1 MiB, about 5,000 events) back into events as the delivery reads a spool left by an earlier process, and
  stores them with ``CallLogStore.ingest``, until every call is stored.

``--hand-over memory``: the optimistic bound measured first. The reader side keeps its delivery, with a store that
stores nothing, until the delivery has handed it every event; the store side stores the same calls, made in its
own memory before the start, in batches of 4,700 (no read-back, no waiting for the reader).

"Both" is the later of the two ends, from the server's first byte, against panoramisk's raw read of the same
bytes in the same run. Not counted either way: the requests the delivery would get across processes (backfill,
calls cut by a restart) and a saved read position. On the 2-core development machine the AMI server, both halves
and a PostgreSQL server share the two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from bench.ami_stream import calls, serve
from bench.ingest import MODEL, NODE, Stream, _clear, compose_listener, make_stream, raw_read
from callcenter.ami.events import CelEvent, Ordinals
from callcenter.calls.channels import Directory
from callcenter.listener import spool as spool_module
from callcenter.listener.service import CallLogStore, Listener, collect_for_throughput
from callcenter.listener.spool import Spool, _event
from callcenter.model.hotline import load
from callcenter.store import jsoncodec
from callcenter.store.cursors import FilePosition
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade

BATCH = 4_700
READ_BYTES = 1024 * 1024  # a stretch of the spool read back at once (as the delivery reads a spool file)


def store_side(url: str, count: int, pipe: Connection) -> None:
    """The store in a process of its own, over the calls' events made in its memory first (``--hand-over
    memory``): stored in batches of BATCH."""
    ordinals = Ordinals()
    events = [ordinals.assign(event) for _, made in calls(count, time.time()) for event in made]
    _store_when_told(url, pipe, lambda store: [store.ingest(events[start:start + BATCH], "ami")
                                               for start in range(0, len(events), BATCH)])


def spool_follower(url: str, path: Path, want: int, pipe: Connection) -> None:
    """The store in a process of its own, fed by the reader's spool file (``--hand-over spool``): whole lines read
    as they are appended, and stored, until ``want`` events are."""

    def follow(store: CallLogStore) -> None:
        stored, rest = 0, b""
        with path.open("rb") as spool:
            while stored < want:
                data = rest + spool.read(READ_BYTES)
                cut = data.rfind(b"\n") + 1  # whole lines only: the reader may be amid a write
                data, rest = data[:cut], data[cut:]
                if not data:
                    time.sleep(0.001)  # nothing new yet: a follower polls (a real one would be woken)
                    continue
                events = [_event(value) for value in jsoncodec.loads(b"[" + b",".join(data.splitlines()) + b"]")]
                store.ingest(events, "ami")
                stored += len(events)

    _store_when_told(url, pipe, follow)


def _store_when_told(url: str, pipe: Connection, work: Callable[[CallLogStore], object]) -> None:
    """Ready a store on ``url`` (migrated, emptied), say ready, wait for go, run ``work`` on it, send the end time
    and the CPU seconds it took; empty the database again."""
    upgrade(url)
    db = Database(url)
    _clear(db)
    store = CallLogStore(db, NODE, Directory.from_model(load(MODEL)))
    collect_for_throughput()
    pipe.send("ready")
    pipe.recv()  # go
    cpu = time.process_time()
    work(store)
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


async def one_run(stream: Stream, url: str, folder: Path, hand_over: str) -> str:
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(stream.data, theirs), daemon=True)
    server.start()
    store_pipe, its_pipe = multiprocessing.Pipe()
    store: multiprocessing.Process | None = None
    try:
        port = ours.recv()
        raw = await raw_read(port, stream, ours.recv)
        nothing = NothingStored(Database(f"sqlite:///{folder}/unused.db"), NODE, Directory.from_model(load(MODEL)))
        NothingStored.handed = 0
        listener, spool = compose_listener(port, nothing, folder)
        if hand_over == "spool":
            store = multiprocessing.Process(target=spool_follower, args=(url, spool.path, stream.events, its_pipe),
                                            daemon=True)
            done = _spooled(listener, spool)
        else:
            store = multiprocessing.Process(target=store_side, args=(url, stream.calls, its_pipe), daemon=True)
            done = lambda: NothingStored.handed  # noqa: E731
        store.start()
        await asyncio.to_thread(store_pipe.recv)  # ready
        cpu = time.process_time()
        store_pipe.send("go")
        task = asyncio.create_task(listener.run())
        try:
            started = await asyncio.to_thread(ours.recv)
            while done() < stream.events:
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
            if process is not None and process.is_alive():
                process.kill()
                process.join()
    raw_rate = stream.events / raw.seconds
    both = stream.events / (max(reader_end, store_end) - started)
    per_call = 1000 / stream.calls
    return (f"raw read {raw_rate:,.0f} CEL events/s; reader side {stream.events / (reader_end - started):,.0f}/s "
            f"(CPU {cpu * per_call:.2f} s per 1,000 calls); store process {stream.events / (store_end - started):,.0f}"
            f"/s (CPU {store_cpu * per_call:.2f} s); both {both:,.0f}/s, {both / raw_rate:.0%} of raw")


def _spooled(listener: Listener, spool: Spool) -> Callable[[], int]:
    """Keep the listener's delivery from running (the store process reads the spool instead), and its spool from
    keeping what it appends in memory for a delivery in this process (never committed here, up to 32 MiB of events
    would stay alive for the collector to scan); a count of the events appended to the spool so far."""
    spool_module.MEMORY_BYTES = 0  # this process runs no other spool
    appended = [0]
    append = spool.append

    def counted(events: Sequence[CelEvent]) -> int:
        kept = append(events)
        appended[0] += kept
        return kept

    async def idle() -> None:
        await asyncio.Event().wait()

    spool.append = counted  # type: ignore[method-assign]
    listener.delivery.run = idle  # type: ignore[method-assign]
    return lambda: appended[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="calls in the CEL-only stream (default 10000)")
    parser.add_argument("--db", help="database URL for the store side (default: a temporary SQLite file)")
    parser.add_argument("--runs", type=int, default=1, help="runs, one after the other (default 1)")
    parser.add_argument("--hand-over", choices=("spool", "memory"), default="spool",
                        help="how the store side gets the events: the reader's spool file (default), or made in "
                             "its own memory before the start (the optimistic bound)")
    args = parser.parse_args()
    stream = make_stream(args.calls, filtered=True)
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            url = args.db or f"sqlite:///{folder}/bench.db"
            print(f"run {run + 1}: {asyncio.run(one_run(stream, url, Path(folder), args.hand_over))}", flush=True)


if __name__ == "__main__":
    main()
