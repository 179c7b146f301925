"""Which schema revisions this code knows, and what a restore target's database holds (Alembic's view)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, literal_column, select, table

from callcenter.ops.archive import BackupError
from callcenter.settings import PROJECT_ROOT


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))


def head_revision() -> str:
    """The newest schema revision this code migrates to."""
    head = _script().get_current_head()
    assert head is not None
    return head


def check_revision(revision: str | None, what: str) -> None:
    """Refuse a schema this code cannot read: none at all, or a newer one (a later callcenter's)."""
    if revision is None:
        raise BackupError(f"{what} has no callcenter schema (no Alembic revision)")
    if revision not in {script.revision for script in _script().walk_revisions()}:
        raise BackupError(f"{what} is at schema revision {revision}, which this callcenter does not know (newer "
                          f"than its {head_revision()}): use the callcenter version that wrote it")


@dataclass
class TargetState:
    """A restore target's database: its revision (None when it has no schema) and the tables that hold rows."""

    revision: str | None
    tables: list[str]
    filled: list[str]


def target_state(engine: Engine) -> TargetState:
    """Look at a database without changing it."""
    with engine.connect() as connection:
        names = sorted(set(inspect(connection).get_table_names()) - {"alembic_version"})
        revision = MigrationContext.configure(connection).get_current_revision()
        filled = [name for name in names
                  if connection.scalar(select(literal_column("1")).select_from(table(name)).limit(1)) is not None]
    return TargetState(revision, names, filled)
