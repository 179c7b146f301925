"""A portable logical dump of the database: every table's rows as JSON lines, read in one snapshot, that loads
into SQLite or PostgreSQL alike (so a SQLite hotline moves to PostgreSQL by backup and restore).

Each value is written by its column's *kind* (``KINDS``), which the index records with the table: times as ISO
8601 in UTC, JSON columns as JSON, bytes as base64, the rest as JSON scalars. Loading builds the tables from those
kinds, not from the current models, so a backup of an older schema loads into that schema before it is upgraded.

The snapshot: PostgreSQL reads in one ``REPEATABLE READ READ ONLY`` transaction. SQLite (WAL) keeps one read
transaction's view until it ends, but Python's sqlite3 opens a transaction only before a write, so each SELECT
would see its own moment: the snapshot issues ``BEGIN`` itself. Writers (the listener) are never blocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from callcenter.ops.archive import BackupError, TableDump
from callcenter.store.types import UtcDateTime
from recordings.files import create_private

BATCH = 1000
KINDS: dict[str, Callable[[], TypeEngine[Any]]] = {  # kind -> the column type a restore loads it through
    "datetime": UtcDateTime, "json": JSON, "bool": Boolean, "int": BigInteger, "float": Float, "str": Text,
    "bytes": LargeBinary}
_CHECKS: list[tuple[type[TypeEngine[Any]], str]] = [  # order matters: Boolean before Integer, and so on
    (DateTime, "datetime"), (JSON, "json"), (Boolean, "bool"), (Integer, "int"), (Float, "float"),
    (String, "str"), (LargeBinary, "bytes")]


def kind_of(column: Column[Any]) -> str:
    """The kind a column's values are dumped as (from a model's type or a reflected one)."""
    sql_type: Any = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    for base, kind in _CHECKS:
        if isinstance(sql_type, base):
            return kind
    raise BackupError(f"{column.table.name}.{column.name}: no dump kind for type {column.type!r}")


def _encode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":  # naive only where a reflected SQLite column drops the zone: times are UTC
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    return value


def _decode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "bytes":
        return base64.b64decode(value)
    return value


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose every read sees the database at one moment (see the module's docstring)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as plain:
            connection = plain.execution_options(isolation_level="AUTOCOMMIT")  # we say BEGIN, not the driver
            connection.exec_driver_sql("BEGIN")
            try:
                yield connection
            finally:
                connection.exec_driver_sql("ROLLBACK")
        return
    with engine.connect() as plain:
        connection = plain.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            yield connection


def dump_table(connection: Connection, table: Table, folder: Path) -> TableDump:
    """Write every row of ``table`` (in primary-key order) to ``folder/<name>.jsonl``."""
    columns = [(column.name, kind_of(column)) for column in table.columns]
    digest, size, rows = hashlib.sha256(), 0, 0
    query = select(table).order_by(*table.primary_key.columns)
    with create_private(folder / f"{table.name}.jsonl") as out:
        for row in connection.execution_options(yield_per=BATCH).execute(query):
            line = json.dumps([_encode(kind, value) for (_, kind), value in zip(columns, row, strict=True)],
                              ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            out.write(line)
            digest.update(line)
            size += len(line)
            rows += 1
    return TableDump(name=table.name, columns=columns, rows=rows, bytes=size, sha256=digest.hexdigest())


def _rows(path: Path, dump: TableDump) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            values = json.loads(line)
            if len(values) != len(dump.columns):
                raise BackupError(f"{path}:{number}: {len(values)} values for {len(dump.columns)} columns")
            yield {name: _decode(kind, value) for (name, kind), value in zip(dump.columns, values, strict=True)}


def load_table(connection: Connection, dump: TableDump, folder: Path) -> int:
    """Insert the dumped rows into the existing table, in batches; return how many."""
    if any(kind not in KINDS for _, kind in dump.columns):
        raise BackupError(f"{dump.name}: unknown column kind in {dump.columns}")
    table = Table(dump.name, MetaData(), *(Column(name, KINDS[kind]()) for name, kind in dump.columns))
    rows, loaded = _rows(folder / f"{dump.name}.jsonl", dump), 0
    while batch := list(islice(rows, BATCH)):
        connection.execute(insert(table), batch)
        loaded += len(batch)
    if loaded != dump.rows:
        raise BackupError(f"{dump.name}: {loaded} rows in the file, the index says {dump.rows}")
    return loaded


def reset_sequences(connection: Connection, dump: TableDump) -> None:
    """PostgreSQL: move each serial column's sequence past the loaded ids (SQLite needs nothing: a new row takes
    the largest id + 1)."""
    if connection.dialect.name != "postgresql":
        return
    for name, kind in dump.columns:
        if kind != "int":
            continue
        sequence = connection.scalar(select(func.pg_get_serial_sequence(dump.name, name)))
        if sequence:
            highest = connection.scalar(text(f'SELECT max("{name}") FROM "{dump.name}"'))
            connection.execute(select(func.setval(sequence, highest or 1, highest is not None)))
