"""The SQLite engine: a private database file and commits that survive a power loss."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callcenter.store.db import make_engine


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which SQLite would create a world-readable file."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_sqlite_file_its_journals_and_its_new_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "callcenter.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
        assert {p.name: _mode(p) for p in (path, wal, shm)} == {p.name: 0o600 for p in (path, wal, shm)}
    assert _mode(path.parent) == 0o700
    engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "callcenter.db"
    path.touch(mode=0o640)
    path.chmod(0o640)  # the administrator's choice (e.g. a backup group) is not ours to undo
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    assert _mode(path) == 0o640
    engine.dispose()


def test_sqlite_commits_are_synced_to_disk(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'callcenter.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL (NORMAL, 1, may lose commits)
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_a_postgresql_server_that_never_answers_fails_fast() -> None:
    """A dead database must fail within the connect timeout, not hang the listener's worker thread forever."""
    import socket
    import threading

    from sqlalchemy.exc import OperationalError

    from callcenter.store.db import Database

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers the startup message
    port = silent.getsockname()[1]
    outcome: list[BaseException] = []

    def connect() -> None:
        database = Database(f"postgresql+psycopg://nobody@127.0.0.1:{port}/nothing", connect_timeout=2)
        try:
            with database.session() as session:
                session.execute(text("SELECT 1"))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            database.dispose()

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(15)
    silent.close()
    assert not worker.is_alive(), "connecting to a silent server still hangs after 15 s"
    assert [type(exc) for exc in outcome] == [OperationalError]

