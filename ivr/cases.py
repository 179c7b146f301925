"""Case status lookup for callers: the interface the IVR needs from the cases store, and a stand-in.

Until the cases issue lands, :class:`NoCases` answers "not found" for every number. The cases store should
provide a :class:`CaseLookup` (a read-only query by case number) and use the status codes of
:data:`CASE_STATUSES`, each of which has a spoken prompt ``case-status-<code>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Status codes a caller can hear; anything else is read as "case-status-other" (defined once here until the
# cases issue moves them next to the cases model).
CASE_STATUSES = ("received", "in_progress", "forwarded", "resolved", "closed", "rejected")


@dataclass(frozen=True)
class CaseStatus:
    """What the caller hears about a case: its number and status code."""

    number: str
    status: str

    @property
    def prompt(self) -> str:
        """The prompt that speaks the status."""
        return f"case-status-{self.status}" if self.status in CASE_STATUSES else "case-status-other"


class CaseLookup(Protocol):
    """Finds a case by the number a caller keyed in (digits only, already length-checked)."""

    def lookup(self, number: str) -> CaseStatus | None:
        """The case's status, or None when there is no such case."""


class NoCases:
    """The lookup before the cases store exists: no case is ever found."""

    def lookup(self, number: str) -> CaseStatus | None:
        """Always None."""
        return None
