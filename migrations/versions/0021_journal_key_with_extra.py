"""The journal's dedupe keys recomputed with a digest of each event's extra, and the CEL file cursors' saved ordinal
counts converted to match (callcenter/ami/events.py)

Without the extra, two events of one channel and name in one second that differed only there (two DTMF digits,
two bridges) shared everything the key had but the ordinal: a live stream that missed the first gave the second
the first's key, and a backfill from the CEL file then dropped the first and journaled the second twice.

Every row's key is recomputed from its payload, a call at a time (a few hundred calls a step), with the ordinals
counted again in journal order among events equal in the new sense: what the AMI stream and the file reader now
give the same events. So a backfill after the upgrade, from wherever its cursor stands, dedupes against the rows
written before it. A row whose ordinal changes (the second of two such events was 1, is now 0) has its payload's
ordinal changed too. Most rows keep their ordinal, so events spooled but not yet stored when the listener of then
stopped get the same keys when replayed; the exception is an event spooled with ordinal 1 or more behind an event
of the same channel, name and second that differed in its extra: its replay gets the old ordinal in the new key
and may be journaled once more (stopping the listener while the database is up leaves its spool almost empty).

A cursor's counts said, per (linkedid, uniqueid, name, second, appdata), how many such events the reader had
passed in the last seconds before its position, not which extras they had: each count becomes counts per extra
from the first that many journal rows of that group (the rows the file reader passed, live or from the file,
journaled in the order Asterisk wrote them). Dropping them instead would give an equal event just after the
position ordinal 0 again, the key of one before it: that event would be lost.

The key and the digest are a frozen copy of the code's at this revision (a migration must not change when the code
does); tests/integration/test_store.py checks that they agree. The downgrade puts the former keys and counts back.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 10:00:00
"""
import hashlib
import json
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

CALLS = 500  # calls rekeyed per step: their rows are read, then updated in one executemany
journal = sa.table('cel_journal', sa.column('id', sa.BigInteger()), sa.column('node', sa.String()),
                   sa.column('linkedid', sa.String()), sa.column('uniqueid', sa.String()),
                   sa.column('event', sa.String()), sa.column('event_key', sa.String()),
                   sa.column('payload', sa.JSON()))
cursors = sa.table('cel_file_cursors', sa.column('node', sa.String()), sa.column('ordinals', sa.JSON()))
Payload = dict[str, Any]


def extra_digest(extra: Any) -> str:
    if not extra:
        return ''
    try:
        text = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(extra, sort_keys=True, ensure_ascii=False, separators=(',', ':')).encode('utf-8')
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def _old_base(p: Payload) -> tuple[Any, ...]:
    return (p['linkedid'], p['uniqueid'], p['event'], p['second'], p['appdata'])


def _new_base(p: Payload) -> tuple[Any, ...]:
    return (*_old_base(p), extra_digest(p.get('extra')))


def _key(base: tuple[Any, ...], ordinal: int) -> str:
    return hashlib.sha1('\x1f'.join(str(part) for part in (*base, ordinal)).encode('utf-8')).hexdigest()


def upgrade() -> None:
    _rekey(_new_base)
    _convert_cursors(_split_counts)


def downgrade() -> None:
    _rekey(_old_base)
    _convert_cursors(_merge_counts)


def _rekey(base: Callable[[Payload], tuple[Any, ...]]) -> None:
    """Every journal row's key from ``base`` and its ordinal among the call's rows of the same base."""
    bind = op.get_bind()
    for node in bind.scalars(sa.select(journal.c.node).distinct()).all():
        after = ''
        while linkedids := bind.scalars(sa.select(journal.c.linkedid).distinct().where(
                journal.c.node == node, journal.c.linkedid > after).order_by(journal.c.linkedid).limit(CALLS)).all():
            rows = bind.execute(sa.select(journal.c.id, journal.c.event_key, journal.c.payload).where(
                journal.c.node == node, journal.c.linkedid.between(linkedids[0], linkedids[-1]))
                .order_by(journal.c.id)).all()
            _write(bind, _rekeyed(rows, base))
            after = linkedids[-1]


def _rekeyed(rows: list[Any], base: Callable[[Payload], tuple[Any, ...]]) -> tuple[list[Payload], list[Payload]]:
    """The rows whose key changes, and those whose ordinal (so payload) changes too, as update parameters."""
    seen: dict[tuple[Any, ...], int] = {}
    keys, payloads = [], []
    for row_id, old, payload in rows:
        found = base(payload)
        ordinal = seen.get(found, 0)
        seen[found] = ordinal + 1
        key = _key(found, ordinal)
        if ordinal != payload.get('ordinal', 0):
            payloads.append({'row': row_id, 'key': key, 'payload': {**payload, 'ordinal': ordinal}})
        elif key != old:
            keys.append({'row': row_id, 'key': key})
    return keys, payloads


def _write(bind: sa.Connection, updates: tuple[list[Payload], list[Payload]]) -> None:
    keys, payloads = updates
    where = journal.c.id == sa.bindparam('row')
    if keys:
        bind.execute(sa.update(journal).where(where).values(event_key=sa.bindparam('key')), keys)
    if payloads:
        bind.execute(sa.update(journal).where(where).values(
            event_key=sa.bindparam('key'), payload=sa.bindparam('payload', type_=sa.JSON())), payloads)


def _convert_cursors(convert: Callable[[sa.Connection, str, list[list[Any]]], list[list[Any]]]) -> None:
    bind = op.get_bind()
    for node, ordinals in bind.execute(sa.select(cursors.c.node, cursors.c.ordinals)).all():
        bind.execute(sa.update(cursors).where(cursors.c.node == node).values(
            ordinals=convert(bind, node, list(ordinals or []))))


def _split_counts(bind: sa.Connection, node: str, ordinals: list[list[Any]]) -> list[list[Any]]:
    """[linkedid, uniqueid, name, second, appdata, count] -> [..., appdata, digest, count] per extra, from the first
    ``count`` journal rows of that group."""
    converted = []
    for entry in ordinals:
        if len(entry) != 6:  # converted already
            converted.append(entry)
            continue
        *group, count = entry
        linkedid, uniqueid, name, second, appdata = group
        statement = sa.select(journal.c.payload).where(
            journal.c.node == node, journal.c.linkedid == linkedid, journal.c.uniqueid == uniqueid,
            journal.c.event == name).order_by(journal.c.id)
        passed = [p for p in bind.scalars(statement) if p['second'] == second and p['appdata'] == appdata][:count]
        per_extra: dict[str, int] = {}
        for payload in passed:
            digest = extra_digest(payload.get('extra'))
            per_extra[digest] = per_extra.get(digest, 0) + 1
        converted.extend([*group, digest, n] for digest, n in per_extra.items())
    return converted


def _merge_counts(bind: sa.Connection, node: str, ordinals: list[list[Any]]) -> list[list[Any]]:
    """The counts per extra summed per (linkedid, uniqueid, name, second, appdata), as the code before kept them."""
    merged: dict[tuple[Any, ...], int] = {}
    for entry in ordinals:
        group = tuple(entry[:5])
        merged[group] = merged.get(group, 0) + int(entry[-1])
    return [[*group, count] for group, count in merged.items()]
