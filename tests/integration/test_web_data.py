"""Statistics and exports over a real database (both backends): the same figures from PostgreSQL's own grouping
and percentiles as from the Python fold used on SQLite; buckets in the reader's zone; a 100,000-row export at
steady memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.store import queries
from callcenter.store.db import Database
from callcenter.store.stats import _fold, _percentile, statistics
from tests.factories import p90_bound
from tests.webclient import add_users, client, insert_calls, settings_for, sign_in, synthetic_calls

SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 11, 1, tzinfo=SAIGON)


@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
def test_statistics_agree_with_a_plain_recount(db: Database, bucket: str) -> None:
    rows = synthetic_calls(600, START, 10)
    insert_calls(db, rows)
    where = queries.CallFilter(start=START.astimezone(UTC), end=(START + timedelta(days=10)).astimezone(UTC))
    with db.session() as session:
        found = statistics(session, where, bucket, SAIGON)  # type: ignore[arg-type]
    expected = _fold(((r["started_at"], r["status"], r["wait_seconds"], r["talk_seconds"], r["line"], r["topic"],
                       r["operator"]) for r in rows), bucket, SAIGON)  # type: ignore[arg-type]
    assert [b for b in found.buckets if b[1]] == expected.buckets
    assert len(found.buckets) == {"hour": 240, "day": 10, "week": 3}[bucket]  # quiet periods are shown too
    assert (found.total.calls, found.total.answered) == (expected.total.calls, expected.total.answered)
    waits = [r["wait_seconds"] for r in rows]  # from the summary's wait buckets: within their width (README)
    assert found.total.wait_p90 == pytest.approx(_percentile(waits), abs=p90_bound(waits))
    assert {g.key: (g.calls, g.answered) for g in found.by["line"]} == {
        g.key: (g.calls, g.answered) for g in expected.by["line"]}
    for group in found.by["line"]:
        line_waits = [r["wait_seconds"] for r in rows if r["line"] == group.key]
        assert group.wait_p90 == pytest.approx(_percentile(line_waits), abs=p90_bound(line_waits))
    if bucket == "day":
        assert found.buckets[0][0] == "2026-11-01"  # local days, not UTC ones


def test_a_100000_row_export_streams_at_steady_memory(db: Database, tmp_path: Path) -> None:
    insert_calls(db, synthetic_calls(100_000, START, 10, seed=3))
    add_users(db)
    test = sign_in(client(db, settings_for(tmp_path)), "super1")
    params = {"from": "2026-11-01T00:00", "to": "2026-11-12T00:00"}
    tracemalloc.start()
    try:
        lines = 0
        with test.stream("GET", "/calls.csv", params=params) as response:
            assert response.status_code == 200
            for _line in response.iter_lines():
                lines += 1
                if lines == 10_000:
                    tracemalloc.reset_peak()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == 100_001  # the header and every call
    assert peak < 20 * 2**20, f"memory grew by {peak / 2**20:.0f} MiB while streaming"  # not all rows held
