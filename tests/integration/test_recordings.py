"""The recordings worker, retention and the audio API, with real ffmpeg and a real database (both backends)."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest
from fastapi.testclient import TestClient
from pydub import AudioSegment
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from callcenter.calls.builder import build_call
from callcenter.settings import PROJECT_ROOT, RecordingsSettings, Settings
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, Recording, RecordingAccess
from callcenter.store.writer import upsert_call
from recordings import cli as recordings_cli
from recordings import retention as retention_module
from recordings.retention import purge, sweep
from recordings.spool import SpoolFile, parse
from recordings.transcode import TranscodeError, sha256_of, transcode
from recordings.verify import verify
from recordings.worker import RecordingWorker
from tests.factories import DIRECTORY, answered_stream, speech_like_wav
from tests.webclient import api_client

LINKEDID = "1795952249.0"
UNIQUEID = "1795952249.0"


@pytest.fixture
def settings(tmp_path: Path) -> RecordingsSettings:
    return RecordingsSettings(spool=tmp_path / "spool", store=tmp_path / "store", settle_seconds=1.0, retry_min=60)


def _wav(settings: RecordingsSettings, seconds: float = 5.0, linkedid: str = LINKEDID, uniqueid: str = UNIQUEID,
         done: bool = True, name: str | None = None) -> Path:
    path = speech_like_wav(settings.spool / linkedid / (name or f"{uniqueid}.wav"), seconds)
    if done:
        path.with_name(path.name + ".done").touch()
    return path


def _rows(db: Database) -> list[Recording]:
    with db.session() as session:
        return list(session.scalars(select(Recording).order_by(Recording.id)))


def _finish_call(db: Database, linkedid: str = LINKEDID, hold: bool = False) -> int:
    from dataclasses import replace

    record = build_call([replace(e, linkedid=linkedid) for e in answered_stream()], DIRECTORY)
    with db.session() as session:
        upsert_call(session, "sandbox", record, datetime.now(UTC))
        call = session.scalar(select(Call).where(CALL.linkedid == linkedid))
        assert call is not None
        call.legal_hold = hold
        return call.id


def test_closed_wav_is_stored_verified_and_removed(db: Database, settings: RecordingsSettings) -> None:
    wav = _wav(settings, 5.0)
    call_id = _finish_call(db)
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    [row] = _rows(db)
    stored = settings.store / (row.path or "")
    assert (row.status, row.format, row.kind, row.call_id) == ("stored", "opus", "conversation", call_id)
    assert row.path == f"2026/11/29/sandbox/{LINKEDID}-{UNIQUEID}.ogg"
    assert abs((row.duration_seconds or 0) - 5.0) < 0.5
    assert row.size_bytes == stored.stat().st_size and row.sha256 == sha256_of(stored)
    assert (row.size_bytes or 0) < 5 * 8000 * 2 / 4  # well under a quarter of the 5 s WAV
    assert not wav.exists() and not (settings.spool / LINKEDID).exists()
    assert AudioSegment.from_file(stored).rms > 100  # not silence


def test_running_call_wav_is_never_touched(db: Database, settings: RecordingsSettings) -> None:
    wav = _wav(settings, 2.0, done=False)  # no marker, and the call has no log yet: still being written
    os.utime(wav, (time.time() - 60, time.time() - 60))
    assert RecordingWorker(settings, db, "sandbox").run_once() == {}
    assert wav.exists() and _rows(db) == []


def test_finished_call_without_marker_is_processed_once_quiet(db: Database, settings: RecordingsSettings) -> None:
    wav = _wav(settings, 2.0, done=False)
    _finish_call(db)
    worker = RecordingWorker(settings, db, "sandbox")
    os.utime(wav, None)  # just written
    assert worker.run_once() == {}
    os.utime(wav, (time.time() - 5, time.time() - 5))
    assert worker.run_once() == {"stored": 1}


def test_voice_message_and_unrelated_files(db: Database, settings: RecordingsSettings) -> None:
    _wav(settings, 3.0, name=f"msg-{UNIQUEID}.wav")
    junk = settings.spool / "not-a-call" / "x.wav"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"junk")
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    [row] = _rows(db)
    assert row.kind == "message" and (row.path or "").endswith("-msg.ogg")
    assert junk.exists()
    assert parse(Path("/spool/../../etc/passwd.wav")) is None


def test_mp3_is_selectable(db: Database, settings: RecordingsSettings) -> None:
    _wav(settings, 3.0)
    mp3 = settings.model_copy(update={"format": "mp3", "bitrate": "32k"})
    assert RecordingWorker(mp3, db, "sandbox").run_once() == {"stored": 1}
    assert (_rows(db)[0].path or "").endswith(".mp3")


def test_broken_wav_keeps_the_file_records_the_error_and_retries_later(db: Database,
                                                                       settings: RecordingsSettings) -> None:
    wav = settings.spool / LINKEDID / f"{UNIQUEID}.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    wav.with_name(wav.name + ".done").touch()
    worker = RecordingWorker(settings, db, "sandbox")
    assert worker.run_once() == {"error": 1}
    [row] = _rows(db)
    assert row.status == "error" and row.error and "failed" in row.error and row.attempts == 1
    assert row.next_attempt_at is not None and wav.exists()
    assert not list(settings.store.rglob("*.part"))
    assert worker.run_once() == {"waiting": 1}  # not before its retry time
    speech_like_wav(wav, 2.0)  # the file is fine now (e.g. the disk had been full)
    with db.session() as session:
        session.get_one(Recording, row.id).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert worker.run_once() == {"stored": 1}
    assert [(r.status, r.attempts) for r in _rows(db)] == [("stored", 1)]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs as the store: a real 'disk full'."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    yield mount
    # A busy mount here means the worker leaked a file handle on failure.
    subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_is_an_error_and_keeps_the_wav(db: Database, settings: RecordingsSettings,
                                                 tiny_disk: Path) -> None:
    wav = _wav(settings, 60.0)
    full = settings.model_copy(update={"store": tiny_disk})
    assert RecordingWorker(full, db, "sandbox").run_once() == {"error": 1}
    [row] = _rows(db)
    assert row.status == "error" and wav.exists()
    assert not list(tiny_disk.rglob("*.part"))


def test_ffmpeg_missing_is_a_clear_error_the_wav_is_kept_and_stored_once_it_is_back(
        db: Database, settings: RecordingsSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wav = _wav(settings, 3.0)
    worker = RecordingWorker(settings, db, "sandbox")
    with monkeypatch.context() as no_ffmpeg:
        no_ffmpeg.setenv("PATH", str(tmp_path / "empty-bin"))  # a machine where ffmpeg was never installed
        assert worker.run_once() == {"error": 1}
    [row] = _rows(db)
    assert row.status == "error" and wav.exists()
    assert row.error and "ffmpeg not found on PATH: install ffmpeg" in row.error
    with db.session() as session:
        session.get_one(Recording, row.id).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert worker.run_once() == {"stored": 1}  # ffmpeg is back: the kept WAV is stored
    assert not wav.exists()


def test_25_minute_call_is_stored_with_bounded_memory(db: Database, settings: RecordingsSettings,
                                                      tmp_path: Path) -> None:
    _wav(settings, 25 * 60.0)
    # A fresh process, so its peak memory is the worker's alone.
    script = ("import resource,sys; from callcenter.settings import RecordingsSettings as R; "
              "from callcenter.store.db import Database; from recordings.worker import RecordingWorker as W; "
              f"w = W(R(spool=r'{settings.spool}', store=r'{settings.store}'), Database(sys.argv[1]), 'sandbox'); "
              "w._call_finished('0'); peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
              "before = peak(); print(w.run_once()); print(peak() - before)")
    out = subprocess.run([sys.executable, "-c", script, db.url], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "{'stored': 1}"
    decoded_mb = 25 * 60 * 8000 * 2 / 2**20  # 22.9 MB of 16-bit PCM
    growth_mb = int(out[1]) / 1024
    assert growth_mb < 2.5 * decoded_mb, f"peak memory grew {growth_mb:.0f} MB for {decoded_mb:.0f} MB of audio"
    [row] = _rows(db)
    assert abs((row.duration_seconds or 0) - 1500) < 0.5


def test_worker_killed_mid_transcode_completes_exactly_once(db: Database, settings: RecordingsSettings) -> None:
    wav = _wav(settings, 25 * 60.0)
    env = {**os.environ, "CALLCENTER_RECORDINGS__SPOOL": str(settings.spool),
           "CALLCENTER_RECORDINGS__STORE": str(settings.store)}
    command = [sys.executable, "-m", "callcenter", "--db", db.url, "recordings", "process"]
    worker = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(settings.store.rglob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(settings.store.rglob("*.part")), "the worker never started writing"
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its ffmpeg, mid-transcode
    worker.wait()
    assert wav.exists() and [r.status for r in _rows(db)] == ["processing"]  # claimed by a dead process
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True)
    assert [r.status for r in _rows(db)] == ["stored"]
    files = [p for p in settings.store.rglob("*") if p.is_file()]
    assert [p.suffix for p in files] == [".ogg"] and not wav.exists()


def test_retention_purges_old_recordings_but_not_legal_holds(db: Database, settings: RecordingsSettings) -> None:
    old, held = "1700000000.1", "1700000100.5"
    for linkedid in (old, held, LINKEDID):
        _wav(settings, 2.0, linkedid=linkedid, uniqueid=linkedid)
    _finish_call(db, held, hold=True)
    RecordingWorker(settings, db, "sandbox").run_once()
    now = datetime(2026, 11, 29, tzinfo=UTC)
    assert purge(db, settings, now) == 1
    by_linkedid = {r.linkedid: r for r in _rows(db)}
    assert by_linkedid[old].status == "purged" and by_linkedid[old].deleted_at is not None
    assert not (settings.store / (by_linkedid[old].path or "")).exists()
    assert by_linkedid[held].status == "stored" and by_linkedid[LINKEDID].status == "stored"
    assert purge(db, settings, now) == 0


def test_sweep_reports_both_kinds_of_inconsistency(db: Database, settings: RecordingsSettings) -> None:
    _wav(settings, 2.0)
    _finish_call(db)
    RecordingWorker(settings, db, "sandbox").run_once()
    assert sweep(db, settings).lines() == ["store and database agree"]
    [row] = _rows(db)
    (settings.store / (row.path or "")).rename(settings.store / "stray.ogg")
    report = sweep(db, settings)
    assert report.files_without_rows == [settings.store / "stray.ogg"]
    assert report.rows_without_files == [row.id]


def test_sweep_names_a_stored_recording_no_call_log_claims_once_its_call_had_time_to_be_built(
        db: Database, settings: RecordingsSettings) -> None:
    """A WAV with its marker is stored without waiting for its call log; if that never comes (Asterisk lost the
    call's end), the history cannot show the recording: the sweep names it, an hour after it was stored."""
    _wav(settings, 2.0, linkedid="1700000300.9", uniqueid="1700000300.9")
    _wav(settings, 2.0)
    _finish_call(db)
    RecordingWorker(settings, db, "sandbox").run_once()
    unclaimed = next(row for row in _rows(db) if row.linkedid == "1700000300.9")
    assert unclaimed.status == "stored" and unclaimed.call_id is None
    assert sweep(db, settings).lines() == ["store and database agree"]  # its call may still be on its way
    later = sweep(db, settings, now=datetime.now(UTC) + timedelta(hours=1, minutes=1))
    assert [row.id for row in later.without_call] == [unclaimed.id] and later.needs_attention()
    assert later.lines() == [f"recording without a call log: recording {unclaimed.id} (node sandbox, linkedid "
                             f"1700000300.9, recorded 2023-11-14 22:18 UTC; its audio: "
                             f"/api/recordings/{unclaimed.id}/audio)"]
    _finish_call(db, "1700000300.9")  # the call is built after all: its recording is attached, the sweep quiet
    assert sweep(db, settings, now=datetime.now(UTC) + timedelta(hours=2)).lines() == ["store and database agree"]


@pytest.fixture
def stored(db: Database, settings: RecordingsSettings) -> tuple[TestClient, Recording, int]:
    _wav(settings, 10.0)
    call_id = _finish_call(db)
    RecordingWorker(settings, db, "sandbox").run_once()
    app_settings = Settings()
    app_settings.recordings = settings
    return api_client(db, app_settings), _rows(db)[0], call_id


def test_api_lists_and_streams_with_ranges(stored: tuple[TestClient, Recording, int], db: Database,
                                           settings: RecordingsSettings) -> None:
    client, row, call_id = stored
    [listed] = client.get(f"/api/calls/{call_id}/recordings").json()
    assert listed["audio_url"] == f"/api/recordings/{row.id}/audio" and listed["status"] == "stored"
    url, size = listed["audio_url"], row.size_bytes or 0
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/ogg"
    assert whole.headers["accept-ranges"] == "bytes" and len(whole.content) == size
    first = client.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == whole.content[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    middle = client.get(url, headers={"Range": f"bytes={size // 2}-{size // 2 + 499}"})
    assert middle.status_code == 206 and middle.content == whole.content[size // 2:size // 2 + 500]
    suffix = client.get(url, headers={"Range": "bytes=-300"})
    assert suffix.status_code == 206 and suffix.content == whole.content[-300:]
    unsatisfiable = client.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.headers["content-range"] == f"bytes */{size}"
    download = client.get(url, params={"download": "true"})
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    assert f"call-{call_id}-" in download.headers["content-disposition"]
    with db.session() as session:
        actions = session.scalars(select(RecordingAccess.action).order_by(RecordingAccess.id)).all()
    assert actions == ["list", "play", "play", "play", "play", "play", "download"]
    with db.session() as session:
        audited = session.scalars(select(RecordingAccess.status_code).order_by(RecordingAccess.id)).all()
    assert audited == [200, 200, 206, 206, 206, 416, 200]


def test_api_errors_and_refusals_are_audited(stored: tuple[TestClient, Recording, int], db: Database) -> None:
    client, row, _ = stored
    assert client.get("/api/recordings/999999/audio").status_code == 404
    assert client.get("/api/calls/999999/recordings").status_code == 404
    assert client.get("/api/recordings/..%2F..%2Fetc%2Fpasswd/audio").status_code in (404, 422)
    assert client.get(f"/api/recordings/{2**64}/audio").status_code == 422
    with db.session() as session:
        session.get_one(Recording, row.id).path = "../../../../etc/passwd"  # a row that was tampered with
    refused = client.get(f"/api/recordings/{row.id}/audio")
    assert refused.status_code == 404 and "outside the store" in refused.json()["detail"]
    with db.session() as session:
        recording = session.get_one(Recording, row.id)
        recording.status, recording.deleted_at = "purged", datetime.now(UTC)
    assert client.get(f"/api/recordings/{row.id}/audio").status_code == 410
    with db.session() as session:
        refusals = session.scalar(select(func.count()).where(RecordingAccess.allowed.is_(False)))
    assert refusals == 4


def test_two_workers_at_once_store_each_wav_exactly_once(db: Database, settings: RecordingsSettings) -> None:
    for n in range(4):
        _wav(settings, 20.0, linkedid=f"1795952249.{n}", uniqueid=f"1795952249.{n}")
    env = {**os.environ, "CALLCENTER_RECORDINGS__SPOOL": str(settings.spool),
           "CALLCENTER_RECORDINGS__STORE": str(settings.store)}
    command = [sys.executable, "-m", "callcenter", "--db", db.url, "recordings", "process"]
    workers = [subprocess.Popen(command, cwd=PROJECT_ROOT, env=env) for _ in range(2)]
    assert all(worker.wait(120) in (0, 1) for worker in workers)
    RecordingWorker(settings, db, "sandbox").run_once()  # whatever one saw claimed by the other
    rows = _rows(db)
    assert sorted(r.status for r in rows) == ["stored"] * 4 and all(r.attempts == 0 for r in rows)
    files = [p for p in settings.store.rglob("*") if p.is_file()]
    assert len(files) == 4 and all(p.suffix == ".ogg" for p in files)


def test_wav_left_by_a_crashed_asterisk_is_repaired_and_stored(db: Database, settings: RecordingsSettings) -> None:
    wav = _wav(settings, 8.0, done=False)
    data = bytearray(wav.read_bytes())
    data_chunk = data.index(b"data")
    data[4:8] = (0).to_bytes(4, "little")  # Asterisk writes the sizes on close: a crash leaves zeros
    data[data_chunk + 4:data_chunk + 8] = (0).to_bytes(4, "little")
    wav.write_bytes(bytes(data))
    hours_ago = time.time() - 5 * 3600
    os.utime(wav, (hours_ago, hours_ago))  # no marker, no call log, untouched for hours
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    assert abs((_rows(db)[0].duration_seconds or 0) - 8.0) < 0.5


def _untranscodable(db: Database, settings: RecordingsSettings) -> Path:
    """An old call's finished WAV that cannot be transcoded: its row in error, the WAV kept for a retry."""
    old = "1700000000.1"
    wav = settings.spool / old / f"{old}.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEbroken")
    wav.with_name(wav.name + ".done").touch()
    RecordingWorker(settings, db, "sandbox").run_once()
    assert _rows(db)[0].status == "error" and wav.exists()
    return wav


def test_retention_also_removes_wavs_that_never_transcoded(db: Database, settings: RecordingsSettings) -> None:
    wav = _untranscodable(db, settings)
    assert purge(db, settings, datetime(2026, 11, 29, tzinfo=UTC)) == 1
    assert _rows(db)[0].status == "purged" and not wav.exists()


def test_retention_leaves_a_recording_a_worker_took_after_it_was_read(db: Database, settings: RecordingsSettings,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention reads the old rows, then purges each: a row in error that a worker claimed in between (to retry
    it) is left (the next purge looks again), and neither its WAV nor its status is touched."""
    wav = _untranscodable(db, settings)
    read = retention_module._mark_purged

    def claimed_meanwhile(session: Session, row: Recording, now: datetime) -> bool:
        with db.session() as other:  # the worker's claim, committed between retention's read and its purge
            other.execute(update(Recording).where(Recording.id == row.id).values(status="processing"))
        return read(session, row, now)

    monkeypatch.setattr(retention_module, "_mark_purged", claimed_meanwhile)
    assert purge(db, settings, datetime(2026, 11, 29, tzinfo=UTC)) == 0
    assert _rows(db)[0].status == "processing" and wav.exists()


def test_retention_of_two_nodes_with_the_same_ids_deletes_only_each_ones_own_wav(
        db: Database, settings: RecordingsSettings, tmp_path: Path) -> None:
    old = "1700000000.1"  # both nodes without a systemname: the same id on each
    other = settings.model_copy(update={"spool": tmp_path / "spool-b"})
    wavs = []
    for node, where in (("pbx1", settings), ("pbx2", other)):
        wav = where.spool / old / f"{old}.wav"
        wav.parent.mkdir(parents=True)
        wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEbroken")  # never transcodes: the WAV stays in its spool
        wav.with_name(wav.name + ".done").touch()
        RecordingWorker(where, db, node).run_once()
        wavs.append(wav)
    assert sorted((r.node, r.status) for r in _rows(db)) == [("pbx1", "error"), ("pbx2", "error")]
    now = datetime(2026, 11, 29, tzinfo=UTC)
    assert purge(db, settings, now, spools={"pbx1": settings.spool}) == 1  # pbx2's spool is not followed here
    assert not wavs[0].exists() and wavs[1].exists()
    assert sorted((r.node, r.status) for r in _rows(db)) == [("pbx1", "purged"), ("pbx2", "error")]
    assert purge(db, settings, now, spools={"pbx1": settings.spool, "pbx2": other.spool}) == 1
    assert not wavs[1].exists() and {r.status for r in _rows(db)} == {"purged"}
    report = sweep(db, settings, {"pbx1": settings.spool, "pbx2": other.spool})
    assert report.lines() == ["store and database agree"]


def test_two_nodes_recordings_with_the_same_ids_are_both_kept(db: Database, settings: RecordingsSettings,
                                                               tmp_path: Path) -> None:
    other = settings.model_copy(update={"spool": tmp_path / "spool-b"})
    first = _wav(settings, 2.0)
    second = _wav(other, 3.0)  # node b without a systemname: the very same ids
    assert RecordingWorker(settings, db, "pbx1").run_once() == {"stored": 1}
    assert RecordingWorker(other, db, "pbx2").run_once() == {"stored": 1}
    rows = {r.node: r for r in _rows(db)}
    assert rows["pbx1"].path != rows["pbx2"].path
    for node, wav_seconds in (("pbx1", 2.0), ("pbx2", 3.0)):
        copy = settings.store / (rows[node].path or "")
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == rows[node].sha256
        assert abs((rows[node].duration_seconds or 0) - wav_seconds) < 0.01
    assert not first.exists() and not second.exists()


def test_retention_never_deletes_outside_the_store(db: Database, settings: RecordingsSettings,
                                                   tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    _wav(settings, 2.0, linkedid="1700000000.1", uniqueid="1700000000.1")
    RecordingWorker(settings, db, "sandbox").run_once()
    with db.session() as session:
        session.get_one(Recording, _rows(db)[0].id).path = "../precious.txt"
    assert purge(db, settings, datetime(2026, 11, 29, tzinfo=UTC)) == 1
    assert victim.read_text() == "keep me"


def test_recording_stored_before_its_call_is_attached_when_the_call_is_built(
        db: Database, settings: RecordingsSettings) -> None:
    _wav(settings, 2.0)
    RecordingWorker(settings, db, "sandbox").run_once()
    assert _rows(db)[0].call_id is None
    call_id = _finish_call(db)
    assert _rows(db)[0].call_id == call_id


def test_recordings_of_calls_built_in_one_batch_are_each_attached_to_their_own_call(
        db: Database, settings: RecordingsSettings) -> None:
    from dataclasses import replace

    from callcenter.store.writer import upsert_calls

    linkedids = ["1700000003.1", "1700000001.1", "1700000002.1"]
    for linkedid in linkedids[:2]:
        _wav(settings, 2.0, linkedid=linkedid, uniqueid=linkedid)
    RecordingWorker(settings, db, "sandbox").run_once()
    records = [build_call([replace(e, linkedid=linkedid) for e in answered_stream()], DIRECTORY)
               for linkedid in linkedids]
    with db.session() as session:
        upsert_calls(session, "sandbox", records, datetime.now(UTC))
        ids = dict(session.execute(select(CALL.linkedid, CALL.id)).all())
    assert {row.linkedid: row.call_id for row in _rows(db)} == {linkedid: ids[linkedid] for linkedid in linkedids[:2]}


# --- Reliability (issue "Reliability", items 1-7) ---------------------------------------------------------------

def _store_files(settings: RecordingsSettings) -> list[Path]:
    return sorted(p for p in settings.store.rglob("*") if p.is_file()) if settings.store.exists() else []


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_copy_folder_and_row_are_durable_before_the_wav_is_deleted(
        db: Database, settings: RecordingsSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    wav = Path(os.path.realpath(_wav(settings, 3.0)))
    steps: list[tuple[str, str]] = []
    status_when_deleted: list[str | None] = []
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

    def fsync(fd: int) -> None:
        real_fsync(fd)
        steps.append(("fsync", _fd_path(fd)))

    def replace(src: str | Path, dst: str | Path, **kw: int) -> None:
        real_replace(src, dst, **kw)
        steps.append(("replace", os.path.realpath(dst)))

    def unlink(path: str | Path, *, dir_fd: int | None = None) -> None:
        full = os.path.join(_fd_path(dir_fd), path) if dir_fd is not None else os.path.realpath(path)
        if full == str(wav):
            steps.append(("unlink", full))
            with db.session() as session:
                status_when_deleted.append(session.scalar(select(Recording.status)))
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    event.listen(db.engine, "commit", lambda _connection: steps.append(("commit", "")))
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    target = os.path.realpath(settings.store / (_rows(db)[0].path or ""))
    order = [steps.index(("fsync", f"{target}.{os.getpid()}.part")), steps.index(("replace", target)),
             steps.index(("fsync", os.path.dirname(target)))]
    order.append(next(i for i, step in enumerate(steps) if step[0] == "commit" and i > order[-1]))
    order.append(steps.index(("unlink", str(wav))))
    assert order == sorted(order), steps  # file fsync -> rename -> folder fsync -> commit -> WAV deleted
    assert status_when_deleted == ["stored"]
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: a commit is on disk


KILL_IN_WINDOW = """
import os, signal, sys
from pathlib import Path
from callcenter.settings import RecordingsSettings
from callcenter.store.db import Database
from recordings.worker import RecordingWorker

point, url, spool, store = sys.argv[1:]
real_replace, real_unlink = os.replace, os.unlink

def replace(src, dst, **kw):
    real_replace(src, dst, **kw)
    if point == "renamed" and str(dst).endswith(".ogg"):
        os.kill(os.getpid(), signal.SIGKILL)  # the copy is in place, the row does not say so yet

def unlink(path, **kw):
    if point == "committed" and str(path).endswith((".wav", ".done")):
        os.kill(os.getpid(), signal.SIGKILL)  # the row says stored, nothing in the spool is deleted yet
    real_unlink(path, **kw)

os.replace, os.unlink = replace, unlink
RecordingWorker(RecordingsSettings(spool=Path(spool), store=Path(store)), Database(url), "sandbox").run_once()
"""


@pytest.mark.parametrize(("point", "status", "rerun"), [("renamed", "processing", "stored"),
                                                        ("committed", "stored", "cleaned")])
def test_worker_killed_between_rename_and_wav_deletion_finishes_exactly_once(
        db: Database, settings: RecordingsSettings, point: str, status: str, rerun: str) -> None:
    wav = _wav(settings, 3.0)
    killed = subprocess.run([sys.executable, "-c", KILL_IN_WINDOW, point, db.url, str(settings.spool),
                             str(settings.store)], cwd=PROJECT_ROOT, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert wav.exists() and [r.status for r in _rows(db)] == [status]
    assert [p.suffix for p in _store_files(settings)] == [".ogg"]
    assert RecordingWorker(settings, db, "sandbox").run_once() == {rerun: 1}
    [row] = _rows(db)
    assert row.status == "stored" and _store_files(settings) == [settings.store / (row.path or "")]
    assert sha256_of(settings.store / (row.path or "")) == row.sha256 and not wav.exists()


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which files are world-readable unless created with explicit modes."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("usual_umask")
def test_store_folders_and_files_are_private(db: Database, settings: RecordingsSettings) -> None:
    _wav(settings, 2.0)
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [settings.store, *settings.store.rglob("*")]}
    assert {p: m for p, m in modes.items() if m != (0o700 if p.is_dir() else 0o600)} == {}
    assert len(modes) == 6  # the store, YYYY, MM, DD, the node and the file


def _header_only_wav(path: Path) -> Path:
    """What MixMonitor leaves for a caller who hung up before an operator answered: a header and no audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
    return path


@pytest.mark.parametrize("closed", [True, False])
def test_a_wav_without_audio_is_recorded_empty_and_never_retried(db: Database, settings: RecordingsSettings,
                                                                 closed: bool) -> None:
    wav = _header_only_wav(settings.spool / LINKEDID / f"{UNIQUEID}.wav")
    assert wav.stat().st_size == 44
    if closed:
        wav.with_name(wav.name + ".done").touch()
    else:  # Asterisk crashed: no marker, and the sizes were never written
        wav.write_bytes(wav.read_bytes()[:4] + bytes(4) + wav.read_bytes()[8:40] + bytes(4))
        os.utime(wav, (time.time() - 5 * 3600, time.time() - 5 * 3600))
    call_id = _finish_call(db)
    worker = RecordingWorker(settings, db, "sandbox")
    assert worker.run_once() == {"empty": 1}
    [row] = _rows(db)
    assert (row.status, row.call_id, row.path, row.error, row.next_attempt_at) == ("empty", call_id, None, None, None)
    assert not (settings.spool / LINKEDID).exists() and _store_files(settings) == []
    assert worker.run_once() == {}
    app_settings = Settings()
    app_settings.recordings = settings
    client = api_client(db, app_settings)
    [listed] = client.get(f"/api/calls/{call_id}/recordings").json()
    assert (listed["status"], listed["audio_url"]) == ("empty", None)
    refused = client.get(f"/api/recordings/{row.id}/audio")
    assert refused.status_code == 404 and "has no audio" in refused.json()["detail"]


@pytest.mark.parametrize("damage", ["missing", "different"])
def test_stored_row_whose_copy_is_gone_stores_the_wav_again(db: Database, settings: RecordingsSettings,
                                                             damage: str, caplog: pytest.LogCaptureFixture) -> None:
    wav = _wav(settings, 3.0)
    audio = wav.read_bytes()
    worker = RecordingWorker(settings, db, "sandbox")
    assert worker.run_once() == {"stored": 1}
    [row] = _rows(db)
    copy = settings.store / (row.path or "")
    if damage == "missing":
        copy.unlink()  # a lost disk, or a database restored from a backup the store does not match
    else:
        copy.write_bytes(b"OggS" + bytes(200))
    wav.parent.mkdir()
    wav.write_bytes(audio)  # the WAV is still (or again) in the spool
    wav.with_name(wav.name + ".done").touch()
    assert worker.run_once() == {"stored": 1}
    [again] = _rows(db)
    assert again.status == "stored" and sha256_of(copy) == again.sha256 and not wav.exists()
    assert any(str(wav) in r.getMessage() and "again" in r.getMessage() for r in caplog.records)


def test_a_call_folder_with_an_out_of_range_id_does_not_stop_the_others(
        db: Database, settings: RecordingsSettings, caplog: pytest.LogCaptureFixture) -> None:
    bad = _wav(settings, 1.0, linkedid="10000000000000.1", uniqueid="10000000000000.1")  # sorts first; year 318857
    good = _wav(settings, 2.0)
    worker = RecordingWorker(settings, db, "sandbox")
    assert worker.run_once() == {"stored": 1}
    assert worker.run_once() == {}
    assert bad.exists() and not good.exists() and [r.linkedid for r in _rows(db)] == [LINKEDID]
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_an_unexpected_failure_is_logged_with_its_path_and_the_next_wav_is_stored(
        db: Database, settings: RecordingsSettings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    first = _wav(settings, 1.0, linkedid="1795952249.0", uniqueid="1795952249.0")
    _wav(settings, 1.0, linkedid="1795952249.1", uniqueid="1795952249.1")
    real = RecordingWorker.process

    def process(self: RecordingWorker, found: SpoolFile, now: datetime) -> str:
        if found.path == first:
            raise RuntimeError("something nobody foresaw")
        return real(self, found, now)

    monkeypatch.setattr(RecordingWorker, "process", process)
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"error": 1, "stored": 1}
    assert any(str(first) in r.getMessage() and r.exc_info for r in caplog.records)


def test_ids_with_an_asterisk_systemname_are_stored(db: Database, settings: RecordingsSettings) -> None:
    linkedid = "pbx1-1795952249.0"
    _wav(settings, 2.0, linkedid=linkedid, uniqueid=linkedid)
    _wav(settings, 2.0, linkedid=linkedid, name="msg-pbx1-1795952249.3.wav")
    call_id = _finish_call(db, linkedid)
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 2}
    rows = _rows(db)
    assert sorted(r.path or "" for r in rows) == [f"2026/11/29/sandbox/{linkedid}-{linkedid}.ogg",
                                                  f"2026/11/29/sandbox/{linkedid}-pbx1-1795952249.3-msg.ogg"]
    assert {(r.status, r.call_id) for r in rows} == {("stored", call_id)}
    assert {f"{r.recorded_at:%Y-%m-%d}" for r in rows} == {"2026-11-29"}


def test_off_contract_spool_files_are_reported_once_swept_and_purged_after_retention(
        db: Database, settings: RecordingsSettings, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    audio = speech_like_wav(settings.spool.parent / "audio.wav", 1.0).read_bytes()
    held = "1700000100.5"
    odd = [settings.spool / LINKEDID / f"{UNIQUEID}.WAV", settings.spool / LINKEDID / f"{UNIQUEID}.wav49",
           settings.spool / "stray.wav", settings.spool / held / f"{held}.WAV"]
    fresh = settings.spool / "1795952249.7" / "1795952249.7.WAV"
    long_ago = time.time() - 400 * 86400
    for path in [*odd, fresh]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio)
        if path != fresh:
            os.utime(path, (long_ago, long_ago))
    _finish_call(db, held, hold=True)
    worker = RecordingWorker(settings, db, "sandbox")
    assert worker.run_once() == {} and worker.run_once() == {}
    for path in [*odd, fresh]:
        assert len([r for r in caplog.records if str(path) in r.getMessage()]) == 1, path  # once, not every scan
    app_settings = Settings()
    app_settings.recordings = settings
    assert recordings_cli.run(argparse.Namespace(action="sweep"), app_settings, db) == 1
    printed = capsys.readouterr().out
    assert all(str(path) in printed for path in [*odd, fresh])
    purge(db, settings, datetime.now(UTC))
    assert [p.exists() for p in odd] == [False, False, False, True]  # the last one's call is on legal hold
    assert fresh.exists() and not (settings.spool / LINKEDID).exists()


def test_a_linked_call_folder_is_not_followed(db: Database, settings: RecordingsSettings, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    elsewhere = speech_like_wav(tmp_path / "elsewhere" / f"{UNIQUEID}.wav", 2.0)
    elsewhere.with_name(elsewhere.name + ".done").touch()
    settings.spool.mkdir(parents=True)
    (settings.spool / LINKEDID).symlink_to(elsewhere.parent, target_is_directory=True)
    _wav(settings, 2.0, linkedid="1795952249.1", uniqueid="1795952249.1")
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    assert elsewhere.exists() and [r.linkedid for r in _rows(db)] == ["1795952249.1"]
    link = str(settings.spool / LINKEDID)
    assert any(link in r.getMessage() and "link" in r.getMessage() for r in caplog.records)
    assert any(link in line and "link" in line for line in sweep(db, settings).lines())


def test_a_linked_wav_is_neither_imported_nor_repaired(db: Database, settings: RecordingsSettings,
                                                       tmp_path: Path) -> None:
    outside = speech_like_wav(tmp_path / "private" / "other.wav", 4.0)
    data = bytearray(outside.read_bytes())
    data[4:8] = (0).to_bytes(4, "little")  # sizes a header repair would rewrite
    outside.write_bytes(bytes(data))
    link = settings.spool / LINKEDID / f"{UNIQUEID}.wav"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    link.with_name(link.name + ".done").touch()
    assert RecordingWorker(settings, db, "sandbox").run_once() == {}
    assert outside.read_bytes() == bytes(data) and _rows(db) == [] and _store_files(settings) == []
    assert link.is_symlink()


def test_a_call_folder_swapped_for_a_link_after_the_scan_is_not_followed(
        db: Database, settings: RecordingsSettings, tmp_path: Path) -> None:
    wav = _wav(settings, 2.0)
    found = parse(wav)  # what the scan saw
    assert found is not None
    elsewhere = tmp_path / "elsewhere"
    wav.parent.rename(elsewhere)
    wav.parent.symlink_to(elsewhere, target_is_directory=True)
    assert RecordingWorker(settings, db, "sandbox").process(found, datetime.now(UTC)) == "error"
    assert (elsewhere / wav.name).exists() and _store_files(settings) == []



def test_the_worker_counts_what_it_handled_and_what_waits_in_the_spool(
        db: Database, settings: RecordingsSettings) -> None:
    from callcenter.ops.metrics import LISTENER

    def value(name: str, **labels: str) -> float:
        return LISTENER.get_sample_value(name, labels) or 0.0

    before = {o: value("callcenter_recordings_total", outcome=o) for o in ("stored", "error")}
    _wav(settings, 2.0)
    _finish_call(db)
    running = _wav(settings, 2.0, linkedid="1795000999.1", uniqueid="1795000999.1", done=False)  # still recording
    broken = settings.spool / "1795000888.1" / "1795000888.1.wav"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    broken.with_name(broken.name + ".done").touch()
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1, "error": 1}
    assert value("callcenter_recordings_total", outcome="stored") == before["stored"] + 1
    assert value("callcenter_recordings_total", outcome="error") == before["error"] + 1
    backlog = {"name": "callcenter_recordings_backlog", "node": "sandbox"}
    assert value(**backlog) == 2  # waiting at this scan: the one then stored, the broken one
    RecordingWorker(settings, db, "sandbox").run_once()
    assert value(**backlog) == 1 and running.exists()  # still being recorded: not waiting


def test_the_duration_recorded_is_the_wavs_exact_length(db: Database, settings: RecordingsSettings) -> None:
    wav = _wav(settings, 6.0)
    with wave.open(str(wav)) as source:
        params, audio = source.getparams(), source.readframes(40_987)  # 5.123375 s at 8 kHz
    with wave.open(str(wav), "wb") as out:
        out.setparams(params)
        out.writeframes(audio)
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 1}
    assert _rows(db)[0].duration_seconds == 5.123  # not the copy's (Opus adds a few ms of padding)


def test_a_copy_that_decodes_shorter_than_its_wav_is_refused(settings: RecordingsSettings, tmp_path: Path) -> None:
    copy = tmp_path / "copy.ogg"
    seconds = transcode(_wav(settings, 3.0), copy, "opus", "24k")
    assert verify(copy, seconds).duration_seconds == 3.0
    with pytest.raises(TranscodeError, match=r"decodes to 3\.0\d s, expected 4\.00 s"):
        verify(copy, 4.0)


def test_wavs_are_stored_side_by_side(db: Database, settings: RecordingsSettings,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    meet = threading.Barrier(2, timeout=60)  # broken (an error outcome) unless two transcodes run at once
    real = transcode

    def together(source: Path | BinaryIO, target: Path, fmt: str, bitrate: str) -> float:
        meet.wait()
        return real(source, target, fmt, bitrate)

    monkeypatch.setattr("recordings.worker.transcode", together)
    for n in range(2):
        _wav(settings, 2.0, linkedid=f"1795952249.{n}", uniqueid=f"1795952249.{n}")
    worker = RecordingWorker(settings.model_copy(update={"workers": 2}), db, "sandbox")
    assert worker.run_once() == {"stored": 2}
    worker.close()


def test_a_long_recording_holds_back_no_other_and_none_is_handed_out_twice(
        db: Database, settings: RecordingsSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    from callcenter.ops.metrics import LISTENER

    long, short = "1795952249.0", "1795952249.1"
    started, finish = threading.Event(), threading.Event()
    real = transcode

    def slow(source: Path | BinaryIO, target: Path, fmt: str, bitrate: str) -> float:
        if target.name.startswith(long):  # a long call: still transcoding until the test says
            started.set()
            assert finish.wait(60)
        return real(source, target, fmt, bitrate)

    monkeypatch.setattr("recordings.worker.transcode", slow)
    worker = RecordingWorker(settings.model_copy(update={"workers": 2}), db, "sandbox")
    _wav(settings, 2.0, linkedid=long, uniqueid=long)
    [first] = worker.start_due()
    assert started.wait(60)
    _wav(settings, 2.0, linkedid=short, uniqueid=short)  # closed while the long one is being stored
    [second] = worker.start_due()  # the long one is in hand: not handed out again
    waiting = LISTENER.get_sample_value("callcenter_recordings_backlog", {"node": "sandbox"})
    assert waiting == 1  # the short one; the long one is being stored
    assert second.result(timeout=60) == "stored" and not first.done()
    assert worker.start_due() == []
    finish.set()
    assert first.result(timeout=60) == "stored"
    assert [(r.status, r.attempts) for r in _rows(db)] == [("stored", 0), ("stored", 0)]
    worker.close()


def test_two_workers_over_one_spool_store_every_wav_exactly_once(db: Database, settings: RecordingsSettings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    transcoded: list[str] = []
    real = transcode

    def counted(source: Path | BinaryIO, target: Path, fmt: str, bitrate: str) -> float:
        transcoded.append(target.name.split(".ogg")[0])  # list.append is atomic: threads may share it
        return real(source, target, fmt, bitrate)

    monkeypatch.setattr("recordings.worker.transcode", counted)
    for n in range(8):
        _wav(settings, 2.0, linkedid=f"1795952249.{n}", uniqueid=f"1795952249.{n}")
    parallel = settings.model_copy(update={"workers": 2})
    workers = [RecordingWorker(parallel, db, "sandbox") for _ in range(2)]
    workers[1].me = "other-host:1"  # another listener: its claims are respected, never taken over as dead
    with ThreadPoolExecutor(2) as both:
        outcomes = list(both.map(RecordingWorker.run_once, workers))
    assert sum(o.get("stored", 0) for o in outcomes) == 8 and not any(o.get("error") for o in outcomes)
    assert sorted(transcoded) == sorted(f"1795952249.{n}-1795952249.{n}" for n in range(8))
    assert [(r.status, r.attempts) for r in _rows(db)] == [("stored", 0)] * 8
    assert len(_store_files(settings)) == 8 and not list(settings.spool.rglob("*.wav"))
    for worker in workers:
        worker.close()


def test_nodes_share_one_pool_and_each_counts_its_own_backlog(db: Database, settings: RecordingsSettings,
                                                               tmp_path: Path) -> None:
    from callcenter.ops.metrics import LISTENER

    other = settings.model_copy(update={"spool": tmp_path / "spool-pbx2"})
    _wav(settings, 2.0)
    _wav(other, 2.0, linkedid="pbx2-1795952249.0", uniqueid="pbx2-1795952249.0")
    with ThreadPoolExecutor(1, thread_name_prefix="recordings") as pool:
        first, second = RecordingWorker(settings, db, "pbx1", pool), RecordingWorker(other, db, "pbx2", pool)
        assert first.run_once() == {"stored": 1}
        first.close()  # the pool is the caller's: the other node's worker still stores
        assert second.run_once() == {"stored": 1}
    assert [(r.node, r.status) for r in _rows(db)] == [("pbx1", "stored"), ("pbx2", "stored")]
    assert all(LISTENER.get_sample_value("callcenter_recordings_backlog", {"node": node}) == 1
               for node in ("pbx1", "pbx2"))  # each its own WAV at its scan
