"""Continuous calls for fault tests: citizens call a hotline number over and over from threads until stopped.

Each call is a fresh baresip agent with a unique caller number; the caller's microphone file is ``seconds`` long,
so the caller hangs up that long after the PBX answers (waiting plus talking). The IVR is not running in these
tests, so callers go straight to the queue.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.sandbox.baresip import AgentError, SipAgent


@dataclass
class Traffic:
    """``callers`` threads, each placing one call after another on ``line`` with its own citizen account."""

    make_agent: Callable[..., SipAgent]  # the agents fixture: starts an agent (and stops it at teardown)
    line: str
    citizens: list[str]
    seconds: float = 6.0
    numbers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Traffic:
        for citizen in self.citizens:
            thread = threading.Thread(target=self._caller, args=(citizen,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[str]:
        """Let every call in progress finish; return every caller number that dialled."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.seconds + 120)
        return list(self.numbers)

    def _caller(self, citizen: str) -> None:
        while not self._stop.is_set():
            number = "08" + "".join(random.choice("0123456789") for _ in range(8))
            agent = self.make_agent(citizen, wav_seconds=self.seconds, caller_number=number)
            try:
                with self._lock:
                    self.numbers.append(number)
                agent.dial(self.line)
                agent.wait_event("CALL_CLOSED", self.seconds + 120)
            except AgentError as exc:
                self.failures.append(f"{number}: {exc}")
            finally:
                agent.stop()
