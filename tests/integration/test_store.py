"""Journal dedupe and idempotent call writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.ami.events import CelEvent
from callcenter.calls.builder import build_call
from callcenter.calls.channels import Directory
from callcenter.calls.record import CallRecord
from callcenter.listener import calllog
from callcenter.listener.service import CallLogStore
from callcenter.model.contract import Cel
from callcenter.store import journal, jsoncodec, writer
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, CelJournal
from callcenter.store.writer import upsert_call, upsert_calls
from tests.factories import DIRECTORY, FIXTURES, answered_stream, cel, load_jsonl, old_key


def _count(db: Database, model: type) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_replaying_events_adds_nothing(db: Database) -> None:
    events = load_jsonl("cel_answered.jsonl")
    with db.session() as session:
        assert journal.append(session, "n1", events, "ami") == {events[0].linkedid}
    with db.session() as session:
        assert journal.append(session, "n1", events, "file") == set()
    assert _count(db, CelJournal) == len(events)


def test_payloads_come_back_from_the_journal_as_they_went_in(db: Database) -> None:
    """orjson writes the payloads; what it refuses (an integer beyond 64 bits) goes through the standard library.
    (On PostgreSQL the rows go through COPY's text format: tabs, line ends, backslashes and its null marker.)"""
    events = [cel("CHAN_START", 0, cid_name="Nguyễn Thị Quỳnh Mai", appdata="a\tb\nc\\d\\N|\r"),
              cel("USER_DEFINED", 1, extra={"n": 2**70, "deep": [{"a": [1.5, None, True]}], "text": "Đà Nẵng"})]
    with db.session() as session:
        journal.append(session, "n1", events, "ami")
    with db.session() as session:
        assert journal.events_for(session, "n1", events[0].linkedid) == events


def test_same_event_on_another_node_is_kept(db: Database) -> None:
    events = load_jsonl("cel_answered.jsonl")
    with db.session() as session:
        journal.append(session, "n1", events, "ami")
        journal.append(session, "n2", events, "ami")
    assert _count(db, CelJournal) == 2 * len(events)


def test_upsert_twice_keeps_one_row_with_latest_values(db: Database) -> None:
    record = build_call(answered_stream(), DIRECTORY)
    with db.session() as session:
        upsert_call(session, "n1", record, datetime.now(UTC))
    record.topic = "environment"
    with db.session() as session:
        upsert_call(session, "n1", record, datetime.now(UTC))
    with db.session() as session:
        rows = session.scalars(select(Call)).all()
        assert [(r.linkedid, r.topic) for r in rows] == [(record.linkedid, "environment")]
        assert rows[0].started_at.tzinfo is not None
        assert rows[0].caller_name == "Nguyễn Thị Quỳnh Mai"


def test_the_upsert_stores_each_value_as_sqlalchemy_binds_it(db: Database) -> None:
    """SQLite's rows go to the driver as tuples: each value must be stored as SQLAlchemy's statement stores it
    (times, lists, enums, numbers, text cut to its width, the columns' defaults), on a first write and a rewrite."""
    plain = build_call(answered_stream(), DIRECTORY)
    full = plain.model_copy(update={"caller_name": "Nguyễn " * 60, "queue_result": "TIMEOUT", "ivr_path": ["a:1"],
                                    "operators": ["op101", "op102"], "hangup_cause": 16, "after_hours": True,
                                    "wait_seconds": 12, "transfers": 2, "callback_number": "0" * 40})
    now = datetime.now(UTC)
    for _ in range(2):
        with db.session() as session:
            upsert_calls(session, "driver", [plain, full.model_copy(update={"linkedid": "full"})], now)
            statement = writer._upsert(session.get_bind().dialect.name)
            session.execute(statement, [writer.call_row("sqlalchemy", record, now)
                                        for record in (plain, full.model_copy(update={"linkedid": "full"}))])
    with db.session() as session:
        stored = session.execute(text("SELECT * FROM calls ORDER BY linkedid, node")).mappings().all()
    by_node = {(row["node"], row["linkedid"]): {k: v for k, v in row.items() if k not in ("id", "node")}
               for row in stored}
    assert len(by_node) == 4
    for linkedid in (plain.linkedid, "full"):
        assert by_node["driver", linkedid] == by_node["sqlalchemy", linkedid]


def test_store_builds_only_finished_calls_and_rebuilds_on_late_events(db: Database) -> None:
    store = CallLogStore(db, "n1", DIRECTORY)
    events = answered_stream()
    bridge = [e for e in events if e.event == "BRIDGE_ENTER"]
    early = [e for e in events if e.event != "BRIDGE_ENTER"]
    assert store.ingest(early[:3], "ami") == []
    assert store.ingest(early[3:], "ami") == [events[0].linkedid]
    with db.session() as session:
        assert session.scalar(select(CALL.status)) == "abandoned_queue"  # the bridge was missed so far
    assert store.ingest(bridge, "file") == [events[0].linkedid]  # backfill brings the missing events
    with db.session() as session:
        assert session.scalar(select(CALL.status)) == "answered"
    assert _count(db, Call) == 1


def test_build_missing_finds_finished_calls_without_row(db: Database) -> None:
    events = answered_stream()
    with db.session() as session:
        journal.append(session, "n1", events, "file")
        journal.append(session, "n1", [cel("CHAN_START", 0, linkedid="200.1", uniqueid="200.1")], "file")
    assert CallLogStore(db, "n1", DIRECTORY).build_missing() == [events[0].linkedid]
    assert CallLogStore(db, "n1", DIRECTORY).build_missing() == []


def test_a_broken_call_does_not_stop_the_others(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    good = answered_stream()
    bad = [cel("LINKEDID_END", 1, linkedid="300.1", uniqueid="300.1")]

    def build_or_break(events: list[CelEvent], directory: Directory, cut: bool = False) -> CallRecord:
        if events[0].linkedid == "300.1":
            raise RuntimeError("a call the builder cannot handle")
        return build_call(events, directory, cut)

    monkeypatch.setattr(calllog, "build_call", build_or_break)
    built = CallLogStore(db, "n1", DIRECTORY).ingest(bad + good, "ami")
    assert built == [good[0].linkedid]
    assert _count(db, Call) == 1


def test_backfill_rereads_the_file_after_the_database_failed(db: Database, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from callcenter.listener.backfill import Backfill
    from callcenter.listener.celfile import CelFile

    cel_file = tmp_path / "cel.json"
    cel_file.write_text((FIXTURES / "cel_answered.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    store = CallLogStore(db, "n1", DIRECTORY)
    backfill = Backfill(CelFile(cel_file), store)
    real_ingest = store.ingest
    monkeypatch.setattr(store, "ingest", lambda *a: (_ for _ in ()).throw(RuntimeError("database down")))
    with pytest.raises(RuntimeError):
        backfill.run()
    monkeypatch.setattr(store, "ingest", real_ingest)
    assert backfill.run() == 1  # the same lines again: the call is built
    assert _count(db, Call) == 1


def test_the_migrations_build_exactly_the_tables_the_models_describe(db_url: str) -> None:
    """The calls table is derived from CallRecord: a field added there without a migration shows up here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from callcenter.store import cursors
    from callcenter.store.db import make_engine
    from callcenter.store.models import Base

    assert cursors.__name__  # its table is part of the metadata too

    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_calls_asterisk_lost_are_logged_cut_once_and_only_those(db: Database) -> None:
    """A restart at T: the call that never ended and went quiet before T is logged cut; a call that ended, and one
    still going after T, are not; a second sweep changes nothing."""
    from callcenter.model.contract import EndedBy, Status

    def call(linkedid: str, shift: float, drop_end: bool) -> list[CelEvent]:
        events = [replace(e, linkedid=linkedid, uniqueid=e.uniqueid.replace("100", linkedid.split(".")[0]),
                          time=e.time + shift, second=int(e.time + shift)) for e in answered_stream(talk=20.0)]
        return [e for e in events if not (drop_end and e.event in ("HANGUP", "CHAN_END", "LINKEDID_END"))]

    store = CallLogStore(db, "n1", DIRECTORY)
    restart = answered_stream()[0].time + 100
    lost, ended, ongoing = call("1.1", 0, True), call("2.1", 0, False), call("3.1", 200, True)
    store.ingest(lost + ended + ongoing, "ami")
    assert store.finish_cut(frozenset({"3.1"}), restart + 500) == ["1.1"]  # 3.1 is still going
    assert store.finish_cut(frozenset(), restart) == []  # logged once; 3.1 has events after the cut-off
    with db.session() as session:
        rows = {row.linkedid: row for row in session.scalars(select(Call))}
    assert set(rows) == {"1.1", "2.1"}
    assert (rows["1.1"].status, rows["1.1"].ended_by, rows["1.1"].operator) == (Status.FAILED, EndedBy.SYSTEM,
                                                                                 "op101")
    assert (rows["2.1"].status, rows["2.1"].ended_by) == (Status.ANSWERED, EndedBy.CALLER)


def _call_rows(db: Database, node: str = "n1") -> dict[str, dict[str, object]]:
    """A node's stored calls' built fields by linkedid (without the row id, the node and the build time)."""
    with db.session() as session:
        rows = session.execute(select(Call.__table__).where(CALL.node == node)).mappings().all()
    return {str(row["linkedid"]): {k: v for k, v in row.items() if k not in ("id", "node", "built_at")}
            for row in rows}


def _fixture_streams() -> list[CelEvent]:
    names = ("apps_answered", "apps_abandoned", "apps_missed_queue_timeout", "apps_hangup_during_read",
             "apps_blind_transfer", "attended_transfer_local_pair", "cut_by_shutdown")
    return [event for name in names for event in load_jsonl(f"cel/{name}.jsonl")]


def test_a_batch_builds_every_call_as_building_each_alone_does(db: Database) -> None:
    events = _fixture_streams()
    together = CallLogStore(db, "n1", DIRECTORY).ingest(events, "ami")
    each = CallLogStore(db, "n2", DIRECTORY)  # the path every call took before batching, on another node
    with db.session() as session:
        journal.append(session, "n2", events, "ami")
    each._build_each(list(dict.fromkeys(event.linkedid for event in events)), cut=False)
    assert sorted(together) == sorted(_call_rows(db, "n2")) and len(together) >= 7
    assert _call_rows(db, "n1") == _call_rows(db, "n2")


def test_calls_cut_across_batches_and_replayed_are_built_as_from_the_whole_journal(db: Database) -> None:
    """Each batch journals what is new and builds the finished calls from what the journal had before it plus its
    own new events: the same calls as a build from the whole journal, whatever the cuts, replays and repeats."""
    events = _fixture_streams()
    store = CallLogStore(db, "n1", DIRECTORY)
    for start in range(0, len(events), 7):  # every call cut somewhere; each batch repeats 3 events of the last one
        batch = events[max(0, start - 3):start + 7]
        store.ingest(batch + batch[-2:], "ami")  # and an event twice in one batch
    with db.session() as session:
        journal.append(session, "n2", events, "ami")
    CallLogStore(db, "n2", DIRECTORY)._build_each(list(dict.fromkeys(event.linkedid for event in events)), cut=False)
    assert _count(db, CelJournal) == 2 * len({event.key for event in events})
    assert _call_rows(db, "n1") == _call_rows(db, "n2") and len(_call_rows(db, "n1")) >= 7


def test_append_says_which_events_are_new_and_history_is_the_journal(db: Database,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    events = _fixture_streams()
    half = len(events) // 2
    linkedids = {event.linkedid for event in events}
    with db.session() as session:
        journal.append(session, "n1", events[:half], "ami")
        last = session.scalar(select(func.max(CelJournal.id)))
    with db.session() as session:
        appended = journal.append_new(session, "n1", events[half - 20:] + events[half:half + 5], "ami")
        seen, new = {event.key for event in events[:half]}, []
        for event in events[half:]:  # the first of equal events (the captures have some), once
            if event.key not in seen:
                seen.add(event.key)
                new.append(event)
        assert appended.events == new and appended.before == last
        assert journal.history(session, "n1", linkedids, appended) == journal.events_for_many(session, "n1", linkedids)
    # Events already journaled that the look-up misses (as if another writer had stored them in between). SQLite
    # skips them: the new events in hand are then not the whole story, and the history is read from the journal.
    # PostgreSQL's COPY refuses the batch: the delivery tries it again after its backoff.
    monkeypatch.setattr(journal, "_journaled", lambda *_: set())
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(IntegrityError, match="uq_cel_journal_node_call_key"), db.session() as session:
            journal.append_new(session, "n1", events[-30:], "ami")
    else:
        with db.session() as session:
            again = journal.append_new(session, "n1", events[-30:], "ami")
            assert again.before is None
            assert journal.history(session, "n1", linkedids, again) == journal.events_for_many(session, "n1",
                                                                                                linkedids)
    assert _count(db, CelJournal) == len({event.key for event in events})


def test_a_call_whose_upsert_fails_costs_only_itself(db: Database, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    events = _fixture_streams()
    poisoned = events[0].linkedid

    def upsert_or_fail(session: object, node: str, records: list[CallRecord], now: datetime) -> None:
        if any(record.linkedid == poisoned for record in records):
            raise ValueError("a value the database refuses")
        upsert_calls(session, node, records, now)  # type: ignore[arg-type]

    monkeypatch.setattr(calllog, "upsert_calls", upsert_or_fail)
    built = CallLogStore(db, "n1", DIRECTORY).ingest(events, "ami")
    assert poisoned not in built and len(built) >= 6
    assert sorted(_call_rows(db)) == sorted(built)
    assert _count(db, CelJournal) == len({event.key for event in events})  # the whole batch journaled
    assert "storing each on its own" in caplog.text and f"call {poisoned}: building the call log failed" in caplog.text


def _firsts(events: list[CelEvent]) -> list[CelEvent]:
    """The first of equal events (by key), in order: what the journal keeps."""
    found: dict[str, CelEvent] = {}
    for event in events:
        found.setdefault(event.key, event)
    return list(found.values())


def test_events_likely_new_are_journaled_without_a_look_up_and_a_replay_still_says_which_were_new(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """AMI's batches skip the key look-up: SQLite skips a journaled key and its new rows say which went in;
    PostgreSQL's COPY is refused, undone to a savepoint and the batch looked up. The same answer either way."""
    events = _fixture_streams()
    half = len(events) // 2
    linkedids = {event.linkedid for event in events}
    looked_up: list[int] = []
    real = journal._journaled

    def look_up(session: Session, node: str, keys: dict[str, CelEvent]) -> set[str]:
        looked_up.append(len(keys))
        return real(session, node, keys)

    monkeypatch.setattr(journal, "_journaled", look_up)
    with db.session() as session:
        first = journal.append_new(session, "n1", events[:half], "ami", likely_new=True)
        last = session.scalar(select(func.max(CelJournal.id)))
    assert looked_up == [] and first.before == 0 and first.events == _firsts(events[:half])
    with db.session() as session:  # a replay after a crash: 20 events journaled already, and 5 twice
        appended = journal.append_new(session, "n1", events[half - 20:] + events[half:half + 5], "ami",
                                      likely_new=True)
        journaled = {event.key for event in events[:half]}
        assert appended.events == [e for e in _firsts(events[half:]) if e.key not in journaled]
        assert appended.before == last
        assert journal.history(session, "n1", linkedids, appended) == journal.events_for_many(session, "n1", linkedids)
    assert len(looked_up) == (1 if db.engine.dialect.name == "postgresql" else 0)
    with db.session() as session:
        assert journal.append_new(session, "n1", events, "ami", likely_new=True).events == []
    assert _count(db, CelJournal) == len({event.key for event in events})


def _journal_row(event: CelEvent, source: str) -> dict[str, object]:
    """The row a listener before migration 0021 journaled for the event (the key without the extra)."""
    return {"node": "n1", "event_key": old_key(event), "linkedid": event.linkedid, "uniqueid": event.uniqueid,
            "event": event.event, "event_time": event.time, "source": source, "payload": event.to_json()}


def test_the_journal_keeps_its_rows_and_its_dedupe_across_migration_0018_and_back(db: Database, db_url: str) -> None:
    """0018 makes the key unique per call: every row stays, a journaled event is still refused either way."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert

    from callcenter.settings import PROJECT_ROOT
    from callcenter.store.migrate import upgrade

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = db_url
    kept: dict[str, CelEvent] = {}
    for event in _firsts(_fixture_streams()):
        kept.setdefault(old_key(event), event)  # what a journal of then kept
    events = list(kept.values())
    db.dispose()
    command.downgrade(config, "0017")
    with db.session() as session:  # as the listener of then wrote them
        session.execute(insert(CelJournal), [_journal_row(e, "ami") for e in events])
    db.dispose()
    upgrade(db_url)
    with db.session() as session:
        assert journal.append_new(session, "n1", events, "file").events == []
        assert journal.append_new(session, "n1", events, "ami", likely_new=True).events == []
        linkedids = {event.linkedid for event in events}
        assert [e for call in journal.events_for_many(session, "n1", linkedids).values() for e in call] == \
            sorted(events, key=lambda e: (sorted(linkedids).index(e.linkedid), events.index(e)))
    db.dispose()
    command.downgrade(config, "0017")
    old_index = r"uq_cel_journal_node_key|failed: cel_journal\.node, cel_journal\.event_key"  # PostgreSQL | SQLite
    with pytest.raises(IntegrityError, match=old_index), db.session() as session:
        session.execute(insert(CelJournal), [_journal_row(events[0], "file")])
    assert _count(db, CelJournal) == len(events)


def _statements_of(db: Database, work: Callable[[Session], object]) -> list[tuple[str, Any]]:
    """Every statement ``work`` runs in a session, with its parameters."""
    ran: list[tuple[str, Any]] = []
    listener = lambda _c, _cur, statement, parameters, _ctx, _many: ran.append((statement, parameters))  # noqa: E731
    sa_event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with db.session() as session:
            work(session)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", listener)
    return ran


def _plans_of(db: Database, work: Callable[[Session], object]) -> str:
    """SQLite's plans for every statement ``work`` runs in a session, as they ran (their parameters bound)."""
    ran = _statements_of(db, work)
    with db.engine.connect() as connection:
        return "\n".join(str(row[-1]) for statement, parameters in ran
                         for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))


def test_the_journal_finds_call_ends_and_starts_through_their_own_indexes(db: Database, db_url: str) -> None:
    """The ends are indexed alone (partial indexes, migration 0020), by call and in journal order, and the channel
    starts by time (0022): SQLite matches the event name bound as a parameter against their predicate."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's plans (PostgreSQL's depend on its statistics of the moment)")
    store = CallLogStore(db, "n1", DIRECTORY)
    store.ingest(answered_stream(), "ami")
    linkedid = answered_stream()[0].linkedid
    assert "ix_cel_journal_node_end_call" in _plans_of(db, lambda s: journal.finished(s, "n1", [linkedid]))
    assert "ix_cel_journal_node_end_id" in _plans_of(db, lambda s: journal.finished_without_call(s, "n1"))
    sweep = _plans_of(db, lambda s: journal.unfinished_before(s, "n1", answered_stream()[-1].time))
    assert "ix_cel_journal_node_start_time" in sweep and "SCAN cel_journal" not in sweep


def test_postgresql_prepares_what_an_executemany_repeats_and_nothing_run_once(db: Database, db_url: str) -> None:
    """The calls' and the summary's upserts are one statement per row: prepared once, not parsed and planned
    again for every call; the history queries stay unprepared (planned for their parameters' values each time, see
    make_engine)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("psycopg's prepared statements")
    records = [build_call(answered_stream(), DIRECTORY),
               build_call([replace(e, linkedid="other.1") for e in answered_stream()], DIRECTORY)]
    with db.session() as session:
        upsert_calls(session, "n1", records, datetime.now(UTC))
        for _ in range(8):
            session.scalars(select(Call.id).where(Call.node == "n1")).all()
        prepared = session.scalars(text("SELECT statement FROM pg_prepared_statements")).all()
    assert sorted(statement.split("(")[0].strip() for statement in prepared) == ["INSERT INTO call_stats",
                                                                                 "INSERT INTO calls"]


def _postgresql_plans_of(db: Database, work: Callable[[Session], object]) -> list[str]:
    """PostgreSQL's plans (text) of the statements ``work`` runs on a call's journal rows, each planned for its
    parameters."""
    ran = _statements_of(db, work)
    with db.engine.connect() as connection:
        return ["\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
                for statement, parameters in ran if "cel_journal.linkedid" in statement]


def test_postgresql_probes_the_journal_call_by_call_whatever_its_statistics(db: Database, db_url: str) -> None:
    """A batch's look-ups of its calls' journal rows (the history a build reads, which calls have ended, the keys
    a file's events are checked against) probe the index (node, linkedid, ...) once per call, on a new journal
    that was never analyzed as well as after ANALYZE. Left to its statistics, PostgreSQL read the node's whole
    journal (the index scanned by node alone, every row filtered by the IN list) once per batch, while it had none."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's planner (SQLite always probes the index for an IN list)")
    payload = jsoncodec.dumps(answered_stream()[0].__dict__)
    with db.session() as session:  # 2,000 calls of 25 events; autovacuum must not analyze them meanwhile
        session.execute(text("ALTER TABLE cel_journal SET (autovacuum_enabled = false)"))
        session.execute(text(
            "INSERT INTO cel_journal (node, event_key, linkedid, uniqueid, event, event_time, source, payload) "
            "SELECT 'n1', 'k' || g, 'call-' || (g / 25), 'u', "
            "CASE g % 25 WHEN 24 THEN 'LINKEDID_END' ELSE 'CHAN_START' END, g, 'ami', CAST(:payload AS JSON) "
            "FROM generate_series(0, 49999) g"), {"payload": payload})
        through = int(session.scalar(select(func.max(CelJournal.id))) or 0) - 10_000  # the last 400 calls come later
    wanted = [f"call-{number}" for number in range(1000, 1180)]
    checked = [cel(Cel.CHAN_START, 0.0, linkedid=linkedid) for linkedid in wanted]

    def look_ups(session: Session) -> None:
        history = journal.events_for_many(session, "n1", wanted, through=through)
        assert sum(map(len, history.values())) == 180 * 25
        assert sorted(journal.finished(session, "n1", wanted)) == wanted
        assert journal.append_new(session, "n1", checked, "file").events == checked
        session.rollback()

    for analyzed in (False, True):
        plans = _postgresql_plans_of(db, look_ups)
        assert len(plans) == 3, plans
        for plan in plans:
            assert "Nested Loop" in plan and "Index Cond" in plan, plan
            condition = plan.split("Index Cond:")[1].splitlines()[0]
            assert "node" in condition and "linkedid" in condition, (analyzed, plan)
        with db.session() as session:
            session.execute(text("ANALYZE cel_journal"))
