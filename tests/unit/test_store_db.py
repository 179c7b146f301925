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
