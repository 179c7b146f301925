"""The audit log of recording access: who (the signed-in user), what, when, from where, and the status actually
served. Anonymous refusals are written at most once per address per :data:`ANONYMOUS_EVERY` seconds, so requests
nobody signed for cannot grow the table without bound (the rest are only counted in the process log)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from fastapi import Request

from callcenter.store.models import RecordingAccess
from callcenter.web.auth import principal

log = logging.getLogger(__name__)
ANONYMOUS_EVERY = 600.0


def client_address(request: Request) -> str:
    """The peer address (a deployment behind a proxy should pass it on; see README)."""
    return request.client.host if request.client else ""


class AnonymousLimit:
    """When each address last had an anonymous refusal written (one app's memory, bounded)."""

    def __init__(self, every: float = ANONYMOUS_EVERY, capacity: int = 10_000) -> None:
        self.every, self.capacity = every, capacity
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, address: str) -> bool:
        """Whether a refusal from ``address`` is to be written now (and note that it was)."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > self.capacity:
                self._seen.clear()
            if now - self._seen.get(address, float("-inf")) < self.every:
                return False
            self._seen[address] = now
            return True


def audit(request: Request, action: str, status_code: int, recording_id: int | None = None,
          call_id: int | None = None, detail: str = "") -> None:
    """Write one audit row in its own transaction (kept even when the request then fails)."""
    who = principal(request)
    address = client_address(request)
    if who is None and not request.app.state.anonymous_audit.due(address):
        log.warning("recording %s: anonymous %s from %s refused (%d), not audited again yet", recording_id, action,
                    address, status_code)
        return
    with request.app.state.db.session() as session:
        session.add(RecordingAccess(at=datetime.now(UTC), recording_id=recording_id, call_id=call_id, action=action,
                                    allowed=status_code < 400, status_code=status_code,
                                    actor=who.name if who else "", client=address, detail=detail[:500]))
