"""SQLAlchemy 2 models: the CEL journal, the call log and recordings. Times are UTC."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from callcenter.calls.record import CallRecord
from callcenter.model.contract import RecordingKind, RecordingStatus
from callcenter.store.columns import columns
from callcenter.store.types import UtcDateTime

MAX_ID = 2**63 - 1  # ids are BIGINT: anything larger is a client error, not a server one


class Base(DeclarativeBase):
    """Declarative base for every table."""


ENDS = "event = 'LINKEDID_END'"  # the journal's rows that end a call (the partial indexes' predicate)
STARTS = "event = 'CHAN_START'"  # the journal's rows that start a channel (a call starts with its first)


class CelJournal(Base):
    """Every CEL event the listener saw, once (dedupe by node + key), in arrival order. The key is unique per call
    (it hashes the linkedid too); led by the linkedid, the unique index keeps a call's rows together instead of
    scattering new rows over it (migration 0018), and serves the reads of a call's events. A call's end is
    indexed apart, by journal order and by call, in indexes of the ends alone (migration 0020): an index of every
    row by name cost each insert as much as the unique key, for the one row in seventeen it was read for. So are
    the channels' starts by time (migration 0022), what the sweep for calls Asterisk lost looks for; an index of
    every row by time cost each insert a sixth of its database time."""

    __tablename__ = "cel_journal"
    __table_args__ = (UniqueConstraint("node", "linkedid", "event_key", name="uq_cel_journal_node_call_key"),
                      Index("ix_cel_journal_node_end_id", "node", "id",
                            sqlite_where=text(ENDS), postgresql_where=text(ENDS)),
                      Index("ix_cel_journal_node_end_call", "node", "linkedid",
                            sqlite_where=text(ENDS), postgresql_where=text(ENDS)),
                      Index("ix_cel_journal_node_start_time", "node", "event_time",
                            sqlite_where=text(STARTS), postgresql_where=text(STARTS)))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(64))
    uniqueid: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(8))  # "ami" or "file"
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


calls = Table(
    "calls", Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("node", String(64), nullable=False),
    *columns(CallRecord),  # every built field, defined once in callcenter/calls/record.py
    Column("legal_hold", Boolean, nullable=False, default=False, server_default=false()),
    Column("built_at", UtcDateTime(), nullable=False),
    UniqueConstraint("node", "linkedid", name="uq_calls_node_linkedid"),
    # One index per history filter, in the page's order (newest first, id breaking ties): a page is read in index
    # order and stops after page_size rows (migration 0013; on PostgreSQL caller_number is collated "C").
    Index("ix_calls_started_id", "started_at", "id"),
    Index("ix_calls_number_started", "caller_number", "started_at", "id"),
    Index("ix_calls_line_started_id", "line", "started_at", "id"),
    Index("ix_calls_status_started_id", "status", "started_at", "id"),
    Index("ix_calls_operator_started_id", "operator", "started_at", "id"),
    Index("ix_calls_topic_started_id", "topic", "started_at", "id"),
    Index("ix_calls_line_status_started_id", "line", "status", "started_at", "id"),  # migration 0017
)
# Numbers compare byte by byte on PostgreSQL whatever the database's locale, so that the prefix search's range
# (queries.prefix_range) selects exactly what LIKE 'prefix%' would, from the index (SQLite compares bytes anyway).
calls.c.caller_number.type = String(64).with_variant(String(64, collation="C"), "postgresql")
CALL = calls.c  # typed column access for queries: CALL.status == "answered"

# The statistics summary (callcenter/store/summary.py keeps it; migration 0014). Wait times are counted in these
# buckets (seconds, each [edge, next edge), the last open): 5 s wide to a minute, then 10, 30, 60 s, then coarse.
WAIT_EDGES = (*range(0, 60, 5), *range(60, 120, 10), *range(120, 300, 30), *range(300, 600, 60), 600, 900, 1200,
              1800, 3600)
WAIT_BUCKETS = tuple(f"wait_{edge}" for edge in WAIT_EDGES)  # wait_55: waits of 55 s up to (not) 60 s
COUNTS = ("calls", "answered", "abandoned", "missed", "wait_n", "wait_ms", "talk_n", "talk_ms", *WAIT_BUCKETS)
call_stats = Table(
    "call_stats", Base.metadata,
    Column("grain", String(4), primary_key=True, doc="hour, day or mon (UTC month)"),
    Column("dimension", String(8), primary_key=True, doc="line (every call once), topic or operator"),
    Column("period", Integer, primary_key=True,
           doc="the first hour of the hour, UTC day or UTC month, in hours since 1970"),
    Column("line", String(32), primary_key=True),
    Column("member", String(64), primary_key=True, doc="the topic or operator ('' for the line dimension)"),
    *(Column(name, BigInteger if name.endswith("_ms") else Integer, nullable=False) for name in COUNTS),
    sqlite_with_rowid=False,  # stored in key order: a range of periods is read as one run of pages
)


class Call(Base):
    """One call-log row per (node, linkedid), upserted whenever the call is (re)built; its columns are the
    fields of :class:`~callcenter.calls.record.CallRecord` plus the store's own (id, node, legal hold, built_at)."""

    __table__ = calls

    recordings: Mapped[list[Recording]] = relationship(back_populates="call")

    if TYPE_CHECKING:  # the derived columns: attribute access is checked by the tests, not by mypy
        id: Mapped[int]
        node: Mapped[str]
        linkedid: Mapped[str]
        legal_hold: Mapped[bool]

        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...


class Recording(Base):
    """One recording of a call: a conversation (MixMonitor) or a voice message, and its stored compact copy.

    ``status``: pending -> stored; error (kept WAV, retried at ``next_attempt_at``); purged (file deleted by
    retention, row kept so the call log shows a recording existed).
    """

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("node", "source_path", name="uq_recordings_node_source"),
                      Index("ix_recordings_status_next", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True, index=True)
    node: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    uniqueid: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default=RecordingKind.CONVERSATION.value)
    source_path: Mapped[str] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=RecordingStatus.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str] = mapped_column(String(128), default="", server_default="")  # host:pid while processing
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    call: Mapped[Call | None] = relationship(back_populates="recordings")


class RecordingAccess(Base):
    """The audit log: every attempt to reach a recording's audio or metadata, allowed or refused."""

    __tablename__ = "recording_access"
    __table_args__ = (Index("ix_recording_access_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    recording_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    call_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # list, play, download
    allowed: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128), default="")  # the signed-in user's name (or "" if none)
    client: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class User(Base):
    """A person who signs in: name, role, the operator they are (for operators), and their preferences.

    ``session_epoch`` changes when the password changes or the user is disabled: every session issued before ends.
    """

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("name", name="uq_users_name"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    operator: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the model's operator id
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    password_hash: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="vi")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ApiToken(Base):
    """A token a user made for scripts (``Authorization: Bearer``); only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_api_tokens_hash"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(12))  # the first characters, to tell tokens apart in lists
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CallNote(Base):
    """After-call work: an operator's note on a call and, when the caller's topic was keyed wrong, the right one.
    Notes are only ever added (the latest topic correction counts); each is also written to the audit log."""

    __tablename__ = "call_notes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))  # the signed-in user's name
    operator: Mapped[str] = mapped_column(String(64), default="")  # their operator id (if an operator)
    text: Mapped[str] = mapped_column(Text, default="")
    topic: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a corrected topic code
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CallbackItem(Base):
    """A call-back worklist item's state: a call that asks to be returned (after-hours request, voice message,
    abandoned or missed call), who holds it now, and when and why it closed. Rows exist once somebody touched the
    item; an untouched open item is just its call."""

    __tablename__ = "callback_items"
    __table_args__ = (UniqueConstraint("call_id", name="uq_callback_items_call"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    claimed_by: Mapped[str] = mapped_column(String(64), default="")  # user name; "" when nobody holds it
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_reason: Mapped[str] = mapped_column(String(32), default="")  # reached, answered_since, dismissed
    closed_by: Mapped[str] = mapped_column(String(64), default="")


class CallbackAttempt(Base):
    """One click-to-call on a worklist item: the call the PBX placed (its linkedid, known before it starts) and
    how it went."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)  # the call being returned
    linkedid: Mapped[str] = mapped_column(String(64), index=True)  # the call-back's own call
    author: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    result: Mapped[str] = mapped_column(String(32), default="placed")  # placed, reached, not_reached, failed
    detail: Mapped[str] = mapped_column(Text, default="")


class Case(Base):
    """A citizen's report the hotline forwards to a department and tracks to a result (status flow in
    :mod:`callcenter.model.cases`). ``number`` is what the citizen is told and keys in."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("number", name="uq_cases_number"),
                      Index("ix_cases_status_due", "status", "due_at"),
                      Index("ix_cases_department_status", "department", "status"),
                      Index("ix_cases_created_at", "created_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    contact_name: Mapped[str] = mapped_column(String(128), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)  # departments may see the contact
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    forwarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)  # forwarded + target hours
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CaseCall(Base):
    """A call linked to a case (the call it was opened from, a citizen calling back, others reporting the same)."""

    __tablename__ = "case_calls"
    __table_args__ = (UniqueConstraint("case_id", "call_id", name="uq_case_calls"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    linked_by: Mapped[str] = mapped_column(String(64))


class CaseUpdate(Base):
    """Every change to a case, in order: opened, a status move, progress, reassignment, a linked call. Only ever
    added."""

    __tablename__ = "case_updates"
    __table_args__ = (Index("ix_case_updates_at", "at"),)  # the Open311 update feed asks by time range

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    author: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # opened, status, progress, reassign, link
    from_status: Mapped[str] = mapped_column(String(16), default="")
    to_status: Mapped[str] = mapped_column(String(16), default="")
    department: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """The outbox: one message to one department's address (e-mail or webhook) about one case, written in the
    same transaction as the change it announces. ``key`` names the occasion, so it is enqueued at most once;
    a worker claims a row (``lease_owner`` until ``lease_until``), sends it and marks it sent, or keeps it pending
    with the next attempt after a backoff, until it gives up (``failed``)."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("key", name="uq_notifications_key"),
                      Index("ix_notifications_due", "status", "next_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))  # <kind>/<case number>/<channel>/<occasion>
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # forwarded, overdue
    channel: Mapped[str] = mapped_column(String(16))  # email, webhook
    target: Mapped[str] = mapped_column(String(2000))  # the address or URL when enqueued
    department: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # JSON: what the message says (never the citizen's contact)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CaseAttachment(Base):
    """A file posted with a case update (progress, a result): kept by its content's digest, never deleted."""

    __tablename__ = "case_attachments"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("case_updates.id"))
    name: Mapped[str] = mapped_column(String(128))  # as the user's computer named it, cleaned: shown only
    content_type: Mapped[str] = mapped_column(String(64))  # from the file's first bytes
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(64))


class DeskIntent(Base):
    """What an operator last asked for at the desk (None: never asked: their queue membership or pause is the
    configuration's), which change that was (``version``, counting up), and the Asterisk nodes it missed because
    they were away when it was sent (see :mod:`callcenter.store.desk_intents`)."""

    __tablename__ = "desk_intents"

    operator: Mapped[str] = mapped_column(String(64), primary_key=True)
    logged_in: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    paused: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reason: Mapped[str] = mapped_column(String(32), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    missed: Mapped[list[str]] = mapped_column(JSON, default=list)  # node names
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
