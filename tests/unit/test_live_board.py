"""The live board's operator states and offers, pure: queue-member and agent events in (as Asterisk 22 sends them),
states out. The same flows run against the real sandbox in tests/browser/test_desk.py."""

from __future__ import annotations

from callcenter.calls.channels import Directory
from callcenter.live.board import AUTOPAUSE_REASON, Board, latest, merged
from callcenter.model.hotline import load
from callcenter.settings import Settings

MODEL = load(Settings().model_file)


def board(node: str = "") -> Board:
    return Board(Directory.from_model(MODEL), {"op101": "Operator 101", "op203": "Operator 203"},
                 frozenset({"op203"}), node)


def member(event: str, operator: str = "op203", status: str = "1", paused: str = "0", reason: str = "",
           queue: str = "operators") -> dict[str, str]:
    return {"Event": event, "Queue": queue, "MemberName": operator, "Interface": f"PJSIP/{operator}",
            "Status": status, "Paused": paused, "PausedReason": reason}


def test_agents_start_logged_out_and_desk_phones_unreachable() -> None:
    states = {op.id: op.state for op in board().operators.values()}
    assert states == {"op101": "unreachable", "op203": "logged_out"}


def test_logging_in_pausing_and_logging_out_follow_the_queue_s_events() -> None:
    live = board()
    assert live.member(member("QueueMemberAdded"), 1.0)
    op = live.operators["op203"]
    assert (op.state, op.queues) == ("free", ["operators"])
    assert live.member(member("QueueMemberPause", paused="1", reason="lunch"), 2.0)
    assert (op.state, op.paused_reason, op.since) == ("paused", "lunch", 2.0)
    assert not live.member(member("QueueMemberStatus", paused="1", reason="lunch"), 3.0)  # nothing new
    assert live.member(member("QueueMemberPause", paused="1", reason=AUTOPAUSE_REASON), 4.0)
    assert op.paused_reason == AUTOPAUSE_REASON
    assert live.member(member("QueueMemberRemoved", paused="0"), 5.0)
    assert (op.state, op.queues, op.paused_reason) == ("logged_out", [], "")


def test_an_operator_in_two_queues_is_logged_out_only_when_out_of_both() -> None:
    live = board()
    live.member(member("QueueMemberAdded"), 1.0)
    live.member(member("QueueMemberAdded", queue="vip"), 1.0)
    assert not live.member(member("QueueMemberRemoved"), 2.0)
    assert live.operators["op203"].state == "free"
    assert live.member(member("QueueMemberRemoved", queue="vip"), 3.0)
    assert live.operators["op203"].state == "logged_out"


def agent(event: str, linkedid: str = "1.1", operator: str = "op203") -> dict[str, str]:
    return {"Event": event, "Queue": "operators", "MemberName": operator, "Interface": f"PJSIP/{operator}",
            "Linkedid": linkedid, "CallerIDNum": "0905111222", "CallerIDName": "Hoa"}


def test_an_offer_rings_then_talks_then_becomes_the_last_call() -> None:
    live = board()
    assert live.agent_event(agent("AgentCalled"), 10.0)
    offer = live.offers["op203"]
    assert (offer.state, offer.caller_number, offer.since) == ("ringing", "0905111222", 10.0)
    assert not live.agent_event(agent("AgentConnect", linkedid="other"), 11.0)  # not this offer
    assert live.agent_event(agent("AgentConnect"), 12.0)
    assert live.offers["op203"].state == "talking"
    assert live.agent_event(agent("AgentComplete"), 40.0)
    assert "op203" not in live.offers
    assert (live.finished["op203"].linkedid, live.finished["op203"].state) == ("1.1", "ended")


def test_a_ring_out_drops_the_offer_without_a_last_call() -> None:
    live = board()
    live.agent_event(agent("AgentCalled"), 10.0)
    assert live.agent_event(agent("AgentRingNoAnswer"), 25.0)
    assert "op203" not in live.offers and "op203" not in live.finished


def test_unknown_operators_change_nothing() -> None:
    live = board()
    assert not live.agent_event(agent("AgentCalled", operator="op999"), 1.0)
    assert not live.member(member("QueueMemberAdded", operator="op999"), 1.0)


def test_several_nodes_show_every_call_with_its_node_and_each_operator_once() -> None:
    a, b = board("a"), board("b")
    a.connected = True
    # op203's phone registers on node b: a member on both (logged in everywhere), unreachable on a.
    a.member(member("QueueMemberAdded", status="5"), 1.0)
    b.member(member("QueueMemberAdded", status="1"), 2.0)
    a.agent_event(agent("AgentCalled", linkedid="a-1"), 3.0)  # offers carry their node
    assert a.offers["op203"].node == "a"
    shown = merged([a, b])
    assert (shown["connected"], shown["nodes"]) == (False, [{"name": "a", "connected": True},
                                                            {"name": "b", "connected": False}])
    ops = {op["id"]: op for op in shown["operators"]}
    assert ops["op203"]["nodes"] == {"a": "unreachable", "b": "free"}
    assert (ops["op203"]["state"], ops["op203"]["since"], ops["op203"]["queues"]) == ("free", 2.0, ["operators"])
    assert ops["op101"]["state"] == "unreachable"
    # A pause on any node shows (the queue's auto-pause must be seen to be resumed), and a call over a pause.
    b.member(member("QueueMemberPause", status="1", paused="1", reason=AUTOPAUSE_REASON), 4.0)
    a.member(member("QueueMemberStatus", status="1"), 5.0)
    op = next(op for op in merged([a, b])["operators"] if op["id"] == "op203")
    assert (op["state"], op["paused_reason"]) == ("paused", AUTOPAUSE_REASON)
    a.member(member("QueueMemberStatus", status="2"), 6.0)
    assert next(op for op in merged([a, b])["operators"] if op["id"] == "op203")["state"] == "on_call"
    b.connected = True
    assert merged([a, b])["connected"]


def test_the_latest_offer_across_nodes_is_the_desk_s() -> None:
    a, b = board("a"), board("b")
    a.agent_event(agent("AgentCalled", linkedid="a-1"), 3.0)
    b.agent_event(agent("AgentCalled", linkedid="b-1"), 7.0)
    found = latest([a.offers.get("op203"), b.offers.get("op203"), None])
    assert found is not None and (found.linkedid, found.node) == ("b-1", "b")
    assert latest([None, None]) is None
