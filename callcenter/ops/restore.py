"""``callcenter restore``: a backup into an empty database and empty stores, checked before, during and after.

Before anything is written: the backup's index is read, its schema must be one this code knows (a newer one is
refused), every table file must have the digest the index gives, the target database must hold no rows (a blank
database, or one migrated to the backup's own revision) and both stores no file. Then the files are copied, each
hashed while it is copied against the index (a damaged one stops the restore and every file copied so far is
removed), then the rows are loaded in one transaction (so a failure leaves no row), then an older schema is
upgraded to this code's. Last, every table's row count and every stored recording's and attachment's file
(present, with the database's sha256) are checked and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, func, select, table

from callcenter.model.contract import RecordingStatus
from callcenter.ops.archive import (
    DATABASE,
    FILES,
    BackupError,
    Index,
    Progress,
    copy_digest,
    digest_of,
    read_index,
    relative,
)
from callcenter.ops.dump import load_table, reset_sequences
from callcenter.ops.schema import TargetState, check_revision, head_revision, target_state
from callcenter.settings import Settings
from callcenter.store.db import make_engine
from callcenter.store.migrate import upgrade
from callcenter.store.models import CaseAttachment, Recording
from recordings.files import publish
from recordings.spool import inside


@dataclass
class Restored:
    """What a restore (or a check) found: rows per table, files and bytes, and every problem."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def _roots(settings: Settings) -> dict[str, Path]:
    return {"recordings": settings.recordings.store, "attachments": settings.cases.attachments}


def _damage(folder: Path, name: str, size: int | None, sha256: str | None) -> list[str]:
    path = folder / relative(name)
    found = digest_of(path) if path.is_file() else None
    return [] if found == (size, sha256) else [f"{name}: " + ("missing" if found is None else "damaged (sha256)")]


def verify(folder: Path, index: Index, files: bool = True, progress: Progress | None = None) -> list[str]:
    """Every table file (and, with ``files``, every stored file) against the index: what is missing or differs."""
    problems = []
    for dump in index.tables:
        problems += _damage(folder, f"{DATABASE}/{dump.name}.jsonl", dump.bytes, dump.sha256)
    for entry in index.files if files else []:
        if entry.sha256 is None:
            continue  # not in the backup; its problem is in the index
        problems += _damage(folder, f"{FILES}/{entry.kind}/{entry.path}", entry.size, entry.sha256)
        if progress:
            progress.advance(entry.size or 0)
    return problems


def check_target(engine: Engine, settings: Settings, index: Index) -> TargetState:
    """Refuse (changing nothing) a database with rows or another schema, and stores that hold any file."""
    state = target_state(engine)
    if state.filled:
        raise BackupError(f"the database is not empty ({', '.join(state.filled)} hold rows): a restore goes only into "
                          "an empty database; nothing was changed")
    if state.tables and state.revision != index.revision:
        raise BackupError(f"the database has a schema at revision {state.revision}, the backup is at "
                          f"{index.revision}: restore into a blank database (the restore creates the schema); "
                          "nothing was changed")
    for kind, root in _roots(settings).items():
        if root.exists() and any(not path.is_dir() for path in root.rglob("*")):
            raise BackupError(f"the {kind} folder {root} is not empty: a restore goes only into empty folders; "
                              "nothing was changed")
    return state


class _Files:
    """Copies the backup's files into the stores; ``undo`` removes every file and folder it made."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots
        self.made: list[Path] = []
        self.folders = {root: {p for p in root.rglob("*")} | {root} if root.exists() else set()
                        for root in roots.values()}

    def copy(self, folder: Path, index: Index, progress: Progress) -> None:
        for entry in index.files:
            if entry.sha256 is None:
                continue
            root, path = self.roots[entry.kind], relative(entry.path)
            target = root / path
            partial = target.with_name(f".{target.name}.part")
            self.made.append(partial)
            size, digest = copy_digest(folder / FILES / entry.kind / path, partial, root)
            if (size, digest) != (entry.size, entry.sha256):
                raise BackupError(f"{FILES}/{entry.kind}/{entry.path} in the backup is damaged (sha256 {digest}, "
                                  f"the index says {entry.sha256}): nothing was restored")
            publish(partial, target)
            self.made.append(target)
            progress.advance(size)

    def undo(self) -> None:
        for path in self.made:
            path.unlink(missing_ok=True)
        for root, before in self.folders.items():
            made = [p for p in root.rglob("*") if p not in before] + ([] if before else [root])
            for folder in sorted((p for p in made if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                folder.rmdir()


def _load(engine: Engine, url: str, folder: Path, index: Index, state: TargetState) -> None:
    if not state.tables:
        upgrade(url, index.revision)
    with engine.begin() as connection:
        for dump in index.tables:
            load_table(connection, dump, folder / DATABASE)
        for dump in index.tables:
            reset_sequences(connection, dump)


def restore(settings: Settings, folder: Path, progress: Progress | None = None) -> Restored:
    """Restore the backup in ``folder`` into ``settings.db.url`` and the configured stores; return the check."""
    index = read_index(folder)
    check_revision(index.revision, "the backup")
    damaged = verify(folder, index, files=False)
    if damaged:
        raise BackupError("the backup is damaged: " + "; ".join(damaged) + "; nothing was changed")
    url = settings.db.url
    engine = make_engine(url, settings.db.connect_timeout)
    try:
        state = check_target(engine, settings, index)
        files = _Files(_roots(settings))
        kept = [e for e in index.files if e.sha256 is not None]
        try:
            files.copy(folder, index, progress or Progress("restore", len(kept), sum(e.size or 0 for e in kept)))
            _load(engine, url, folder, index, state)
        except BaseException:
            files.undo()
            raise
    finally:
        engine.dispose()
    if index.revision != head_revision():
        upgrade(url)
    return check(settings, index)


def check(settings: Settings, index: Index) -> Restored:
    """After a restore: each table's row count against the backup, each stored recording's and attachment's
    file against the database's digest."""
    found = Restored()
    engine = make_engine(settings.db.url, settings.db.connect_timeout)
    try:
        with engine.connect() as connection:
            for dump in index.tables:
                found.rows[dump.name] = connection.scalar(select(func.count()).select_from(table(dump.name))) or 0
                if found.rows[dump.name] != dump.rows:
                    found.problems.append(f"{dump.name}: {found.rows[dump.name]} rows, the backup has {dump.rows}")
            stored = connection.execute(select(Recording.id, Recording.path, Recording.sha256).where(
                Recording.status == RecordingStatus.STORED.value, Recording.path.is_not(None)))
            wanted = [(f"recording {row_id}", settings.recordings.store, path, digest)
                      for row_id, path, digest in stored]
            digests = connection.scalars(select(CaseAttachment.sha256).distinct())
            wanted += [(f"attachment {digest}", settings.cases.attachments, f"{digest[:2]}/{digest}", digest)
                       for digest in digests]
    finally:
        engine.dispose()
    for what, root, path, digest in wanted:
        _check_file(found, what, inside(root, path or ""), digest)
    return found


def _check_file(found: Restored, what: str, path: Path | None, digest: str | None) -> None:
    if path is None or not path.is_file():
        found.problems.append(f"{what}: file missing ({path})")
        return
    size, actual = digest_of(path)
    found.files += 1
    found.bytes += size
    if digest and actual != digest:
        found.problems.append(f"{what}: {path} has sha256 {actual}, the database says {digest}")
