"""How far the listener has read Asterisk's CEL file, kept in the database beside the journal it fed.

The position is saved in the same transaction as the events read up to it, so the cursor never runs ahead of the
journal (a failed chunk is read again) and a restart resumes where the last committed chunk ended. It lives with
the journal for the same reason: a database restored from a backup rewinds both together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callcenter.store.db import insert_for
from callcenter.store.models import Base
from callcenter.store.types import UtcDateTime


@dataclass(frozen=True)
class FilePosition:
    """A point in one generation of the CEL file: the file is recognised by ``fingerprint`` (sha256 of its first
    line), so a copytruncate or a rename rotation shows as another file even where size or inode cannot tell."""

    path: str  # where the file was when read (informative: a rotated file is found again by fingerprint)
    inode: int
    offset: int  # bytes read, always at a line end
    line: int  # lines read, for messages
    fingerprint: str
    ordinals: list[list[Any]] = field(default_factory=list)  # recent ordinal counts (see Ordinals.recent)


class CelFileCursor(Base):
    """One row per node: where its CEL file was last read up to (a committed chunk's end)."""

    __tablename__ = "cel_file_cursors"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[str] = mapped_column(String(64))
    ordinals: Mapped[list[list[Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


FIELDS = ("path", "inode", "offset", "line", "fingerprint", "ordinals")


def load(session: Session, node: str) -> FilePosition | None:
    """The node's saved position, or None when its CEL file was never read into this database."""
    row = session.scalar(select(CelFileCursor).where(CelFileCursor.node == node))
    return None if row is None else FilePosition(**{name: getattr(row, name) for name in FIELDS})


def save(session: Session, node: str, position: FilePosition) -> None:
    """Record the position (insert or replace), in the caller's transaction."""
    values = {name: getattr(position, name) for name in FIELDS} | {"updated_at": datetime.now(UTC)}
    statement = insert_for(session, CelFileCursor).values(node=node, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["node"], set_=values))
