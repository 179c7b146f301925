"""Statistics a supervisor reads: calls per hour, day or week by outcome, and wait and talk times (average and
90th percentile) by line, topic and operator. Buckets are in the reader's time zone.

Over a date range, optionally one line, in a zone whose offsets are whole hours, everything comes from the
summary (``callcenter.store.summary``): the buckets from its hour rows, totals and breakdowns from its day rows
plus the calls of the partial UTC days at each end; the 90th percentile from its wait buckets (within a bucket's
width of the exact figure). Any other filter (status, operator, topic, number, node, participant) or zone
(e.g. India's +5:30) reads the calls themselves, as follows.

PostgreSQL does the grouping and the percentiles itself (``AT TIME ZONE``, ``percentile_cont``). SQLite has
neither a time-zone database nor percentiles: there the rows of the (bounded) range are folded in Python, which
is right across daylight-saving changes and fast enough for the single-node SQLite deployments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Float, case, cast, func, literal_column, select
from sqlalchemy.orm import Session

from callcenter.model.contract import Status
from callcenter.store import summary_read
from callcenter.store.models import CALL, Call
from callcenter.store.queries import CallFilter, filtered
from callcenter.store.summary import wait_percentile

Bucket = Literal["hour", "day", "week"]
Dimension = Literal["line", "topic", "operator"]
OUTCOMES = {Status.ANSWERED: "answered", Status.ABANDONED_QUEUE: "abandoned", Status.ABANDONED_IVR: "abandoned",
            Status.ABANDONED_BEFORE_QUEUE: "abandoned", Status.MISSED: "missed"}


def outcome(status: str) -> str:
    """answered, abandoned, missed, or other (voice messages, callbacks, failures)."""
    return OUTCOMES.get(Status(status), "other") if status in Status.__members__.values() else "other"


@dataclass
class Group:
    """One row of a breakdown: counts, and wait and talk times."""

    key: str
    calls: int = 0
    answered: int = 0
    wait_avg: float | None = None
    wait_p90: float | None = None
    talk_avg: float | None = None


@dataclass
class Stats:
    """Everything the statistics page shows for one filter."""

    buckets: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # label -> counts by outcome
    total: Group = field(default_factory=lambda: Group("all"))
    by: dict[str, list[Group]] = field(default_factory=dict)


def _label(moment: datetime, bucket: Bucket) -> str:
    if bucket == "hour":
        return moment.strftime("%Y-%m-%d %H:00")
    if bucket == "week":
        monday = moment - timedelta(days=moment.weekday())
        return monday.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d")


def _percentile(values: list[float], share: float = 0.9) -> float | None:
    """The linear-interpolated percentile (as PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _group(key: str, rows: list[tuple[str, float | None, float | None]]) -> Group:
    waits = [wait for _, wait, _ in rows if wait is not None]
    talks = [talk for _, _, talk in rows if talk is not None]
    return Group(key, len(rows), sum(1 for status, _, _ in rows if status == Status.ANSWERED),
                 sum(waits) / len(waits) if waits else None, _percentile(waits),
                 sum(talks) / len(talks) if talks else None)


def _fold(rows: Iterable[Any], bucket: Bucket, zone: ZoneInfo) -> Stats:
    """Python path: one pass over the rows."""
    buckets: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    everything: list[tuple[str, float | None, float | None]] = []
    by: dict[str, dict[str, list[tuple[str, float | None, float | None]]]] = {d: defaultdict(list) for d in
                                                                             ("line", "topic", "operator")}
    for started, status, wait, talk, line, topic, operator in rows:
        buckets[_label(started.astimezone(zone), bucket)][outcome(status)] += 1
        item = (status, wait, talk)
        everything.append(item)
        for name, key in (("line", line), ("topic", topic), ("operator", operator)):
            by[name][key or ""].append(item)
    return Stats(sorted((label, dict(counts)) for label, counts in buckets.items()), _group("all", everything),
                 {name: sorted((_group(k, v) for k, v in groups.items()), key=lambda g: -g.calls)
                  for name, groups in by.items()})


def labels(start: datetime, end: datetime, bucket: Bucket, zone: ZoneInfo) -> list[str]:
    """Every bucket between two moments, so that a chart shows the quiet periods too."""
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}[bucket]
    moment, found = start.astimezone(zone).replace(minute=0, second=0, microsecond=0), list[str]()
    if bucket != "hour":
        moment = moment.replace(hour=0)
    if bucket == "week":
        moment -= timedelta(days=moment.weekday())  # from the Monday of the first week
    while moment < end and len(found) < 10_000:
        label = _label(moment, bucket)
        if not found or found[-1] != label:
            found.append(label)
        moment += step
    return found


def statistics(session: Session, where: CallFilter, bucket: Bucket, zone: ZoneInfo, summary: bool = True) -> Stats:
    """The statistics of the calls ``where`` selects, with a bucket for every period of the range: from the
    summary when it covers the filter and the zone (``covered``), else (or with ``summary`` False: benchmarks and
    tests) from the calls themselves."""
    offsets = summary_read.covered(where, zone) if summary else None
    if offsets is not None:
        found = _from_summary(session, where, bucket, offsets)
    elif session.get_bind().dialect.name == "postgresql":
        found = _in_postgresql(session, where, bucket, zone)
    else:
        columns = (CALL.started_at, CALL.status, CALL.wait_seconds, CALL.talk_seconds, CALL.line, CALL.topic,
                   CALL.operator)
        rows = session.execute(filtered(select(*columns).select_from(Call), where)
                               .execution_options(yield_per=5000))
        found = _fold(rows, bucket, zone)
    counts = dict(found.buckets)
    found.buckets = [(label, counts.get(label, {})) for label in labels(where.start, where.end, bucket, zone)]
    return found


def _from_summary(session: Session, where: CallFilter, bucket: Bucket, offsets: summary_read.Offsets) -> Stats:
    buckets = []
    for moment, (calls, answered, abandoned, missed) in summary_read.series(session, where, bucket, offsets):
        counts = {"answered": answered, "abandoned": abandoned, "missed": missed,
                  "other": calls - answered - abandoned - missed}
        buckets.append((_label(moment, bucket), {name: n for name, n in counts.items() if n}))
    groups = summary_read.breakdowns(session, where)
    by = {name: sorted((_summed_group(key, counts) for key, counts in members.items()),
                       key=lambda g: (-g.calls, g.key)) for name, members in groups.items()}
    total = [sum(column) for column in zip(*groups["line"].values(), strict=True)]
    return Stats(sorted(buckets), _summed_group("all", total) if total else Group("all"), by)


def _summed_group(key: str, counts: list[int]) -> Group:
    calls, answered, _, _, wait_n, wait_ms, talk_n, talk_ms, *waits = counts
    return Group(key, calls, answered, wait_ms / wait_n / 1000 if wait_n else None, wait_percentile(waits),
                 talk_ms / talk_n / 1000 if talk_n else None)


def _aggregates(key: Any) -> list[Any]:
    answered = func.sum(case((CALL.status == Status.ANSWERED.value, 1), else_=0))
    p90 = func.percentile_cont(0.9).within_group(CALL.wait_seconds)
    return [key, func.count(), answered, func.avg(CALL.wait_seconds), cast(p90, Float), func.avg(CALL.talk_seconds)]


def _in_postgresql(session: Session, where: CallFilter, bucket: Bucket, zone: ZoneInfo) -> Stats:
    local = func.timezone(literal_column(f"'{zone.key}'"), CALL.started_at)  # zone names come from ZoneInfo
    truncated = func.date_trunc(bucket, local)
    rows = session.execute(filtered(select(truncated, CALL.status, func.count()).select_from(Call), where)
                           .group_by(truncated, CALL.status)).all()
    buckets: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for moment, status, count in rows:
        buckets[_label(moment.replace(tzinfo=UTC), bucket)][outcome(status)] += int(count)
    total_row = session.execute(filtered(select(*_aggregates(literal_column("'all'"))).select_from(Call),
                                          where)).one()
    by = {}
    for name, column in (("line", CALL.line), ("topic", CALL.topic), ("operator", CALL.operator)):
        grouped = session.execute(filtered(select(*_aggregates(column)).select_from(Call), where)
                                  .group_by(column)).all()
        by[name] = sorted((_row_group(row) for row in grouped), key=lambda g: -g.calls)
    return Stats(sorted((label, dict(counts)) for label, counts in buckets.items()), _row_group(total_row), by)


def _row_group(row: Any) -> Group:
    key, calls, answered, wait_avg, wait_p90, talk_avg = row
    return Group(key or "", int(calls), int(answered or 0), _float(wait_avg), _float(wait_p90), _float(talk_avg))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
