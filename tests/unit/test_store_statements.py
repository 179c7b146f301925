"""SQLite: the store writes a batch in a few multi-row statements, never one step per row (every step lets go of
the interpreter lock, and a busy AMI reader in the same process kept it for a switch interval each time)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, func, select

from callcenter.ami.events import CelEvent
from callcenter.listener.calllog import CallLogStore
from callcenter.store import db as db_module
from callcenter.store.db import Database, execute_rows
from callcenter.store.models import CALL, CelJournal
from tests.factories import DIRECTORY, answered_stream


def test_a_one_row_insert_is_made_one_of_many_rows() -> None:
    one = "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING"
    many = "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING"
    assert db_module._many_rows(one, 3) == many
    with pytest.raises(ValueError, match="placeholders"):
        db_module._many_rows("INSERT INTO t (a, b) VALUES (1, ?)", 2)
    with pytest.raises(ValueError, match="placeholders"):
        db_module._many_rows("UPDATE t SET a = ?", 2)


def test_rows_go_in_their_order_in_parts_within_the_bound_values_and_conflicts_are_counted_out(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BOUND_VALUES", 5)  # two rows of two values per statement
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v INTEGER)")
        connection.exec_driver_sql("INSERT INTO t (k, v) VALUES ('c', 0)")
        statements: list[str] = []
        event.listen(connection, "before_cursor_execute", lambda *args: statements.append(args[2]))
        rows = [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]
        inserted = execute_rows(connection, "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING", rows)
        assert inserted == 4
        assert [statement.count("(?, ?)") for statement in statements] == [2, 2, 1]
        assert connection.exec_driver_sql("SELECT k, v FROM t ORDER BY id").all() == [
            ("c", 0), ("a", 1), ("b", 2), ("d", 4), ("e", 5)]
    assert execute_rows(db.engine.connect(), "INSERT INTO t (k, v) VALUES (?, ?)", []) == 0


def test_a_batch_ends_in_parts_of_powers_of_two_so_few_statements_are_ever_prepared(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BOUND_VALUES", 16)  # sixteen rows of one value per statement
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        statements: list[str] = []
        event.listen(connection, "before_cursor_execute", lambda *args: statements.append(args[2]))
        assert execute_rows(connection, "INSERT INTO t (v) VALUES (?)", [(n,) for n in range(23)]) == 23
        assert [statement.count("(?)") for statement in statements] == [16, 4, 2, 1]
        assert connection.exec_driver_sql("SELECT v FROM t ORDER BY id").scalars().all() == list(range(23))


def _calls(count: int) -> list[CelEvent]:
    return [replace(e, linkedid=f"{n}.1", uniqueid=e.uniqueid.replace("100", str(n), 1))
            for n in range(100, 100 + count) for e in answered_stream()]


@pytest.mark.parametrize("count", [5, 60])
def test_a_batch_of_any_size_is_stored_in_a_few_statements_none_run_for_each_row(db: Database, count: int) -> None:
    executed: list[tuple[str, bool]] = []

    def note(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, many: bool) -> None:
        executed.append((statement.split()[0] + " " + statement.split()[2], many))

    event.listen(db.engine, "before_cursor_execute", note)
    events = _calls(count)
    assert len(CallLogStore(db, "n1", DIRECTORY).ingest(events, "ami")) == count
    assert not [statement for statement, many in executed if many]  # the driver's executemany: a step a row
    # The journal, the calls, the summary: a few statements each (parts of 3,750 journal rows, then powers of two),
    # and the reads around them.
    assert len(executed) <= 30, executed
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CelJournal)) == len(events)
        assert session.scalar(select(func.count()).where(CALL.status == "answered")) == count
        keys = session.scalars(select(CelJournal.event_key).order_by(CelJournal.id)).all()
    assert keys == [e.key for e in events]  # ids in arrival order
