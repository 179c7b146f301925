"""Call-backs are settled from the CEL journal of the nodes they may have started on, read by node and linkedid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callcenter.store import journal, worklist
from callcenter.store.db import Database
from callcenter.store.models import CALL, Call, CallbackAttempt, CallbackItem
from tests.factories import cel
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


def test_a_call_back_whose_end_never_comes_is_given_up_after_half_a_day(db: Database) -> None:
    lost, elsewhere, long_call = (_request(db, f"request-{n}") for n in range(3))
    _callback(db, lost, "cb-lost")  # Asterisk lost it: nothing journaled
    _callback(db, elsewhere, "cb-elsewhere")
    _callback(db, long_call, "cb-long")
    _journal(db, "z", "cb-elsewhere", citizen_answers=True)  # ended, on a node not followed (any more)
    _journal(db, "a", "cb-long", citizen_answers=True, ended=False)  # a long call, still going on
    _placed_hours_ago(db, "cb-lost", 12.5)
    _placed_hours_ago(db, "cb-elsewhere", 11.5)
    _placed_hours_ago(db, "cb-long", 2)

    with db.session() as session:
        assert worklist.settle_attempts(session, OPERATORS, ["a", "b"]) == 1
    assert _results(db) == {"cb-lost": "failed", "cb-elsewhere": "placed", "cb-long": "placed"}
    with db.session() as session:
        detail = session.scalars(select(CallbackAttempt.detail).where(CallbackAttempt.linkedid == "cb-lost")).one()
        assert "12 hours" in detail and "a, b" in detail
        assert session.scalars(select(CallbackItem).where(CallbackItem.call_id == lost)).one().closed_at is None

    _placed_hours_ago(db, "cb-elsewhere", 12.5)
    with db.session() as session:  # no node followed at all: the same rule
        assert worklist.settle_attempts(session, OPERATORS, []) == 1
    assert _results(db) == {"cb-lost": "failed", "cb-elsewhere": "failed", "cb-long": "placed"}
