"""An operator's desk intent when two changes reach the store at once (a double click, two API processes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event

from callcenter.store import desk_intents
from callcenter.store.db import Database


def test_a_new_operators_first_changes_made_at_once_are_both_recorded(db: Database) -> None:
    """The second change's row write meets a row the first committed after it looked (it found none): it goes on
    from that row (version 2, the first's intent as the one before it) instead of failing on the key."""
    first: list[tuple[Any, desk_intents.Intent]] = []
    hooked = {"connection": None}

    def first_commits_meanwhile(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Once, on the second change's connection, right before it writes the operator's row.
        if connection is hooked["connection"] and statement.lstrip().startswith("INSERT INTO desk_intents"):
            hooked["connection"] = None
            first.append(db.run(desk_intents.ask, "op9", paused=True, reason="lunch"))

    def second(session: Any) -> tuple[Any, desk_intents.Intent]:
        hooked["connection"] = session.connection()
        return desk_intents.ask(session, "op9", logged_in=True)

    sa_event.listen(db.engine, "before_cursor_execute", first_commits_meanwhile)
    try:
        before, intent = db.run(second)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", first_commits_meanwhile)

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
