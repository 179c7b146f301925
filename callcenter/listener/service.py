"""The listener's composition: AMI session loop, one ordered consumer, spool, journal + builder + writer, backfill.

AMI callbacks only enqueue (a bounded queue); one consumer task takes the queue in batches and appends each to the
durable spool in a worker thread; the delivery stores the spool in order, in a worker thread too, backing off while
the database fails. So the event loop never waits for the database, Asterisk never sees a slow reader, and a batch
the database refuses waits on disk instead of being lost. A call is built from the journal when its LINKEDID_END
is journaled, and rebuilt whenever a backfill adds events to it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.ami.client import AmiConnection, AmiError, AmiLoginError
from callcenter.ami.events import CelEvent, MalformedEvent, Ordinals, from_ami, from_text
from callcenter.listener.backfill import Backfill
from callcenter.listener.calllog import CallLogStore as CallLogStore  # re-exported
from callcenter.listener.delivery import Delivery, LiveCalls
from callcenter.listener.spool import Spool
from callcenter.model.addresses import Address
from callcenter.ops import metrics
from callcenter.settings import AmiSettings, ListenerSettings

log = logging.getLogger(__name__)
BATCH = 500
# The events the listener reads: CEL, and Shutdown (panoramisk closes the session on it); FullyBooted is harmless.
# Everything else (the live board's events, when Asterisk sends them) is dropped before parsing.
WANTED = frozenset({"CEL", "Shutdown", "FullyBooted"})
BACKFILL = object()  # queue marker: read the CEL file now, in order with the live events


def collect_for_throughput() -> None:
    """The listener process's garbage-collection policy (``callcenter listen`` applies it once its parts are
    built). A batch of events lives long enough to reach the oldest generation, and with Python's default
    thresholds the collector then scans every object the process holds every few thousand events: a third of the
    listener's CPU at full rate (bench/ingest.py). What exists at start (modules, SQLAlchemy's metadata) is frozen
    out of the scans, and the youngest generation is collected every 10,000 allocations instead of 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


@dataclass(frozen=True)
class Periodic:
    """Work the listener runs in a thread every ``interval`` seconds besides the call log (recordings, retention);
    a failure is logged and the work runs again next time."""

    name: str
    interval: float
    work: Callable[[], object]


class Listener:
    """Keeps an AMI session up (with backoff), journals CEL, builds call logs, backfills after gaps, and runs the
    periodic jobs it is given. Built by the CLI (the composition root) from its parts."""

    def __init__(self, ami: AmiSettings, address: Address, store: CallLogStore, backfill: Backfill, spool: Spool,
                 *, options: ListenerSettings | None = None, jobs: Sequence[Periodic] = (),
                 prepare: Callable[[], object] | None = None) -> None:
        """``prepare`` runs once before the first store (the migrations, when the database was down at start)."""
        options = options or ListenerSettings()
        self.ami = ami
        self.address = address
        self.store = store
        self.jobs = jobs
        self.spool = spool
        self.delivery = Delivery(spool, store, backfill, options.retry_min, options.retry_max, prepare)
        self.live_check = options.live_check
        # Bounded: the consumer only appends to a local file, so a full queue means the disk stalls.
        self.queue: asyncio.Queue[CelEvent | object] = asyncio.Queue(maxsize=options.queue_max)
        self.ordinals = Ordinals()
        self.tz = ZoneInfo(ami.timezone)
        self.connected = asyncio.Event()
        self.sessions = 0
        self.skipped = 0  # malformed CEL events
        self.dropped = 0  # CEL events the full queue could not take
        self._overflowed = False
        # Looked up once (labels() costs more than inc()), and counted per batch the consumer takes: once per
        # event on the reading side, the counter's lock and call were 1-2% of the listener's CPU at full rate.
        self._counted = metrics.CEL_EVENTS.labels("ami")
        # Read at scrape time, from the metrics thread: each is one read of a value the loop owns.
        metrics.QUEUE_DEPTH.labels(ami.node).set_function(self.queue.qsize)
        metrics.SPOOL_PENDING.labels(ami.node).set_function(lambda: spool.pending_bytes)
        metrics.AMI_CONNECTED.labels(ami.node).set_function(lambda: float(self.connected.is_set()))

    def on_cel(self, message: Mapping[str, Any]) -> None:
        """AMI callback for a CEL message: parse and enqueue, nothing else (a bad event is counted and logged)."""
        self._take(from_ami, message)

    def on_cel_text(self, text: str) -> None:
        """The same for a CEL event the protocol hands over directly (its message's text)."""
        self._take(from_text, text)

    def _take(self, parse: Callable[[Any, ZoneInfo], CelEvent], message: Mapping[str, Any] | str) -> None:
        try:
            event = self.ordinals.assign(parse(message, self.tz))
        except MalformedEvent as exc:
            self.skipped += 1
            metrics.CEL_SKIPPED.inc()
            log.warning("AMI: CEL event skipped: %s", exc)
            return
        self._enqueue(event)

    def _enqueue(self, item: CelEvent | object) -> None:
        """Queue an item; when the queue is full, drop it loudly (the backfill is asked for once there is room)."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._overflowed = True
            if isinstance(item, CelEvent):
                self.dropped += 1
                metrics.CEL_DROPPED.inc()
                log.error("AMI: event queue full (%d; the spool is not keeping up): CEL %s of call %s dropped; the "
                          "CEL file backfill may restore it", self.queue.maxsize, item.event, item.linkedid)

    async def run(self) -> None:
        """Run until cancelled: the consumer, the delivery, the periodic backfill and jobs, the session loop."""
        tasks = [asyncio.create_task(self._consume(), name="consume"),
                 asyncio.create_task(self.delivery.run(), name="delivery"),
                 asyncio.create_task(self._periodic_backfill(), name="backfill"),
                 *(asyncio.create_task(self._periodic(job), name=job.name) for job in self.jobs)]
        self._store_what_the_last_run_left()
        try:
            await self._sessions()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._spool_what_is_queued()

    def _store_what_the_last_run_left(self) -> None:
        if self.spool.pending:
            log.warning("listener: %d bytes of CEL events left in %s by the last run; storing them first",
                        self.spool.size, self.spool.path)
            self.delivery.wake()

    async def _sessions(self) -> None:
        delay = self.ami.reconnect_min
        while True:
            try:
                await self._one_session()
                delay = self.ami.reconnect_min
            except AmiLoginError as exc:
                log.error("%s", exc)
            except AmiError as exc:
                log.warning("%s", exc)
            self.connected.clear()
            wait = delay * (0.8 + 0.4 * random.random())
            log.info("AMI: reconnecting in %.1f s", wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.ami.reconnect_max)

    async def _one_session(self) -> None:
        connection = AmiConnection(self.ami, self.address, wanted=WANTED, direct={"CEL": self.on_cel_text})
        await connection.open()
        self.sessions += 1
        log.info("AMI: logged in to %s as %s (node %s)", self.address, self.ami.username, self.ami.node)
        self.connected.set()
        self._enqueue(BACKFILL)  # whatever happened while we were away
        tasks = [asyncio.create_task(connection.keepalive()), asyncio.create_task(self._live_calls(connection))]
        try:
            await connection.lost
        finally:
            for task in tasks:
                task.cancel()
            connection.close()
        log.warning("AMI: connection lost")

    async def _periodic(self, job: Periodic) -> None:
        """Run a job now and then every ``interval`` seconds, in a thread (never on the event loop)."""
        while True:
            await self._guarded(job.work)
            await asyncio.sleep(job.interval)

    async def _periodic_backfill(self) -> None:
        while True:
            await asyncio.sleep(self.ami.backfill_interval)
            self._enqueue(BACKFILL)

    async def _live_calls(self, connection: AmiConnection) -> None:
        """At every login and now and then: which calls Asterisk still has. Queued in order with the events, so
        every event sent before the answer is stored first; a call that never ended and is not among them was
        lost by Asterisk (a restart, a crash) and is logged as cut."""
        while not connection.lost.done():
            try:
                answer = await asyncio.wait_for(connection.send_action({"Action": "CoreShowChannels"}),
                                                self.ami.ping_timeout * 2)
            except (TimeoutError, AmiError) as exc:
                log.warning("AMI: CoreShowChannels got no answer (%r); calls lost by Asterisk wait", exc)
            else:
                self._enqueue(LiveCalls.from_answer(answer))
            await asyncio.sleep(self.live_check)

    async def _consume(self) -> None:
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty() and len(items) < BATCH:
                items.append(self.queue.get_nowait())
            await self._spool(items)

    async def _spool(self, items: list[CelEvent | object]) -> None:
        """Append the batch's events to the spool (in a thread: it fsyncs) and wake the delivery."""
        events = [item for item in items if isinstance(item, CelEvent)]
        self._counted.inc(len(events))
        if events and await self._append(events) < len(events):
            self._overflowed = True  # the spool said what it dropped; the CEL file may still have it
        for item in items:  # after the events queued before the answer are spooled: a call that just ended has its
            if isinstance(item, LiveCalls):  # end stored before the cut looks (else logged cut, then rebuilt)
                self.delivery.request_cut(item)
        if any(item is BACKFILL for item in items) or self._overflowed:
            self._overflowed = False
            self.delivery.request_backfill()
        self.delivery.wake()

    async def _append(self, events: list[CelEvent]) -> int:
        """Append to the spool in a thread (it fsyncs); how many were kept."""
        try:
            return await asyncio.to_thread(self.spool.append, events)
        except Exception:  # the consumer must outlive anything
            log.exception("listener: %d CEL event(s) could not be spooled and are dropped", len(events))
            return 0

    def _spool_what_is_queued(self) -> None:
        """At shutdown: what the consumer has not taken yet goes to the spool, for the next run to store."""
        events = [item for item in (self.queue.get_nowait() for _ in range(self.queue.qsize()))
                  if isinstance(item, CelEvent)]
        if events:
            self._counted.inc(len(events))
            self.spool.append(events)

    async def _guarded(self, work: object, *args: object) -> None:
        try:
            await asyncio.to_thread(work, *args)  # type: ignore[arg-type]
        except Exception:
            log.exception("periodic work failed; it runs again at its next time")
