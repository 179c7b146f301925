"""Helpers for tests of the listener over the fake AMI server: settings, composition, waiting on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.ami.events import CelEvent
from callcenter.listener.backfill import Backfill
from callcenter.listener.celfile import CelFile
from callcenter.listener.service import CallLogStore, Listener
from callcenter.listener.spool import Spool
from callcenter.model.addresses import Address
from callcenter.settings import AmiSettings, ListenerSettings
from callcenter.store.db import Database
from callcenter.store.models import CelJournal
from tests.factories import DIRECTORY, ami_headers
from tests.unit.fake_ami import FakeAmi, encode

SECRET = "right-secret"


def ami_settings(server: FakeAmi, tmp_path: Path, **overrides: Any) -> AmiSettings:
    """Fast timings for tests; no CEL file unless a test gives one."""
    values: dict[str, Any] = {
        "username": "callcenter", "secret": SECRET,
        "ping_interval": 0.2, "ping_timeout": 0.3, "reconnect_min": 0.05, "reconnect_max": 0.4,
        "cel_file": tmp_path / "no-such-dir" / "cel_callcenter.json", "backfill_interval": 60.0,
    }
    values.update(overrides)
    return AmiSettings(**values)


def address(server: FakeAmi) -> Address:
    return Address("127.0.0.1", server.port)


def make_listener(server: FakeAmi, tmp_path: Path, db: Database, store: CallLogStore | None = None,
                  options: ListenerSettings | None = None, **overrides: Any) -> Listener:
    """A listener composed as the CLI composes it, over the fake server, its spool in ``tmp_path/spool``."""
    settings = ami_settings(server, tmp_path, **overrides)
    options = options or ListenerSettings(retry_min=0.05, retry_max=0.2)
    store = store or CallLogStore(db, settings.node, DIRECTORY)
    spool = Spool(tmp_path / "spool" / "listener.jsonl", options.spool_max_bytes)
    return Listener(settings, address(server), store, Backfill(CelFile(settings.cel_file), store), spool,
                    options=options)


@contextlib.asynccontextmanager
async def running_with(work: Coroutine[Any, Any, None], spool: Spool) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` for the block; stop it and release ``spool`` afterwards."""
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 3)
        spool.close()


def running(listener: Listener) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """Run the listener for the block; stop it (and release its spool) afterwards."""
    return running_with(listener.run(), listener.spool)


async def until(predicate: Callable[[], object], timeout: float = 3.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` holds (polled every 5 ms); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        await asyncio.sleep(0.005)


def journal_rows(db: Database) -> list[CelJournal]:
    with db.session() as session:
        return list(session.scalars(select(CelJournal).order_by(CelJournal.id)).all())


def ami_stream(events: Iterable[CelEvent]) -> bytes:
    """The events as Asterisk sends them over AMI (EventTime in UTC, as ``ami.timezone`` says by default)."""
    def one(event: CelEvent) -> bytes:
        when = datetime.fromtimestamp(event.second, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return encode(ami_headers(event, when, event.time).items())  # Asterisk's layout: read in one match
    return b"".join(one(event) for event in events)
