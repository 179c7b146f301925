"""Read side of the call log: filtered, paginated lists and one call with its event timeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Select, Text, cast, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from callcenter.model.contract import Status
from callcenter.store.models import CALL, Call, CelJournal


@dataclass(frozen=True)
class CallFilter:
    """What a history search may narrow by; every field is optional but the date range."""

    start: datetime
    end: datetime
    line: str | None = None
    status: str | None = None
    operator: str | None = None
    number: str | None = None  # caller number prefix
    topic: str | None = None
    node: str | None = None
    participant: str | None = None  # an operator who took part (first or after a transfer)


def filtered(query: Select[Any], where: CallFilter) -> Select[Any]:
    query = query.where(CALL.started_at >= where.start, CALL.started_at < where.end)
    if where.line:
        query = query.where(CALL.line == where.line)
    if where.status:
        query = query.where(CALL.status == where.status)
    if where.operator:
        query = query.where(CALL.operator == where.operator)
    if where.number:
        low, high = prefix_range(where.number)
        specific = len(where.number.lstrip("+")) >= SPECIFIC_PREFIX
        query = query.where(Likely(CALL.caller_number >= low) if specific else CALL.caller_number >= low)
        if high is not None:
            query = query.where(CALL.caller_number < high)
    if where.topic:
        query = query.where(CALL.topic == where.topic)
    if where.node:
        query = query.where(CALL.node == where.node)
    if where.participant:
        # operators is a JSON list of ids (text on SQLite, json on PostgreSQL): look for the quoted id.
        quoted = f'"{where.participant}"'
        query = query.where(or_(CALL.operator == where.participant,
                                   cast(CALL.operators, Text).contains(quoted, autoescape=True)))
    return query


SPECIFIC_PREFIX = 4  # digits from which a number prefix selects few enough calls to be looked up by number first


class Likely(ColumnElement[bool]):
    """A condition SQLite's planner should take as rare (``likelihood(X, 0.001)``; plain X elsewhere).

    Without STAT4 statistics (Debian's SQLite has none) SQLite rates every range alike, so for a number search it
    read the start-time index (no sort needed) through a year of calls instead of the few calls of that number;
    PostgreSQL knows the numbers' distribution and needs no hint."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition already: no "= 1" after it where booleans are integers

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition


@compiles(Likely)
def _likely(element: Likely, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.condition, **kw))


@compiles(Likely, "sqlite")
def _likely_sqlite(element: Likely, compiler: Any, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.condition, **kw)}, 0.001)"


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """The strings that start with ``prefix`` are those in [prefix, the next prefix) in code-point order, which an
    index on the column serves (a ``LIKE ? || '%'`` cannot use one on SQLite, nor under a non-C collation on
    PostgreSQL): ``0912`` -> [``0912``, ``0913``), ``09`` -> [``09``, ``0:``); no upper bound when every
    character is the last code point."""
    stem = prefix
    while stem and stem[-1] == chr(0x10FFFF):
        stem = stem[:-1]
    return prefix, (stem[:-1] + chr(ord(stem[-1]) + 1)) if stem else None


SORTABLE = ("started_at", "wait_seconds", "talk_seconds", "caller_number", "status", "operator")


def _ordered(query: Select[Any], sort: str) -> Select[Any]:
    """``-started_at`` (newest first, the default), ``talk_seconds`` (shortest first), ...; id breaks ties."""
    descending = sort.startswith("-")
    column = CALL[sort.lstrip("-")] if sort.lstrip("-") in SORTABLE else CALL.started_at
    if sort.lstrip("-") not in SORTABLE:
        descending = True
    if column is CALL.started_at:  # never NULL: the plain order is the one the indexes keep
        ordered = column.desc() if descending else column.asc()
    else:
        ordered = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return query.order_by(ordered, CALL.id.desc() if descending else CALL.id.asc())


def count_rows(session: Session, query: Select[Any]) -> int:
    """How many rows a (paged) list's query has in all."""
    return int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def page_query(where: CallFilter, page: int, page_size: int, sort: str = "-started_at") -> Select[Any]:
    """The query of one page of calls in the asked order."""
    return _ordered(filtered(select(Call), where), sort).offset((page - 1) * page_size).limit(page_size)


TOTAL_CAP = 10_000  # totals are counted exactly up to this many calls, then given as "at least"


@dataclass(frozen=True)
class Total:
    """How many calls match: ``count`` exactly, or (``exact`` False) at least ``count`` (the cap).

    An exact count over a year of a busy hotline reads every matching index entry (hundreds of thousands) and
    cost 10 to 70 times the page itself; nobody pages through more than a few thousand calls, so beyond the cap
    the lists say "10,000+" and keep a Next link while pages are full."""

    count: int
    exact: bool = True


def total_query(where: CallFilter, cap: int = TOTAL_CAP) -> Select[Any]:
    """The query of how many calls match, counting at most ``cap + 1``."""
    matching = filtered(select(CALL.id), where).limit(cap + 1).subquery()
    return select(func.count()).select_from(matching)


def count_calls(session: Session, where: CallFilter, cap: int = TOTAL_CAP) -> Total:
    """How many calls match, exactly up to ``cap``."""
    found = int(session.scalar(total_query(where, cap)) or 0)
    return Total(cap, False) if found > cap else Total(found)


def list_calls(session: Session, where: CallFilter, page: int, page_size: int,
               sort: str = "-started_at") -> tuple[list[Call], Total]:
    """One page of calls in the asked order (newest first by default), and how many match (see Total)."""
    rows = list(session.scalars(page_query(where, page, page_size, sort)).all())
    skipped = (page - 1) * page_size
    if 0 < len(rows) < page_size or (not rows and page == 1):  # the last page: the total is known
        return rows, Total(skipped + len(rows))
    return rows, count_calls(session, where, TOTAL_CAP)


def count_by_status(session: Session, where: CallFilter, cap: int = TOTAL_CAP) -> dict[str, Total]:
    """How many of the matching calls ended in each status (exactly up to ``cap`` each); statuses with none are
    left out. Over the range alone, or one line: one capped count per status, each from the status index (or the
    line-and-status one). With another filter (whose index holds no status) one grouped exact count, as capped
    counts would each look up up to ``cap`` rows."""
    if where.topic or where.operator or where.number or where.participant or where.node:
        query = filtered(select(CALL.status, func.count()).select_from(Call), where).group_by(CALL.status)
        return {status: Total(int(count)) for status, count in session.execute(query).all()}
    found = {}
    for status in [where.status] if where.status else [s.value for s in Status]:
        total = count_calls(session, replace(where, status=status), cap)
        if total.count:
            found[status] = total
    return found


def iter_calls(session: Session, where: CallFilter, sort: str = "-started_at",
               batch: int = 1000) -> Iterator[Call]:
    """Every matching call, fetched ``batch`` rows at a time (a server-side cursor on PostgreSQL): for exports
    of any size at steady memory."""
    query = _ordered(filtered(select(Call), where), sort).execution_options(yield_per=batch)
    for call in session.scalars(query):
        yield call
        session.expunge(call)  # let each exported row go


def get_call(session: Session, call_id: int) -> Call | None:
    """One call by id."""
    return session.get(Call, call_id)


def call_events(session: Session, call: Call) -> list[CelJournal]:
    """The call's journaled CEL events in time order (its timeline)."""
    query = select(CelJournal).where(CelJournal.node == call.node, CelJournal.linkedid == call.linkedid)
    return list(session.scalars(query.order_by(CelJournal.event_time, CelJournal.id)).all())
