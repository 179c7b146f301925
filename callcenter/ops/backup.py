"""``callcenter backup``: the database in one snapshot, then every file its rows point at, into a new folder.

Order matters: the dump and the list of files come from the same snapshot, so every recording or attachment row
in the dump has its file in the backup (or a problem saying why not), and no row is dangling. The files are copied
after the snapshot ends, so a long copy never holds a transaction open; a recording retention purges in between
is reported missing. Recordings the worker has not stored yet (WAVs in Asterisk's spool) are not in the backup.

Each file is hashed while it is copied and compared with the database's sha256 (recordings) or its name
(attachments, kept by content): a missing or different file is listed in the index's problems and the backup
still finishes, exiting non-zero so a cron job notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, Table, inspect, select

from callcenter.model.contract import RecordingStatus
from callcenter.ops.archive import (
    DATABASE,
    FILES,
    BackupError,
    FileEntry,
    Index,
    Progress,
    copy_digest,
    relative,
    write_index,
)
from callcenter.ops.dump import dump_table, snapshot
from callcenter.ops.schema import check_revision, head_revision
from callcenter.settings import Settings
from callcenter.store import cursors  # noqa: F401  (its table belongs to Base.metadata once imported)
from callcenter.store.db import make_engine
from callcenter.store.models import Base


@dataclass
class Wanted:
    """A file the snapshot's rows point at, with what the database says about it."""

    entry: FileEntry
    source: Path
    size: int | None  # expected, when the database knows
    sha256: str | None


def tables_of(connection: Connection, revision: str) -> tuple[list[Table], list[str]]:
    """The tables to dump, parents first, and problems: the models' tables at the code's head revision (a table
    the models do not know is reported, not dumped); at an older revision, the tables as they are."""
    present = set(inspect(connection).get_table_names()) - {"alembic_version"}
    if revision != head_revision():
        reflected = MetaData()
        reflected.reflect(connection, only=sorted(present))
        return list(reflected.sorted_tables), []
    strays = sorted(present - set(Base.metadata.tables))
    return list(Base.metadata.sorted_tables), [f"table {name}: not part of callcenter's schema, not backed up"
                                               for name in strays]


def _recordings(connection: Connection, tables: dict[str, Table], settings: Settings) -> list[Wanted]:
    table = tables["recordings"]
    query = select(table.c.id, table.c.path, table.c.size_bytes, table.c.sha256).where(
        table.c.status == RecordingStatus.STORED.value, table.c.path.is_not(None)).order_by(table.c.id)
    return [Wanted(FileEntry(kind="recordings", path=str(relative(path)), rows=[row_id]),
                   settings.recordings.store / relative(path), size, sha256)
            for row_id, path, size, sha256 in connection.execute(query)]


def _attachments(connection: Connection, tables: dict[str, Table], settings: Settings) -> list[Wanted]:
    if "case_attachments" not in tables:  # a schema from before attachments
        return []
    table = tables["case_attachments"]
    by_digest: dict[str, list[int]] = {}
    for row_id, digest in connection.execute(select(table.c.id, table.c.sha256).order_by(table.c.id)):
        by_digest.setdefault(digest, []).append(row_id)
    return [Wanted(FileEntry(kind="attachments", path=f"{digest[:2]}/{digest}", rows=ids),
                   settings.cases.attachments / relative(f"{digest[:2]}/{digest}"), None, digest)
            for digest, ids in sorted(by_digest.items())]


def _copy(wanted: Wanted, folder: Path) -> FileEntry:
    """Copy one file into the backup; the entry says what was copied and what is wrong with it."""
    entry = wanted.entry
    root = folder / FILES / entry.kind
    try:
        entry.size, entry.sha256 = copy_digest(wanted.source, root / entry.path, root)
    except FileNotFoundError:
        entry.problem = "missing from the store"
        return entry
    if wanted.sha256 and entry.sha256 != wanted.sha256:
        entry.problem = f"sha256 {entry.sha256} differs from the database's {wanted.sha256} (copied as found)"
    elif wanted.size is not None and entry.size != wanted.size:
        entry.problem = f"{entry.size} bytes, the database says {wanted.size} (copied as found)"
    return entry


def _prepare(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target}: exists and is not an empty folder; a backup goes into a new one")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    (target / DATABASE).mkdir(mode=0o700)


def backup(settings: Settings, target: Path, progress: Progress | None = None) -> Index:
    """Back up the database at ``settings.db.url`` and its files into the new folder ``target``; the index
    lists any problem found (the caller decides the exit status)."""
    _prepare(target)
    engine = make_engine(settings.db.url, settings.db.connect_timeout)
    try:
        with snapshot(engine) as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            check_revision(revision, "the database")
            assert revision is not None
            tables, problems = tables_of(connection, revision)
            dumps = [dump_table(connection, table, target / DATABASE) for table in tables]
            named = {table.name: table for table in tables}
            wanted = _recordings(connection, named, settings) + _attachments(connection, named, settings)
            source = connection.dialect.name
    finally:
        engine.dispose()
    progress = progress or Progress("backup", len(wanted), sum(w.size or 0 for w in wanted))
    entries = []
    for item in wanted:
        entries.append(_copy(item, target))
        progress.advance(entries[-1].size or 0)
    problems += [f"{e.kind}/{e.path} (rows {e.rows}): {e.problem}" for e in entries if e.problem]
    index = Index(created_at=datetime.now(UTC).isoformat(), revision=revision, source=source, tables=dumps,
                  files=entries, problems=problems)
    write_index(target, index)
    return index
