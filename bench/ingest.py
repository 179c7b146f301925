"""Event ingest benchmark: the listener's real path against panoramisk's own protocol, on one realistic stream.

    python -m bench.ingest [--calls 10000] [--db URL ...] [--mixed-calls 1000]

The stream (see :mod:`bench.ami_stream`): captured answered, abandoned, missed, IVR-only and transferred calls,
repeated with fresh ids to ``--calls`` calls, served by a small AMI server in its own process over a local TCP
socket (login, FullyBooted, CoreShowChannels, Ping). Side by side, in one run, on the same bytes:

- raw read: panoramisk's ``AMIProtocol`` logs in and reads until it has dispatched every CEL event;
- full path: the listener as ``callcenter listen`` composes it (hardened AMI client and protocol, ordered
  consumer, fsynced spool, delivery, journal with dedupe, builder, ``upsert_calls``) until every call is in the
  ``calls`` table, once per ``--db`` (default: a temporary SQLite file; add a PostgreSQL URL with ``--db``).

Two streams: CEL only (what the listener's user gets with the rendered ``eventfilter``), and, with
``--mixed-calls`` calls, the unfiltered stream (151 non-CEL call/agent messages per 17 CEL events, as a captured
call sends), to show what the messages the listener does not need cost it. Times run from the server's first byte
to the last CEL event dispatched (raw) or the last call committed (full). CPU is the listener process's (its
threads included; a PostgreSQL server's own CPU is not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from panoramisk.ami_protocol import AMIProtocol
from sqlalchemy import delete, func, select, text

from bench.ami_stream import SCENARIOS, ami_bytes, calls, scenario_lines, serve
from bench.results import record
from callcenter.ami.events import from_file_line
from callcenter.calls.builder import build_call
from callcenter.calls.channels import Directory
from callcenter.listener.backfill import Backfill
from callcenter.listener.celfile import CelFile
from callcenter.listener.service import CallLogStore, Listener, collect_for_throughput
from callcenter.listener.spool import Spool
from callcenter.model.addresses import Address
from callcenter.model.hotline import load
from callcenter.model.watch import ModelWatch
from callcenter.ops import metrics
from callcenter.settings import PROJECT_ROOT, AmiSettings, ListenerSettings
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from callcenter.store.models import CALL, CelJournal
from callcenter.store.models import calls as calls_table

NODE = "bench"
MODEL = PROJECT_ROOT / "hotline.toml"


@dataclass(frozen=True)
class Stream:
    """The bytes served, and what they hold."""

    data: bytes
    calls: int
    events: int
    statuses: Counter[str]  # expected call-log statuses


@dataclass(frozen=True)
class Result:
    """One measured reader."""

    name: str
    seconds: float
    cpu: float | None = None


def make_stream(count: int, filtered: bool) -> Stream:
    directory = Directory.from_model(load(MODEL))
    status = {name: build_call([from_file_line(line) for line in scenario_lines(name)], directory).status.value
              for name in SCENARIOS}
    made = list(calls(count, time.time()))
    return Stream(ami_bytes([events for _, events in made], filtered), count,
                  sum(len(events) for _, events in made), Counter(status[name] for name, _ in made))


class CelCounting:
    """panoramisk's factory stand-in: counts dispatched CEL events; given ``done``, notes when the ``want``-th
    came (bench/ingest_work.py's raw read only counts)."""

    def __init__(self, want: int = 0, done: asyncio.Future[float] | None = None) -> None:
        self.want, self.done, self.seen = want, done, 0

    def dispatch(self, message: object) -> None:
        if message["event"] == "CEL":  # type: ignore[index]
            self.seen += 1
            if self.seen == self.want and self.done is not None:
                self.done.set_result(time.time())

    def connection_lost(self, _exc: object) -> None:
        pass


async def raw_read(port: int, stream: Stream, started: Callable[[], float]) -> Result:
    """panoramisk's own protocol reads the stream (logged in, as any client)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    transport, protocol = await loop.create_connection(AMIProtocol, "127.0.0.1", port)
    protocol.factory = CelCounting(stream.events, done)
    protocol.encoding = "utf8"
    cpu = time.process_time()
    await protocol.send({"Action": "Login", "Username": "bench", "Secret": "bench"})
    protocol.send({"Action": "CoreShowChannels"})
    end = await asyncio.wait_for(done, 600)
    cpu = time.process_time() - cpu
    transport.close()
    return Result("raw read, panoramisk AMIProtocol", end - started(), cpu)


def _built(db: Database) -> int:
    """Calls stored so far. (Every call's last event ends the stream's part of it and the spool is delivered in
    order, so once every call is stored every event is journaled: :func:`_check` verifies it. Counting the journal
    too, every 20 ms, cost the listener's process more CPU on SQLite than some of the stages it measures.)"""
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(calls_table).where(CALL.node == NODE)) or 0)


def _counted_builds() -> float:
    """The listener's own count of call logs built and committed (a rebuild counts again)."""
    return next(sample.value for family in metrics.CALLS_BUILT.collect() for sample in family.samples
                if sample.name.endswith("_total"))


async def _all_built(db: Database, calls: int, before: float) -> bool:
    """Whether every call is stored: the table is counted once the listener's counter says so (counting it every
    20 ms from the start cost PostgreSQL ~2 ms of a core each time, beside the listener it measures)."""
    return _counted_builds() - before >= calls and await asyncio.to_thread(_built, db) >= calls


def _stored(db: Database) -> tuple[int, int]:
    """Calls and journaled events."""
    with db.session() as session:
        events = session.scalar(select(func.count()).select_from(CelJournal).where(CelJournal.node == NODE))
    return _built(db), int(events or 0)


def _clear(db: Database) -> None:
    """Empty the bench node's journal and calls. On PostgreSQL then VACUUM (FULL, ANALYZE) both tables: a
    listener's tables only grow, and autovacuum keeps their statistics; without it each run after the first inserts
    276,000 rows over as many dead ones, with the statistics of another moment (back to back on 2026-11-30:
    14,451-20,149 CEL events/s without, 23,244-24,812 with VACUUM (ANALYZE)). A plain VACUUM leaves the freed space
    in the files, which the next run's rows are then scattered over: later that day a database that had served many
    runs gave 16,390-21,303, a new one 26,024-29,346 with the same code. FULL rewrites the tables compact, as a
    journal that has only grown is. Not on a database that holds other nodes' calls too (a listener's): there a
    plain VACUUM (ANALYZE), which locks nothing."""
    with db.session() as session:
        session.execute(delete(CelJournal).where(CelJournal.node == NODE))
        session.execute(delete(calls_table).where(calls_table.c.node == NODE))
    if db.engine.dialect.name == "postgresql":
        with db.session() as session:  # a database others use too: no FULL (it locks the tables while it rewrites)
            shared = session.scalar(select(CelJournal.id).where(CelJournal.node != NODE).limit(1)) is not None
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in (CelJournal.__tablename__, calls_table.name):
                connection.execute(text(f"VACUUM ({'' if shared else 'FULL, '}ANALYZE) {table}"))


def compose_listener(port: int, store: CallLogStore, folder: Path) -> tuple[Listener, Spool]:
    """The listener over ``store``, composed as ``callcenter listen`` composes it (whose garbage-collection policy
    is applied too), reading the bench's server on ``port``; and its spool (the caller closes it)."""
    ami = AmiSettings(username="bench", secret="bench", node=NODE, cel_file=folder / "no-cel-file.json")
    # The server sends as fast as the socket allows, far faster than Asterisk ever sends: with the default queue
    # (10,000 events) the reader outruns the spool and the listener drops events (loudly) by design.
    options = ListenerSettings(queue_max=1_000_000)
    spool = Spool(folder / f"spool-{time.monotonic_ns()}.jsonl", options.spool_max_bytes)
    listener = Listener(ami, Address("127.0.0.1", port), store, Backfill(CelFile(ami.cel_file), store), spool,
                        options=options)
    collect_for_throughput()  # as `callcenter listen` does
    return listener, spool


async def full_path(port: int, stream: Stream, url: str, folder: Path, started: Callable[[], float]) -> Result:
    """The listener, composed as ``callcenter listen`` composes it, until every call is in the calls table."""
    upgrade(url)
    db = Database(url)
    _clear(db)
    watch = ModelWatch(MODEL, load(MODEL))
    store = CallLogStore(db, NODE, lambda: Directory.from_model(watch.current()))
    listener, spool = compose_listener(port, store, folder)
    before = _counted_builds()
    cpu = time.process_time()
    task = asyncio.create_task(listener.run())
    try:
        while not await _all_built(db, stream.calls, before):
            if task.done() or listener.dropped or listener.skipped:
                raise RuntimeError(f"listener stopped or lost events (dropped {listener.dropped}, "
                                   f"skipped {listener.skipped})")
            await asyncio.sleep(0.02)
        end, cpu = time.time(), time.process_time() - cpu
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        spool.close()
    _check(db, stream)
    _clear(db)
    db.dispose()
    return Result(f"full path, {url.split(':')[0].split('+')[0]}", end - started(), cpu)


def _check(db: Database, stream: Stream) -> None:
    """Every event journaled once, every call built with the status its captured call has."""
    with db.session() as session:
        statuses: Counter[str] = Counter(dict(session.execute(select(CALL.status, func.count()).where(CALL.node == NODE)
                                                .group_by(CALL.status)).all()))
    assert _stored(db) == (stream.calls, stream.events), (_stored(db), stream.calls, stream.events)
    assert statuses == stream.statuses, (statuses, stream.statuses)


async def measure(stream: Stream, urls: list[str], folder: Path) -> list[Result]:
    """Serve the stream from a process of its own; read it raw, then through the listener once per database."""
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(stream.data, theirs), daemon=True)
    server.start()
    try:
        port = ours.recv()
        results = [await raw_read(port, stream, ours.recv)]
        for url in urls:
            results.append(await full_path(port, stream, url, folder, ours.recv))
        return results
    finally:
        server.kill()
        server.join()


def report(title: str, stream: Stream, results: list[Result]) -> list[tuple[str, str]]:
    """Print the figures; return them as (what, figure) rows for the one-table report."""
    print(f"\n{title}: {stream.calls:,} calls, {stream.events:,} CEL events, {len(stream.data) / 1e6:.1f} MB")
    print(f"{'reader':<36}{'CEL events/s':>14}{'of raw':>8}{'calls/s':>9}{'CPU s/1000 calls':>18}")
    raw = stream.events / results[0].seconds
    rows = []
    for result in results:
        rate = stream.events / result.seconds
        cpu = f"{1000 * result.cpu / stream.calls:.2f}" if result.cpu is not None else "-"
        print(f"{result.name:<36}{rate:>14,.0f}{rate / raw:>8.0%}{stream.calls / result.seconds:>9,.0f}{cpu:>18}")
        rows.append((f"{title}, {stream.calls:,} calls: {result.name}",
                     f"{rate:,.0f} CEL events/s ({rate / raw:.0%} of raw), CPU {cpu} s per 1,000 calls"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="calls in the CEL-only stream (default 10000)")
    parser.add_argument("--db", action="append", help="database URL for the full path; repeat for several "
                        "(default: a temporary SQLite file)")
    parser.add_argument("--mixed-calls", type=int, default=1000,
                        help="calls in the unfiltered stream (CEL among all call/agent events); 0 skips it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        urls = args.db or [f"sqlite:///{folder}/bench.db"]
        stream = make_stream(args.calls, filtered=True)
        rows = report("CEL only (the listener's user with its eventfilter)", stream,
                      asyncio.run(measure(stream, urls, Path(folder))))
        if args.mixed_calls:
            mixed = make_stream(args.mixed_calls, filtered=False)
            rows += report("unfiltered (151 non-CEL call/agent messages per 17 CEL)", mixed,
                           asyncio.run(measure(mixed, urls[:1], Path(folder))))
    record("ingest", rows)


if __name__ == "__main__":
    main()
