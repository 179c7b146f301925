"""The listener while the database is down, over the fake AMI: nothing is lost, the reader keeps reading, a
restart stores what the last run could not, and a full queue drops loudly instead of growing without end."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.ami.events import CelEvent
from callcenter.listener.backfill import Backfill
from callcenter.listener.celfile import CelFile
from callcenter.listener.delivery import Delivery, Job, LiveCalls
from callcenter.listener.service import Listener
from callcenter.listener.spool import Spool
from callcenter.settings import ListenerSettings
from callcenter.store.db import Database
from callcenter.store.models import Call
from tests.factories import FlakyStore, answered_stream, file_call
from tests.unit.fake_ami import FakeAmi
from tests.unit.listening import ami_stream, journal_rows, make_listener, running, running_with, until

pytestmark = pytest.mark.timeout(20)
NODE = "sandbox"  # the node of the test settings


def spooled(listener: Listener) -> int:
    """Events waiting in the listener's spool file."""
    return listener.spool.path.read_bytes().count(b"\n")


def queued_events(listener: Listener) -> int:
    """CEL events waiting in the listener's queue (besides markers and live-calls checks)."""
    return sum(isinstance(item, CelEvent) for item in list(listener.queue._queue))  # type: ignore[attr-defined]


def calls(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Call)) or 0)


async def test_events_arriving_while_the_database_is_down_are_stored_once_it_is_back(
        ami: FakeAmi, tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(db, NODE)
    store.down = True
    listener = make_listener(ami, tmp_path, db, store=store)
    events = answered_stream()
    async with running(listener):
        await until(lambda: listener.sessions == 1, what="login")
        await ami.push(ami_stream(events[:9]))
        await ami.push(ami_stream(events[9:]))
        await until(lambda: spooled(listener) == len(events) and store.refused >= 3, what="spooled, retried")
        assert journal_rows(db) == []
        pings = ami.pings
        await until(lambda: ami.pings >= pings + 2, what="AMI still read while the database is down")
        assert listener.sessions == 1 and not ami.session.closed.is_set()
        store.down = False
        await until(lambda: len(journal_rows(db)) == len(events), what="every event stored")
        await until(lambda: calls(db) == 1 and listener.spool.size == 0, what="call built, spool emptied")
    assert [row.event for row in journal_rows(db)] == [event.event for event in events]  # in arrival order
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "the store failed" in r.message]
    assert len(errors) == 1  # one traceback per outage; the retries after it say so in a line each


async def test_a_listener_restarted_while_the_database_is_still_down_stores_what_the_last_run_spooled(
        ami: FakeAmi, tmp_path: Path, db: Database) -> None:
    events = answered_stream()
    first_store = FlakyStore(db, NODE)
    first_store.down = True
    first = make_listener(ami, tmp_path, db, store=first_store)
    async with running(first):
        await until(lambda: first.sessions == 1, what="login")
        await ami.push(ami_stream(events))
        await until(lambda: spooled(first) == len(events), what="events spooled")
    store = FlakyStore(db, NODE)  # a new process: nothing in memory
    store.down = True
    second = make_listener(ami, tmp_path, db, store=store)
    async with running(second):
        await until(lambda: store.refused >= 2, what="the new run retrying the old events")
        assert journal_rows(db) == []
        store.down = False
        await until(lambda: len(journal_rows(db)) == len(events) and calls(db) == 1, what="the old events stored")


def stall_first_append(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """Make the spool's first append hang (a stalled disk) until the returned event is set."""
    release, appends = threading.Event(), [0]
    real_append = listener.spool.append

    def append(events: Sequence[CelEvent]) -> int:
        appends[0] += 1
        if appends[0] == 1:
            release.wait(10)
        return real_append(events)

    monkeypatch.setattr(listener.spool, "append", append)
    return release, appends


async def test_a_full_queue_drops_loudly_keeps_reading_and_asks_for_a_backfill(
        ami: FakeAmi, tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    listener = make_listener(ami, tmp_path, db, options=ListenerSettings(queue_max=4, retry_min=0.05))
    release, appends = stall_first_append(listener, monkeypatch)
    backfills: list[bool] = []
    monkeypatch.setattr(listener.delivery, "request_backfill", lambda: backfills.append(True))
    events = answered_stream()
    try:
        async with running(listener):
            await until(lambda: listener.sessions == 1 and listener.queue.empty(), what="login, backfill asked")
            backfills.clear()
            await ami.push(ami_stream(events[:1]))
            await until(lambda: appends[0] == 1, what="the consumer stuck in the first append")
            await ami.push(ami_stream(events[1:12]))  # 11 more: 4 fit the queue
            await until(lambda: listener.dropped == 7, what="seven events dropped")
            pings = ami.pings
            await until(lambda: ami.pings >= pings + 2, what="AMI still read with the queue full")
            release.set()
            await until(lambda: len(journal_rows(db)) == 5 and backfills, what="the rest stored, backfill asked")
    finally:
        release.set()
    dropped = [r.message for r in caplog.records if r.levelno == logging.ERROR and "queue full" in r.message]
    assert len(dropped) == 7 and all(events[0].linkedid in message for message in dropped)


async def test_events_still_queued_at_shutdown_are_spooled_for_the_next_run(
        ami: FakeAmi, tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = make_listener(ami, tmp_path, db)
    release, appends = stall_first_append(listener, monkeypatch)
    events = answered_stream()
    try:
        async with running(listener):
            await until(lambda: listener.sessions == 1 and listener.queue.empty(), what="login")
            await ami.push(ami_stream(events[:1]))
            await until(lambda: appends[0] == 1, what="the consumer stuck in the first append")
            await ami.push(ami_stream(events[1:4]))
            # The login's live-calls check (CoreShowChannels) lands in the queue too, before or after these
            await until(lambda: queued_events(listener) == 3, what="three events queued")
        assert spooled(listener) == 3
    finally:
        release.set()


@contextlib.asynccontextmanager
async def delivering(tmp_path: Path, store: FlakyStore, backfill: Job) -> AsyncIterator[Delivery]:
    """A delivery over a fresh spool, running for the block."""
    spool = Spool(tmp_path / "spool.jsonl", 16 * 1024 * 1024)
    delivery = Delivery(spool, store, backfill, retry_min=0.05, retry_max=0.2)
    async with running_with(delivery.run(), spool):
        yield delivery


async def test_a_backfill_meeting_a_database_outage_is_retried_after_the_backoff(
        tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="callcenter")
    cel_file = tmp_path / "cel.json"
    cel_file.write_text("".join(file_call(0)), encoding="utf-8")
    store = FlakyStore(db, NODE)
    store.down = True
    async with delivering(tmp_path, store, Backfill(CelFile(cel_file), store)) as delivery:
        delivery.request_backfill()
        await until(lambda: delivery.failures >= 3, what="the backfill retried")
        assert calls(db) == 0
        store.down = False
        await until(lambda: calls(db) == 1 and delivery.failures == 0, what="the backfill done once it is back")
    assert [r.message for r in caplog.records].count("listener: the store works again") == 1


async def test_a_backfill_failing_on_its_own_does_not_hold_up_the_events(tmp_path: Path, db: Database) -> None:
    class Unreadable:
        runs = 0

        def run(self) -> int:
            self.runs += 1
            raise PermissionError("CEL file not readable by the listener")

    backfill, store, events = Unreadable(), FlakyStore(db, NODE), answered_stream()
    async with delivering(tmp_path, store, backfill) as delivery:
        delivery.spool.append(events[:8])
        delivery.request_backfill()
        await until(lambda: len(journal_rows(db)) == 8 and backfill.runs == 1, what="events stored, backfill tried")
        delivery.spool.append(events[8:])  # LINKEDID_END: asks for one more backfill
        delivery.wake()
        await until(lambda: len(journal_rows(db)) == 16 and backfill.runs == 2, what="the rest stored")
        assert delivery.failures == 0


async def test_calls_asterisk_no_longer_has_are_cut_only_once_the_events_before_the_answer_are_spooled(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CoreShowChannels answer queued right behind a call's last events, in one consumer batch: were the cut
    asked for before the batch reached the spool, the delivery could look for lost calls without those events and
    log the call that just ended as cut by Asterisk (rebuilt right after, with a false restart warning)."""
    async with FakeAmi() as server:
        listener = make_listener(server, tmp_path, db)
        order: list[str] = []

        async def append(events: list[CelEvent]) -> int:
            order.append(f"append {len(events)}")
            return len(events)

        monkeypatch.setattr(listener, "_append", append)
        monkeypatch.setattr(listener.delivery, "request_cut", lambda live: order.append("cut"))
        stream = answered_stream()
        await listener._spool([*stream[-3:], LiveCalls(frozenset(), stream[-1].time + 1)])
        assert order == ["append 3", "cut"]
        listener.spool.close()
