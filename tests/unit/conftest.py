"""Fixtures for the listener's unit tests: the fake AMI server and a SQLite database (unit tests need no
PostgreSQL; tests/integration runs the store on both)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callcenter.store.db import Database
from tests.conftest import sqlite_copy
from tests.unit.fake_ami import FakeAmi
from tests.unit.listening import SECRET


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    """A running fake AMI server that accepts the listener's user."""
    server = FakeAmi(secret=SECRET)
    async with server:
        yield server


@pytest.fixture
def db(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
       migrated_templates: dict[str, str]) -> Iterator[Database]:
    """A migrated SQLite database (this folder's tests override the two-backend ``db`` of tests/conftest.py): a
    copy of the run's migrated template."""
    path = tmp_path / "callcenter.db"
    sqlite_copy(migrated_templates, tmp_path_factory, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()
