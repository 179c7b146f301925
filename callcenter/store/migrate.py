"""Apply the Alembic migrations (every entry point does this at start)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from callcenter.settings import PROJECT_ROOT


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, revision)
