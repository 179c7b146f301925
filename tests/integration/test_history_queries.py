"""The history's search at scale: the number prefix as an index range, capped totals, and the plans that use
the indexes (issue 12, "Years of history"; the timings are in bench/history.py, never here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from callcenter.calls.record import CallRecord
from callcenter.model.contract import Status
from callcenter.store import queries
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call
from callcenter.store.writer import upsert_call

T = datetime(2026, 11, 1, 8, tzinfo=UTC)
NUMBERS = ("0912345678", "0912", "091", "09", "0", "9", "90", "0913000000", "09129", "+84912345678", "+84",
           "+8", "84912", "", ":1", "0:", "091234567%", "0912_45678", "0a12")
EVERYTHING = queries.CallFilter(start=T - timedelta(days=1), end=T + timedelta(days=1))


def _add(db: Database, numbers: tuple[str, ...] | list[str], status: Status = Status.ANSWERED) -> None:
    with db.session() as session:
        for n, number in enumerate(numbers):
            start = T + timedelta(minutes=n)
            record = CallRecord(linkedid=f"{status.value}.{n}", started_at=start, ended_at=start + timedelta(minutes=3),
                                status=status, caller_number=number, line="02621022")
            upsert_call(session, "n1", record, start)


@pytest.mark.parametrize(("prefix", "expected"), [("0912", ("0912", "0913")), ("9", ("9", ":")), ("09", ("09", "0:")),
                                                  ("+84", ("+84", "+85")), ("", ("", None)),
                                                  ("1\U0010ffff", ("1\U0010ffff", "2")),
                                                  ("\U0010ffff", ("\U0010ffff", None))])
def test_a_prefix_is_the_range_up_to_the_next_prefix(prefix: str, expected: tuple[str, str | None]) -> None:
    assert queries.prefix_range(prefix) == expected


@pytest.mark.parametrize("prefix", ["0912", "091", "09", "0", "9", "+84", "+8", "+", "0912345678", "09123456789",
                                    "0913", "84", ":", "091234567%", "0912_"])
def test_the_number_search_finds_exactly_what_like_found(db: Database, prefix: str) -> None:
    _add(db, NUMBERS)
    where = queries.CallFilter(start=EVERYTHING.start, end=EVERYTHING.end, number=prefix)
    with db.session() as session:
        found = set(session.scalars(queries.filtered(select(CALL.caller_number), where)))
        like = set(session.scalars(select(CALL.caller_number).where(
            CALL.caller_number.startswith(prefix, autoescape=True))))
    assert found == like == {n for n in NUMBERS if n.startswith(prefix)}


def test_totals_are_exact_up_to_the_cap_then_at_least(db: Database) -> None:
    _add(db, [f"09{n:08d}" for n in range(7)])
    with db.session() as session:
        assert queries.count_calls(session, EVERYTHING, cap=7) == queries.Total(7, True)
        assert queries.count_calls(session, EVERYTHING, cap=6) == queries.Total(6, False)
        assert queries.count_calls(session, EVERYTHING, cap=100) == queries.Total(7, True)


def test_a_list_gives_an_exact_total_on_its_last_page_and_a_capped_one_before(db: Database,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _add(db, [f"09{n:08d}" for n in range(7)])
    with db.session() as session:
        rows, total = queries.list_calls(session, EVERYTHING, 2, 5)
        assert (len(rows), total) == (2, queries.Total(7))
        monkeypatch.setattr(queries, "TOTAL_CAP", 4)
        rows, total = queries.list_calls(session, EVERYTHING, 1, 3)
        assert (len(rows), total) == (3, queries.Total(4, False))
        rows, total = queries.list_calls(session, EVERYTHING, 3, 3)  # the last page knows the total
        assert (len(rows), total) == (1, queries.Total(7))
        rows, total = queries.list_calls(session, EVERYTHING, 9, 3)  # past the end: counted
        assert (rows, total) == ([], queries.Total(4, False))


def test_counts_by_status_are_capped_each(db: Database) -> None:
    _add(db, ["0911"] * 5)
    _add(db, ["0912"] * 2, Status.MISSED)
    with db.session() as session:
        assert queries.count_by_status(session, EVERYTHING, cap=3) == {
            "answered": queries.Total(3, False), "missed": queries.Total(2)}
        narrowed = queries.CallFilter(start=EVERYTHING.start, end=EVERYTHING.end, status="missed")
        assert queries.count_by_status(session, narrowed) == {"missed": queries.Total(2)}
        line = queries.CallFilter(start=EVERYTHING.start, end=EVERYTHING.end, line="02621022")
        assert queries.count_by_status(session, line, cap=3) == {  # one line: capped each too (its own index)
            "answered": queries.Total(3, False), "missed": queries.Total(2)}
        assert queries.count_by_status(session, queries.CallFilter(
            start=EVERYTHING.start, end=EVERYTHING.end, line="1900868647"), cap=3) == {}
        number = queries.CallFilter(start=EVERYTHING.start, end=EVERYTHING.end, number="091")
        assert queries.count_by_status(session, number, cap=3) == {  # no index with the status: counted exactly
            "answered": queries.Total(5), "missed": queries.Total(2)}


def _sqlite_plan(db: Database, where: queries.CallFilter) -> str:
    with db.session() as session:
        compiled = queries.page_query(where, 1, 50).compile(db.engine, compile_kwargs={"literal_binds": True})
        rows = session.execute(text("EXPLAIN QUERY PLAN " + str(compiled))).all()
    return " | ".join(row[-1] for row in rows)


@pytest.mark.parametrize(("narrow", "index"), [({}, "ix_calls_started_id"),
                                               ({"status": "missed"}, "ix_calls_status_started_id"),
                                               ({"status": "missed", "line": "02621022"},
                                                "ix_calls_line_status_started_id"),
                                               ({"operator": "op101"}, "ix_calls_operator_started_id"),
                                               ({"number": "0912"}, "ix_calls_number_started")])
def test_the_list_reads_its_filters_index_in_page_order_on_sqlite(tmp_path: object, narrow: dict[str, str],
                                                                 index: str) -> None:
    from callcenter.store.migrate import upgrade

    url = f"sqlite:///{tmp_path}/plan.db"
    upgrade(url)
    db = Database(url)
    try:
        _add(db, [f"09{n % 50:08d}" for n in range(400)])
        _add(db, [f"08{n:08d}" for n in range(20)], Status.MISSED)
        upgrade(url)  # each start refreshes the planner's statistics
        plan = _sqlite_plan(db, queries.CallFilter(start=T - timedelta(days=400), end=T + timedelta(days=1),
                                                   **narrow))
    finally:
        db.dispose()
    assert f"INDEX {index} " in plan, plan
    if "number" not in narrow:  # read in the page's order: no sort of every matching row
        assert "TEMP B-TREE" not in plan, plan
    # a number's few calls are found by number first, then sorted


def test_the_page_is_the_newest_first_with_id_breaking_ties(db: Database) -> None:
    _add(db, ["0911", "0912"])
    with db.session() as session:
        session.execute(Call.__table__.update().values(started_at=T))  # the same start for both
        rows, _ = queries.list_calls(session, EVERYTHING, 1, 10)
    assert [row.id for row in rows] == sorted((row.id for row in rows), reverse=True)
