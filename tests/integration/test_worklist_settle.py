"""Call-backs are settled from the CEL journal of the nodes they may have started on, read by node and linkedid."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callcenter.store import journal, worklist
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, CallbackAttempt, CallbackItem
from tests.factories import T0, cel
from tests.webclient import insert_calls, synthetic_calls

OPERATORS = {"op101", "op102"}


def _request(db: Database, linkedid: str) -> int:
    row = synthetic_calls(1, datetime.now(UTC) - timedelta(hours=1), 0.01)[0] | {
        "node": "a", "linkedid": linkedid, "status": "callback_requested", "operator": "", "talk_seconds": None}
    insert_calls(db, [row])
    with db.session() as session:
        call = session.scalars(select(Call).where(CALL.linkedid == linkedid)).one()
        worklist.claim(session, call.id, "op101")
        return int(call.id)


def _callback(db: Database, call_id: int, linkedid: str) -> None:
    with db.session() as session:
        worklist.start_attempt(session, session.get_one(Call, call_id), "op101", "op101", linkedid)


def _journal(db: Database, node: str, linkedid: str, citizen_answers: bool, ended: bool = True) -> None:
    """A call-back's events: the operator's phone answers, then (maybe) the citizen's channel."""
    operator, citizen = "PJSIP/op101-00000001", "PJSIP/outbound-00000002"
    events = [cel("CHAN_START", 0, uniqueid=linkedid, linkedid=linkedid, channel=operator),
              cel("ANSWER", 1, uniqueid=linkedid, linkedid=linkedid, channel=operator)]
    if citizen_answers:
        events.append(cel("ANSWER", 5, uniqueid=f"{linkedid}.2", linkedid=linkedid, channel=citizen))
    if ended:
        events.append(cel("LINKEDID_END", 60, uniqueid=linkedid, linkedid=linkedid, channel=operator))
    with db.session() as session:
        journal.append(session, node, events, "ami")


def _results(db: Database) -> dict[str, str]:
    with db.session() as session:
        return dict(session.execute(select(CallbackAttempt.linkedid, CallbackAttempt.result)).all())  # type: ignore[arg-type]


def test_call_backs_are_settled_from_their_own_nodes_journal(db: Database) -> None:
    reached, missed, running, elsewhere = (_request(db, f"request-{n}") for n in range(4))
    _callback(db, reached, "cb-reached")
    _callback(db, missed, "cb-missed")
    _callback(db, running, "cb-running")
    _callback(db, elsewhere, "cb-elsewhere")
    _journal(db, "b", "cb-reached", citizen_answers=True)  # on the second node
    _journal(db, "a", "cb-missed", citizen_answers=False)
    _journal(db, "a", "cb-running", citizen_answers=True, ended=False)  # still going on
    _journal(db, "z", "cb-elsewhere", citizen_answers=True)  # a node the hotline does not follow (any more)

    with db.session() as session:
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 2
    assert _results(db) == {"cb-reached": "reached", "cb-missed": "not_reached", "cb-running": "placed",
                            "cb-elsewhere": "placed"}
    with db.session() as session:
        items = {item.call_id: item for item in session.scalars(select(CallbackItem))}
        assert items[reached].closed_reason == "reached" and items[reached].closed_by == "op101"
        assert items[missed].closed_at is None and items[running].closed_at is None

    _journal(db, "a", "cb-running", citizen_answers=True)  # its end arrives: settled at the next look
    with db.session() as session:
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 1
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 0  # settled ones stay settled
    assert _results(db)["cb-running"] == "reached"


def _placed_hours_ago(db: Database, linkedid: str, hours: float) -> None:
    with db.session() as session:
        attempt = session.scalars(select(CallbackAttempt).where(CallbackAttempt.linkedid == linkedid)).one()
        attempt.started_at = datetime.now(UTC) - timedelta(hours=hours)


def _journal_goes_on(db: Database, node: str, hours_ago: float) -> None:
    """A later call's channel starts on ``node``: the listener has been hearing the node since."""
    linkedid = f"later-{node}-{hours_ago}"
    with db.session() as session:
        journal.append(session, node, [cel("CHAN_START", time.time() - hours_ago * 3600 - T0, uniqueid=linkedid,
                                           linkedid=linkedid)], "ami")


def test_a_call_back_whose_end_never_comes_is_given_up_once_the_journal_went_on_half_a_day(db: Database) -> None:
    lost, elsewhere, long_call, swept = (_request(db, f"request-{n}") for n in range(4))
    _callback(db, lost, "cb-lost")  # Asterisk never placed it: nothing journaled
    _callback(db, elsewhere, "cb-elsewhere")
    _callback(db, long_call, "cb-long")
    _callback(db, swept, "cb-swept")
    _journal(db, "z", "cb-elsewhere", citizen_answers=True)  # ended, on a node not followed (any more)
    _journal(db, "a", "cb-long", citizen_answers=True, ended=False)  # begun, never ended
    _journal(db, "b", "cb-swept", citizen_answers=True, ended=False)  # lost by Asterisk, its log built without
    insert_calls(db, [synthetic_calls(1, datetime.now(UTC) - timedelta(hours=13), 0.01)[0] | {
        "node": "b", "linkedid": "cb-swept", "status": "failed"}])
    for linkedid in ("cb-lost", "cb-elsewhere", "cb-long", "cb-swept"):
        _placed_hours_ago(db, linkedid, 13)

    with db.session() as session:  # the listener was away since: its backfill may still bring the ends
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 1
    assert _results(db) == {"cb-lost": "placed", "cb-elsewhere": "placed", "cb-long": "placed",
                            "cb-swept": "reached"}

    _journal_goes_on(db, "a", hours_ago=1.5)  # 11.5 hours after they were placed: not yet
    _journal_goes_on(db, "b", hours_ago=0.5)
    with db.session() as session:  # node a's listener may have been away since: its backfill may bring them
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 0
    _journal_goes_on(db, "a", hours_ago=0.5)
    with db.session() as session:
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 3
        details = dict(session.execute(select(CallbackAttempt.linkedid, CallbackAttempt.detail)).all())
        items = {item.call_id: item for item in session.scalars(select(CallbackItem))}
    assert _results(db) == {"cb-lost": "failed", "cb-elsewhere": "failed", "cb-long": "failed",
                            "cb-swept": "reached"}
    assert "never reached the call log of the nodes followed (a, b) in 12 hours" in details["cb-lost"]
    assert "began but had not ended 12 hours later" in details["cb-long"]
    assert items[lost].closed_at is None and items[swept].closed_reason == "reached"  # open for another call-back
