"""What each operator last asked for at the desk, and which Asterisk nodes missed it.

With several nodes a desk change goes to each; a node that cannot be reached (down for maintenance, its AMI link
cut) is left out while the others take it. When it comes back it restores its queues from its own astdb (or, for
fixed desks, from its configuration: not paused), which is the state from before the change: an operator who
logged out or paused meanwhile would be rung there again. So each change is written here before it is sent (the
operator's whole intent: logged in or out, paused with a reason or not, and a version counting up), the nodes it
could not reach are added to ``missed`` afterwards, and the API process that follows a node (the live feed) applies
the intent there when the node is back, then takes the node off the list if no newer change came meanwhile. A
standing pause is given again at every session with a node: one that restarted forgets a fixed desk's pause.

A change no node took is undone here (the previous intent put back): the intent is what the PBX was told.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.store.db import insert_for
from callcenter.store.models import DeskIntent


@dataclass(frozen=True)
class Intent:
    """An operator's last desk change as a whole: ``logged_in`` None for a fixed desk (always in its queues) or
    before any log-in or log-out; ``paused`` None before any pause or resume."""

    operator: str
    logged_in: bool | None
    paused: bool | None
    reason: str
    version: int
    missed: frozenset[str]


KEEP = object()  # ask(): this part of the intent stays as it was


def _intent(row: DeskIntent) -> Intent:
    return Intent(row.operator, row.logged_in, row.paused, row.reason, row.version, frozenset(row.missed))


def load(session: Session, operator: str) -> Intent | None:
    """The operator's intent, or None if they never changed anything at the desk."""
    row = session.get(DeskIntent, operator)
    return None if row is None else _intent(row)


def ask(session: Session, operator: str, *, logged_in: bool | object | None = KEEP,
        paused: bool | object | None = KEEP, reason: str = "") -> tuple[Intent | None, Intent]:
    """Record a change about to be sent (the parts not given stay); the intent before it and the new one. A new
    change is sent to every node: the nodes it replaces the intent for have missed nothing of it (yet)."""
    # The row is made if missing (version 0: nothing asked yet) or else locked as it is, in one statement, then
    # read. Reading first and adding a missing row let two changes to a new operator (a double click, two API
    # processes) both find none, and the second insert failed on the key: a 500 for a change that was fine. (An
    # insert that did nothing on a conflict would leave the row unlocked until read: an undo of the first change
    # could delete it in between.)
    table = DeskIntent.__table__
    session.execute(insert_for(session, table).values(
        operator=operator, logged_in=None, paused=None, reason="", version=0, missed=[],
        changed_at=datetime.now(UTC)).on_conflict_do_update(index_elements=["operator"],
                                                            set_={"version": table.c.version}))
    row = session.get_one(DeskIntent, operator, populate_existing=True)
    before = None if row.version == 0 else _intent(row)
    if logged_in is True and row.logged_in is False and paused is KEEP:
        paused = False  # logged in after a log-out: the member is added afresh, not paused
    if logged_in is not KEEP:
        row.logged_in = logged_in  # type: ignore[assignment]
    if paused is not KEEP:
        row.paused = paused  # type: ignore[assignment]
        row.reason = reason if paused else ""
    row.version += 1
    row.missed = []
    row.changed_at = datetime.now(UTC)
    session.flush()
    return before, _intent(row)


def missed_by(session: Session, operator: str, version: int, nodes: Iterable[str]) -> None:
    """The change ``version`` could not reach ``nodes`` (away): apply it there when they are back. Nothing if a
    newer change came meanwhile (it was sent to every node again)."""
    row = session.get(DeskIntent, operator, with_for_update=True)
    if row is not None and row.version == version:
        row.missed = sorted(set(row.missed) | set(nodes))


def undo(session: Session, before: Intent | None, operator: str, version: int) -> None:
    """The change ``version`` reached no node: put the intent before it back, as a new version (unless a newer
    change came)."""
    row = session.get(DeskIntent, operator, with_for_update=True)
    if row is None or row.version != version:
        return
    if before is None:
        session.delete(row)
        return
    row.logged_in, row.paused, row.reason = before.logged_in, before.paused, before.reason
    row.missed = sorted(before.missed)
    # A new version: the undo is a change too. A sender that read the undone intent as the newest and sent it again
    # (availability._newest_last) then finds this one newer and sends it: the nodes end as the intent says.
    row.version += 1


def missed_on(session: Session, node: str) -> list[Intent]:
    """The intents ``node`` missed, by operator. (A hotline has tens of operators: read them all.)"""
    rows = session.scalars(select(DeskIntent).order_by(DeskIntent.operator))
    return [_intent(row) for row in rows if node in row.missed]


def owed_to(session: Session, node: str) -> list[Intent]:
    """What ``node`` is given when a session with it begins, by operator: the intents it missed, and every standing
    pause. (Restarted, an Asterisk restores its dynamic members with their pauses from its astdb, but its static
    members, the fixed desks, from its configuration: not paused. An operator at lunch would be rung.)"""
    rows = session.scalars(select(DeskIntent).order_by(DeskIntent.operator))
    return [_intent(row) for row in rows if node in row.missed or row.paused]


def caught_up(session: Session, intent: Intent, node: str) -> Intent | None:
    """``intent`` was applied on ``node``: take the node off its list, and return None; or, if a newer change
    came meanwhile, return it (the caller applies it too: the older one may have landed after it)."""
    row = session.get(DeskIntent, intent.operator, with_for_update=True)
    if row is None:
        return None
    if row.version != intent.version:
        return _intent(row)
    row.missed = [name for name in row.missed if name != node]
    return None
