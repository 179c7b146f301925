"""Case status lookup for callers: the interface the IVR needs, the store-backed lookup, and a stand-in.

:class:`StoredCases` reads the cases table (a read-only query by case number) and answers with what a caller
hears (the hotline's own statuses read as "received", see :data:`callcenter.model.cases.SPOKEN`) and the day of
the case's last update. :class:`NoCases` answers "not found" for every number (no database configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol
from zoneinfo import ZoneInfo

# Status codes a caller can hear; anything else is read as "case-status-other" (defined once here until the
# cases issue moves them next to the cases model).
CASE_STATUSES = ("received", "in_progress", "forwarded", "resolved", "closed", "rejected")


@dataclass(frozen=True)
class CaseStatus:
    """What the caller hears about a case: its number and status code."""

    number: str
    status: str
    updated: date | None = None  # the day of the last update (local time), read out after the status

    @property
    def prompt(self) -> str:
        """The prompt that speaks the status."""
        return f"case-status-{self.status}" if self.status in CASE_STATUSES else "case-status-other"


class CaseLookup(Protocol):
    """Finds a case by the number a caller keyed in (digits only, already length-checked)."""

    def lookup(self, number: str) -> CaseStatus | None:
        """The case's status, or None when there is no such case."""


class StoredCases:
    """Cases from the database at ``url``; the connection is made on the first lookup (in the call's own process:
    the FastAGI server forks one per call) and closed after it."""

    def __init__(self, url: str, zone: str = "Asia/Ho_Chi_Minh") -> None:
        self.url, self.zone = url, ZoneInfo(zone)

    def lookup(self, number: str) -> CaseStatus | None:
        """The case's spoken status and last-update day, or None."""
        from callcenter.model.cases import SPOKEN
        from callcenter.model.cases import CaseStatus as Flow
        from callcenter.store.cases import by_number
        from callcenter.store.db import Database

        db = Database(self.url)
        try:
            with db.session() as session:
                case = by_number(session, number)
                if case is None:
                    return None
                return CaseStatus(case.number, SPOKEN.get(Flow(case.status), "other"),
                                  case.updated_at.astimezone(self.zone).date())
        finally:
            db.dispose()


class NoCases:
    """The lookup before the cases store exists: no case is ever found."""

    def lookup(self, number: str) -> CaseStatus | None:
        """Always None."""
        return None
