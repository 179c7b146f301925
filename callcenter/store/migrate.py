"""Apply the Alembic migrations (every entry point does this at start)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from callcenter.settings import PROJECT_ROOT


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, revision)
    if url.startswith("sqlite"):
        refresh_statistics(url)


def refresh_statistics(url: str) -> None:
    """Refresh SQLite's planner statistics (PostgreSQL's autovacuum does its own): without them SQLite picks
    indexes by guesswork, e.g. a status index for a year of answered calls. ``analysis_limit`` samples each
    index, so this takes milliseconds even on millions of rows; every start runs it."""
    from callcenter.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("PRAGMA analysis_limit=1000"))
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
