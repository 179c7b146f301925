"""AmiConnection and the Listener against a fake AMI server over real TCP (tests/unit/fake_ami.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from panoramisk.message import Message

from callcenter.ami.client import AmiConnection, AmiError, AmiLoginError
from callcenter.ami.events import CelEvent
from callcenter.ami.protocol import Utf8AMIProtocol
from callcenter.model.addresses import Address
from callcenter.settings import AmiSettings
from callcenter.store.db import Database
from tests.unit.fake_ami import FakeAmi, cel
from tests.unit.listening import SECRET, address, ami_settings, journal_rows, make_listener, running, until

pytestmark = pytest.mark.timeout(20)

NAME = "Nguyễn Thị Quỳnh Mai"


# -- fixtures and helpers ----------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def connected(server: FakeAmi, tmp_path: Path, **overrides: Any) -> AsyncIterator[AmiConnection]:
    connection = AmiConnection(ami_settings(server, tmp_path, **overrides), address(server))
    await connection.open(timeout=3)
    try:
        yield connection
    finally:
        connection.close()


def cel_names(messages: list[Message]) -> list[str]:
    return [m["CallerIDname"] for m in messages]


# -- 1. UTF-8 split across reads, end to end ---------------------------------------------------------------------

async def test_name_split_inside_characters_over_tcp_arrives_intact(ami: FakeAmi, tmp_path: Path) -> None:
    reads: list[bytes] = []

    class Recording(Utf8AMIProtocol):  # type: ignore[misc]
        def data_received(self, data: bytes) -> None:
            reads.append(data)
            super().data_received(data)

    connection = AmiConnection(ami_settings(ami, tmp_path), address(ami))
    connection.config["protocol_factory"] = Recording
    received: list[Message] = []
    connection.on("CEL", received.append)
    await connection.open(timeout=3)
    try:
        event = cel()
        start = event.index(NAME.encode())
        inner = [cut for cut in range(start, start + len(NAME.encode())) if event[cut] & 0xC0 == 0x80]
        assert len(inner) == 6
        await ami.push(event, inner)
        await ami.push(cel(EventName="ANSWER"), range(start, start + len(NAME.encode()) + 1))  # byte by byte
        await until(lambda: len(received) == 2, what="two CEL events")
    finally:
        connection.close()
    assert cel_names(received) == [NAME, NAME]
    assert [m["EventName"] for m in received] == ["CHAN_START", "ANSWER"]
    # The split really reached the client: some reads end in the middle of a character.
    broken = 0
    for data in reads:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            broken += 1
    assert broken >= 6


# -- 2. malformed input ------------------------------------------------------------------------------------------

async def test_malformed_input_keeps_the_connection_working(
        ami: FakeAmi, tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    listener = make_listener(ami, tmp_path, db)
    async with connected(ami, tmp_path) as connection:
        received: list[Message] = []
        connection.on("CEL", listener.on_cel)
        connection.on("CEL", received.append)
        await ami.push(b"garbage without a colon\r\nmore garbage\r\n\r\n", [3, 17])
        await ami.push(b"Foo: bar\r\nBaz: qux\r\n\r\n")  # neither Event nor Response
        await ami.push(b"\xff\xfe\xfd\x80\xc3(\r\n\r\n")  # invalid UTF-8
        await ami.push(b"Event: CEL\r\nEvent: CEL\r\n\r\n")  # a header twice: panoramisk raises on it
        await ami.push(b"Response: Success\r\nActionID: nobody-asked\r\n\r\n")  # an answer to nothing
        await ami.push(cel(drop=["LinkedID"]))  # from_ami raises MalformedEvent
        await ami.push(cel(EventTime="yesterday"))
        await ami.push(cel().replace(NAME.encode(), b"Nguy\xe1\xbb\x85n \xff Mai"))  # one invalid byte in a name
        await ami.push(cel(EventName="ANSWER"), [40, 41])
        await until(lambda: len(received) == 4, what="four CEL messages dispatched")
        assert listener.skipped == 2
        items = [listener.queue.get_nowait() for _ in range(listener.queue.qsize())]
        queued = [item for item in items if isinstance(item, CelEvent)]
        assert len(queued) == len(items)
        assert [(e.event, e.cid_name) for e in queued] == [("CHAN_START", "Nguyễn \ufffd Mai"), ("ANSWER", NAME)]
        assert connection.protocol.malformed == 4
        assert not connection.lost.done()
        pong = await asyncio.wait_for(connection.send_action({"Action": "Ping"}), 2)
        assert pong["Ping"] == "Pong"
    listener.spool.close()
    assert any("CEL event skipped" in r.getMessage() and "linkedid" in r.getMessage() for r in caplog.records)


# -- 3. exceptions in callbacks ----------------------------------------------------------------------------------

async def test_callback_exception_does_not_drop_the_connection(
        ami: FakeAmi, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    received: list[Message] = []
    calls = 0

    def boom(message: Message) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError(f"callback bug on {message['EventName']}")

    async with connected(ami, tmp_path) as connection:
        connection.on("CEL", boom)  # registered first: it must not keep the next callback from the event
        connection.on("CEL", received.append)
        await ami.push(cel())
        await ami.push(cel(EventName="ANSWER"))
        await until(lambda: len(received) == 2, what="both events")
        assert calls == 2
        assert [m["EventName"] for m in received] == ["CHAN_START", "ANSWER"]
        assert not connection.lost.done()
        assert connection.protocol.malformed == 0  # caught per callback, not by the protocol's last resort
        await asyncio.sleep(0.05)
        assert not connection.lost.done()
        assert not ami.session.closed.is_set()
    assert any("callback for CEL failed" in r.getMessage() for r in caplog.records)


async def test_coroutine_callback_is_refused_not_left_pending(
        ami: FakeAmi, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ran = False

    async def handler(_manager: AmiConnection, _message: Message) -> None:
        nonlocal ran
        ran = True

    received: list[Message] = []
    async with connected(ami, tmp_path) as connection:
        connection.register_event("CEL", handler)
        connection.on("CEL", received.append)
        await ami.push(cel())
        await until(lambda: len(received) == 1, what="the event")
        await asyncio.sleep(0.02)
        assert not ran
        assert not connection.lost.done()
    assert any("coroutine callback for CEL refused" in r.getMessage() for r in caplog.records)


# -- 4. login ----------------------------------------------------------------------------------------------------

async def test_login_sends_username_and_secret(ami: FakeAmi, tmp_path: Path) -> None:
    async with connected(ami, tmp_path) as connection:
        assert ami.logins == [("callcenter", SECRET, True)]
        assert ami.session.actions[0]["events"] == "on"
        assert connection.protocol.version == "11.0.0"
        assert not connection.lost.done()


@pytest.mark.parametrize("hang_up", [True, False], ids=["server-hangs-up", "server-stays"])
async def test_wrong_secret_raises_login_error_naming_the_user(ami: FakeAmi, tmp_path: Path, hang_up: bool) -> None:
    ami.close_on_auth_failure = hang_up
    connection = AmiConnection(ami_settings(ami, tmp_path, secret="wrong", username="hotline-listener"), address(ami))
    ami.username = "hotline-listener"
    with pytest.raises(AmiLoginError) as info:  # not a timeout: the refusal is recognised as such
        await connection.open(timeout=3)
    message = str(info.value)
    assert "'hotline-listener'" in message
    assert "Authentication failed" in message
    assert "wrong" not in message  # the secret itself is never echoed
    assert ami.logins == [("hotline-listener", "wrong", False)]
    assert connection.lost.done()
    await ami.wait_until(lambda: ami.session.closed.is_set(), 2)  # the client closed its side too


async def test_unreachable_server_raises_ami_error(tmp_path: Path) -> None:
    server = await FakeAmi().start()
    port = server.port
    await server.stop()
    settings = AmiSettings(cel_file=tmp_path / "x.json")
    with pytest.raises(AmiError, match=f"cannot reach AMI at 127.0.0.1:{port}"):
        await AmiConnection(settings, Address("127.0.0.1", port)).open(timeout=2)


async def test_server_hanging_up_during_login_fails_fast(ami: FakeAmi, tmp_path: Path) -> None:
    ami.answer_logins = False
    connection = AmiConnection(ami_settings(ami, tmp_path), address(ami))
    with pytest.raises(AmiError):
        await asyncio.wait_for(connection.open(timeout=10), 1.0)


# -- 5. dead link ------------------------------------------------------------------------------------------------

async def test_unanswered_ping_ends_keepalive_and_marks_the_link_lost(ami: FakeAmi, tmp_path: Path) -> None:
    async with connected(ami, tmp_path, ping_interval=0.2, ping_timeout=0.3) as connection:
        keepalive = asyncio.create_task(connection.keepalive())
        await ami.wait_until(lambda: ami.pings >= 3, 5)  # answered pings: the link stays up
        assert not keepalive.done()
        assert not connection.lost.done()
        ami.answer_pings = False  # the socket stays open, the pings go unanswered
        await asyncio.wait_for(keepalive, 2)  # ends on the unanswered ping, not never
        assert connection.lost.done()
        assert ami.pings_ignored >= 1
        await ami.wait_until(lambda: ami.session.closed.is_set(), 2)  # the client hung up the dead link


async def test_server_hangup_marks_the_link_lost_and_ends_keepalive(ami: FakeAmi, tmp_path: Path) -> None:
    async with connected(ami, tmp_path, ping_interval=0.1) as connection:
        keepalive = asyncio.create_task(connection.keepalive())
        await ami.drop()
        await asyncio.wait_for(asyncio.shield(connection.lost), 2)
        await asyncio.wait_for(keepalive, 2)


async def test_shutdown_event_marks_the_link_lost(ami: FakeAmi, tmp_path: Path) -> None:
    async with connected(ami, tmp_path) as connection:
        await ami.push(b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\nRestart: True\r\n\r\n")
        await asyncio.wait_for(asyncio.shield(connection.lost), 2)


# -- 6. the listener's session loop ------------------------------------------------------------------------------

async def test_listener_logs_in_again_after_the_server_hangs_up(
        ami: FakeAmi, tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    listener = make_listener(ami, tmp_path, db)
    async with running(listener) as task:
        await until(lambda: listener.sessions == 1, what="first session")
        assert listener.connected.is_set()
        await ami.drop()
        await ami.wait_logins(2)
        await until(lambda: listener.sessions == 2, what="second session")
        assert not task.done()
        assert [accepted for *_, accepted in ami.logins] == [True, True]
        await ami.push(cel())  # the new session delivers events
        await until(lambda: listener.queue.qsize() > 0 or journal_rows(db), what="event after reconnect")
    assert any("connection lost" in r.getMessage() for r in caplog.records)


async def test_listener_reconnects_when_pings_go_unanswered(ami: FakeAmi, tmp_path: Path, db: Database) -> None:
    ami.answer_pings = False
    listener = make_listener(ami, tmp_path, db, ping_interval=0.2, ping_timeout=0.3)
    async with running(listener):
        await ami.wait_logins(2, timeout=4)
        await until(lambda: listener.sessions == 2, what="second session")
        assert ami.sessions[0].closed.is_set()


async def test_listener_keeps_retrying_a_refused_login_with_backoff(
        ami: FakeAmi, tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="callcenter")
    listener = make_listener(ami, tmp_path, db, secret="wrong")
    async with running(listener) as task:
        await ami.wait_logins(4, timeout=4)
        assert not task.done()  # did not crash
        assert listener.sessions == 0
        assert not listener.connected.is_set()
        assert all(not accepted for *_, accepted in ami.logins)
        gaps = [b - a for a, b in zip(ami.login_times, ami.login_times[1:], strict=False)]
        # Backoff: waits of 0.05, 0.1, 0.2 s (+-20 %) before the 2nd, 3rd and 4th login. Only the lower bounds are
        # checked: a loaded machine makes every gap longer, never shorter (comparing two gaps failed under load).
        assert gaps[1] >= 0.8 * 0.1 and gaps[2] >= 0.8 * 0.2, gaps
        refused = [r for r in caplog.records if r.levelno == logging.ERROR and "refused" in r.getMessage()]
        assert len(refused) >= 3
        assert "'callcenter'" in refused[0].getMessage()
        ami.secret = "wrong"  # the operator fixes the secret on the Asterisk side: the next retry gets in
        await until(lambda: listener.sessions == 1, what="login once the secret matches")
        assert not task.done()


# -- 7. CEL over AMI reaches the journal -------------------------------------------------------------------------

async def test_cel_event_over_ami_is_journaled(ami: FakeAmi, tmp_path: Path, db: Database) -> None:
    listener = make_listener(ami, tmp_path, db)
    async with running(listener):
        await until(lambda: listener.sessions == 1, what="login")
        await ami.push(cel(), [100, 200])
        await ami.push(cel(drop=["UniqueID"]))  # malformed: skipped, not journaled
        await ami.push(cel(EventName="ANSWER", Application="Answer", Timestamp="1795952287.190320",
                           CallerIDdnid="1900868647", Context="hotline"))
        await until(lambda: len(journal_rows(db)) == 2, what="two journal rows")
        assert listener.skipped == 1
    rows = journal_rows(db)
    assert [(r.event, r.linkedid, r.uniqueid, r.source, r.node) for r in rows] == [
        ("CHAN_START", "1795952287.4", "1795952287.4", "ami", "sandbox"),
        ("ANSWER", "1795952287.4", "1795952287.4", "ami", "sandbox")]
    assert rows[0].event_time == pytest.approx(1795952287.189461)
    assert rows[0].payload["cid_name"] == NAME
    assert rows[0].payload["channel"] == "PJSIP/citizen2-00000004"
    assert rows[1].payload["app"] == "Answer"
