"""The listener's spool: durable, ordered, bounded, one process at a time, safe after a crash mid-write."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.listener import spool as spool_module
from callcenter.listener.spool import Spool, SpoolBusy, spool_path
from callcenter.settings import PROJECT_ROOT
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


def test_a_damaged_line_is_skipped_and_the_others_kept(spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    events = answered_stream()
    spool.append(events[:2])
    spool._write(b"not json\n")  # as if the disk had damaged a line
    spool.append(events[2:3])
    pending = spool.read()
    assert pending is not None and pending.events == events[:3]
    assert any("skipped" in r.getMessage() for r in caplog.records)


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
