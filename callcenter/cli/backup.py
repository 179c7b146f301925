"""``callcenter backup TARGET`` and ``callcenter restore [--verify-only] BACKUP``: the composition roots of
callcenter/ops (what they print, their exit statuses)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings

BACKUP_HELP = """\
Back up the call log database and every file its rows point at into TARGET, a new (or empty) folder:
  backup.json            written last (its presence means the backup finished): the schema revision, each
                         table's row count and sha256, every file with its size, sha256 and database rows,
                         and any problem found
  database/<table>.jsonl every row of every table (calls, CEL journal, recordings, audit log, users with their
                         password hashes, API tokens (hashed), notes, call-backs, cases, notifications, ...),
                         read in one consistent snapshot while the hotline keeps running
  files/recordings/...   each stored recording, as in CALLCENTER_RECORDINGS__STORE
  files/attachments/...  each case attachment, as in CALLCENTER_CASES__ATTACHMENTS
The dump is portable: a SQLite backup restores into PostgreSQL and back. Each file is hashed while it is copied
and compared with the database's sha256. Exit status: 0 done; 1 done, but files were missing or differed from
the database (listed); 2 refused (TARGET not empty, unknown schema), nothing written. Keep backups private:
they hold recordings, citizens' numbers and password hashes (everything is written 0600/0700)."""

RESTORE_HELP = """\
Restore a backup made by `callcenter backup` into an EMPTY database (--db or CALLCENTER_DB__URL: a blank
database, or one migrated to the backup's revision with no rows) and EMPTY recordings and attachments folders
(CALLCENTER_RECORDINGS__STORE, CALLCENTER_CASES__ATTACHMENTS). Anything else is refused and nothing is changed.
The table files are checked first; each file is checked against its sha256 while it is copied (a damaged one
stops the restore and removes what was copied); the rows load in one transaction; a backup of an older schema is
upgraded afterwards, one of a newer schema is refused. At the end every table's row count and every stored
recording's and attachment's file are checked and reported. Exit status: 0 restored and intact; 1 restored,
but the check found problems (listed: e.g. files already missing when the backup was made); 2 refused or
failed, nothing restored. --verify-only checks every file of the backup and restores nothing (exit 1 if
anything is damaged, missing or was already missing at backup time)."""


def _problems(problems: list[str], heading: str) -> None:
    if problems:
        print(f"{heading} ({len(problems)}):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)


def cmd_backup(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Back up the database (one consistent snapshot) and the recordings and attachments, with a manifest."""
    from callcenter.ops.archive import BackupError
    from callcenter.ops.backup import backup

    try:
        index = backup(settings, args.target)
    except BackupError as error:
        print(f"callcenter backup: {error}", file=sys.stderr)
        return 2
    rows = sum(table.rows for table in index.tables)
    size = sum(entry.size or 0 for entry in index.files)
    print(f"backup of {make_url(settings.db.url).render_as_string(hide_password=True)} (schema {index.revision}) "
          f"in {args.target}: {rows} rows in {len(index.tables)} tables, {len(index.files)} files, "
          f"{size / 1e6:.1f} MB")
    _problems(index.problems, "PROBLEMS (the backup finished; these are listed in backup.json)")
    return 1 if index.problems else 0


def _verify_only(folder: Path) -> int:
    from callcenter.ops.archive import Progress, read_index
    from callcenter.ops.restore import verify

    index = read_index(folder)
    kept = [e for e in index.files if e.sha256 is not None]
    damaged = verify(folder, index, progress=Progress("verify", len(kept), sum(e.size or 0 for e in kept)))
    print(f"backup {folder} (schema {index.revision}, from {index.source}, {index.created_at}): "
          f"{sum(t.rows for t in index.tables)} rows, {len(index.files)} files: "
          + ("DAMAGED" if damaged else "every file as its manifest says"))
    _problems(damaged, "damaged or missing in the backup")
    _problems(index.problems, "problems already found when the backup was made")
    return 1 if damaged or index.problems else 0


def cmd_restore(args: argparse.Namespace, settings: Settings, model: HotlineModel) -> int:
    """Restore a backup into an empty database and empty stores, verifying every file (or only verify it)."""
    from callcenter.ops.archive import BackupError
    from callcenter.ops.restore import restore

    try:
        if args.verify_only:
            return _verify_only(args.backup)
        restored = restore(settings, args.backup)
    except BackupError as error:
        print(f"callcenter restore: {error}", file=sys.stderr)
        return 2
    print(f"restored {args.backup} into {make_url(settings.db.url).render_as_string(hide_password=True)}: "
          f"{sum(restored.rows.values())} rows in {len(restored.rows)} tables "
          f"({restored.rows.get('calls', 0)} calls, {restored.rows.get('recordings', 0)} recordings), "
          f"{restored.files} files checked ({restored.bytes / 1e6:.1f} MB)")
    _problems(restored.problems, "PROBLEMS found by the check after the restore")
    return 1 if restored.problems else 0


def add_commands(sub: Any) -> None:
    """Register ``backup`` and ``restore``."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = sub.add_parser("backup", help=cmd_backup.__doc__, description=BACKUP_HELP, formatter_class=formatter)
    parser.add_argument("target", type=Path, metavar="TARGET", help="a new or empty folder for the backup")
    parser.set_defaults(handler=cmd_backup)
    parser = sub.add_parser("restore", help=cmd_restore.__doc__, description=RESTORE_HELP, formatter_class=formatter)
    parser.add_argument("backup", type=Path, metavar="BACKUP", help="a folder written by `callcenter backup`")
    parser.add_argument("--verify-only", action="store_true",
                        help="check every file of the backup against its manifest; restore nothing")
    parser.set_defaults(handler=cmd_restore)
