"""The listener's spool: durable, ordered, bounded, one process at a time, safe after a crash mid-write."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.ami.events import CelEvent, event_of
from callcenter.listener import spool as spool_module
from callcenter.listener.spool import Spool, SpoolBusy, spool_path
from callcenter.settings import PROJECT_ROOT
from recordings import files
from tests.factories import answered_stream, cel

MiB = 1024 * 1024


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "listener.jsonl"


@pytest.fixture
def spool(path: Path) -> Iterator[Spool]:
    opened = Spool(path, 16 * MiB)
    yield opened
    opened.close()


def test_events_come_back_whole_and_in_order_and_the_file_empties_once_all_is_stored(spool: Spool) -> None:
    events = answered_stream()
    assert spool.append(events[:10]) == 10
    assert spool.append(events[10:]) == 6
    pending = spool.read()
    assert pending is not None and pending.events == events  # every field, ordinals and extras included
    assert spool.pending
    spool.commit(pending.end)
    assert not spool.pending and spool.read() is None
    assert spool.path.stat().st_size == 0


def test_an_event_is_on_disk_before_append_returns(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    spool.append(answered_stream()[:3])
    assert synced, "append returned without fsync"
    assert spool.path.read_bytes().count(b"\n") == 3


def test_read_takes_steps_of_whole_lines_and_a_partial_commit_keeps_the_rest(spool: Spool) -> None:
    events = answered_stream()
    spool.append(events)
    first = spool.read(limit=1500)  # a couple of lines' worth
    assert first is not None and 0 < len(first.events) < len(events)
    spool.commit(first.end)
    rest = spool.read()
    assert rest is not None and first.events + rest.events == events


def test_a_restarted_listener_finds_what_the_last_one_left(path: Path) -> None:
    first = Spool(path, 16 * MiB)
    first.append(answered_stream())
    first.close()
    second = Spool(path, 16 * MiB)
    try:
        pending = second.read()
        assert pending is not None and pending.events == answered_stream()
    finally:
        second.close()


def test_an_unfinished_last_line_is_cut_so_the_next_append_is_not_glued_to_it(
        path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = Spool(path, 16 * MiB)
    first.append(answered_stream()[:2])
    first.close()
    with path.open("ab") as handle:
        handle.write(b'{"event":"ANSWER","ti')  # the process died in the middle of a write
    second = Spool(path, 16 * MiB)
    try:
        second.append(answered_stream()[2:4])
        pending = second.read()
        assert pending is not None and pending.events == answered_stream()[:4]
    finally:
        second.close()
    assert any("unfinished last line" in r.getMessage() for r in caplog.records)


def test_a_full_spool_keeps_the_oldest_events_and_says_which_were_dropped(
        path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events = answered_stream()
    line = len(spool_module._line(events[0]))
    small = Spool(path, max_bytes=line * 10)
    try:
        kept = small.append(events)
        assert 5 < kept < len(events)
        assert small.dropped == len(events) - kept
        assert small.append([cel("CHAN_START", 99, linkedid="200.1", uniqueid="200.1")]) == 0
        pending = small.read()
        assert pending is not None and pending.events == events[:kept]
    finally:
        small.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert f"dropped {len(events) - kept} CEL event(s) of 1 call(s)" in errors[0] and "100.1" in errors[0]
    assert "200.1" in errors[1] and "backfill" in errors[1]


def test_a_long_committed_head_is_compacted_away(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 2000)
    events = answered_stream()
    spool.append(events)
    first = spool.read(limit=2500)
    assert first is not None
    before = spool.size
    spool.commit(first.end)
    assert spool.path.stat().st_size == spool.size == before - first.end  # the stored head is gone from the file
    spool.append(events[:1])
    rest = spool.read()
    assert rest is not None and rest.events == events[len(first.events):] + events[:1]


def _copied_by_compactions(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each compaction of ``spool`` copies (everything after the committed head), as they happen."""
    copied: list[int] = []
    real = Spool._compact

    def compact(self: Spool) -> None:
        copied.append(self.size - self._done)
        real(self)

    monkeypatch.setattr(Spool, "_compact", compact)
    return copied


def test_draining_a_backlog_copies_it_about_once_not_at_every_compaction(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1000)
    copied = _copied_by_compactions(spool, monkeypatch)
    events = answered_stream() * 40  # a backlog of about 100 KB, drained in steps of 1,000 bytes
    for start in range(0, len(events), 16):
        spool.append(events[start:start + 16])
    backlog = spool.size
    assert _read_all(spool, limit=1000) == events
    # Compacting whenever the head reached 1,000 bytes copied what followed it each time: ~5 MB here.
    assert copied and sum(copied) <= backlog
    assert spool.path.stat().st_size == 0


def test_near_its_bound_the_file_drops_a_stored_head_shorter_than_the_rest(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1000)
    events = answered_stream() * 3
    lines = [len(spool_module._line(event)) for event in events]
    small = Spool(path, max_bytes=sum(lines) + 500)  # the last 1,000 bytes are near the bound
    try:
        assert small.append(events) == len(events)
        first = small.read(limit=sum(lines[:8]))
        assert first is not None and first.events == events[:8]  # a head of ~1,240 bytes, a rest of ~6,300
        small.commit(first.end)
        assert small.size == small.path.stat().st_size == sum(lines[8:])
        assert small.append(events[:8]) == 8  # the room the stored head had
    finally:
        small.close()


def _read_all(spool: Spool, limit: int = spool_module.READ_BYTES) -> list[CelEvent]:
    """Everything pending, read and committed step by step as the delivery does."""
    events: list[CelEvent] = []
    while (pending := spool.read(limit)) is not None:
        events += pending.events
        spool.commit(pending.end)
    return events


def test_a_damaged_line_is_skipped_and_the_others_kept(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events = answered_stream()
    spool = Spool(path, 16 * MiB)
    try:
        spool.append(events[:2])
        spool._write(b"not json\n")  # as if the disk had damaged a line
        spool.append(events[2:3])
        assert _read_all(spool) == events[:3]  # in memory, the file between (its damaged line), in memory
        spool.append(events[:2])
        spool._write(b"not json\n")
        spool.append(events[2:3])
    finally:
        spool.close()
    reopened = Spool(path, 16 * MiB)  # the file alone, as after a restart
    try:
        pending = reopened.read()
        assert pending is not None and pending.events == events[:3]
    finally:
        reopened.close()
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 2


def test_what_this_process_appended_is_handed_over_from_memory_and_the_file_has_the_same(path: Path) -> None:
    events = answered_stream()
    spool = Spool(path, 16 * MiB)
    try:
        spool.append(events[:6])
        spool.append(events[6:])
        pending = spool.read()
        assert pending is not None and all(a is b for a, b in zip(pending.events, events, strict=True))
    finally:
        spool.close()
    reopened = Spool(path, 16 * MiB)
    try:
        from_file = reopened.read()
        assert from_file is not None and from_file.events == events and from_file.end == pending.end
        assert not any(a is b for a, b in zip(from_file.events, events, strict=True))
    finally:
        reopened.close()


def test_what_an_earlier_process_left_comes_first_then_what_this_one_appended(path: Path) -> None:
    events = answered_stream()
    first = Spool(path, 16 * MiB)
    first.append(events[:5])
    first.close()
    second = Spool(path, 16 * MiB)
    try:
        second.append(events[5:9])
        second.append(events[9:])
        pending = second.read()
        assert pending is not None and pending.events == events  # one step: the file's part, then memory's
        assert pending.events[5] is events[5]
        second.commit(pending.end)
        assert second.read() is None and path.stat().st_size == 0
    finally:
        second.close()


def test_a_batch_larger_than_a_read_step_and_batches_past_the_memory_bound_are_read_from_the_file(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    events = answered_stream()
    line = len(spool_module._line(events[0]))
    spool.append(events[:10])  # more than a step of 3 lines: read from the file in steps
    assert _read_all(spool, limit=line * 3) == events[:10]
    monkeypatch.setattr(spool_module, "MEMORY_BYTES", line * 4)
    for event in events:
        spool.append([event])  # the first few are kept in memory, the rest only in the file
    assert len(spool._kept) < len(events)
    assert _read_all(spool, limit=line * 3) == events
    assert not spool.pending and not spool._kept and spool._kept_bytes == 0


def test_a_spool_left_with_object_lines_by_an_earlier_listener_is_still_read(path: Path) -> None:
    import json

    events = answered_stream()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(json.dumps(event.to_json(), ensure_ascii=False).encode() + b"\n" for event in events[:5]))
    upgraded = Spool(path, 16 * MiB)
    try:
        upgraded.append(events[5:])  # the new format after the old
        pending = upgraded.read()
        assert pending is not None and pending.events == events
        assert path.read_bytes().splitlines()[-1].startswith(b"[")
    finally:
        upgraded.close()


def test_only_one_listener_may_use_a_spool(spool: Spool, path: Path) -> None:
    with pytest.raises(SpoolBusy, match="in use by another listener"):
        Spool(path, 16 * MiB)


def test_a_closed_spool_refuses_appends_loudly(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    closed = Spool(path, 16 * MiB)
    closed.close()
    assert closed.append(answered_stream()[:1]) == 0
    assert closed.dropped == 1


def test_the_spool_lives_next_to_a_sqlite_database_and_is_named_by_node_and_database(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'db' / 'callcenter.db'}"
    postgres = "postgresql+psycopg://hotline:secret@db.example:5432/callcenter"
    assert spool_path(None, sqlite, "sandbox").parent == tmp_path / "db"
    assert spool_path(None, postgres, "sandbox").parent == PROJECT_ROOT / "var"
    assert spool_path(tmp_path / "spools", postgres, "sandbox").parent == tmp_path / "spools"
    names = {spool_path(None, url, node).name for url in (sqlite, postgres) for node in ("a", "b/../c")}
    assert len(names) == 4 and all("/" not in name and "secret" not in name for name in names)


def test_the_spool_and_its_new_folder_are_private(tmp_path: Path) -> None:
    import stat

    old = os.umask(0o022)
    try:
        created = Spool(tmp_path / "new" / "listener.jsonl", MiB)
    finally:
        os.umask(old)
    created.close()
    assert stat.S_IMODE(created.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(created.path.parent.stat().st_mode) == 0o700


def test_batches_in_memory_follow_the_file_when_its_committed_head_is_compacted_away(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1)
    events = answered_stream()
    for some in (events[:9], events[9:12], events[12:]):
        spool.append(some)
    first = spool.read(limit=len(b"".join(spool_module._line(event) for event in events[:10])))
    assert first is not None and first.events == events[:9]  # the first batch: the second does not fit
    spool.commit(first.end)  # compacts (a head longer than the rest): the file now starts with the second batch
    assert spool.path.stat().st_size == spool.size and spool._kept[0].start == 0
    rest = spool.read()
    assert rest is not None and rest.events == events[9:] and rest.events[0] is events[9] and rest.end == spool.size
    spool.commit(rest.end)
    assert not spool.pending and spool.path.stat().st_size == 0


def test_an_event_that_cannot_be_written_is_dropped_alone_not_with_its_batch(
        spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    events = answered_stream()
    unwritable = event_of({**events[3].__dict__, "extra": {"deep": _nested(1000)}})  # deeper than any encoder
    batch = [*events[:3], unwritable, *events[3:]]
    assert spool.append(batch) == len(events)  # fewer than given: the listener asks for a backfill
    assert spool.dropped == 1
    assert _read_all(spool) == events
    assert any("cannot be written" in r.getMessage() for r in caplog.records)


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def test_an_append_after_close_touches_no_other_file(path: Path, tmp_path: Path) -> None:
    spool = Spool(path, 16 * MiB)
    spool.close()
    other = tmp_path / "other"
    other.write_bytes(b"another file's bytes\n")
    with other.open("rb+") as handle:  # likely given the spool's old descriptor number
        assert spool.append(answered_stream()[:2]) == 0
        handle.seek(0)
        assert handle.read() == b"another file's bytes\n"


def test_a_compaction_whose_folder_sync_fails_leaves_the_spool_in_the_new_file(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1)
    events = answered_stream()
    spool = Spool(path, 16 * MiB)
    try:
        spool.append(events[:9])
        spool.append(events[9:12])
        first = spool.read(limit=len(b"".join(spool_module._line(event) for event in events[:10])))
        assert first is not None and first.events == events[:9]

        real_fsync_dir = files.fsync_dir

        def fsync_dir(folder: Path) -> None:  # fails once the compacted file has replaced the spool
            if not path.with_name(path.name + ".new").exists():
                raise OSError("the disk refused the folder's sync")
            real_fsync_dir(folder)

        monkeypatch.setattr(spool_module, "fsync_dir", fsync_dir)
        with pytest.raises(OSError, match="folder's sync"):
            spool.commit(first.end)  # the delivery retries the batch: the journal dedupes it
        monkeypatch.undo()
        spool.append(events[12:])  # goes to the file now in place, not the one replaced
    finally:
        spool.close()
    reopened = Spool(path, 16 * MiB)
    try:
        assert _read_all(reopened) == events[9:]
    finally:
        reopened.close()
