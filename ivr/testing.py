"""Test doubles for the flows: a scripted caller on a fake channel, and case lookups that answer on cue.

The script is what the caller keys, in order. Each entry is consumed by the next ``wait_key`` or ``collect``
(``""`` is silence until the timeout); an entry starting with ``!`` is pressed during the next interruptible
prompt instead (barge-in); :data:`HANG` hangs up at that point. An exhausted script is silence.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ivr.cases import CaseStatus
from ivr.channel import Hangup

HANG = "<hang up>"
ODD_KEYS = ("", "#", "*", "0", "1", "2", "7", "8", "9", "A", "12", "1234", "0905123456", "9" * 40, "!1", "!8")
Step = tuple[Any, ...]


@dataclass
class ScriptedChannel:
    """A Channel whose caller follows a script; every call is appended to ``trace``."""

    script: Iterable[str] = ()
    path: str = "/var/spool/asterisk/monitor/1.2/msg-1.2.wav"  # what message_path() answers
    record_ok: bool = True
    hang_on: str = ""  # hang up when this prompt starts playing
    trace: list[Step] = field(default_factory=list)
    language: str = ""
    dead: bool = False  # after the hang-up every command fails, as Asterisk refuses them on a dead channel

    def __post_init__(self) -> None:
        self.inputs = deque(self.script)

    def _hang_up(self) -> None:
        self.dead = True
        self.trace.append(("hangup",))
        raise Hangup("scripted hang-up")

    def _alive(self) -> None:
        if self.dead:
            raise Hangup("command on a dead channel")

    def _next(self) -> str:
        entry = self.inputs.popleft() if self.inputs else ""
        if entry == HANG:
            self._hang_up()
        return entry

    def use_language(self, language: str) -> None:
        self._alive()
        self.language = language
        self.trace.append(("language", language))

    def play(self, prompt: str, interrupt: str = "") -> str:
        self._alive()
        self.trace.append(("play", prompt))
        if prompt == self.hang_on:
            self._hang_up()
        if interrupt and self.inputs and self.inputs[0].startswith("!"):
            return self._next()[1:]
        return ""

    def wait_key(self, timeout: float) -> str:
        self._alive()
        self.trace.append(("wait", timeout))
        return self._next()

    def collect(self, prompt: str, *, max_digits: int, timeout: float) -> str:
        self._alive()
        self.trace.append(("collect", prompt, max_digits, timeout))
        return self._next()

    def message_path(self) -> str:
        self._alive()
        return self.path

    def record(self, path: str, *, max_seconds: int, silence_seconds: int) -> bool:
        self._alive()
        self.trace.append(("record", path, max_seconds, silence_seconds))
        if self.inputs and self.inputs[0] == HANG:
            self._next()
        return self.record_ok

    def set_variable(self, name: str, value: str) -> None:
        self._alive()
        self.trace.append(("set", name, str(value)))

    def user_event(self, name: str, **fields: str) -> None:
        self._alive()
        self.trace.append(("event", str(name), {key: str(value) for key, value in fields.items()}))

    @property
    def events(self) -> list[tuple[str, dict[str, str]]]:
        """The user events raised, in order."""
        return [(step[1], step[2]) for step in self.trace if step[0] == "event"]

    @property
    def variables(self) -> dict[str, str]:
        """The channel variables as the dialplan would see them."""
        return {step[1]: step[2] for step in self.trace if step[0] == "set"}

    @property
    def played(self) -> list[str]:
        """The prompts played (or started, or played before collecting keys), in order."""
        return [step[1] for step in self.trace if step[0] in ("play", "collect")]


UPDATED = date(2026, 11, 28)  # the last update of every case FixedCases knows


@dataclass
class FixedCases:
    """A case lookup that knows a few cases, or raises ``error`` for every lookup."""

    cases: dict[str, str] = field(default_factory=dict)  # number -> status code
    error: Exception | None = None
    asked: list[str] = field(default_factory=list)

    def lookup(self, number: str) -> CaseStatus | None:
        """The case's status, None when unknown; raises ``error`` when set."""
        self.asked.append(number)
        if self.error is not None:
            raise self.error
        status = self.cases.get(number)
        return CaseStatus(number, status, UPDATED) if status is not None else None


def random_script(rng: random.Random, keys: tuple[str, ...] = ODD_KEYS, longest: int = 25) -> list[str]:
    """A caller keying at random: silence, valid and odd keys, barge-ins, long entries."""
    return [rng.choice(keys) for _ in range(rng.randrange(0, longest))]
