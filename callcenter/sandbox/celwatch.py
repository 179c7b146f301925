"""Watch Asterisk's own CEL file (cel_custom JSON lines) for a caller's events: how the sandbox's demo and tests
know that a caller has reached the menu, keyed a topic or is talking to an operator, without fixed sleeps."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


def _time(event: dict[str, Any]) -> float:
    try:
        return float(event.get("eventtime", 0))
    except (TypeError, ValueError):
        return 0.0


class CelWatchTimeout(TimeoutError):
    """The awaited event did not come in time."""


class CelWatch:
    """Reads the CEL file incrementally; events are looked up by caller number (``num``) and event type.

    Kept by (number, type): the file grows across test runs (tens of thousands of events), and every check of a
    waiting test looked at each of them, several times a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._seen: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()  # the demo's callers watch from several threads

    def _read(self) -> None:
        if not self.path.exists():
            return
        if self.path.stat().st_size < self._offset:  # rotated or truncated: read the new file from the start
            self._offset = 0
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                self._offset += len(raw)
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self._seen.setdefault((event.get("num"), event.get("eventtype")), []).append(event)

    def events(self, number: str, event: str, contains: str = "", app: str = "",
               since: float = 0.0) -> list[dict[str, Any]]:
        """The caller's events of this type so far (whose extra contains ``contains``, whose app is ``app``,
        raised at or after the epoch time ``since``)."""
        with self._lock:
            self._read()
            seen = list(self._seen.get((number, event), ()))
        return [e for e in seen if contains in str(e.get("eventextra", "")) and (not app or e.get("appname") == app)
                and _time(e) >= since]

    def wait(self, number: str, event: str, contains: str = "", count: int = 1, timeout: float = 60,
             app: str = "", since: float = 0.0) -> dict[str, Any]:
        """Block until the caller has raised ``count`` such events; return the last. CelWatchTimeout otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(number, event, contains, app, since)
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.2)
        raise CelWatchTimeout(f"no {event} {contains!r} x{count} from {number} within {timeout:.0f} s")
