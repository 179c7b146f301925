"""The statistics summary (``call_stats``): counts and sums of the call log per hour, per UTC day and per UTC
month, kept up to date by the writer as calls are written, so that statistics over a year read a few thousand
summary rows instead of a year of calls.

Rows (``models.call_stats``), each keyed by grain, dimension, period, line and member:
  hour, line      every call once, in the UTC hour it started: the per-hour/day/week series in any time zone
                  whose offset is whole hours (a local day is 24 such hours)
  day,  line      every call once, in the UTC day it started      } totals and breakdowns over whole UTC days;
  day,  topic     per topic code ('' when the call had none)      } the partial days at the two ends of a range
  day,  operator  per first operator ('' when nobody answered)    } are read from the calls themselves
  mon,  line / topic / operator   the same three per UTC month (period: the month's first hour): the whole
                  UTC months inside a range, so that a year reads ~12 rows per member instead of ~365
Each row counts calls, answered/abandoned/missed (``stats.outcome``; the rest are "other"), waits and talks
(how many had one, and their sum in milliseconds: exact integers, so subtracting a call's old values on a rebuild
leaves nothing behind), and the waits in the buckets of ``models.WAIT_EDGES`` (for the 90th percentile).

The writer calls :func:`maintain` before it upserts a batch of calls: each call's previous row (a rebuild) is
subtracted and its new one added, summed in memory over the batch, then applied in the same transaction by one
``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n`` executed for each summary row in key order (one
compiled statement whatever the number of rows).
:func:`rebuild` recomputes the whole table from ``calls`` (``callcenter stats rebuild``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, case, delete, func, insert, literal, select, text, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from callcenter.model.contract import Status
from callcenter.store.db import in_slices, insert_in, insert_rows
from callcenter.store.models import CALL, COUNTS, WAIT_BUCKETS, WAIT_EDGES, call_stats

STATS = call_stats.c
KEY = ("grain", "dimension", "period", "line", "member")
SOURCE = (CALL.started_at, CALL.status, CALL.line, CALL.topic, CALL.operator, CALL.wait_seconds, CALL.talk_seconds)
SOURCE_NAMES = tuple(column.name for column in SOURCE)
ABANDONED = (Status.ABANDONED_QUEUE, Status.ABANDONED_IVR, Status.ABANDONED_BEFORE_QUEUE)
Key = tuple[str, str, int, str, str]
Counts = list[int]  # in COUNTS order


def milliseconds(seconds: float) -> int:
    """Seconds as whole milliseconds, rounded the way the SQL of :func:`rebuild` and migration 0014 round."""
    return int(seconds * 1000 + 0.5)


def wait_bucket(seconds: float) -> int:
    """The index of the wait bucket holding ``seconds`` (negative waits count in the first)."""
    return max(bisect_right(WAIT_EDGES, seconds) - 1, 0)


def counts_of(status: str, wait: float | None, talk: float | None) -> Counts:
    """One call's counts, in COUNTS order."""
    found = [1, int(status == Status.ANSWERED), int(status in ABANDONED), int(status == Status.MISSED),
             int(wait is not None), 0 if wait is None else milliseconds(wait),
             int(talk is not None), 0 if talk is None else milliseconds(talk)] + [0] * len(WAIT_BUCKETS)
    if wait is not None:
        found[8 + wait_bucket(wait)] = 1
    return found


@lru_cache(maxsize=1024)
def month_of(hour: int) -> int:
    """The first hour of the UTC month holding ``hour`` (hours since 1970)."""
    moment = datetime.fromtimestamp(hour * 3600, UTC)
    return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()) // 3600


def next_month(hour: int) -> int:
    """The first hour of the UTC month after the one holding ``hour``."""
    return month_of(month_of(hour) + 32 * 24)


def keys_of(started_at: datetime, line: str, topic: str, operator: str) -> list[Key]:
    """The summary rows one call counts in."""
    hour = math.floor(started_at.timestamp() / 3600)
    day, month = hour - hour % 24, month_of(hour)
    return [("hour", "line", hour, line, ""), ("day", "line", day, line, ""), ("day", "topic", day, line, topic),
            ("day", "operator", day, line, operator), ("mon", "line", month, line, ""),
            ("mon", "topic", month, line, topic), ("mon", "operator", month, line, operator)]


def contribution(row: Any, sign: int = 1) -> dict[Key, Counts]:
    """What a calls row (SOURCE's columns) adds to each summary row (``sign`` -1: what removing it takes away)."""
    started_at, status, line, topic, operator, wait, talk = row
    counts = counts_of(status, wait, talk)
    if sign != 1:
        counts = [sign * n for n in counts]
    return {key: counts for key in keys_of(started_at, line or "", topic or "", operator or "")}


def maintain(session: Session, node: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Move the counts of the calls about to be written (``rows``: calls rows, one per linkedid) from their stored
    rows, if any, to their new values.

    Runs before the calls' upsert, in its transaction: the stored rows are read (locked on PostgreSQL, in
    linkedid order), the batch's deltas summed in memory (subtract each old row, add each new one: exact
    integers, so the order does not matter) and applied once per summary row, so a rebuild that changes status,
    operator or times never counts a call twice. Rows left with no calls are deleted."""
    linkedids = sorted(row["linkedid"] for row in rows)
    parts = [contribution(old, -1) for old in _stored(session, node, linkedids)]
    parts += [contribution([row[name] for name in SOURCE_NAMES]) for row in rows]
    summed: dict[Key, list[Counts]] = defaultdict(list)  # each summary row's counts from every call, then summed
    for part in parts:  # in one go (a batch's calls share their hours, days and months)
        for key, counts in part.items():
            summed[key].append(counts)
    deltas = {key: list(map(sum, zip(*each, strict=True))) for key, each in summed.items()}
    changed = {key: counts for key, counts in deltas.items() if any(counts)}
    if not changed:
        return  # rebuilt with the same figures
    add(session, changed)
    emptied = sorted(key for key, counts in changed.items() if counts[0] < 0)
    for some in in_slices(emptied):
        session.execute(delete(call_stats).where(tuple_(*(STATS[k] for k in KEY)).in_(some), STATS.calls == 0))


def _stored(session: Session, node: str, linkedids: Sequence[str]) -> list[Any]:
    """The SOURCE columns of the stored calls among ``linkedids`` (sorted), locked for the transaction on
    PostgreSQL in linkedid order."""
    found: list[Any] = []
    for some in in_slices(linkedids):
        statement = (select(*SOURCE).where(CALL.node == node, CALL.linkedid.in_(some))
                     .order_by(CALL.linkedid).with_for_update())
        found.extend(session.execute(statement).all())
    return found


@cache
def _add(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n, for ``dialect`` (built once: building the
    ``excluded`` columns costs more than running it)."""
    statement = insert_in(dialect, call_stats)
    return statement.on_conflict_do_update(index_elements=list(KEY),
                                           set_={name: STATS[name] + statement.excluded[name] for name in COUNTS})


def add(session: Session, deltas: Mapping[Key, Counts]) -> None:
    """Add counts to summary rows (created when missing), in key order (the same lock order in every writer)."""
    rows = [dict(zip(KEY, key, strict=True)) | dict(zip(COUNTS, deltas[key], strict=True)) for key in sorted(deltas)]
    insert_rows(session, _add(session.get_bind().dialect.name), rows)  # one statement for every row


class EpochHours(ColumnElement[int]):
    """A UTC time as whole hours since 1970 (``per`` 24: the hour starting its UTC day)."""

    inherit_cache = True
    type = Integer()

    def __init__(self, moment: Any, per: int = 1) -> None:
        self.moment, self.per = moment, per


@compiles(EpochHours, "sqlite")
def _epoch_hours_sqlite(element: EpochHours, compiler: Any, **kw: Any) -> str:
    """Down to the whole second first, as Python's floor does for the rows the writer keeps: SQLite reads a time
    to the millisecond, so ``strftime('%s')`` of an hour's last half-millisecond (``hh:59:59.9995``, CEL times
    carry microseconds) gave the next hour's first second, and the call the next hour's rows."""
    moment = compiler.process(element.moment, **kw)
    return f"(CAST(strftime('%s', substr({moment}, 1, 19)) AS INTEGER) / {3600 * element.per} * {element.per})"


class MonthHours(ColumnElement[int]):
    """The first hour of the UTC month holding a period (hours since 1970), in hours since 1970."""

    inherit_cache = True
    type = Integer()

    def __init__(self, period: Any) -> None:
        self.period = period


@compiles(MonthHours, "sqlite")
def _month_hours_sqlite(element: MonthHours, compiler: Any, **kw: Any) -> str:
    period = compiler.process(element.period, **kw)
    return f"(CAST(strftime('%s', {period} * 3600, 'unixepoch', 'start of month') AS INTEGER) / 3600)"


@compiles(MonthHours, "postgresql")
def _month_hours_postgresql(element: MonthHours, compiler: Any, **kw: Any) -> str:
    period = compiler.process(element.period, **kw)
    return (f"(CAST(extract(epoch FROM date_trunc('month', to_timestamp({period} * 3600) AT TIME ZONE 'UTC')) "
            "AS INTEGER) / 3600)")


@compiles(EpochHours, "postgresql")
def _epoch_hours_postgresql(element: EpochHours, compiler: Any, **kw: Any) -> str:
    moment = compiler.process(element.moment, **kw)
    return f"(CAST(floor(extract(epoch FROM {moment}) / {3600 * element.per}) AS INTEGER) * {element.per})"


class Truncated(ColumnElement[int]):
    """A non-negative number cut to an integer, as Python's ``int()`` does (CAST on SQLite, trunc on PostgreSQL)."""

    inherit_cache = True
    type = BigInteger()

    def __init__(self, number: Any) -> None:
        self.number = number


@compiles(Truncated, "sqlite")
def _truncated_sqlite(element: Truncated, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.number, **kw)} AS INTEGER)"


@compiles(Truncated, "postgresql")
def _truncated_postgresql(element: Truncated, compiler: Any, **kw: Any) -> str:
    return f"CAST(trunc({compiler.process(element.number, **kw)}) AS BIGINT)"


def _milliseconds_sql(column: Any) -> Any:
    """SQL of :func:`milliseconds`, summed."""
    return func.coalesce(func.sum(Truncated(column * 1000 + 0.5)), 0)


def count_expressions() -> list[Any]:
    """The COUNTS of a group of calls rows, as SQL aggregates (for :func:`rebuild` and for the tests)."""
    wait, talk = CALL.wait_seconds, CALL.talk_seconds

    def share(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    buckets = [share(wait < WAIT_EDGES[1])] + [
        share((wait >= low) & (wait < high)) for low, high in pairwise(WAIT_EDGES[1:])]
    buckets.append(share(wait >= WAIT_EDGES[-1]))
    return [func.count(), share(CALL.status == Status.ANSWERED.value),
            share(CALL.status.in_([s.value for s in ABANDONED])), share(CALL.status == Status.MISSED.value),
            func.count(wait), _milliseconds_sql(wait), func.count(talk), _milliseconds_sql(talk), *buckets]


def rows_query(grain: str, dimension: str) -> Any:
    """SELECT of the summary rows of one grain and dimension, computed from ``calls``."""
    period = EpochHours(CALL.started_at, 1 if grain == "hour" else 24)
    member = {"line": literal(""), "topic": CALL.topic, "operator": CALL.operator}[dimension]
    query = select(literal(grain), literal(dimension), period, CALL.line, member, *count_expressions())
    return query.group_by(period, CALL.line, *([] if dimension == "line" else [member]))


def month_rows_query(dimension: str) -> Any:
    """SELECT of the month rows of one dimension, added up from the day rows (which must be there already)."""
    month = MonthHours(STATS.period)
    return (select(literal("mon"), STATS.dimension, month, STATS.line, STATS.member,
                   *(func.sum(STATS[name]) for name in COUNTS))
            .where(STATS.grain == "day", STATS.dimension == dimension)
            .group_by(STATS.dimension, month, STATS.line, STATS.member))


LAYOUT = (("hour", "line"), ("day", "line"), ("day", "topic"), ("day", "operator"), ("mon", "line"),
          ("mon", "topic"), ("mon", "operator"))


def rebuild(session: Session, progress: Any = None) -> int:
    """Recompute the whole summary from ``calls`` (one INSERT ... SELECT ... GROUP BY per kind of row); returns
    how many summary rows it wrote. ``progress(message)`` is told about each step.

    On PostgreSQL the table is locked against writers first: a listener writing calls meanwhile would otherwise
    add a row between the delete and the insert (a duplicate key), or have its call counted twice. Its writes wait
    until the rebuild commits and then add their calls' deltas on top, each call counted once. (SQLite lets one
    writer at a time anyway.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE call_stats IN SHARE ROW EXCLUSIVE MODE"))
    session.execute(delete(call_stats))
    for grain, dimension in LAYOUT:
        query = month_rows_query(dimension) if grain == "mon" else rows_query(grain, dimension)
        session.execute(insert(call_stats).from_select([*KEY, *COUNTS], query))
        if progress:
            progress(f"{grain} rows by {dimension}")
    return int(session.scalar(select(func.count()).select_from(call_stats)) or 0)


def summed(rows: Iterable[Iterable[int]]) -> Counts:
    """Counts added up."""
    total = [0] * len(COUNTS)
    for row in rows:
        total = [a + int(b or 0) for a, b in zip(total, row, strict=True)]
    return total


def wait_percentile(buckets: Sequence[int], share: float = 0.9) -> float | None:
    """The percentile of the waits counted in ``buckets`` (WAIT_BUCKETS order), as PostgreSQL's
    ``percentile_cont`` would give it from the waits themselves, up to the width of the buckets involved.

    ``percentile_cont`` interpolates between the two waits around rank ``share * (n - 1)``; each of them is
    estimated as if the waits of its bucket were spread evenly across it, so each estimate is off by less than
    its bucket's width, and so is their interpolation: 5 s below a minute, 10 s below 2 minutes, 30 s below 5,
    60 s below 10. A wait in the last, open bucket (an hour or more) is taken as one hour."""
    total = sum(buckets)
    if not total:
        return None
    position = share * (total - 1)
    low = int(position)
    below, above = _order_statistic(buckets, low), _order_statistic(buckets, min(low + 1, total - 1))
    return below + (above - below) * (position - low)


def _order_statistic(buckets: Sequence[int], rank: int) -> float:
    """The estimated ``rank``-th (from 0) smallest wait."""
    seen = 0
    for index, count in enumerate(buckets):
        if rank < seen + count:
            low = WAIT_EDGES[index]
            if index + 1 == len(WAIT_EDGES):
                return float(low)
            return float(low + (rank - seen + 0.5) * (WAIT_EDGES[index + 1] - low) / count)
        seen += count
    raise ValueError(f"rank {rank} beyond {seen} waits")


def hour_offsets(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[int, int]] | None:
    """The stretches of [start, end) with one UTC offset in ``zone``: (first hour since 1970, offset in hours).
    None when hour rows cannot give that zone's periods: a bound not on a whole UTC hour, an offset that is not
    whole hours (India, Nepal, Newfoundland, ...), or a change of offset within an hour."""
    if start.timestamp() % 3600 or end.timestamp() % 3600:
        return None
    first, last = int(start.timestamp()) // 3600, int(end.timestamp()) // 3600
    found = [(first, _offset(first * 3600, zone))]
    hour = first
    while hour < last - 1:
        probe = min(hour + 24, last - 1)  # offsets change at most twice a year: one change within a day at most
        if _offset(probe * 3600, zone) != found[-1][1]:
            low, high = hour, probe
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(middle * 3600, zone) == found[-1][1] else (low, middle)
            if _offset(high * 3600 - 1, zone) != found[-1][1]:
                return None  # the change is not on the hour
            found.append((high, _offset(high * 3600, zone)))
        hour = probe
    if any(offset is None for _, offset in found):
        return None
    return [(hour, offset) for hour, offset in found if offset is not None]


def _offset(moment: float, zone: ZoneInfo) -> int | None:
    """The zone's UTC offset at a moment, in whole hours (None if it is not whole hours)."""
    offset = datetime.fromtimestamp(moment, zone).utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    return None if seconds % 3600 else seconds // 3600
