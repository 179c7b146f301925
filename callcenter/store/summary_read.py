"""Reading the statistics summary: the counts per local hour, day or week, and the counts per line, topic and
operator over a range (whole UTC months from the month rows, the whole UTC days around them from the day rows,
the partial days at the ends from the calls)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from callcenter.store.models import COUNTS
from callcenter.store.queries import CallFilter, filtered
from callcenter.store.summary import SOURCE, STATS, Counts, contribution, hour_offsets, month_of, next_month

Bucket = Literal["hour", "day", "week"]
Offsets = list[tuple[int, int]]
EPOCH = datetime(1970, 1, 1)  # local wall-clock times are counted from the same origin as UTC hours
NARROWING = ("status", "operator", "number", "topic", "node", "participant")  # what the summary cannot filter by


def covered(where: CallFilter, zone: ZoneInfo) -> Offsets | None:
    """The zone's offsets over the range when the summary can answer ``where`` (a range and at most a line), else
    None."""
    if any(getattr(where, name) for name in NARROWING):
        return None
    return hour_offsets(where.start, where.end, zone)


def series(session: Session, where: CallFilter, bucket: Bucket, offsets: Offsets) -> list[tuple[datetime, Counts]]:
    """(local start of each period with calls, its calls, answered, abandoned and missed), from the hour rows."""
    local = STATS.period + (case(*((STATS.period < start, offset) for (_, offset), (start, _) in
                                   pairwise(offsets)), else_=offsets[-1][1])
                            if len(offsets) > 1 else offsets[0][1])
    key = {"hour": local, "day": local // 24, "week": (local // 24 + 3) // 7}[bucket]  # 1970-01-01 was a Thursday
    query = (select(key, *(func.sum(STATS[name]) for name in COUNTS[:4]))
             .where(*_range(where, "hour", "line", _hour(where.start), _hour(where.end))).group_by(key))
    return [(_moment(int(found), bucket), [int(n) for n in counts]) for found, *counts in session.execute(query)]


def breakdowns(session: Session, where: CallFilter) -> dict[str, dict[str, Counts]]:
    """The counts per line, topic and operator (member '' : none) of the calls in the range."""
    first, last = _hour(where.start), _hour(where.end)
    days = (first + 23) // 24 * 24, last // 24 * 24
    found: dict[str, dict[str, Counts]] = {name: defaultdict(lambda: [0] * len(COUNTS))
                                           for name in ("line", "topic", "operator")}
    if days[0] < days[1]:
        for dimension, groups in found.items():
            member = STATS.line if dimension == "line" else STATS.member
            query = (select(member, *(func.sum(STATS[name]) for name in COUNTS))
                     .where(or_(*(and_(*_range(where, grain, dimension, low, high))
                                  for grain, low, high in _whole(*days))))
                     .group_by(member))
            for key, *counts in session.execute(query):
                groups[key] = [int(n) for n in counts]
        edges = [(first, days[0]), (days[1], last)]
    else:
        edges = [(first, last)]
    for low, high in edges:
        _add_calls(session, replace(where, start=_time(low), end=_time(high)), found)
    return {name: {key: counts for key, counts in groups.items() if counts[0]} for name, groups in found.items()}


def _whole(first: int, last: int) -> list[tuple[str, int, int]]:
    """The summary rows covering the whole UTC days [first, last) (hours): (grain, first, last) of the month rows
    of the whole UTC months inside, and of the day rows before and after them."""
    months = (first if month_of(first) == first else next_month(first)), month_of(last)
    if months[0] >= months[1]:
        return [("day", first, last)]
    return [(grain, low, high) for grain, low, high in
            (("day", first, months[0]), ("mon", *months), ("day", months[1], last)) if low < high]


def _add_calls(session: Session, where: CallFilter, found: dict[str, dict[str, Counts]]) -> None:
    """Add the counts of the calls ``where`` selects (a partial day at one end of the range)."""
    if where.start >= where.end:
        return
    for row in session.execute(filtered(select(*SOURCE), where)):
        for (grain, dimension, _, line, member), counts in contribution(row).items():
            if grain == "day":
                group = found[dimension][line if dimension == "line" else member]
                group[:] = [a + b for a, b in zip(group, counts, strict=True)]


def _range(where: CallFilter, grain: str, dimension: str, first: int, last: int) -> list[Any]:
    conditions = [STATS.grain == grain, STATS.dimension == dimension, STATS.period >= first, STATS.period < last]
    return conditions + ([STATS.line == where.line] if where.line else [])


def _hour(moment: datetime) -> int:
    return int(moment.timestamp()) // 3600


def _time(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _moment(key: int, bucket: Bucket) -> datetime:
    """The local wall-clock start of a period from its number (hours, days or Monday-weeks since 1970)."""
    if bucket == "hour":
        return EPOCH + timedelta(hours=key)
    return EPOCH + timedelta(days=key if bucket == "day" else key * 7 - 3)
