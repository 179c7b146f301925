"""Move spooled CEL events into the store, in order, and run the backfills asked for; back off while the store
fails, so a database outage costs a retry now and then, not a storm of failing transactions.

The delivery is the spool's one reader; the AMI consumer is its one writer. Store work runs in a worker thread,
never on the event loop. A backfill runs after the spool is drained (older AMI events first); it fails on its own
(an unreadable CEL file must not hold up the events) and is tried again at the next request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError

from callcenter.ami.events import CelEvent
from callcenter.listener.spool import Spool
from callcenter.model.contract import LINKEDID_END
from callcenter.ops import metrics

log = logging.getLogger(__name__)


class EventStore(Protocol):
    """What the delivery needs of the call-log store."""

    def ingest(self, events: Sequence[CelEvent], source: str) -> list[str]: ...

    def finish_cut(self, live: frozenset[str], before: float) -> list[str]: ...


@dataclass(frozen=True)
class LiveCalls:
    """Which calls (linkedids) Asterisk had when asked, and when it was asked (epoch seconds, listener's clock)."""

    linkedids: frozenset[str]
    at: float

    @classmethod
    def from_answer(cls, answer: object) -> LiveCalls:
        """From AMI's CoreShowChannels answer (the response and one CoreShowChannel event per channel)."""
        messages: list[Any] = answer if isinstance(answer, list) else [answer]
        linkedids = {str(m.get("Linkedid", "")) for m in messages if m.get("Event") == "CoreShowChannel"}
        return cls(frozenset(linkedids - {""}), time.time())


QUIET = 10.0  # seconds a call must have been quiet before the live-calls question to be counted lost


class Job(Protocol):
    """The backfill, as the delivery runs it."""

    def run(self) -> int: ...


class Delivery:
    """Drains the spool into the store with backoff between ``retry_min`` and ``retry_max`` seconds."""

    def __init__(self, spool: Spool, store: EventStore, backfill: Job, retry_min: float, retry_max: float,
                 prepare: Callable[[], object] | None = None) -> None:
        self.spool = spool
        self.store = store
        self.backfill = backfill
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.prepare = prepare  # run once before storing anything (the migrations, if the database was down)
        self.failures = 0  # store failures in a row (0: the store works)
        self._wake = asyncio.Event()
        self._backfill_wanted = False
        self._live: LiveCalls | None = None  # the calls Asterisk still had: any other that never ended is lost

    def wake(self) -> None:
        """Events were spooled: deliver them (now, or after the current backoff)."""
        self._wake.set()

    def request_backfill(self) -> None:
        """Read the CEL file once the spool is drained (after a reconnect, a finished call, a timer)."""
        self._backfill_wanted = True
        self._wake.set()

    def request_cut(self, live: LiveCalls) -> None:
        """After draining and backfilling, log as cut every call that never ended and that Asterisk no longer has
        (``live``, asked after everything before it was spooled)."""
        self._live = live
        self._wake.set()

    async def run(self) -> None:
        """Deliver whenever woken, until cancelled; after a store failure wait (doubling, jittered) and retry."""
        delay = self.retry_min
        while True:
            await self._wake.wait()
            self._wake.clear()
            error = await asyncio.to_thread(self.deliver)
            if error is None:
                delay = self.retry_min
                continue
            wait = delay * (0.8 + 0.4 * random.random())
            self._report(error, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.retry_max)
            self._wake.set()

    def deliver(self) -> Exception | None:
        """Store everything spooled, then backfill if asked (sync; in a worker thread). The store's error, if any."""
        try:
            if self.prepare is not None:
                self.prepare()
                self.prepare = None
            self._drain()
            self._backfill_if_wanted()
            self._cut_if_wanted()
        except Exception as exc:  # the database is down or refusing: the events stay spooled
            return exc
        if self.failures:
            log.info("listener: the store works again")
            self.failures = 0
        return None

    def _drain(self) -> None:
        while (pending := self.spool.read()) is not None:
            self.store.ingest(pending.events, "ami")
            self.spool.commit(pending.end)
            if any(event.event == LINKEDID_END for event in pending.events):
                # A call just ended: events AMI missed (e.g. during a reconnect) are in Asterisk's own file.
                self._backfill_wanted = True

    def _backfill_if_wanted(self) -> None:
        """Run a requested backfill. The database failing is the store's failure (retried after the backoff);
        anything else (an unreadable CEL file) is logged and waits for the next request."""
        if not self._backfill_wanted:
            return
        self._backfill_wanted = False  # before running: a request made meanwhile runs again afterwards
        try:
            self.backfill.run()
        except DBAPIError:
            self._backfill_wanted = True
            raise
        except Exception:
            log.exception("backfill failed; the next backfill (timer, reconnect or a finished call) retries it")

    def _cut_if_wanted(self) -> None:
        """Only after the spool and the CEL file are in: a call's end may be in either."""
        if self._live is not None:
            # Only calls quiet for a while before the question: a call that began after it is not among the answer,
            # and the two clocks (Asterisk's event times, ours) may differ a little.
            self.store.finish_cut(self._live.linkedids, self._live.at - QUIET)
            self._live = None

    def _report(self, error: Exception, wait: float) -> None:
        """The first failure with its traceback, the next ones in a line each."""
        self.failures += 1
        metrics.STORE_FAILURES.inc()
        where = f"{self.spool.size} bytes of CEL events wait in the spool {self.spool.path}"
        if self.failures == 1:
            log.error("listener: the store failed; %s, retrying in %.1f s", where, wait, exc_info=error)
        else:
            log.warning("listener: the store still fails (%s: %s); %s, retrying in %.1f s",
                        type(error).__name__, error, where, wait)
