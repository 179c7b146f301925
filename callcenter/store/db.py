"""Engine and session factory; SQLite gets WAL, synced commits, a busy timeout and a private file (0600, and 0700
for a folder it needs); PostgreSQL gets a connect timeout. (Who creates which file with which mode:
recordings/files.py.)"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, any_, bindparam, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from callcenter.settings import DbSettings
from callcenter.store import jsoncodec

R = TypeVar("R")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the API) never block the listener's writes
    # FULL: a commit is on disk when it returns (NORMAL may lose the last commits on power loss), so a recording
    # marked stored stays stored once its WAV is deleted; WAL keeps the cost to one sync per commit.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_file(path: Path) -> None:
    """Create a missing SQLite file 0600 (its folder 0700) before SQLite would make it world-readable under the usual
    umask; SQLite gives its -wal and -shm files the same mode. An existing file keeps the mode it has."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # O_EXCL: an existing file needs no write access from us here
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))  # empty = a new database


CONNECT_TIMEOUT: int = DbSettings.model_fields["connect_timeout"].default  # seconds
PREPARE_ONLY_EXECUTEMANY = sys.maxsize  # psycopg's prepare_threshold: see make_engine
JSON_CODEC = {"json_serializer": jsoncodec.dumps, "json_deserializer": jsoncodec.loads}  # the journal's payloads


def make_engine(url: str, connect_timeout: int = CONNECT_TIMEOUT) -> Engine:
    """Create the engine for a database URL (``sqlite:///path`` or ``postgresql+psycopg://...``).

    PostgreSQL waits at most ``connect_timeout`` seconds for a connection (libpq's minimum is 2): without it a
    server that accepts but never answers hangs the caller's thread forever."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            _private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False}, **JSON_CODEC)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # No server-side prepared statements for a statement run once: psycopg would prepare one on its fifth run, and
    # PostgreSQL then plans it once for any parameters (a generic plan): the history queries, whose best plan
    # depends on the filter's values (a rare status, a busy number, 30 days or a year), went to the start-time
    # index every time. But an executemany (the calls' and the summary's upserts, one statement per row) asks
    # psycopg to prepare what it repeats, which a threshold of None refuses: PostgreSQL then parsed and planned
    # the upsert again for every call (three to four times its wall time prepared, in bench.ingest).
    # A threshold no count reaches prepares exactly those.
    return create_engine(url, pool_pre_ping=True, connect_args={
        "connect_timeout": connect_timeout, "prepare_threshold": PREPARE_ONLY_EXECUTEMANY}, **JSON_CODEC)


class Database:
    """The one place sessions come from: ``with db.session() as s: ...`` commits or rolls back."""

    def __init__(self, url: str, connect_timeout: int = CONNECT_TIMEOUT) -> None:
        self.url = url
        self.engine = make_engine(url, connect_timeout)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def run(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``function(session, *args, **kwargs)`` in a session of its own (for ``asyncio.to_thread``)."""
        with self.session() as session:
            return function(session, *args, **kwargs)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def insert_for(session: Session, table: Any) -> Any:
    """An INSERT for ``table`` in the session's dialect, with ``on_conflict_do_*`` (SQLite and PostgreSQL)."""
    return insert_in(session.get_bind().dialect.name, table)


def insert_in(dialect: str, table: Any) -> Any:
    """An INSERT for ``table`` in the named dialect (``postgresql`` or ``sqlite``), with ``on_conflict_do_*``."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def insert_rows(session: Session, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute an INSERT built once and kept (``statement``) for every row (mappings with the same keys). On SQLite
    the rows go to the driver as tuples, each value converted by its column's own type and a missing column given
    its default, as SQLAlchemy's executemany does (the SQL is the one it would send): its per-row work cost the
    listener more than the driver's (14 us a call of the calls upsert, three times the driver's work); and they go
    as few multi-row INSERTs (see :func:`execute_rows`). On PostgreSQL through SQLAlchemy, which chooses how its
    driver takes the rows. Rows with the same conflict key: the last one wins on SQLite; do not give them."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite" or not rows:
        session.execute(statement, rows)
        return
    sql, parameters = _for_driver(statement, dialect, tuple(rows[0]))
    execute_rows(session.connection(), sql, [parameters(row) for row in rows])


BOUND_VALUES = 30_000  # values bound to one SQLite statement (it takes 32,766)


def execute_rows(connection: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """SQLite: run a one-row INSERT of placeholders (``sql``) for every row (tuples of its values), as a few
    INSERTs of many rows each (``VALUES (...), (...), ...``), in the rows' order; how many rows they inserted.

    The driver's executemany steps through the statement once per row, and lets go of the interpreter lock at
    every step: with the AMI reader busy in the same process, getting it back took a switch interval (5 ms) each
    time, so the store wrote next to nothing until the reader was idle (bench/ingest.py: 2% of a 276,000-event
    stream while it was read). A multi-row INSERT is one step: SQLite's work runs beside the reader instead."""
    if not rows:
        return 0
    per = max(1, BOUND_VALUES // max(1, len(rows[0])))
    inserted = start = 0
    while start < len(rows):
        # Full parts, then what is left in parts of powers of two: a statement of a few sizes only, not one of every
        # size a batch may end with (the driver keeps 128 prepared statements; one of 3,750 rows is ~1 MB).
        left = len(rows) - start
        count = per if left >= per else 1 << (left.bit_length() - 1)
        part = rows[start:start + count]
        inserted += connection.exec_driver_sql(_many_rows(sql, count), tuple(chain.from_iterable(part)),
                                               execution_options={"preserve_rowcount": True}).rowcount
        start += count
    return inserted


@lru_cache(maxsize=64)  # a full part and the powers of two below it, for each statement
def _many_rows(sql: str, count: int) -> str:
    """The one-row INSERT ``sql`` (``... VALUES (?, ?, ...) ...``) for ``count`` rows."""
    head, values, rest = sql.partition(" VALUES (")
    group, close, tail = rest.partition(")")
    if not values or not close or set(group) - set("?, "):
        raise ValueError(f"not a one-row INSERT of placeholders: {sql[:120]!r}")
    return f"{head} VALUES {', '.join([f'({group})'] * count)}{tail}"


@cache
def _for_driver(statement: Any, dialect: Dialect,
                keys: tuple[str, ...]) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
    """``statement``'s SQL for rows with ``keys``, and what turns such a row into the driver's parameters."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = compiled.positiontup or []
    columns = statement.table.c
    defaults = {name: _fixed_default(columns[name]) for name in names if name not in keys}
    values = itemgetter(*names)
    processors = [(at, process) for at, name in enumerate(names)
                  if (process := columns[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None]

    def parameters(row: Mapping[str, Any]) -> tuple[Any, ...]:
        found = list(values({**defaults, **row} if defaults else row))
        for at, process in processors:
            found[at] = process(found[at])
        return tuple(found)
    return str(compiled), parameters


def _fixed_default(column: Any) -> Any:
    """A column's fixed default (one computed per row is SQLAlchemy's to apply: not taken here)."""
    if not isinstance(column.default, ScalarElementColumnDefault):
        raise TypeError(f"{column}: rows for the driver take fixed column defaults only, not {column.default!r}")
    return column.default.arg


T = TypeVar("T")
IN_LIST = 500  # values per IN list: SQLite caps the bound parameters of one statement


def in_slices(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most IN_LIST, one IN list (one statement) each."""
    for start in range(0, len(values), IN_LIST):
        yield values[start:start + IN_LIST]


def among(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``, as each database takes a long list best: on PostgreSQL one array parameter
    (``= ANY(...)``; psycopg turns every placeholder of a query into ``$n`` in Python, which costs more than the
    query for a list of thousands), on SQLite an IN list (keep it within SQLite's cap on bound parameters)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)
