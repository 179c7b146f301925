"""Years of history: the history and statistics queries over 1,000,000 generated call logs, p50/p95 in ms.

    python -m bench.history [--calls 1000000] [--sqlite FILE] [--pg URL] [--reuse] [--repeat 15] [--explain]

Generates ``--calls`` call logs over 3 years (2 lines, 7 topics, 20 operators, ~200,000 callers with a few
frequent ones, the status mix and wait/talk times of a hotline) into a SQLite file and/or a PostgreSQL database
migrated by the real migrations (SQLite by executemany, PostgreSQL by COPY), then times the real query functions
the API and the pages call (``callcenter.store.queries`` and ``stats``): every history filter the pages offer over
30 days and a year, a deep page, number searches, the call detail, the statistics page, and a streamed CSV export
of 100,000 rows (in a fresh process, for its peak memory). ``--reuse`` keeps data already there. ``--explain``
prints the plans of the main queries. Generating 1M rows takes about 2 minutes per database on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from bench.results import record
from callcenter.store import queries, stats, summary
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from callcenter.store.models import CALL, calls

LINES = ("02621022", "1900868647")
TOPICS = ("admin", "environment", "urban_order", "construction", "security", "traffic", "other")
OPERATORS = tuple(f"op{n}" for n in range(101, 121))
STATUSES = (("answered", 70), ("abandoned_queue", 12), ("abandoned_ivr", 5), ("abandoned_before_queue", 2),
            ("missed", 5), ("voice_message", 2), ("callback_requested", 3), ("failed", 1))
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DAYS = 3 * 365
COLUMNS = ("node", "linkedid", "started_at", "ended_at", "status", "caller_number", "caller_name", "line",
           "direction", "queue", "queue_result", "operator", "operator_device", "operators", "answered_at",
           "ring_seconds", "wait_seconds", "talk_seconds", "hangup_cause", "ended_by", "transfers", "ivr_path",
           "topic", "after_hours", "callback_number", "legal_hold", "built_at")


def caller_numbers(rng: random.Random, count: int) -> list[str]:
    """Distinct numbers as Vietnamese callers have them: mobiles 09/03/08/07, some landlines, a few +84."""
    found: set[str] = set()
    while len(found) < count:
        kind = rng.random()
        if kind < 0.85:
            found.add(rng.choice(("09", "03", "08", "07")) + f"{rng.randrange(10**8):08d}")
        elif kind < 0.97:
            found.add("0262" + f"{rng.randrange(10**7):07d}")
        else:
            found.add("+849" + f"{rng.randrange(10**8):08d}")
    return sorted(found)


def generate(count: int, end: datetime, seed: int = 12) -> Iterator[tuple[Any, ...]]:
    """``count`` call-log rows (tuples in COLUMNS order) over the 3 years before ``end``, oldest first."""
    rng = random.Random(seed)
    numbers = caller_numbers(rng, 200_000)
    statuses, weights = zip(*STATUSES, strict=True)
    start, built = end - timedelta(days=DAYS), end
    spacing = DAYS * 86400 / count
    for n in range(count):
        moment = start + timedelta(seconds=n * spacing + rng.random() * spacing)
        local_hour = (moment.hour + 7) % 24
        if local_hour < 7 and rng.random() < 0.8:  # quiet nights: most calls move into the day
            moment += timedelta(hours=8)
        status = rng.choices(statuses, weights)[0]
        number = numbers[min(int(rng.paretovariate(1.1)) - 1, len(numbers) - 1)] if rng.random() < 0.3 \
            else rng.choice(numbers)
        wait = talk = answered = None
        operator = ""
        if status == "answered":
            wait = round(rng.lognormvariate(3.0, 0.8), 1)
            talk = round(min(rng.lognormvariate(5.3, 0.6), 3600), 1)
            operator = rng.choice(OPERATORS)
            answered = moment + timedelta(seconds=15 + wait)
        elif status in ("abandoned_queue", "missed"):
            wait = round(rng.lognormvariate(3.8, 0.7), 1)
        ended = moment + timedelta(seconds=15 + (wait or 0) + (talk or 0))
        transferred = operator and rng.random() < 0.03
        operators = [operator, rng.choice(OPERATORS)] if transferred else [operator] if operator else []
        topic = "" if status in ("abandoned_before_queue", "failed") else rng.choice(TOPICS)
        yield ("pbx1", f"{int(moment.timestamp())}.{n}", moment, ended, status, number, "", rng.choice(LINES),
               "inbound", "operators", "", operator, "ip_phone" if operator else None, json.dumps(operators),
               answered, 3.0 if operator else None, wait, talk, 16, "caller", int(bool(transferred)),
               json.dumps([f"IVR_TOPIC:{topic}"] if topic else []), topic, False, "", False, built)


def load(url: str, count: int, end: datetime) -> None:
    """Migrate and fill the database (COPY on PostgreSQL, executemany on SQLite), with progress."""
    upgrade(url)
    database, started = Database(url), time.perf_counter()
    with database.engine.begin() as connection:
        connection.execute(calls.delete())
        if database.engine.dialect.name == "postgresql":
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY calls ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for n, row in enumerate(generate(count, end), 1):
                    copy.write_row(row)
                    _progress(n, count, started)
        else:
            batch: list[dict[str, Any]] = []
            for n, row in enumerate(generate(count, end), 1):
                values = dict(zip(COLUMNS, row, strict=True))
                values["operators"], values["ivr_path"] = json.loads(row[13]), json.loads(row[21])
                batch.append(values)
                if len(batch) == 20_000:
                    connection.execute(insert(calls), batch)
                    batch = []
                _progress(n, count, started)
            if batch:
                connection.execute(insert(calls), batch)
    if database.engine.dialect.name == "postgresql":
        # What autovacuum does within minutes of so many inserts (PostgreSQL 13+ vacuums after inserts too): the
        # planner's statistics, and the visibility map without which an index-only scan reads every row's page
        # (the capped counts of the history's status tabs took 40-130 ms instead of 5-8 before it).
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE) calls"))
    with database.session() as session:  # rows inserted behind the writer's back: the summary is recomputed
        rows = summary.rebuild(session)
    print(f"  statistics summary: {rows:,} rows in {time.perf_counter() - started:.0f} s since the start",
          file=sys.stderr)
    database.dispose()
    upgrade(url)  # what every start does (on SQLite: gather the planner's statistics where missing)
    print(f"  loaded {count:,} calls in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _progress(n: int, count: int, started: float) -> None:
    if n % 100_000 == 0:
        print(f"  {n:,}/{count:,} rows, {time.perf_counter() - started:.0f} s", file=sys.stderr)


@dataclass
class Probe:
    """One timed query: what the pages ask, and how to ask it."""

    name: str
    run: Callable[[Session], Any]
    repeat: int | None = None  # fewer runs for the slow probes kept for comparison


def probes(session: Session, last: datetime) -> list[Probe]:
    """The queries the API and pages run, with windows ending at the newest call."""
    month, year = last - timedelta(days=30), last - timedelta(days=365)
    # a frequent caller (the generator's Pareto head gives a few numbers 100,000s of calls, which no line has)
    busy = session.execute(select(CALL.caller_number, func.count()).where(CALL.started_at >= year)
                           .group_by(CALL.caller_number).having(func.count() <= 100)
                           .order_by(func.count().desc()).limit(1)).one()[0]
    some_id = session.scalar(select(CALL.id).where(CALL.started_at >= month).limit(1))

    def page(name: str, start: datetime, page_no: int = 1, **narrow: str) -> Probe:
        where = queries.CallFilter(start=start, end=last, **narrow)
        return Probe(name, lambda s: queries.list_calls(s, where, page_no, 50))

    def counts(name: str, start: datetime, **narrow: str) -> Probe:
        where = queries.CallFilter(start=start, end=last, **narrow)
        return Probe(name, lambda s: queries.count_by_status(s, where))

    def stat(name: str, start: datetime, bucket: stats.Bucket = "day", scan: bool = False, **narrow: str) -> Probe:
        # the pages ask for whole local days: the window ends at the local midnight after the newest call
        end = (last.astimezone(ZONE) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        where = queries.CallFilter(start=end - (last - start), end=end, **narrow)
        return Probe(name + (" (scan)" if scan else ""),
                     lambda s: stats.statistics(s, where, bucket, ZONE, summary=not scan), 3 if scan else None)

    def detail(s: Session) -> Any:
        call = queries.get_call(s, some_id or 1)
        return call and queries.call_events(s, call)

    return [page("list 30 d", month), page("list 30 d status", month, status="answered"),
            page("list 30 d rare status", month, status="failed"), page("list 30 d line", month, line=LINES[1]),
            page("list 30 d operator", month, operator="op107"), page("list 30 d topic", month, topic="traffic"),
            page("list 30 d status+line", month, status="missed", line=LINES[0]),
            page("list 30 d operator's own", month, participant="op107"),
            page("list 365 d", year), page("list 365 d status+line", year, status="answered", line=LINES[1]),
            page("list 365 d operator", year, operator="op113"), page("list 365 d topic", year, topic="security"),
            page("list 365 d page 1,000", year, page_no=1000),
            page("number exact 30 d", month, number=busy), page("number exact 365 d", year, number=busy),
            page("number prefix 30 d", month, number="0912"), page("number prefix 365 d", year, number="09123"),
            Probe("call detail", detail),
            counts("counts by status 30 d", month), counts("counts by status 365 d", year),
            counts("counts by status 365 d line", year, line=LINES[0]),
            stat("statistics 30 d", month), stat("statistics 30 d line", month, line=LINES[1]),
            stat("statistics 30 d per hour", month, "hour"),
            stat("statistics 365 d", year), stat("statistics 365 d line", year, line=LINES[0]),
            stat("statistics 365 d per week", year, "week"),
            stat("statistics 30 d", month, scan=True), stat("statistics 365 d", year, scan=True)]


def measure(url: str, repeat: int) -> dict[str, tuple[float, float]]:
    """p50 and p95 of each probe, in ms (one warm-up run first)."""
    database = Database(url)
    found = {}
    with database.session() as session:
        last = session.scalar(select(func.max(CALL.started_at)))
        assert last is not None, "no calls: run without --reuse first"
        cases = probes(session, last + timedelta(seconds=1))
    for probe in cases:
        times = []
        for _ in range((probe.repeat or repeat) + 1):
            with database.session() as session:
                started = time.perf_counter()
                probe.run(session)
                times.append((time.perf_counter() - started) * 1000)
        times = sorted(times[1:])
        found[probe.name] = (statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))])
    database.dispose()
    return found


def export(url: str, rows: int) -> tuple[float, float, float]:
    """Stream the newest ``rows`` calls as CSV the way /calls.csv does: seconds, RSS before and peak (MB)."""
    from callcenter.web.routes.history import CSV_FIELDS, _cell

    database = Database(url)
    with database.session() as session:
        last = session.scalar(select(CALL.started_at).order_by(CALL.started_at.desc()).offset(rows).limit(1))
    before = _rss_mb()
    started, written = time.perf_counter(), 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with database.session() as session:
        where = queries.CallFilter(start=last or datetime(1900, 1, 1, tzinfo=UTC), end=datetime(2999, 1, 1, tzinfo=UTC))
        for count, call in enumerate(queries.iter_calls(session, where), 1):
            writer.writerow([_cell(getattr(call, name)) for name in CSV_FIELDS])
            if count % 500 == 0:
                written += len(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
    assert count >= rows, count
    return time.perf_counter() - started, before, _peak_mb()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


EXPLAINED = {"list 365 d status+line": dict(status="missed", line=LINES[0]),
             "list 365 d operator": dict(operator="op113"), "number prefix 365 d": dict(number="09123"),
             "list 365 d": {}}


def explain(url: str) -> None:
    """The plans of the main list queries (page query and total)."""
    database = Database(url)
    postgres = database.engine.dialect.name == "postgresql"
    with database.session() as session:
        last = session.scalar(select(func.max(CALL.started_at))) or datetime.now(UTC)
        for name, narrow in EXPLAINED.items():
            where = queries.CallFilter(start=last - timedelta(days=365), end=last, **narrow)  # type: ignore[arg-type]
            for what, query in (("page", queries.page_query(where, 1, 50)), ("total", queries.total_query(where))):
                compiled = query.compile(database.engine, compile_kwargs={"literal_binds": True})
                prefix = "EXPLAIN (COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
                plan = session.execute(text(prefix + str(compiled))).all()
                print(f"-- {name}, {what}")
                for row in plan:
                    print("   " + (row[0] if postgres else row[-1]))
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000, help="generated call logs; default 1,000,000")
    parser.add_argument("--sqlite", help="SQLite file to fill and measure (default var/bench-history.db unless "
                                         "only --pg is given)")
    parser.add_argument("--pg", help="PostgreSQL URL (a database of its own: its calls are replaced)")
    parser.add_argument("--reuse", action="store_true", help="measure the data already there (no generation)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per query; default 15")
    parser.add_argument("--export-rows", type=int, default=100_000, help="rows in the CSV export; default 100,000")
    parser.add_argument("--explain", action="store_true", help="print the plans of the main list queries")
    parser.add_argument("--export-only", help=argparse.SUPPRESS)  # the child process that measures the export
    args = parser.parse_args()
    if args.export_only:
        print(json.dumps(export(args.export_only, args.export_rows)))
        return
    urls = ([f"sqlite:///{args.sqlite or 'var/bench-history.db'}"] if args.sqlite or not args.pg else []) + \
        ([args.pg] if args.pg else [])
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    results = {}
    for url in urls:
        engine = url.split(":")[0].split("+")[0]
        if not args.reuse:
            print(f"generating {args.calls:,} calls into {engine}", file=sys.stderr)
            load(url, args.calls, end)
        else:
            started = time.perf_counter()
            upgrade(url)  # a database of an older schema gets the summary from the migration's backfill here
            print(f"  migrated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        if args.explain:
            print(f"== plans on {engine}")
            explain(url)
        results[engine] = measure(url, args.repeat)
        child = subprocess.run([sys.executable, "-m", "bench.history", "--export-only", url, "--export-rows",
                                str(args.export_rows)], capture_output=True, text=True, check=True)
        seconds, before, peak = json.loads(child.stdout)
        results[engine][f"CSV export {args.export_rows:,} rows (s; RSS MB)"] = (seconds * 1000, peak - before)
        print(f"  {engine}: CSV export {args.export_rows:,} rows in {seconds:.1f} s, RSS {before:.0f} MB -> peak "
              f"{peak:.0f} MB", file=sys.stderr)
    engines = list(results)
    print(f"{args.calls:,} calls over 3 years; p50 / p95 in ms over {args.repeat} runs")
    print(f"{'query':<34}" + "".join(f"{name + ' p50':>14}{name + ' p95':>14}" for name in engines))
    for name in results[engines[0]]:
        print(f"{name:<34}" + "".join(f"{results[e][name][0]:>14,.1f}{results[e][name][1]:>14,.1f}"
                                      for e in engines))
    record("history", [(f"{args.calls:,} calls: {name} (p50 / p95 ms)",
                        ", ".join(f"{e} {results[e][name][0]:,.1f} / {results[e][name][1]:,.1f}" for e in engines))
                       for name in results[engines[0]]])


if __name__ == "__main__":
    main()
