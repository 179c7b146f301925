"""An operator's desk intent when two changes reach the store at once (a double click, two API processes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text

from callcenter.store import desk_intents
from callcenter.store.db import Database
from callcenter.store.desk_intents import Intent


def _second_change(db: Database, before_statement: str, meanwhile: Callable[[], object]) -> tuple[Any, Intent]:
    """op9 logs in; ``meanwhile`` runs once, on that change's connection, right before its first statement that
    starts with ``before_statement``."""
    hooked = {"connection": None}

    def hook(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if connection is hooked["connection"] and statement.lstrip().startswith(before_statement):
            hooked["connection"] = None
            meanwhile()

    def second(session: Any) -> tuple[Any, Intent]:
        hooked["connection"] = session.connection()
        return desk_intents.ask(session, "op9", logged_in=True)

    sa_event.listen(db.engine, "before_cursor_execute", hook)
    try:
        return db.run(second)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", hook)


def test_a_new_operators_first_changes_made_at_once_are_both_recorded(db: Database) -> None:
    """The first change commits just before the second writes the operator's row: where a second change that had
    looked before (and found none) failed on the key, it goes on from that row (version 2, the first's intent as the
    one before it)."""
    first: list[tuple[Any, Intent]] = []
    before, intent = _second_change(db, "INSERT INTO desk_intents", lambda: first.append(
        db.run(desk_intents.ask, "op9", paused=True, reason="lunch")))

    assert len(first) == 1 and first[0][0] is None and first[0][1].version == 1
    assert before == first[0][1]  # undoing the second puts the first back, not nothing
    assert (intent.version, intent.logged_in, intent.paused, intent.reason) == (2, True, True, "lunch")
    with db.session() as session:
        assert desk_intents.load(session, "op9") == intent


def test_undoing_a_new_operators_only_change_leaves_no_intent(db: Database) -> None:
    with db.session() as session:
        before, intent = desk_intents.ask(session, "op9", paused=True, reason="lunch")
    assert before is None and intent.version == 1
    with db.session() as session:
        desk_intents.undo(session, before, "op9", intent.version)
    with db.session() as session:
        assert desk_intents.load(session, "op9") is None


def test_an_undo_of_the_first_change_cannot_pull_the_row_from_under_the_second(db: Database, db_url: str) -> None:
    """The first change reached no node and is undone (its row deleted: nothing was asked before it) while the
    second is between making sure the row exists and reading it: the undo waits for the second, then finds a newer
    change and leaves the row. (An insert that did nothing on the conflict left the row unlocked: the undo deleted
    it and the second failed to read it.)"""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's first write locks the whole database: no undo runs in between")
    with db.session() as session:
        first_before, first = desk_intents.ask(session, "op9", paused=True, reason="lunch")
    undone = threading.Thread(target=db.run, args=(desk_intents.undo, first_before, "op9", first.version))

    def undo_meanwhile() -> None:
        """The undo starts; the second goes on once the undo waits for its lock, or is done."""
        undone.start()
        deadline = time.monotonic() + 30
        while undone.is_alive() and not _waits_for_a_lock(db) and time.monotonic() < deadline:
            time.sleep(0.01)

    try:
        before, intent = _second_change(db, "SELECT", undo_meanwhile)
    finally:
        if undone.ident is not None:  # started (the hook ran)
            undone.join(30)
    assert undone.ident is not None and not undone.is_alive()
    assert before == first and intent.version == 2
    with db.session() as session:
        assert desk_intents.load(session, "op9") == intent  # the undo found a newer change and left it


def _waits_for_a_lock(db: Database) -> bool:
    with db.engine.connect() as connection:
        return bool(connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")))
