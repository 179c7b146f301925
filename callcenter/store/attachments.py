"""Files posted with a case's progress or result (photos of the site, a scanned decision): checked, kept by
content, listed with their update, never deleted.

A file is accepted by what its first bytes say it is (JPEG, PNG, WebP or PDF), never by its name or the type the
browser claims; within the size and count limits (settings ``cases``). It is stored once per content at
``<store>/<sha256[:2]>/<sha256>`` (written to a temporary name, then renamed), so a name can never reach the
filesystem; the name the user gave is kept, cleaned, only to show and to offer on download.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath

import filetype
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.settings import CasesSettings
from callcenter.store.models import Case, CaseAttachment, CaseUpdate

ALLOWED = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf"}


class AttachmentError(ValueError):
    """A file refused (type, size, count); the message says why."""


@dataclass(frozen=True)
class Upload:
    """A file as posted: the name the user's computer gave it and its bytes."""

    name: str
    data: bytes


def clean_name(name: str, kind: str = "") -> str:
    """The file's own name without folders, control characters or anything odd; a sensible one if none is left."""
    base = PurePath(name.replace("\\", "/")).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] not in "CZ" or c == " ")
    base = base.strip(" .")[:120]
    return base or (f"attachment.{ALLOWED[kind]}" if kind in ALLOWED else "the file")


def check(uploads: list[Upload], limits: CasesSettings) -> list[tuple[Upload, str]]:
    """Each upload with its real type; refuses the whole lot if any one is wrong (nothing is then stored)."""
    uploads = [u for u in uploads if u.data or u.name]  # an empty file input posts one nameless empty part
    if len(uploads) > limits.attachments_per_update:
        raise AttachmentError(f"at most {limits.attachments_per_update} files at a time")
    checked = []
    for upload in uploads:
        if not upload.data:
            raise AttachmentError(f"{clean_name(upload.name)}: the file is empty")
        if len(upload.data) > limits.attachment_max_bytes:
            raise AttachmentError(f"{clean_name(upload.name)}: larger than "
                                  f"{limits.attachment_max_bytes / (1024 * 1024):g} MiB")
        kind = filetype.guess_mime(upload.data[:8192])
        if kind not in ALLOWED:
            raise AttachmentError(f"{clean_name(upload.name)}: not a JPEG, PNG, WebP photo or "
                                  "a PDF document")
        checked.append((upload, kind))
    return checked


def _keep(data: bytes, digest: str, store: Path) -> None:
    target = store / digest[:2] / digest
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_name(f".{digest}.{os.getpid()}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def attach(session: Session, limits: CasesSettings, case: Case, update: CaseUpdate, author: str,
           checked: list[tuple[Upload, str]]) -> list[CaseAttachment]:
    """Store checked files and list them with ``update`` (a file already kept is not written again)."""
    session.flush()  # the update's id
    added = []
    for upload, kind in checked:
        digest = hashlib.sha256(upload.data).hexdigest()
        _keep(upload.data, digest, limits.attachments)
        row = CaseAttachment(case_id=case.id, update_id=update.id, name=clean_name(upload.name, kind),
                             content_type=kind, size=len(upload.data), sha256=digest,
                             uploaded_at=datetime.now(UTC), uploaded_by=author)
        session.add(row)
        added.append(row)
    session.flush()
    return added


def of_case(session: Session, case_id: int) -> dict[int, list[CaseAttachment]]:
    """A case's files by the update they came with."""
    found: dict[int, list[CaseAttachment]] = {}
    for row in session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case_id)
                               .order_by(CaseAttachment.id)):
        found.setdefault(row.update_id, []).append(row)
    return found


def path_of(limits: CasesSettings, row: CaseAttachment) -> Path:
    """Where a file's bytes are (named by their digest only)."""
    return limits.attachments / row.sha256[:2] / row.sha256
