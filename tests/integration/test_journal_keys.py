"""Migration 0021: journals keyed before the extra's digest went into the key are rekeyed, on SQLite and PostgreSQL,
so that replays after the upgrade (the spool, a backfill from an older file position) still dedupe against them."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from types import ModuleType

from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from callcenter.ami.events import CelEvent, Ordinals, from_file_line
from callcenter.settings import PROJECT_ROOT
from callcenter.store import cursors, journal
from callcenter.store.cursors import FilePosition
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade
from callcenter.store.models import CelJournal
from tests.factories import load_jsonl, old_key

REKEY = PROJECT_ROOT / "migrations" / "versions" / "0021_journal_key_with_extra.py"
DTMF = {"eventtype": "DTMF", "eventenum": "DTMF", "userdeftype": "Received", "name": "", "num": "0917363230",
        "dnid": "02621099", "exten": "02621099", "context": "plain-hotline", "channame": "PJSIP/citizen3-00000006",
        "appname": "Read", "appdata": "CASE,beep,8,,,8", "uniqueid": "1795989235.6", "linkedid": "1795989235.6",
        "peer": ""}


def old_ordinals(events: list[CelEvent]) -> list[CelEvent]:
    """The events numbered as the listener numbered them before migration 0021 (equal but for the extra)."""
    seen: dict[tuple[object, ...], int] = {}
    numbered = []
    for event in events:
        base = (event.linkedid, event.uniqueid, event.event, event.second, event.appdata)
        numbered.append(replace(event, ordinal=seen.get(base, 0)))
        seen[base] = numbered[-1].ordinal + 1
    return numbered


def _file_lines() -> list[str]:
    """A call's CEL lines: three digits typed in one second (5, 7 and 5 again, the last one a press of its own), then
    the rest of a captured call moved to its linkedid."""
    lines = [json.dumps({**DTMF, "eventtime": f"1795989236.{n}", "eventextra": json.dumps({"digit": d})})
             for n, d in ((1, "5"), (4, "7"), (7, "5"))]
    for event in load_jsonl("cel/apps_answered.jsonl")[-6:]:
        record = {"eventtype": event.event, "eventtime": str(event.time + 60), "uniqueid": DTMF["uniqueid"],
                  "linkedid": DTMF["linkedid"], "channame": event.channel, "appname": event.app,
                  "appdata": event.appdata, "eventextra": json.dumps(event.extra) if event.extra else ""}
        lines.append(json.dumps(record))
    return lines


def _config(db_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = db_url
    return config


def _keys(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(CelJournal.event_key).order_by(CelJournal.id)))


def test_old_keys_are_rekeyed_and_replays_after_the_upgrade_add_nothing(db: Database, db_url: str) -> None:
    parsed = [from_file_line(line) for line in _file_lines()]
    then = old_ordinals(parsed)
    assert [e.ordinal for e in then[:3]] == [0, 1, 2]  # what made the gap lose a digit
    db.dispose()
    command.downgrade(_config(db_url), "0020")
    with db.session() as session:  # as the listener of then journaled the call live, and saved the file's position
        session.execute(insert(CelJournal), [{
            "node": "n1", "event_key": old_key(e), "linkedid": e.linkedid, "uniqueid": e.uniqueid, "event": e.event,
            "event_time": e.time, "source": "ami", "payload": e.to_json()} for e in then])
        cursors.save(session, "n1", FilePosition("cel.json", 1, 100, 2, "f" * 64,
                                                 [[*then[0].base_key[:5], 2]]))  # the first two digits read
    db.dispose()
    upgrade(db_url)

    now = Ordinals()
    numbered = [now.assign(event) for event in parsed]
    assert [e.ordinal for e in numbered[:3]] == [0, 0, 1]
    assert _keys(db) == [e.key for e in numbered]
    with db.session() as session:
        assert journal.events_for(session, "n1", DTMF["linkedid"]) == numbered  # the payloads' ordinals too
        resumed = Ordinals.restore(cursors.load(session, "n1").ordinals)  # type: ignore[union-attr]
        after_position = [resumed.assign(event) for event in parsed[2:]]
        assert [e.key for e in after_position] == [e.key for e in numbered[2:]]  # the third digit is 1, not 0
        assert journal.append_new(session, "n1", after_position, "file").events == []
        assert journal.append_new(session, "n1", numbered, "file").events == []  # the file from its start
        assert journal.append_new(session, "n1", numbered, "ami", likely_new=True).events == []  # the spool
    assert len(_keys(db)) == len(parsed)

    db.dispose()
    command.downgrade(_config(db_url), "0020")
    assert _keys(db) == [old_key(e) for e in then]
    with db.session() as session:
        assert cursors.load(session, "n1").ordinals == [[*then[0].base_key[:5], 2]]  # type: ignore[union-attr]
    db.dispose()
    upgrade(db_url)


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rekey_0021", REKEY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migrations_frozen_key_is_the_codes() -> None:
    rekey = _migration()
    extras: list[dict[str, object]] = [
        {}, {"digit": "5", "duration_ms": 180}, {"duration_ms": 180, "digit": "5"}, {"name": "Nguyễn"},
        {"big": 123456789012345678901234567890}, {"deep": [[[[[]]]]] * 2}, {"deep": json.loads("[" * 300 + "]" * 300)},
        {"raw": "[1,"}, {"x": 1.5e300, "y": None}]
    for event in load_jsonl("cel_answered.jsonl"):
        for extra in extras:
            for ordinal in (0, 3):
                changed = replace(event, extra=extra, ordinal=ordinal)
                payload = json.loads(json.dumps(changed.to_json()))
                assert rekey._key(rekey._new_base(payload), ordinal) == changed.key
                assert rekey._key(rekey._old_base(payload), ordinal) == old_key(changed)
