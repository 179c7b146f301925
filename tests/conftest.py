"""Shared fixtures: a fresh, migrated database on SQLite and on PostgreSQL for every test that asks for one (a copy
of one migrated once per run)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import make_url, text

from callcenter.store import accounts
from callcenter.store.db import Database, make_engine
from callcenter.store.migrate import upgrade

PG_URL = os.environ.get("CALLCENTER_TEST_PG_URL", "")


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes() -> Iterator[None]:
    """Argon2id at its lightest for the passwords the tests set (1 ms a hash, where the production parameters
    cost 0.1 s by design, and as much each check: the users most tests add took minutes over the suite). A hash
    carries its parameters, so the apps under test, in this process or their own, check these at that cost; how
    accounts hash and check (Argon2id through pwdlib) is unchanged, and so is the cost of the real parameters for
    what the tests' processes hash themselves (``callcenter users add``)."""
    production = accounts.HASHER
    accounts.HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    yield
    accounts.HASHER = production


TEMPLATE_SUFFIX = "_template"


def fresh_postgres(name: str, template: str = "") -> str:
    """An empty database ``name`` on the test cluster, or a copy of ``template``, dropped first if it exists (its
    connections ended); its URL. Run from the cluster's maintenance database: a database cannot drop itself."""
    admin = make_engine(make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Migrated empty databases made once per run, copied for each test (migrating took 0.1-0.15 s a test, about
    a minute over the suite; a copy takes milliseconds): a SQLite file, and, with a PostgreSQL URL, a database
    beside the test database named with ``_template``. Built lazily, by the first test that wants one."""
    return {}


def sqlite_copy(templates: dict[str, str], factory: pytest.TempPathFactory, path: Path) -> None:
    """A copy of the migrated SQLite template at ``path``."""
    if "sqlite" not in templates:
        template = factory.mktemp("template-db") / "callcenter.db"
        upgrade(f"sqlite:///{template}")  # its engine disposed: the WAL is checkpointed into the file and gone
        assert not template.with_name(template.name + "-wal").exists(), "the template's WAL outlived its engine"
        templates["sqlite"] = str(template)
    shutil.copyfile(templates["sqlite"], path)


def _postgres_copy(templates: dict[str, str]) -> None:
    """The test database afresh, a copy of the migrated template (connections a test left behind are ended)."""
    name = make_url(PG_URL).database or ""
    if "postgresql" not in templates:
        upgrade(fresh_postgres(name + TEMPLATE_SUFFIX))
        templates["postgresql"] = name + TEMPLATE_SUFFIX
    fresh_postgres(name, templates["postgresql"])


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
           migrated_templates: dict[str, str]) -> str:
    """A migrated, empty database URL; PostgreSQL needs CALLCENTER_TEST_PG_URL (``make test`` sets it)."""
    if request.param == "sqlite":
        path = tmp_path / "callcenter.db"
        sqlite_copy(migrated_templates, tmp_path_factory, path)
        return f"sqlite:///{path}"
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CALLCENTER_TEST_PG_URL is not set: run the tests with `make test`")
        pytest.skip("CALLCENTER_TEST_PG_URL not set (make test starts PostgreSQL and sets it)")
    _postgres_copy(migrated_templates)
    return PG_URL


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A Database over the fresh URL."""
    database = Database(db_url)
    yield database
    database.dispose()
