"""The live feed's sessions per Asterisk node, with the AMI sessions replaced (pure scheduling): a node whose
session ends shows nothing but that it is away, and an unexpected error in one node's session neither stops the
others nor its own reconnecting. The sessions against two real Asterisks are in test_nodes_sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from callcenter.ami.client import AmiError
from callcenter.live import feed as feed_module
from callcenter.live.board import Board, LiveCall
from callcenter.live.feed import LiveFeed
from callcenter.model.hotline import load
from callcenter.settings import NodeSettings, Settings
from callcenter.store import desk_intents
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from tests.factories import local_nodes

MODEL = load(Settings().model_file)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_node_that_fails_is_emptied_and_retried_while_the_other_goes_on(tmp_path: Path) -> None:
    settings = Settings()
    settings.nodes = local_nodes(tmp_path, {"a": 1, "b": 1})
    feed = LiveFeed(settings, lambda: MODEL, Database(f"sqlite:///{tmp_path / 'db'}"))
    sessions: dict[str, int] = {"a": 0, "b": 0}
    forever = asyncio.Event()

    async def session(node: NodeSettings, board: Board) -> None:
        sessions[node.name] += 1
        board.connected = True
        board.calls["1.1"] = LiveCall("1.1", "0905111222", "", "02621022", 1.0, node=node.name)
        board.member({"Event": "QueueMember", "Queue": "operators", "MemberName": "op101", "Status": "2"}, 1.0)
        if node.name == "a" and sessions["a"] == 1:
            raise ValueError("a bug in one node's session")
        await forever.wait()

    feed._session = session  # type: ignore[method-assign]
    boards = dict(zip(("a", "b"), feed.boards, strict=True))

    async def run() -> None:
        tasks = [asyncio.create_task(feed._follow(node, board)) for node, board in zip(feed.nodes, feed.boards,
                                                                                       strict=True)]
        try:
            await until(lambda: sessions["a"] == 1 and sessions["b"] == 1)
            a, b = boards["a"], boards["b"]
            await until(lambda: not a.connected)
            # Away: none of its calls, no queue state; the other node's still there, and the page says which.
            assert not a.calls and a.operators["op101"].state == "unreachable"
            snapshot = feed.snapshot()
            assert snapshot["nodes"] == [{"name": "a", "connected": False}, {"name": "b", "connected": True}]
            assert [call["node"] for call in snapshot["calls"]["arriving"]] == ["b"]
            assert b.connected and b.operators["op101"].state == "on_call"
            await until(lambda: sessions["a"] == 2)  # reconnected after its pause, not given up
            await until(lambda: feed.connected)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def test_the_desk_is_connected_while_the_node_with_the_operators_phone_is(tmp_path: Path) -> None:
    settings = Settings()
    settings.nodes = local_nodes(tmp_path, {"a": 1, "b": 1})
    feed = LiveFeed(settings, lambda: MODEL, Database(f"sqlite:///{tmp_path / 'db'}"))
    a, b = feed.boards
    for board in (a, b):
        board.connected = True
        board.member({"Event": "QueueMember", "Queue": "operators", "MemberName": "op101",
                      "Status": "1" if board is a else "5"}, 1.0)  # op101's phone is on a (b: unavailable)
    assert feed.desk("op101")["connected"] and feed.desk("op101")["away"] == []
    b.connected = False  # the other node away: op101's desk goes on
    assert feed.desk("op101")["connected"] and feed.desk("op101")["away"] == ["b"]
    a.connected, b.connected = False, True  # the node with the phone away: not connected, and which
    desk = feed.desk("op101")
    assert not desk["connected"] and desk["away"] == ["a"]
    assert not feed.desk("op102")["connected"]  # a phone no connected node has: not connected either


def _two_node_feed(tmp_path: Path) -> tuple[Database, LiveFeed]:
    """A new database, and a live feed following nodes a and b."""
    url = f"sqlite:///{tmp_path / 'db'}"
    upgrade(url)
    settings = Settings()
    settings.nodes = local_nodes(tmp_path, {"a": 1, "b": 2})
    db = Database(url)
    return db, LiveFeed(settings, lambda: MODEL, db)


def test_a_node_back_is_given_what_it_missed_once_booted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catch-up with the AMI replaced: nothing before FullyBooted (the session is opened anew); then each
    operator's missed change, as actions for what differs; a change made meanwhile is applied after it; a node that
    refuses keeps the change missed (tried at its next session)."""
    db, feed = _two_node_feed(tmp_path)
    node_b = feed.nodes[1]
    with db.session() as session:
        for operator, change in (("op101", {"paused": True, "reason": "lunch"}), ("op203", {"logged_in": False}),
                                 ("op102", {"paused": True, "reason": "break"})):
            _, intent = desk_intents.ask(session, operator, **change)  # type: ignore[arg-type]
            desk_intents.missed_by(session, operator, intent.version, {"b"} if operator != "op102" else {"a"})
    # node b restored op203 from its astdb, and op101 unpaused from its configuration
    status = [{"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op101", "Paused": "0"},
              {"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op203", "Paused": "0"}]
    sent: list[list[str]] = []
    refuse: set[str] = set()

    async def queue_status(_connection: object, member: str = "") -> list[dict[str, str]]:
        return [m for m in status if not member or m["Location"] == member]

    async def send_actions(_settings: Settings, _address: object, actions: list[dict[str, str]]) -> list[object]:
        if actions[0]["Interface"] in refuse:
            raise AmiError("AMI QueuePause failed: Permission denied")
        sent.append([f"{a['Action']} {a['Interface']}" for a in actions])
        if actions[0]["Interface"] == "PJSIP/op101" and len(sent) == 1:  # op101 resumes meanwhile, on every node
            with db.session() as session:
                desk_intents.ask(session, "op101", paused=False)
            status[0]["Paused"] = "0"
        return []

    booted = asyncio.Event()

    async def wait_booted(_settings: Settings, _address: object, timeout: float) -> None:
        if not booted.is_set():
            raise AmiError("Asterisk at 127.0.0.1:2 has not finished booting in 30 s")

    monkeypatch.setattr(feed, "_queue_status", queue_status)
    monkeypatch.setattr(feed_module, "send_actions", send_actions)
    monkeypatch.setattr(feed_module, "wait_booted", wait_booted)

    def missed(node: str) -> list[str]:
        with db.session() as session:
            return [intent.operator for intent in desk_intents.missed_on(session, node)]

    with pytest.raises(AmiError, match="not finished booting"):
        asyncio.run(feed._catch_up(node_b, node_b.ami, None))  # type: ignore[arg-type]
    assert sent == [] and missed("b") == ["op101", "op203"]

    booted.set()
    refuse.add("PJSIP/op203")
    asyncio.run(feed._catch_up(node_b, node_b.ami, None))  # type: ignore[arg-type]
    # op101: paused, then (a resume came meanwhile) nothing more to do: node b agrees with it already
    assert sent == [["QueuePause PJSIP/op101"]]
    assert missed("b") == ["op203"] and missed("a") == ["op102"]  # refused: still missed; another node's: untouched
    refuse.clear()
    asyncio.run(feed._catch_up(node_b, node_b.ami, None))  # type: ignore[arg-type]
    assert sent[1:] == [["QueueRemove PJSIP/op203"]] and missed("b") == []
    db.dispose()


def _booted_node(monkeypatch: pytest.MonkeyPatch, feed: LiveFeed, status: list[dict[str, str]]) -> list[dict[str, str]]:
    """A node, with the AMI replaced, that has booted, has the queue members ``status`` says and takes every
    action; the actions sent to it."""
    sent: list[dict[str, str]] = []

    async def queue_status(_connection: object, member: str = "") -> list[dict[str, str]]:
        return [m for m in status if not member or m["Location"] == member]

    async def send_actions(_settings: Settings, _address: object, actions: list[dict[str, str]]) -> list[object]:
        sent.extend(actions)
        return []

    async def wait_booted(_settings: Settings, _address: object, timeout: float) -> None:
        return None

    monkeypatch.setattr(feed, "_queue_status", queue_status)
    monkeypatch.setattr(feed_module, "send_actions", send_actions)
    monkeypatch.setattr(feed_module, "wait_booted", wait_booted)
    return sent


def test_a_standing_pause_is_given_again_to_a_node_that_forgot_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Restarted, an Asterisk brings its fixed desks back from its configuration, not paused: at the session's start
    the feed pauses again an operator whose desk says paused, with the reason. It leaves alone a node that has the
    pause, an operator not paused at the desk whom the queue paused itself (a call rang out), and an operator who
    is in no queue there."""
    url = f"sqlite:///{tmp_path / 'db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings()
    feed = LiveFeed(settings, lambda: MODEL, db)
    node = feed.nodes[0]
    with db.session() as session:
        desk_intents.ask(session, "op101", paused=True, reason="lunch")
        desk_intents.ask(session, "op102", paused=True, reason="break")
        desk_intents.ask(session, "op103", paused=False)
        desk_intents.ask(session, "op201", paused=True, reason="meeting")
    status = [{"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op101", "Paused": "0"},
              {"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op102", "Paused": "1",
               "PausedReason": "break"},
              {"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op103", "Paused": "1",
               "PausedReason": "Auto-Pause"}]
    sent = _booted_node(monkeypatch, feed, status)
    with db.session() as session:
        assert [i.operator for i in desk_intents.owed_to(session, node.name)] == ["op101", "op102", "op201"]
    asyncio.run(feed._catch_up(node, node.ami, None))  # type: ignore[arg-type]
    assert sent == [{"Action": "QueuePause", "Interface": "PJSIP/op101", "Paused": "true", "Reason": "lunch"}]
    sent.clear()
    status[0].update(Paused="1", PausedReason="lunch")  # the next session: the node has it
    asyncio.run(feed._catch_up(node, node.ami, None))  # type: ignore[arg-type]
    assert sent == []
    db.dispose()


def test_a_change_a_connected_node_missed_is_given_during_the_session(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another API process could not send node b a pause while this one's session with b stayed up: within the
    session the feed gives b the missed change; only the missed ones (standing pauses are given as a session
    begins: op102's, which b lacks here, waits for that)."""
    db, feed = _two_node_feed(tmp_path)
    node_b = feed.nodes[1]
    with db.session() as session:
        desk_intents.ask(session, "op102", paused=True, reason="break")  # standing, not missed
        _, intent = desk_intents.ask(session, "op101", paused=True, reason="lunch")
        desk_intents.missed_by(session, "op101", intent.version, {"b"})
    status = [{"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op101", "Paused": "0"},
              {"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op102", "Paused": "0"}]
    sent = _booted_node(monkeypatch, feed, status)
    def missed() -> list[str]:
        with db.session() as session:
            return [i.operator for i in desk_intents.missed_on(session, "b")]

    async def session_until_caught_up() -> None:
        task = asyncio.create_task(feed._missed_meanwhile(node_b, node_b.ami, None))  # type: ignore[arg-type]
        try:
            while await asyncio.to_thread(missed):
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    monkeypatch.setattr(feed_module, "MISSED_EVERY", 0.01)
    asyncio.run(asyncio.wait_for(session_until_caught_up(), 30))
    assert sent == [{"Action": "QueuePause", "Interface": "PJSIP/op101", "Paused": "true", "Reason": "lunch"}]
    db.dispose()
