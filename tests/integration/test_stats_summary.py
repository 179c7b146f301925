"""The statistics summary on both databases: kept by the writer equal to a recount of the calls (also after
rebuilds that move a call to another status, operator or day), equal to the migration's backfill and to
``callcenter stats rebuild``; and statistics from it equal to those from the calls themselves."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from callcenter.ami.events import CelEvent
from callcenter.calls.channels import Directory
from callcenter.calls.record import CallRecord
from callcenter.listener.calllog import CallLogStore
from callcenter.model.contract import Status
from callcenter.settings import PROJECT_ROOT
from callcenter.store import queries, stats, summary_read
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from callcenter.store.models import CALL, COUNTS, WAIT_EDGES, call_stats
from callcenter.store.writer import upsert_call, upsert_calls
from tests.factories import DIRECTORY, load_jsonl, p90_bound

SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 3, 20, tzinfo=SAIGON)  # 20 local days, across Europe's change to summer time (29 March)
WAITS = [None, 0.0, 0.2, 4.9999, 5.0, 12.3, 29.99, 59.95, 61.0, 119.9, 150.0, 299.0, 599.5, 1000.0, 3599.9, 4000.0]
STATUSES = [Status.ANSWERED] * 5 + [Status.MISSED, Status.ABANDONED_QUEUE, Status.ABANDONED_IVR, Status.FAILED,
                                    Status.VOICE_MESSAGE]


def record(n: int, rng: random.Random, **changes: Any) -> CallRecord:
    """A call on one of three lines, often near midnight in Saigon (17:00 UTC), so UTC and local days differ."""
    started = START.astimezone(UTC) + timedelta(hours=rng.choice([rng.uniform(0, 480), 17 * rng.randrange(20)
                                                                   + rng.uniform(-0.6, 0.6)]))
    status = rng.choice(STATUSES)
    answered = status is Status.ANSWERED
    values: dict[str, Any] = dict(
        linkedid=f"{n}.1", started_at=started, ended_at=started + timedelta(minutes=3), status=status,
        line=rng.choice(["02621022", "1900868647", ""]), topic=rng.choice(["admin", "traffic", ""]),
        operator=rng.choice(["op101", "op102", "op103"]) if answered else "",
        wait_seconds=rng.choice(WAITS), talk_seconds=round(rng.uniform(1, 900), 3) if answered else None)
    return CallRecord(**(values | changes))


def write(db: Database, records: list[CallRecord]) -> None:
    with db.session() as session:
        for call in records:
            upsert_call(session, "n1", call, datetime.now(UTC))


def stored(db: Database) -> dict[tuple[Any, ...], tuple[int, ...]]:
    with db.session() as session:
        rows = session.execute(select(call_stats)).all()
    return {tuple(row[:5]): tuple(row[5:]) for row in rows}


def recount(db: Database) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The summary computed here from the calls, independently of callcenter.store.summary."""
    found: dict[tuple[Any, ...], list[int]] = {}
    with db.session() as session:
        calls = session.execute(select(CALL.started_at, CALL.status, CALL.line, CALL.topic, CALL.operator,
                                       CALL.wait_seconds, CALL.talk_seconds)).all()
    for started, status, line, topic, operator, wait, talk in calls:
        hour = math.floor(started.timestamp() / 3600)
        day = hour // 24 * 24
        counts = [1, status == "answered", status.startswith("abandoned"), status == "missed", wait is not None,
                  round(wait * 1000) if wait is not None else 0, talk is not None,
                  round(talk * 1000) if talk is not None else 0]
        counts += [wait is not None and low <= wait < high for low, high in
                   zip(WAIT_EDGES, [*WAIT_EDGES[1:], math.inf], strict=True)]
        utc = started.astimezone(UTC)
        month = int(datetime(utc.year, utc.month, 1, tzinfo=UTC).timestamp()) // 3600
        for key in (("hour", "line", hour, line, ""), ("day", "line", day, line, ""),
                    ("day", "topic", day, line, topic), ("day", "operator", day, line, operator),
                    ("mon", "line", month, line, ""), ("mon", "topic", month, line, topic),
                    ("mon", "operator", month, line, operator)):
            found[key] = [a + int(b) for a, b in zip(found.get(key, [0] * len(COUNTS)), counts, strict=True)]
    return {key: tuple(counts) for key, counts in found.items()}


@pytest.fixture
def calls(db: Database) -> list[CallRecord]:
    rng = random.Random(5)
    records = [record(n, rng) for n in range(400)]
    write(db, records)
    return records


def test_the_writer_keeps_the_summary_equal_to_a_recount_through_rebuilds(db: Database,
                                                                           calls: list[CallRecord]) -> None:
    assert stored(db) == recount(db)
    rng = random.Random(9)
    moved = [call.model_copy(update={"status": Status.ANSWERED, "operator": "op109", "wait_seconds": 33.3,
                                     "started_at": call.started_at + timedelta(hours=rng.choice([-30, 5, 50]))})
             for call in calls[::7]]
    dropped = [call.model_copy(update={"status": Status.MISSED, "operator": "", "wait_seconds": None,
                                       "talk_seconds": None}) for call in calls[3::11]]
    write(db, moved + dropped + calls[1::13])  # the last ones rebuilt with the same figures
    assert stored(db) == recount(db)
    assert all(counts[0] > 0 for counts in stored(db).values())  # emptied rows are deleted


def test_one_batch_of_new_moved_and_twice_rebuilt_calls_keeps_the_summary_exact(db: Database,
                                                                                calls: list[CallRecord]) -> None:
    """The writer sums a batch's moves in memory before applying them: a call rebuilt twice in the batch counts
    once (its last build), a call moved to another day, status or operator leaves its old rows."""
    rng = random.Random(11)
    moved = [call.model_copy(update={"status": Status.ANSWERED, "operator": "op108", "wait_seconds": 7.5,
                                     "started_at": call.started_at + timedelta(days=rng.choice([-2, 1, 40]))})
             for call in calls[::5]]
    first = [call.model_copy(update={"status": Status.MISSED, "operator": "", "talk_seconds": None})
             for call in calls[2::9]]
    last = [call.model_copy(update={"started_at": call.started_at + timedelta(hours=30), "line": "02621022"})
            for call in first]
    new = [record(n, rng) for n in range(400, 460)]
    with db.session() as session:
        upsert_calls(session, "n1", moved + first + new + last + new[:5], datetime.now(UTC))
    assert stored(db) == recount(db)
    with db.session() as session:
        rows = dict(session.execute(select(CALL.linkedid, CALL.started_at)).all())
    assert len(rows) == 460 and all(rows[call.linkedid] == call.started_at for call in last)
    assert all(counts[0] > 0 for counts in stored(db).values())


def test_a_batch_whose_one_call_fails_to_build_stores_the_others_with_their_counts(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from callcenter.calls.builder import build_call
    from callcenter.listener import calllog

    names = ("apps_answered", "apps_abandoned", "apps_missed_queue_timeout", "apps_hangup_during_read",
             "apps_blind_transfer")
    events = [event for name in names for event in load_jsonl(f"cel/{name}.jsonl")]
    broken = events[-1].linkedid

    def build_or_break(events: list[CelEvent], directory: Directory, cut: bool = False) -> CallRecord:
        if events[0].linkedid == broken:
            raise RuntimeError("a call the builder cannot handle")
        return build_call(events, directory, cut)

    monkeypatch.setattr(calllog, "build_call", build_or_break)
    built = CallLogStore(db, "n1", DIRECTORY).ingest(events, "ami")
    assert len(built) == len(names) - 1 and broken not in built
    with db.session() as session:
        assert sorted(session.scalars(select(CALL.linkedid))) == sorted(built)
    assert stored(db) == recount(db) and sum(n[0] for k, n in stored(db).items() if k[:2] == ("day", "line")) == 4


def test_the_migration_backfill_and_the_rebuild_command_equal_the_kept_summary(db: Database, db_url: str,
                                                                             calls: list[CallRecord]) -> None:
    from callcenter.cli import main

    # A call begun in an hour's last half-millisecond (CEL times carry microseconds): SQLite's strftime('%s') rounds
    # to the millisecond, which once put it in the next hour when the summary was filled from the calls.
    last = calls[0].model_copy(update={"linkedid": "edge.1",
                                       "started_at": datetime(2026, 3, 31, 23, 59, 59, 999_600, tzinfo=UTC)})
    write(db, [last])
    assert stored(db) == recount(db)
    kept = stored(db)
    db.dispose()
    downgrade(db_url, "0015")  # drops the month rows
    assert stored(db) == {key: counts for key, counts in kept.items() if key[0] != "mon"}
    upgrade(db_url)  # adds them up from the day rows
    assert stored(db) == kept
    downgrade(db_url, "0013")  # drops the summary (upgrade() to an older revision would do nothing)
    upgrade(db_url)  # creates and backfills it from the calls
    assert stored(db) == kept
    with db.session() as session:
        session.execute(call_stats.delete())
    assert main(["--db", db_url, "stats", "rebuild"]) == 0
    assert stored(db) == kept


def downgrade(url: str, revision: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.downgrade(config, revision)


def waits_of(calls: list[CallRecord], where: queries.CallFilter, **only: str) -> list[float]:
    return [c.wait_seconds for c in calls if where.start <= c.started_at < where.end and c.wait_seconds is not None
            and (not where.line or c.line == where.line) and all(getattr(c, k) == v for k, v in only.items())]


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
def test_statistics_from_the_summary_equal_those_from_the_calls(db: Database, calls: list[CallRecord], bucket: str,
                                                               zone: str) -> None:
    local = ZoneInfo(zone)
    ranges = [(datetime(2026, 3, 20), 20), (datetime(2026, 3, 22), 1), (datetime(2026, 3, 27), 5)]
    for (first, days), line in zip(ranges * 2, [None] * 3 + ["1900868647"] * 3, strict=True):
        start = first.replace(tzinfo=local)
        where = queries.CallFilter(start=start.astimezone(UTC), end=(start + timedelta(days=days)).astimezone(UTC),
                                   line=line)
        assert summary_read.covered(where, local) is not None
        same_as_the_calls(db, calls, where, bucket, local)


def same_as_the_calls(db: Database, calls: list[CallRecord], where: queries.CallFilter, bucket: str,
                      local: ZoneInfo) -> None:
    """Statistics from the summary equal those from the calls (the 90th percentile within its bucket bound)."""
    with db.session() as session:
        found = stats.statistics(session, where, bucket, local)  # type: ignore[arg-type]
        expected = stats.statistics(session, where, bucket, local, summary=False)  # type: ignore[arg-type]
    assert found.buckets == expected.buckets
    for name in ("total", *(f"by.{dimension}" for dimension in expected.by)):
        mine = [found.total] if name == "total" else found.by[name[3:]]
        theirs = {g.key: g for g in ([expected.total] if name == "total" else expected.by[name[3:]])}
        assert {g.key: (g.calls, g.answered) for g in mine} == {k: (g.calls, g.answered) for k, g in theirs.items()}
        for group in mine:
            other = theirs[group.key]
            assert group.wait_avg == pytest.approx(other.wait_avg, abs=1e-3)
            assert group.talk_avg == pytest.approx(other.talk_avg, abs=1e-3)
            only = {} if name in ("total", "by.line") else {name[3:]: group.key}
            waits = waits_of(calls, where, **only) if name != "by.line" else waits_of(
                calls, queries.CallFilter(start=where.start, end=where.end, line=group.key))
            assert (group.wait_p90 is None) == (not waits)
            if waits:
                assert group.wait_p90 == pytest.approx(other.wait_p90, abs=p90_bound(waits))


@pytest.fixture
def months_of_calls(db: Database) -> list[CallRecord]:
    """Calls from mid-January to mid-May 2026 (the USA change to summer time on 8 March, Europe's on 29 March),
    some right at the UTC month boundaries, so that ranges hold whole UTC months and parts of others."""
    rng = random.Random(21)
    origin = datetime(2026, 1, 15, tzinfo=UTC)
    records = [record(n, rng, started_at=origin + timedelta(hours=rng.uniform(0, 120 * 24))) for n in range(500)]
    records += [record(500 + n, rng, started_at=datetime(2026, month, 1, tzinfo=UTC) + timedelta(seconds=shift))
                for n, (month, shift) in enumerate((m, s) for m in (2, 3, 4, 5) for s in (-1, 0, 1, 3599, 3600))]
    write(db, records)
    return records


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", "UTC"])
@pytest.mark.parametrize("bucket", ["day", "week"])
def test_statistics_over_months_from_the_month_rows_equal_those_from_the_calls(
        db: Database, months_of_calls: list[CallRecord], bucket: str, zone: str) -> None:
    assert stored(db) == recount(db)
    local = ZoneInfo(zone)
    ranges = [(datetime(2026, 2, 1), datetime(2026, 5, 1)),  # three local months, across both changes of offset
              (datetime(2026, 1, 31), datetime(2026, 4, 2)),  # whole months inside, a day either side
              (datetime(2026, 3, 1), datetime(2026, 4, 1)),  # one local month: not one UTC month but in UTC
              (datetime(2026, 3, 5), datetime(2026, 3, 25)),  # shorter than a month
              (datetime(2026, 3, 20), datetime(2026, 4, 10))]  # shorter than a month, across a month's end
    for (first, last), line in [(r, None) for r in ranges] + [(ranges[0], "1900868647"), (ranges[1], "")]:
        where = queries.CallFilter(start=first.replace(tzinfo=local).astimezone(UTC),
                                   end=last.replace(tzinfo=local).astimezone(UTC), line=line)
        assert summary_read.covered(where, local) is not None
        same_as_the_calls(db, months_of_calls, where, bucket, local)


def test_whole_utc_months_are_read_from_month_rows_and_the_days_around_them_from_day_rows() -> None:
    def hour(year: int, month: int, day: int) -> int:
        return int(datetime(year, month, day, tzinfo=UTC).timestamp()) // 3600

    assert summary_read._whole(hour(2025, 12, 31), hour(2026, 3, 2)) == [
        ("day", hour(2025, 12, 31), hour(2026, 1, 1)), ("mon", hour(2026, 1, 1), hour(2026, 3, 1)),
        ("day", hour(2026, 3, 1), hour(2026, 3, 2))]
    assert summary_read._whole(hour(2028, 2, 1), hour(2028, 3, 1)) == [("mon", hour(2028, 2, 1), hour(2028, 3, 1))]
    assert summary_read._whole(hour(2026, 3, 2), hour(2026, 3, 31)) == [("day", hour(2026, 3, 2), hour(2026, 3, 31))]
    assert summary_read._whole(hour(2026, 3, 2), hour(2026, 4, 30)) == [("day", hour(2026, 3, 2), hour(2026, 4, 30))]


def test_filters_and_zones_the_summary_cannot_answer_read_the_calls(db: Database) -> None:
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)
    assert summary_read.covered(queries.CallFilter(start=start, end=end, status="missed"), SAIGON) is None
    assert summary_read.covered(queries.CallFilter(start=start, end=end, number="09"), SAIGON) is None
    assert summary_read.covered(queries.CallFilter(start=start, end=end), ZoneInfo("Asia/Kolkata")) is None
    assert summary_read.covered(queries.CallFilter(start=start + timedelta(minutes=30), end=end), SAIGON) is None
    assert summary_read.covered(queries.CallFilter(start=start, end=end, line="02621022"), SAIGON) == [
        (int(start.timestamp()) // 3600, 7)]
