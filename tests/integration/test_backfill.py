"""The CEL file backfill on SQLite and PostgreSQL: rotations, a cursor saved with the journal, bounded chunks."""

from __future__ import annotations

import gzip
import shutil
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from callcenter.listener.backfill import Backfill
from callcenter.listener.celfile import CelFile
from callcenter.store.db import Database
from callcenter.store.models import Call, CelJournal
from tests.factories import FlakyStore, file_call


def backfill(db: Database, path: Path, lines: int = 5000) -> tuple[Backfill, FlakyStore]:
    """A backfill as a freshly started listener has it (nothing in memory from earlier runs)."""
    store = FlakyStore(db)
    return Backfill(CelFile(path, lines=lines), store), store


def append(path: Path, lines: Sequence[str]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(lines)


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def cel_path(tmp_path: Path) -> Path:
    folder = tmp_path / "cel-custom"
    folder.mkdir()
    return folder / "cel_callcenter.json"


# -- 9. rotation and a cursor that survives restarts -------------------------------------------------------------

def test_copytruncate_then_growth_past_the_old_offset_reads_every_new_line(db: Database, cel_path: Path) -> None:
    append(cel_path, file_call(0))
    assert backfill(db, cel_path)[0].run() == 1
    shutil.copy(cel_path, cel_path.with_name(cel_path.name + ".1"))  # logrotate copytruncate: copy, then truncate
    with cel_path.open("r+") as handle:
        handle.truncate(0)
    append(cel_path, file_call(1) + file_call(2))  # 34 lines: the file is now longer than the old offset
    job, store = backfill(db, cel_path)
    assert job.run() == 2
    assert store.ingested == [34]  # every line of the new file, not the 17 past the old offset
    assert count(db, CelJournal) == 51 and count(db, Call) == 3


@pytest.mark.parametrize("rotate", ["rename", "rename+gzip", "copytruncate"])
def test_the_unread_tail_of_a_rotated_file_is_read_before_the_new_file(db: Database, cel_path: Path,
                                                                        rotate: str) -> None:
    call = file_call(0)
    append(cel_path, call[:10])
    assert backfill(db, cel_path)[0].run() == 0  # the call has not ended yet
    append(cel_path, call[10:])  # its tail, LINKEDID_END included, lands just before the rotation
    rotated = cel_path.with_name(cel_path.name + ".1")
    if rotate == "copytruncate":
        shutil.copy(cel_path, rotated)
        cel_path.write_text("", encoding="utf-8")
    else:
        cel_path.rename(rotated)
    if rotate == "rename+gzip":
        with rotated.open("rb") as plain, gzip.open(rotated.with_name(rotated.name + ".gz"), "wb") as packed:
            shutil.copyfileobj(plain, packed)
        rotated.unlink()
    append(cel_path, file_call(1))
    job, store = backfill(db, cel_path)
    assert job.run() == 2
    assert store.ingested == [7, 17]  # the old file's tail first, then the new file
    assert count(db, CelJournal) == 34


def test_a_rotation_whose_old_file_is_gone_reads_the_new_file_and_says_what_may_be_lost(
        db: Database, cel_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    append(cel_path, file_call(0)[:10])
    backfill(db, cel_path)[0].run()
    cel_path.unlink()
    append(cel_path, file_call(1))
    assert backfill(db, cel_path)[0].run() == 1
    assert any("rotated" in r.getMessage() and "line 10" in r.getMessage() for r in caplog.records)


def test_a_restart_resumes_from_the_saved_position(db: Database, cel_path: Path) -> None:
    append(cel_path, file_call(0) + file_call(1))
    assert backfill(db, cel_path)[0].run() == 2
    job, store = backfill(db, cel_path)  # a new process: only the database remembers
    assert job.run() == 0
    assert store.ingested == []
    append(cel_path, file_call(2))
    assert job.run() == 1
    assert store.ingested == [17]
    assert count(db, CelJournal) == 51


def test_equal_events_split_by_a_chunk_and_a_restart_are_both_kept(db: Database, cel_path: Path) -> None:
    """Two DTMF events on one channel in one second differ only by their ordinal; the ordinal count must survive
    a chunk boundary and a restart, or the second would be taken for the first and dropped."""
    call = file_call(0)
    digit = call[2].replace('"ANSWER"', '"DTMF"')
    append(cel_path, [*call[:3], digit])
    backfill(db, cel_path, lines=1)[0].run()
    append(cel_path, [digit.replace('1795952249.1340', '1795952249.1341'), *call[3:]])
    backfill(db, cel_path, lines=1)[0].run()
    assert count(db, CelJournal) == 19


# -- 10. bounded chunks, each committed before the next ------------------------------------------------------------

def test_the_position_advances_only_with_a_committed_chunk(db: Database, cel_path: Path) -> None:
    append(cel_path, [line for n in range(6) for line in file_call(n)])  # 102 lines
    job, store = backfill(db, cel_path, lines=20)
    store.fail_after = 2
    with pytest.raises(OperationalError):
        job.run()
    assert count(db, CelJournal) == 40  # two chunks committed, the third never half-way
    position = store.file_position()
    assert position is not None and position.line == 40
    job, store = backfill(db, cel_path, lines=20)  # the database is back; a restart goes on from line 40
    assert job.run() == 4  # calls 0 and 1 ended within the committed chunks and were built then
    assert store.ingested == [20, 20, 20, 2]
    assert count(db, CelJournal) == 102 and count(db, Call) == 6


def test_a_large_file_is_read_in_bounded_memory_and_journaled_completely(db: Database, cel_path: Path) -> None:
    """Read whole, this 6 MB file took 17 MB at the peak (and 48 MiB took 131 MiB); in chunks of 200 lines the peak
    is one chunk plus the driver's own constant needs, whatever the file's size."""
    calls = 700  # about 12,000 lines; only the last call ends, so the time goes to reading and journaling
    with cel_path.open("w", encoding="utf-8") as handle:
        for n in range(calls):
            handle.writelines(file_call(n, end=n == calls - 1))
    size = cel_path.stat().st_size
    job, store = backfill(db, cel_path, lines=200)
    tracemalloc.start()
    try:
        built = job.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert built == 1
    assert count(db, CelJournal) == calls * 16 + 1
    assert max(store.ingested) <= 200
    assert peak < 5_000_000, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


def test_the_check_for_ended_calls_without_a_log_reads_only_what_ended_since_unless_a_build_failed(
        db: Database) -> None:
    from dataclasses import replace

    from callcenter.listener.calllog import CallLogStore
    from callcenter.store import journal
    from tests.factories import DIRECTORY, answered_stream

    def journal_only(linkedid: str) -> None:  # journaled, never built (as if the listener died in between)
        with db.session() as session:
            journal.append(session, "sandbox", [replace(e, linkedid=linkedid) for e in answered_stream()], "file")

    broken = {"1795000001.1"}

    def directory() -> object:
        if broken:
            raise RuntimeError("the model cannot be read just now")
        return DIRECTORY

    store = CallLogStore(db, "sandbox", directory)  # type: ignore[arg-type]
    journal_only("1795000001.1")
    assert store.build_missing() == []  # the build failed: the same stretch is checked again next time
    broken.clear()
    journal_only("1795000002.1")
    assert sorted(store.build_missing()) == ["1795000001.1", "1795000002.1"]
    with db.session() as session:
        after = store._checked
        assert journal.finished_without_call(session, "sandbox", after) == ([], after)
        session.execute(Call.__table__.delete())  # both logs gone: only a first (whole) check finds them again
    assert store.build_missing() == []
    assert sorted(CallLogStore(db, "sandbox", DIRECTORY).build_missing()) == ["1795000001.1", "1795000002.1"]
    journal_only("1795000003.1")
    assert store.build_missing() == ["1795000003.1"]
