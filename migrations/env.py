"""Alembic environment: runs migrations against the URL the callcenter settings (or the caller) give."""

from __future__ import annotations

from alembic import context

from callcenter.settings import Settings
from callcenter.store.db import make_engine
from callcenter.store import cursors  # noqa: F401  (its table belongs to the metadata autogenerate compares)
from callcenter.store.models import Base

config = context.config
url = config.attributes.get("url") or Settings().db.url


def run_migrations_offline() -> None:
    """Emit SQL without a connection (``alembic upgrade --sql``)."""
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations over a live connection."""
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
