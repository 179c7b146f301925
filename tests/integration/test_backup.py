"""``callcenter backup`` and ``callcenter restore`` as real processes, over real databases (SQLite and PostgreSQL)
and real files: a dataset touching every table is backed up, restored into an empty database and empty stores,
and found identical row by row and byte by byte; damaged backups, non-empty targets, newer and older schemas, and
backups taken while calls are written are checked too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from callcenter.model.contract import Role
from callcenter.model.hotline import load
from callcenter.ops.dump import dump_table, snapshot
from callcenter.ops.schema import head_revision
from callcenter.settings import PROJECT_ROOT, CasesSettings, RecordingsSettings, Settings
from callcenter.store import accounts, attachments, cursors, desk_intents, worklist
from callcenter.store import cases as case_store
from callcenter.store.db import Database, make_engine
from callcenter.store.migrate import upgrade
from callcenter.store.models import (
    Base,
    Call,
    CallbackAttempt,
    CallbackItem,
    Recording,
    RecordingAccess,
    User,
    calls,
)
from recordings.worker import RecordingWorker
from tests.conftest import PG_URL, fresh_postgres
from tests.factories import png, speech_like_wav
from tests.webclient import add_call, add_users, synthetic_calls

_LOADED = load(Settings().model_file)
_TOPIC = _LOADED.topics[0]
MODEL = _LOADED.model_copy(update={"departments": {**_LOADED.departments, _TOPIC.department: _LOADED.departments[
    _TOPIC.department].model_copy(update={"email": "phong@example.gov.vn"})}})  # so the case is announced


@dataclass
class Place:
    """Where a hotline keeps its data: a database URL and the two stores."""

    url: str
    store: Path
    attachments: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "CALLCENTER_DB__URL": self.url, "CALLCENTER_RECORDINGS__STORE": str(self.store),
                "CALLCENTER_CASES__ATTACHMENTS": str(self.attachments)}


def cli(place: Place, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m callcenter --db URL ARGS`` with the place's stores; its exit status and output."""
    return subprocess.run([sys.executable, "-m", "callcenter", "--db", place.url, *args], cwd=PROJECT_ROOT,
                          env=place.env(), capture_output=True, text=True, timeout=300)


def target_place(tmp_path: Path, engine: str) -> Place:
    """An empty place to restore into: a new SQLite file, or a new PostgreSQL database on the test cluster."""
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        if not PG_URL:
            pytest.skip("CALLCENTER_TEST_PG_URL not set")
        url = fresh_postgres(f"{make_url(PG_URL).database}_restore")
    return Place(url, tmp_path / "restored-store", tmp_path / "restored-attachments")


@pytest.fixture
def source(db: Database, tmp_path: Path) -> Place:
    return Place(db.url, tmp_path / "store", tmp_path / "attachments")


def _recordings(db: Database, place: Place, spool: Path) -> None:
    """Real stored files, through the recordings worker: two conversations and a voice message."""
    for n, name in ((2, "2.1.wav"), (3, "3.1.wav"), (4, "msg-4.1.wav")):
        add_call(db, n, number=f"090500000{n}")
        wav = speech_like_wav(spool / f"{n}.1" / name, 2.0)
        wav.with_name(wav.name + ".done").touch()
    settings = RecordingsSettings(spool=spool, store=place.store, settle_seconds=0.0)
    assert RecordingWorker(settings, db, "sandbox").run_once() == {"stored": 3}


def _case(db: Database, place: Place, call_id: int) -> None:
    """A forwarded case (its update log and outbox row), progress with two attachments (one file twice)."""
    operator = case_store.Actor("op101", Role.OPERATOR)
    department = case_store.Actor("dept1", Role.DEPARTMENT, MODEL.topics[0].department)
    limits = CasesSettings(attachments=place.attachments)
    with db.session() as session:
        case = case_store.open_case(session, MODEL, case_store.NewCase(
            topic=MODEL.topics[0].code, description="Đèn đường hỏng ở phường Bến Nghé", call_ids=[call_id],
            contact_name="Nguyễn Thị Quỳnh Mai", latitude=10.776, longitude=106.701), operator)
        update = case_store.progress(session, case, department, "Đã cử người kiểm tra")
        photo = attachments.Upload("ảnh hiện trường.png", png(4, 3))
        checked = attachments.check([photo, attachments.Upload("lần hai.png", photo.data),
                                     attachments.Upload("bản đồ.png", png(2, 5))], limits)
        attachments.attach(session, limits, case, update, "dept1", checked)


def _the_rest(db: Database, call_id: int) -> None:
    """Tokens, a note, a call-back with its attempt, the audit log, a CEL file cursor, a desk change a node
    missed."""
    now = datetime.now(UTC)
    with db.session() as session:
        accounts.create_token(session, session.scalars(select(User).where(User.name == "admin1")).one(), "cron")
        worklist.add_note(session, session.get_one(Call, call_id), "op101", "op101", "Người gọi hỏi lại", "traffic")
        session.add(CallbackItem(call_id=call_id, claimed_by="op101", claimed_at=now))
        session.add(CallbackAttempt(call_id=call_id, linkedid="1795000123.7", author="op101", operator="op101",
                                    number="0905000002", started_at=now, result="reached"))
        session.add(RecordingAccess(at=now, recording_id=1, call_id=call_id, action="play", allowed=True,
                                    status_code=206, actor="super1", client="127.0.0.1"))
        cursors.save(session, "sandbox", cursors.FilePosition(path="/var/log/asterisk/cel.json", inode=42,
                                                               offset=1234, line=17, fingerprint="ab" * 16,
                                                               ordinals=[[1, 2]]))
        _, paused = desk_intents.ask(session, "op101", paused=True, reason="lunch")
        desk_intents.missed_by(session, "op101", paused.version, {"nodeb"})


def fill(db: Database, place: Place, tmp_path: Path) -> None:
    """A realistic hotline: calls with stored recordings and a voice message, users, a case with attachments,
    and at least one row in every table (so a new table cannot slip through untested)."""
    add_users(db)
    _recordings(db, place, tmp_path / "spool")
    call_id, _ = add_call(db, 5, number="0905000005")
    _case(db, place, call_id)
    _the_rest(db, call_id)
    with db.session() as session:
        empty = [name for name, table in Base.metadata.tables.items()
                 if not session.scalar(select(func.count()).select_from(table))]
    assert not empty, f"the dataset leaves these tables empty: {empty}"


def all_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the models, in primary-key order."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {name: [tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key))]
                    for name, table in Base.metadata.tables.items()}
    finally:
        engine.dispose()


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same(source: Place, target: Place) -> None:
    assert all_rows(target.url) == all_rows(source.url)
    assert files(target.store) == files(source.store) and len(files(target.store)) == 3
    assert files(target.attachments) == files(source.attachments) and len(files(target.attachments)) == 2


def _round_trip(source: Place, target: Place, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    made = cli(source, "backup", str(backup))
    assert made.returncode == 0, made.stderr
    index = json.loads((backup / "backup.json").read_text())
    assert {t["name"] for t in index["tables"]} == set(Base.metadata.tables)  # every table, none forgotten
    assert [f["kind"] for f in index["files"]].count("recordings") == 3 and index["problems"] == []
    assert "files" in made.stderr  # progress
    restored = cli(target, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "4 calls, 3 recordings" in restored.stdout and "5 files checked" in restored.stdout
    assert_same(source, target)
    with Database(target.url).session() as session:  # new rows get new ids (PostgreSQL's sequences moved on)
        accounts.create_user(session, accounts.NewUser("after", Role.SUPERVISOR, "correct horse battery staple"))


def test_a_restore_into_an_empty_database_and_store_finds_every_call_and_recording(
        db: Database, source: Place, tmp_path: Path) -> None:
    fill(db, source, tmp_path)
    engine = make_url(db.url).get_backend_name()
    _round_trip(source, target_place(tmp_path, engine), tmp_path)


def test_a_sqlite_backup_restores_into_postgresql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    upgrade(url)
    db = Database(url)
    place = Place(url, tmp_path / "store", tmp_path / "attachments")
    fill(db, place, tmp_path)
    _round_trip(place, target_place(tmp_path, "postgresql"), tmp_path)
    db.dispose()


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _untouched(target: Place) -> None:
    engine = make_engine(target.url)
    with engine.connect() as connection:
        names = [n for n in Base.metadata.tables if connection.dialect.has_table(connection, n)]
        assert all(not connection.scalar(select(func.count()).select_from(Base.metadata.tables[n])) for n in names)
    engine.dispose()
    assert not target.store.exists() and not target.attachments.exists()


def test_a_damaged_file_in_the_backup_is_named_and_nothing_is_restored(db: Database, source: Place,
                                                                        tmp_path: Path) -> None:
    fill(db, source, tmp_path)
    backup = tmp_path / "backup"
    assert cli(source, "backup", str(backup)).returncode == 0
    assert cli(source, "restore", "--verify-only", str(backup)).returncode == 0
    [last] = [p for p in sorted((backup / "files" / "recordings").rglob("*")) if p.is_file()][-1:]
    _damage(last)
    name = str(last.relative_to(backup))
    checked = cli(source, "restore", "--verify-only", str(backup))
    assert checked.returncode == 1 and name in checked.stderr and "damaged" in checked.stderr
    target = target_place(tmp_path, make_url(db.url).get_backend_name())
    refused = cli(target, "restore", str(backup))
    assert refused.returncode == 2 and name in refused.stderr and "nothing was restored" in refused.stderr
    _untouched(target)
    _damage(backup / "database" / "calls.jsonl")
    refused = cli(target, "restore", str(backup))
    assert refused.returncode == 2 and "database/calls.jsonl: damaged" in refused.stderr
    _untouched(target)


def test_a_target_with_rows_or_files_is_refused_and_left_as_it_was(db: Database, source: Place,
                                                                   tmp_path: Path) -> None:
    fill(db, source, tmp_path)
    backup = tmp_path / "backup"
    assert cli(source, "backup", str(backup)).returncode == 0
    assert cli(source, "restore", str(backup)).returncode == 2  # the source itself: full
    assert "not empty" in cli(source, "restore", str(backup)).stderr
    target = target_place(tmp_path, make_url(db.url).get_backend_name())
    upgrade(target.url)
    target.store.mkdir()
    (target.store / "stray.ogg").write_bytes(b"not ours")
    refused = cli(target, "restore", str(backup))
    assert refused.returncode == 2 and "recordings folder" in refused.stderr
    assert files(target.store) == {"stray.ogg": b"not ours"}
    (target.store / "stray.ogg").unlink()
    with Database(target.url).session() as session:
        accounts.create_user(session, accounts.NewUser("early", Role.ADMIN, "correct horse battery staple"))
    before = all_rows(target.url)
    refused = cli(target, "restore", str(backup))
    assert refused.returncode == 2 and "users" in refused.stderr and "nothing was changed" in refused.stderr
    assert all_rows(target.url) == before and files(target.store) == {}


def test_missing_or_changed_files_are_named_and_the_backup_still_finishes(db: Database, source: Place,
                                                                           tmp_path: Path) -> None:
    fill(db, source, tmp_path)
    with db.session() as session:
        first, second = session.scalars(select(Recording.path).where(Recording.path.is_not(None))
                                        .order_by(Recording.id)).all()[:2]
    (source.store / (first or "")).unlink()
    _damage(source.store / (second or ""))
    backup = tmp_path / "backup"
    made = cli(source, "backup", str(backup))
    assert made.returncode == 1 and f"{first}" in made.stderr and "missing" in made.stderr
    assert f"{second}" in made.stderr and "differs" in made.stderr
    assert len(json.loads((backup / "backup.json").read_text())["problems"]) == 2
    assert cli(source, "restore", "--verify-only", str(backup)).returncode == 1
    target = target_place(tmp_path, make_url(db.url).get_backend_name())
    restored = cli(target, "restore", str(backup))
    assert restored.returncode == 1 and "file missing" in restored.stderr and "the database says" in restored.stderr
    assert all_rows(target.url) == all_rows(source.url)


def test_a_backup_of_a_newer_schema_is_refused(db: Database, source: Place, tmp_path: Path) -> None:
    add_users(db)
    backup = tmp_path / "backup"
    assert cli(source, "backup", str(backup)).returncode == 0
    index = json.loads((backup / "backup.json").read_text())
    (backup / "backup.json").write_text(json.dumps({**index, "revision": "9999"}))
    target = target_place(tmp_path, make_url(db.url).get_backend_name())
    refused = cli(target, "restore", str(backup))
    assert refused.returncode == 2 and "9999" in refused.stderr and "does not know" in refused.stderr
    _untouched(target)


def test_a_backup_of_an_older_schema_is_restored_then_upgraded(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from callcenter.store import journal, summary

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0010")  # before case attachments
    add_users(Database(url))
    # Today's call writer, on a schema from before the statistics summary and before the journal's key per call
    # (0018: today's journal insert names that key): the call row is what this test restores.
    with monkeypatch.context() as patch:
        patch.setattr(summary, "maintain", lambda *_: None)
        patch.setattr(journal, "append", lambda *_: set())
        add_call(Database(url), 7)
    old = Place(url, tmp_path / "store", tmp_path / "attachments")
    backup = tmp_path / "backup"
    assert cli(old, "backup", str(backup)).returncode == 0
    index = json.loads((backup / "backup.json").read_text())
    assert index["revision"] == "0010" and "case_attachments" not in {t["name"] for t in index["tables"]}
    target = target_place(tmp_path, "sqlite")
    restored = cli(target, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    rows = all_rows(target.url)
    assert len(rows["users"]) == 5 and len(rows["calls"]) == 1 and rows["case_attachments"] == []
    engine = make_engine(target.url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
    engine.dispose()


def test_the_snapshot_does_not_see_rows_written_while_it_reads(db: Database, tmp_path: Path) -> None:
    """Deterministic: a call and its recording committed between dumping ``calls`` and ``recordings`` are in
    neither file."""
    add_call(db, 2)
    tables = Base.metadata.tables
    engine = make_engine(db.url)
    with snapshot(engine) as connection:
        first = dump_table(connection, tables["calls"], tmp_path)
        call_id, _ = add_call(db, 3)
        with db.session() as session:
            session.add(Recording(call_id=call_id, node="sandbox", linkedid="3.1", source_path="/s/3.wav",
                                  created_at=datetime.now(UTC)))
        second = dump_table(connection, tables["recordings"], tmp_path)
    engine.dispose()
    assert (first.rows, second.rows) == (1, 0)


@pytest.fixture
def writer(db: Database) -> Iterator[list[int]]:
    """A thread adding calls with a recording each, one transaction per pair, until the test ends; yields the
    running count. A snapshot therefore holds exactly one recording per added call, whenever it is taken."""
    done: list[int] = [0]
    stop = threading.Event()

    def write() -> None:
        n = 1000
        while not stop.is_set():
            n += 1
            row = {**synthetic_calls(1, datetime.now(UTC), 1, seed=n)[0], "node": "sandbox", "linkedid": f"{n}.1"}
            with db.session() as session:  # the call and its recording commit together
                call_id = session.execute(insert(calls).values(row).returning(calls.c.id)).scalar_one()
                session.execute(insert(Recording).values(call_id=call_id, node="sandbox", linkedid=f"{n}.1",
                                                         source_path=f"/s/{n}.wav", created_at=datetime.now(UTC)))
            done[0] += 1

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    yield done
    stop.set()
    thread.join(timeout=30)


def test_a_backup_while_calls_are_written_restores_consistently(db: Database, source: Place, tmp_path: Path,
                                                                writer: list[int]) -> None:
    fill(db, source, tmp_path)
    started = writer[0]
    backup = tmp_path / "backup"
    made = cli(source, "backup", str(backup))
    assert made.returncode == 0, made.stderr
    assert writer[0] > started  # calls were being written while the backup ran
    target = target_place(tmp_path, make_url(db.url).get_backend_name())
    restored = cli(target, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    rows = all_rows(target.url)
    call_ids = {row[0] for row in rows["calls"]}
    recording_calls = {row[1] for row in rows["recordings"]}
    assert recording_calls <= call_ids and len(rows["recordings"]) == len(rows["calls"]) - 1  # fill: 3 of 4 recorded


def test_help_explains_both_commands(source: Place) -> None:
    backup = cli(source, "backup", "--help").stdout
    restore = cli(source, "restore", "--help").stdout
    assert "consistent snapshot" in backup and "sha256" in backup and "Exit status" in backup
    assert "EMPTY database" in restore and "--verify-only" in restore and "Exit status" in restore
