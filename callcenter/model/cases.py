"""Cases, pure: the status flow (who may move a case from which status to which), and case numbers that are easy
to read out and key in on a phone (digits only, with a check digit that catches any one wrong digit and any two
neighbouring digits swapped: the Damm algorithm).

new -> forwarded -> in_progress -> resolved -> closed, plus returned (the department sends it back to the hotline)
and reopened. Every change is kept as a timestamped update with its author; nothing is deleted.
"""

from __future__ import annotations

import re
from enum import StrEnum

from callcenter.model.contract import Role


class CaseStatus(StrEnum):
    """Where a case stands."""

    NEW = "new"  # opened by the hotline, not forwarded yet
    FORWARDED = "forwarded"  # sent to a department, waiting for it to start
    IN_PROGRESS = "in_progress"  # the department works on it
    RESOLVED = "resolved"  # the department reported a result
    CLOSED = "closed"  # the hotline accepted the result (or closed it without one)
    RETURNED = "returned"  # the department sent it back to the hotline, with a reason
    REOPENED = "reopened"  # closed or resolved, then opened again (e.g. the citizen called: not fixed)


S = CaseStatus
HOTLINE = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
STAFF = (Role.SUPERVISOR, Role.ADMIN)
DEPARTMENT = (Role.DEPARTMENT,)

# (from, to) -> who may make that move
TRANSITIONS: dict[tuple[CaseStatus, CaseStatus], tuple[Role, ...]] = {
    (S.NEW, S.FORWARDED): HOTLINE,
    (S.NEW, S.CLOSED): STAFF,  # nothing to forward (a duplicate, not the hotline's business)
    (S.FORWARDED, S.IN_PROGRESS): DEPARTMENT,
    (S.FORWARDED, S.RESOLVED): DEPARTMENT,
    (S.FORWARDED, S.RETURNED): DEPARTMENT,
    (S.IN_PROGRESS, S.RESOLVED): DEPARTMENT,
    (S.IN_PROGRESS, S.RETURNED): DEPARTMENT,
    (S.RETURNED, S.FORWARDED): HOTLINE,  # to the same or another department
    (S.RETURNED, S.CLOSED): STAFF,
    (S.RESOLVED, S.CLOSED): STAFF,
    (S.RESOLVED, S.REOPENED): STAFF,
    (S.CLOSED, S.REOPENED): STAFF,
    (S.REOPENED, S.FORWARDED): HOTLINE,
    (S.REOPENED, S.CLOSED): STAFF,
}
OPEN = frozenset({S.NEW, S.FORWARDED, S.IN_PROGRESS, S.RETURNED, S.REOPENED})
AT_DEPARTMENT = frozenset({S.FORWARDED, S.IN_PROGRESS})  # the clock of the target handling time runs

# What a caller hears (ivr/cases.py prompts): the hotline's own states read as "received".
SPOKEN = {S.NEW: "received", S.RETURNED: "received", S.REOPENED: "in_progress", S.FORWARDED: "forwarded",
          S.IN_PROGRESS: "in_progress", S.RESOLVED: "resolved", S.CLOSED: "closed"}


class TransitionError(ValueError):
    """A status change the flow does not allow (or not to this role); the message says which."""


def check_transition(current: CaseStatus, target: CaseStatus, role: Role) -> None:
    """Refuse an illegal move with a message naming what is allowed from here."""
    allowed = TRANSITIONS.get((current, target))
    if allowed is None:
        options = sorted(to.value for (frm, to) in TRANSITIONS if frm is current)
        raise TransitionError(f"a {current.value} case cannot become {target.value} "
                              f"(from {current.value}: {', '.join(options) or 'nothing'})")
    if role not in allowed:
        raise TransitionError(f"a {role.value} may not make a {current.value} case {target.value}")


def next_statuses(current: CaseStatus, role: Role) -> list[CaseStatus]:
    """Where this role may move a case from ``current``."""
    return [to for (frm, to), roles in TRANSITIONS.items() if frm is current and role in roles]


# Damm's quasigroup of order 10 (weakly totally anti-symmetric): a check digit that detects every single-digit
# error and every transposition of adjacent digits.
_DAMM = ("0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
         "3674209581", "5869720134", "8945362017", "9438617205", "2581436790")
FIRST_SERIAL = 1000  # case numbers start at five digits (1000 + check digit)
# A case number as keyed in: ASCII digits only (str.isdigit also admits "²", which int() refuses), and no longer
# than a serial the database can hold.
NUMBER = re.compile(r"[0-9]{5,16}")


def _damm(digits: str) -> int:
    interim = 0
    for digit in digits:
        interim = int(_DAMM[interim][int(digit)])
    return interim


def case_number(serial: int) -> str:
    """The case number of the ``serial``-th case (1, 2, ...): digits and a check digit, e.g. 10019."""
    body = str(FIRST_SERIAL + serial - 1)
    return body + str(_damm(body))


def serial_of(number: str) -> int | None:
    """The serial a keyed-in case number names, or None if it is not a case number (wrong check digit)."""
    if NUMBER.fullmatch(number) is None or _damm(number) != 0:
        return None
    serial = int(number[:-1]) - FIRST_SERIAL + 1
    return serial if serial >= 1 else None
