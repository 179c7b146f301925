"""The listener against a real PostgreSQL that goes away and comes back, over the fake AMI.

The listener reaches the database through a TCP gate the test shuts (new connections are cut at once, open ones
dropped, as when the server stops) and opens again; the test itself checks the database directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from callcenter.listener.service import CallLogStore, Listener
from callcenter.store.db import Database
from callcenter.store.models import Call, CelJournal
from tests.conftest import PG_URL
from tests.factories import DIRECTORY, answered_stream
from tests.unit.fake_ami import FakeAmi
from tests.unit.listening import SECRET, ami_stream, make_listener, running, until

pytestmark = pytest.mark.timeout(60)


class Gate:
    """A TCP forwarder to one server that can be shut (connections cut) and opened again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.open = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def shut(self) -> None:
        self.open = False
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        self.shut()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)


@pytest.fixture
async def gated(db_url: str) -> AsyncIterator[tuple[Gate, str]]:
    """The test database behind a gate: (the gate, the URL through it)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a database server that goes away: PostgreSQL only (the unit tests fail SQLite's store)")
    url = make_url(PG_URL)
    gate = Gate(url.host or "127.0.0.1", url.port or 5432)
    port = await gate.start()
    yield gate, url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    await gate.stop()


def counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        return (int(session.scalar(select(func.count()).select_from(CelJournal)) or 0),
                int(session.scalar(select(func.count()).select_from(Call)) or 0))


def gated_listener(server: FakeAmi, tmp_path: Path, url: str, direct: Database) -> Listener:
    database = Database(url, connect_timeout=2)
    return make_listener(server, tmp_path, direct, store=CallLogStore(database, "sandbox", DIRECTORY))


async def test_postgresql_going_away_loses_nothing_even_across_a_listener_restart(
        gated: tuple[Gate, str], db: Database, tmp_path: Path) -> None:
    gate, url = gated
    events = answered_stream()
    async with FakeAmi(secret=SECRET) as ami:
        first = gated_listener(ami, tmp_path, url, db)
        async with running(first):
            await until(lambda: first.sessions == 1, what="login")
            await ami.push(ami_stream(events[:4]))
            await until(lambda: counts(db)[0] == 4, what="stored while the database is up")
            gate.shut()
            await ami.push(ami_stream(events[4:]))
            await until(lambda: first.delivery.failures >= 2, timeout=10, what="stores failing")
            assert first.sessions == 1
        second = gated_listener(ami, tmp_path, url, db)  # restarted while the database is still away
        async with running(second):
            await until(lambda: second.delivery.failures >= 1, timeout=10, what="the new run failing too")
            assert counts(db) == (4, 0)
            gate.open = True
            await until(lambda: counts(db) == (len(events), 1), timeout=10, what="every event stored, call built")
            await until(lambda: second.spool.size == 0, what="the spool emptied")
