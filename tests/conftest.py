"""Shared fixtures: a fresh, migrated database on SQLite and on PostgreSQL for every test that asks for one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callcenter.store.db import Database, make_engine
from callcenter.store.migrate import upgrade

PG_URL = os.environ.get("CALLCENTER_TEST_PG_URL", "")


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL; PostgreSQL needs CALLCENTER_TEST_PG_URL (``make test`` sets it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'callcenter.db'}"
    elif not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CALLCENTER_TEST_PG_URL is not set: run the tests with `make test`")
        pytest.skip("CALLCENTER_TEST_PG_URL not set (make test starts PostgreSQL and sets it)")
    else:
        url = PG_URL
        _reset_postgres(url)
    upgrade(url)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A Database over the fresh URL."""
    database = Database(db_url)
    yield database
    database.dispose()
