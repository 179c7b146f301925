"""The desk's changes over several nodes, with the AMI sessions replaced (each node answers, refuses or cannot be
reached): a node that is down does not stop the change on the others; one that refuses does. The changes against two
real Asterisks are in tests/integration/test_nodes_sandbox.py."""

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
