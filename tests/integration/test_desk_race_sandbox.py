"""Two desk changes of one operator at once (a double click, two API processes) against the real Asterisk: the
older change lands after the newer one, and its sender then sends the newer again, so the queue ends as the
operator last asked (the unit tests in tests/unit/test_desk_nodes.py cover the order and the failures)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import control
from callcenter.desk import availability
from callcenter.model.addresses import Address
from callcenter.settings import Settings
from callcenter.store import desk_intents
from callcenter.store.db import Database
from tests.integration.conftest import MODEL, SETTINGS, cli, reset_queues

pytestmark = pytest.mark.sandbox
real_send = control.send_actions


def _member(operator: str) -> str:
    """The operator's line in the queue's status on Asterisk ("" when not a member)."""
    return next((line for line in cli("queue show operators").splitlines() if f"(PJSIP/{operator})" in line), "")


@pytest.fixture
def queues(sandbox: Path) -> Iterator[None]:
    reset_queues()
    yield
    reset_queues()


def _overtaken_by(monkeypatch: pytest.MonkeyPatch, first_action: str, newer: Any) -> list[str]:
    """The first ``first_action`` waits until ``newer()`` (a whole desk change) has been written and sent; the
    actions as Asterisk took them."""
    took: list[str] = []
    raced: list[bool] = []

    async def send_actions(settings: Settings, address: Address, actions: Sequence[Mapping[str, str]],
                           **kwargs: Any) -> list[Any]:
        if actions[0]["Action"] == first_action and not raced:
            raced.append(True)
            await newer()
        answers = await real_send(settings, address, actions, **kwargs)
        took.extend(f"{a['Action']} {a.get('Paused', '')}".strip() for a in actions)
        return answers

    monkeypatch.setattr(availability, "send_actions", send_actions)
    return took


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_pause_that_lands_after_the_resume_is_followed_by_the_resume(
        queues: None, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    took = _overtaken_by(monkeypatch, "QueuePause",
                         lambda: availability.resume(SETTINGS, MODEL, "op101", db))
    asyncio.run(availability.pause(SETTINGS, MODEL, "op101", "lunch", db))
    assert _member("op101") and "paused" not in _member("op101")
    assert took == ["QueuePause false", "QueuePause true", "QueuePause false"]
    with db.session() as session:
        assert desk_intents.load(session, "op101").paused is False  # type: ignore[union-attr]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_log_in_that_lands_after_the_log_out_is_followed_by_the_log_out(
        queues: None, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    took = _overtaken_by(monkeypatch, "QueueAdd", lambda: availability.log_out(SETTINGS, MODEL, "op203", db))
    asyncio.run(availability.log_in(SETTINGS, MODEL, "op203", db))
    assert _member("op203") == ""
    assert took[-1] == "QueueRemove" and "QueueAdd" in took
