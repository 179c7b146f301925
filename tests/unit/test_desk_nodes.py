"""The desk's changes over several nodes, with the AMI sessions replaced (each node answers, refuses or cannot be
reached): a node that is down does not stop the change on the others; one that refuses does. Each change is kept as
the operator's intent with the nodes it missed, and what brings a node that missed it up to date. The changes
against two real Asterisks are in tests/integration/test_nodes_sandbox.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.client import AmiError
from callcenter.desk import availability
from callcenter.model.addresses import Address
from callcenter.model.hotline import load
from callcenter.settings import Settings
from callcenter.store import desk_intents
from callcenter.store.db import Database
from callcenter.store.desk_intents import Intent
from tests.factories import local_nodes

MODEL = load(Settings().model_file)
PORTS = {"a": 1, "b": 2}


def _settings(tmp_path: Path) -> Settings:
    settings = Settings()
    settings.nodes = local_nodes(tmp_path, PORTS)
    return settings


def _nodes_answer(monkeypatch: pytest.MonkeyPatch, b: str) -> list[str]:
    """Node a takes every action; node b answers as ``b`` says. The nodes that took something."""
    took: list[str] = []

    async def send_actions(_settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **_: Any) -> list[Any]:
        node = "a" if address.port == PORTS["a"] else "b"
        if node == "b" and b == "down":
            raise AmiError(f"cannot reach AMI at {address}: connection refused") from ConnectionRefusedError()
        if node == "b" and b == "refuses":
            raise AmiError("AMI QueuePause  failed: Permission denied")
        took.append(node)
        return [{"Response": "Success"} for _ in actions]

    monkeypatch.setattr(availability, "send_actions", send_actions)
    return took


def test_a_call_back_to_a_number_in_other_digits_is_refused_before_reaching_a_node(tmp_path: Path) -> None:
    from callcenter.desk.callback import originate

    with pytest.raises(availability.DeskError, match="a number has 3 to 20 digits"):
        asyncio.run(originate(_settings(tmp_path), MODEL, "op101", "٠٩٠٥١٢٣٤٥٦", "02621022", "1.1", "cb-1"))


def test_a_node_that_is_down_does_not_stop_the_change_on_the_others(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    took = _nodes_answer(monkeypatch, b="down")
    asyncio.run(availability.pause(_settings(tmp_path), MODEL, "op101", "lunch"))
    assert took == ["a"]
    assert any("not sent to the node(s) away" in r.getMessage() and "node b" in r.getMessage()
               for r in caplog.records)


def test_a_node_that_refuses_fails_the_change_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    took = _nodes_answer(monkeypatch, b="refuses")
    with pytest.raises(AmiError, match="node b: AMI QueuePause  failed: Permission denied"):
        asyncio.run(availability.pause(_settings(tmp_path), MODEL, "op101", "lunch"))
    assert took == ["a"]


def test_every_node_down_fails_the_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _nodes_answer(monkeypatch, b="down")
    settings = _settings(tmp_path)
    settings.nodes = local_nodes(tmp_path, {"b": PORTS["b"], "c": 3})
    with pytest.raises(AmiError, match="cannot reach AMI"):
        asyncio.run(availability.pause(settings, MODEL, "op101", "lunch"))  # c answers as b does: down


def _intent(db: Database, operator: str) -> Intent | None:
    with db.session() as session:
        return desk_intents.load(session, operator)


def test_a_change_a_node_missed_is_kept_with_that_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        db: Database) -> None:
    _nodes_answer(monkeypatch, b="down")
    asyncio.run(availability.pause(_settings(tmp_path), MODEL, "op101", "lunch", db))
    assert _intent(db, "op101") == Intent("op101", None, True, "lunch", 1, frozenset({"b"}))
    asyncio.run(availability.log_in(_settings(tmp_path), MODEL, "op203", db))
    asyncio.run(availability.log_out(_settings(tmp_path), MODEL, "op203", db))
    assert _intent(db, "op203") == Intent("op203", False, None, "", 2, frozenset({"b"}))

    _nodes_answer(monkeypatch, b="up")  # every node takes the next change: nothing missed any more
    asyncio.run(availability.resume(_settings(tmp_path), MODEL, "op101", db))
    assert _intent(db, "op101") == Intent("op101", None, False, "", 2, frozenset())
    asyncio.run(availability.log_in(_settings(tmp_path), MODEL, "op203", db))  # afresh after a log-out: not paused
    assert _intent(db, "op203") == Intent("op203", True, False, "", 3, frozenset())


def test_a_change_that_fails_is_not_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Database) -> None:
    _nodes_answer(monkeypatch, b="down")
    asyncio.run(availability.pause(_settings(tmp_path), MODEL, "op101", "lunch", db))
    _nodes_answer(monkeypatch, b="refuses")
    with pytest.raises(AmiError):
        asyncio.run(availability.resume(_settings(tmp_path), MODEL, "op101", db))
    # as before (undone, a new version): node a, which took the resume, is paused again; b refuses that too and
    # is left to the live feed
    assert _intent(db, "op101") == Intent("op101", None, True, "lunch", 3, frozenset({"b"}))
    with pytest.raises(AmiError):
        asyncio.run(availability.pause(_settings(tmp_path), MODEL, "op102", "break", db))
    assert _intent(db, "op102") is None
    with pytest.raises(availability.DeskError):  # refused before anything is sent: nothing kept either
        asyncio.run(availability.pause(_settings(tmp_path), MODEL, "op102", "nap", db))
    assert _intent(db, "op102") is None


def test_a_node_that_comes_back_is_told_what_it_missed_and_only_that(db: Database) -> None:
    agent, fixed = "op203", "op101"
    queue = next(name for name, q in MODEL.queues.items() if agent in q.agents)
    out = Intent(agent, False, None, "", 2, frozenset({"b"}))
    assert availability.catch_up(MODEL, out, {queue: (True, "lunch")}) == [
        {"Action": "QueueRemove", "Queue": queue, "Interface": "PJSIP/op203"}]
    assert availability.catch_up(MODEL, out, {}) == []
    back = Intent(agent, True, False, "", 3, frozenset({"b"}))
    assert availability.catch_up(MODEL, back, {}) == [
        {"Action": "QueueAdd", "Queue": queue, "Interface": "PJSIP/op203", "MemberName": agent,
         "StateInterface": "PJSIP/op203"}]
    assert availability.catch_up(MODEL, back, {queue: (True, "break")}) == [
        {"Action": "QueuePause", "Interface": "PJSIP/op203", "Paused": "false"}]
    lunch = Intent(fixed, None, True, "lunch", 1, frozenset({"b"}))
    pause = {"Action": "QueuePause", "Interface": "PJSIP/op101", "Paused": "true", "Reason": "lunch"}
    assert availability.catch_up(MODEL, lunch, {"operators": (False, "")}) == [pause]
    assert availability.catch_up(MODEL, lunch, {"operators": (True, "break")}) == [pause]  # another reason
    assert availability.catch_up(MODEL, lunch, {"operators": (True, "lunch")}) == []
    assert availability.catch_up(MODEL, Intent("op999", None, True, "x", 1, frozenset()), {}) == []
    status = [{"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op101", "Paused": "1",
               "PausedReason": "lunch"},
              {"Event": "QueueMember", "Queue": "operators", "Location": "PJSIP/op102", "Paused": "0"},
              {"Event": "QueueStatusComplete"}]
    assert availability.members_of(status, fixed) == {"operators": (True, "lunch")}


def test_a_node_is_taken_off_an_intent_only_if_no_newer_change_came(db: Database) -> None:
    with db.session() as session:
        _, first = desk_intents.ask(session, "op101", paused=True, reason="lunch")
        desk_intents.missed_by(session, "op101", first.version, {"a", "b"})
    with db.session() as session:
        assert [i.operator for i in desk_intents.missed_on(session, "b")] == ["op101"]
        first = desk_intents.load(session, "op101")  # type: ignore[assignment]
        assert desk_intents.caught_up(session, first, "b") is None
    with db.session() as session:
        assert desk_intents.missed_on(session, "b") == []
        assert desk_intents.load(session, "op101").missed == {"a"}  # type: ignore[union-attr]
        _, newer = desk_intents.ask(session, "op101", paused=False)
        assert desk_intents.caught_up(session, first, "a") == newer  # applied too late: apply the newer one
        desk_intents.missed_by(session, "op101", first.version, {"c"})  # an older change's news: ignored
        assert desk_intents.load(session, "op101") == newer


def test_a_change_that_lands_after_a_newer_one_is_followed_by_the_newer_again(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Database) -> None:
    """A pause and a resume of one operator at once (a double click, two API processes): the resume is written
    and sent while the pause is on its way, and the pause lands last on both nodes. Its sender sees the newer
    intent and sends it again, so the nodes end as the operator last asked: not paused."""
    settings = _settings(tmp_path)
    landed: list[tuple[int, dict[str, str]]] = []
    raced: list[bool] = []

    async def send_actions(_settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **_: Any) -> list[Any]:
        if actions[0].get("Paused") == "true" and not raced:  # the pause, on its way to node a: the resume
            raced.append(True)  # overtakes it (written and sent to both nodes)
            await availability.resume(settings, MODEL, "op101", db)
        landed.extend((address.port, dict(action)) for action in actions)
        return [{"Response": "Success"} for _ in actions]

    monkeypatch.setattr(availability, "send_actions", send_actions)
    asyncio.run(availability.pause(settings, MODEL, "op101", "lunch", db))
    last = {port: action["Paused"] for port, action in landed if action["Action"] == "QueuePause"}
    assert last == {PORTS["a"]: "false", PORTS["b"]: "false"}
    assert [action["Paused"] for port, action in landed if port == PORTS["a"]] == ["false", "true", "false"]
    assert _intent(db, "op101") == Intent("op101", None, False, "", 2, frozenset())


def test_a_log_in_overtaken_by_a_log_out_leaves_the_agent_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                db: Database) -> None:
    settings = _settings(tmp_path)
    landed: list[tuple[int, str]] = []
    raced: list[bool] = []

    async def send_actions(_settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **_: Any) -> list[Any]:
        if actions[0]["Action"] == "QueueAdd" and not raced:
            raced.append(True)
            await availability.log_out(settings, MODEL, "op203", db)
        landed.extend((address.port, action["Action"]) for action in actions)
        return [{"Response": "Success"} for _ in actions]

    monkeypatch.setattr(availability, "send_actions", send_actions)
    asyncio.run(availability.log_in(settings, MODEL, "op203", db))
    assert {port: action for port, action in landed} == {PORTS["a"]: "QueueRemove", PORTS["b"]: "QueueRemove"}
    assert _intent(db, "op203") == Intent("op203", False, None, "", 2, frozenset())


def test_a_newer_change_that_cannot_be_sent_again_is_left_to_the_live_feed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Database) -> None:
    settings = _settings(tmp_path)
    raced: list[bool] = []
    resumed: list[bool] = []

    async def send_actions(_settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **_: Any) -> list[Any]:
        if actions[0].get("Paused") == "true" and not raced:
            raced.append(True)
            await availability.resume(settings, MODEL, "op101", db)
            resumed.append(True)
        elif actions[0].get("Paused") == "false" and resumed and address.port == PORTS["b"]:  # sent again: b
            raise AmiError("AMI QueuePause failed: Permission denied")  # refuses, a takes it
        return [{"Response": "Success"} for _ in actions]

    monkeypatch.setattr(availability, "send_actions", send_actions)
    asyncio.run(availability.pause(settings, MODEL, "op101", "lunch", db))
    assert _intent(db, "op101") == Intent("op101", None, False, "", 2, frozenset({"b"}))


def test_a_change_refused_by_one_node_still_leaves_the_others_as_last_asked(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Database) -> None:
    """The pause lands on node a after the resume and node b refuses it: the change fails (named), and node a is
    given the resume again."""
    settings = _settings(tmp_path)
    landed: list[tuple[int, str]] = []
    raced: list[bool] = []

    async def send_actions(_settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **_: Any) -> list[Any]:
        paused = actions[0].get("Paused", "")
        if paused == "true" and address.port == PORTS["b"]:
            raise AmiError("AMI QueuePause failed: Permission denied")
        if paused == "true" and not raced:
            raced.append(True)
            await availability.resume(settings, MODEL, "op101", db)
        landed.append((address.port, paused))
        return [{"Response": "Success"} for _ in actions]

    monkeypatch.setattr(availability, "send_actions", send_actions)
    with pytest.raises(AmiError, match="node b: AMI QueuePause failed"):
        asyncio.run(availability.pause(settings, MODEL, "op101", "lunch", db))
    assert [paused for port, paused in landed if port == PORTS["a"]] == ["false", "true", "false"]
    assert _intent(db, "op101") == Intent("op101", None, False, "", 2, frozenset())


def test_the_same_change_twice_at_once_is_not_sent_a_third_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                  db: Database) -> None:
    settings = _settings(tmp_path)
    landed: list[str] = []
    raced: list[bool] = []

    async def send_actions(_settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **_: Any) -> list[Any]:
        if not raced:
            raced.append(True)
            await availability.pause(settings, MODEL, "op101", "lunch", db)  # a double click
        landed.append(actions[0]["Paused"])
        return [{"Response": "Success"} for _ in actions]

    monkeypatch.setattr(availability, "send_actions", send_actions)
    asyncio.run(availability.pause(settings, MODEL, "op101", "lunch", db))
    assert landed == ["true"] * 4  # each change to both nodes, nothing more
    assert _intent(db, "op101") == Intent("op101", None, True, "lunch", 2, frozenset())
