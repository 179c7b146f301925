"""Two Asterisk nodes feeding one PostgreSQL: a second sandbox Asterisk (its own root, ports, systemname, CEL file
and spool) beside the usual one, one listener following both, calls on both at once, two API processes over the
same database. Nothing may be mixed up: each call, CEL event and recording carries the node that had it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from callcenter.desk import availability, callback
from callcenter.desk.availability import DeskError
from callcenter.model.addresses import Address
from callcenter.model.contract import Role
from callcenter.model.hotline import HotlineModel
from callcenter.sandbox import asterisk, port_in_use
from callcenter.sandbox.baresip import SipAgent
from callcenter.settings import NodeSettings, Settings
from callcenter.store import accounts, desk_intents
from callcenter.store.db import Database
from callcenter.store.models import CelJournal, Recording
from tests.browser.conftest import CHROMIUM, FLAGS, WebServer, screenshot, sign_in, start_server, wait_js
from tests.integration.conftest import (
    MODEL,
    ROOT,
    SETTINGS,
    ListenerProcess,
    caller_number,
    wait_for_calls,
    wait_until,
)
from tests.webclient import PASSWORD

pytestmark = pytest.mark.sandbox
NODE_B = "nodeb"
PLAIN_ID = re.compile(r"^\d+\.\d+$")  # the first node sets no systemname


@dataclass(frozen=True)
class Node:
    """A sandbox Asterisk node: its root, model (its own addresses) and where the listener reads it."""

    name: str
    root: Path
    model: HotlineModel
    settings: Settings

    @property
    def cel_file(self) -> Path:
        return self.root / "var/log/asterisk/cel-custom/cel_callcenter.json"

    @property
    def spool(self) -> Path:
        return self.root / "var/spool/asterisk/monitor"

    @property
    def sip(self) -> str:
        return str(self.model.pbx.sip)

    def listener_entry(self) -> dict[str, str]:
        return {"name": self.name, "ami": str(self.model.pbx.ami), "cel_file": str(self.cel_file),
                "spool": str(self.spool)}


def _free_from(start: int) -> int:
    """The first port from ``start`` on that nothing listens on (TCP)."""
    return next(port for port in range(start, start + 200) if not port_in_use(port))


@pytest.fixture(scope="module")
def node_b(sandbox: Path) -> Iterator[Node]:
    """A second Asterisk in its own root (hard links to the first one's packages), on other ports, with
    ``systemname = nodeb``: its call ids are ``nodeb-<epoch>.<seq>``. Stopped after the module."""
    root = ROOT.parent / "node-b"
    asterisk.provision_node(ROOT, root)
    pbx = MODEL.pbx.model_copy(update={
        "sip": Address("127.0.0.1", _free_from(5070)),
        "ami": Address("127.0.0.1", _free_from(5039)),
        "webrtc": Address(MODEL.pbx.webrtc.host, MODEL.pbx.webrtc.port + 1)})
    model = MODEL.model_copy(update={"pbx": pbx})
    settings = SETTINGS.model_copy(update={"pbx": SETTINGS.pbx.model_copy(update={"systemname": NODE_B})})
    asterisk.restart_clean(root, model, settings)
    yield Node(NODE_B, root, model, settings)
    asterisk.stop(root)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_nodes_feed_one_postgresql_and_nothing_is_mixed_up(
        db: Database, db_url: str, node_b: Node, listener_factory: Callable[..., ListenerProcess],
        agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    node_a = Node(SETTINGS.ami.node, ROOT, MODEL, SETTINGS)
    nodes = (node_a, node_b)
    listener = listener_factory(CALLCENTER_NODES=json.dumps([node.listener_entry() for node in nodes])).start()
    listener.wait_log("AMI: logged in", count=2)  # one session per node
    assert f"(node {NODE_B})" in listener.text() and f"(node {node_a.name})" in listener.text()

    # The same two operators on both nodes (separate phones), two citizens calling each node, all at once.
    for node in nodes:
        for operator in ("op101", "op102"):
            agents(operator, register=True, wav_seconds=120, asterisk=node.sip)
    placed: dict[str, Node] = {}
    citizens = []
    for node in nodes:
        for _ in range(2):
            number = caller_number()
            citizen = agents("citizen1", wav_seconds=8, caller_number=number, asterisk=node.sip)
            placed[number] = node
            citizens.append(citizen)
    for citizen in citizens:
        citizen.dial("02621022")
    for citizen in citizens:
        citizen.wait_event("CALL_CLOSED", 60)

    calls = wait_for_calls(db, list(placed), timeout=60)
    for number, call in calls.items():
        node = placed[number]
        assert call.node == node.name, (number, call.node)
        assert call.status == "answered" and call.operator in ("op101", "op102"), (call.status, call.operator)
        if node is node_b:
            assert call.linkedid.startswith(f"{NODE_B}-"), call.linkedid
        else:
            assert PLAIN_ID.match(call.linkedid), call.linkedid
    assert len({(call.node, call.linkedid) for call in calls.values()}) == 4

    # Every journaled event of these calls is stored under its own node, and only there.
    with db.session() as session:
        journaled = {(node, linkedid) for node, linkedid in session.execute(
            select(CelJournal.node, CelJournal.linkedid).where(
                CelJournal.linkedid.in_([call.linkedid for call in calls.values()])))}
    assert journaled == {(call.node, call.linkedid) for call in calls.values()}

    # Each node's recordings worker stores its node's WAVs (ids prefixed on node b), and empties its spool.
    def stored() -> list[Recording] | None:
        with db.session() as session:
            rows = list(session.scalars(select(Recording).where(
                Recording.linkedid.in_([call.linkedid for call in calls.values()]),
                Recording.kind == "conversation", Recording.status == "stored")))
        return rows if len(rows) == 4 else None

    recordings = wait_until(stored, 60, "a stored recording of each call")
    assert isinstance(recordings, list)
    by_linkedid = {call.linkedid: call for call in calls.values()}
    store = tmp_path / "recordings"
    for row in recordings:
        call = by_linkedid[row.linkedid]
        assert row.node == call.node and row.call_id == call.id
        assert (store / (row.path or "")).is_file()
        if call.node == NODE_B:
            assert Path(row.source_path).name.startswith(f"{NODE_B}-"), row.source_path
    for call in calls.values():
        spool = node_b.spool if call.node == NODE_B else node_a.spool
        wait_until(lambda spool=spool, call=call: not (spool / call.linkedid).exists(), 30,  # type: ignore[misc]
                   f"the WAV of {call.linkedid} to leave {spool}")

    # Two API processes over the one database: both serve every node's calls and recordings; ?node= filters.
    # (The listener also backfilled earlier tests' calls from both CEL files: only this test's are compared.)
    with db.session() as session:
        user = accounts.create_user(session, accounts.NewUser("super1", Role.SUPERVISOR, PASSWORD))
        session.flush()
        token = accounts.create_token(session, user, "nodes test")
    servers = []
    for name in ("api-1", "api-2"):
        (tmp_path / name).mkdir()
        servers.append(start_server(db_url, tmp_path / name, CALLCENTER_RECORDINGS__STORE=str(store)))
    try:
        headers = {"Authorization": f"Bearer {token}"}
        for server in servers:
            listed = httpx.get(f"{server.url}/api/calls", headers=headers, params={"page_size": 50}, timeout=10)
            assert listed.status_code == 200, listed.text
            seen = {item["caller_number"]: item["node"] for item in listed.json()["items"]
                    if item["caller_number"] in placed}
            assert seen == {number: node.name for number, node in placed.items()}
            only_b = httpx.get(f"{server.url}/api/calls", headers=headers, params={"node": NODE_B, "page_size": 500},
                               timeout=10).json()["items"]
            assert {item["node"] for item in only_b} == {NODE_B}
            assert {item["caller_number"] for item in only_b} & set(placed) == {
                number for number, node in placed.items() if node is node_b}
        bad = httpx.get(f"{servers[0].url}/api/calls", headers=headers, params={"node": "../x"}, timeout=10)
        assert bad.status_code == 422
        for index, row in enumerate(sorted(recordings, key=lambda r: r.id)):
            server = servers[index % 2]  # each process serves every node's audio
            audio = httpx.get(f"{server.url}/api/recordings/{row.id}/audio", headers=headers, timeout=10)
            assert audio.status_code == 200, audio.text
            assert audio.content == (store / (row.path or "")).read_bytes()
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_live_board_and_the_desk_follow_both_nodes(
        db: Database, db_url: str, node_b: Node, agents: Callable[..., SipAgent], tmp_path: Path) -> None:
    """One API process, one AMI session per node: the board shows both nodes' calls and each operator's state on
    each node; pausing reaches both nodes; a call-back rings the phone on the node it is registered on; a node
    back from away is given the desk changes it missed, and a node that restarted the pause it forgot."""
    node_a = Node(SETTINGS.ami.node, ROOT, MODEL, SETTINGS)
    entries = [node.listener_entry() for node in (node_a, node_b)]
    settings = SETTINGS.model_copy(update={"nodes": [NodeSettings.model_validate(entry) for entry in entries]})
    for node in (node_a, node_b):
        agents("op101", register=True, wav_seconds=120, asterisk=node.sip)
    agents("op201", register=True, wav_seconds=120, asterisk=node_b.sip)  # its phone is on node b only
    with db.session() as session:
        user = accounts.create_user(session, accounts.NewUser("super2", Role.SUPERVISOR, PASSWORD))
        session.flush()
        token = accounts.create_token(session, user, "board test")
    headers = {"Authorization": f"Bearer {token}"}
    server = start_server(db_url, tmp_path, CALLCENTER_NODES=json.dumps(entries),
                          CALLCENTER_API__LIVE_BOARD="true")

    def board() -> dict[str, object]:
        answer = httpx.get(f"{server.url}/api/live", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def operator(op: str) -> dict[str, object]:
        return next(o for o in board()["operators"] if o["id"] == op)  # type: ignore[attr-defined,index]

    def states(op: str) -> dict[str, str]:
        return cast(dict[str, str], operator(op)["nodes"])

    try:
        wait_until(lambda: board()["connected"], 30, "the board's sessions with both nodes")
        assert board()["nodes"] == [{"name": node_a.name, "connected": True}, {"name": NODE_B, "connected": True}]
        wait_until(lambda: operator("op201")["nodes"] == {node_a.name: "unreachable", NODE_B: "free"}, 20,
                   "op201 free on node b, unreachable on node a")
        assert operator("op201")["state"] == "free"

        # The desk's pause and resume reach the operator's queue membership on both nodes.
        asyncio.run(availability.pause(settings, MODEL, "op101", "lunch"))
        wait_until(lambda: operator("op101")["nodes"] == {node_a.name: "paused", NODE_B: "paused"}, 20,
                   "op101 paused on both nodes")
        asyncio.run(availability.resume(settings, MODEL, "op101"))
        wait_until(lambda: operator("op101")["nodes"] == {node_a.name: "free", NODE_B: "free"}, 20,
                   "op101 free again on both nodes")

        # A call-back starts on the node the operator's phone is registered on; nowhere: a clear refusal.
        assert asyncio.run(callback.phone_node(settings, MODEL, "op201")) == node_b.model.pbx.ami
        assert asyncio.run(callback.phone_node(settings, MODEL, "op101")) in (MODEL.pbx.ami, node_b.model.pbx.ami)
        with pytest.raises(DeskError, match="not registered on any Asterisk node"):
            asyncio.run(callback.phone_node(settings, MODEL, "op202"))

        # A call on each node at once: the board shows both in conversation, each with its own node.
        placed = {}
        for node in (node_a, node_b):
            number = caller_number()
            placed[number] = node.name
            agents("citizen1", wav_seconds=30, caller_number=number, asterisk=node.sip).dial("02621022")

        def talking() -> dict[str, str]:
            calls = board()["calls"]["talking"]  # type: ignore[index]
            return {c["caller_number"]: c["node"] for c in calls if c["caller_number"] in placed}

        wait_until(lambda: talking() == placed, 60, "both calls in conversation on the board, with their nodes")
        _page_shows_both_nodes(server, placed, node_a.name)
        wait_until(lambda: not talking(), 60, "both calls gone from the board once they end")

        # Node b away while op203 logs out and op101 pauses: node a takes both. Back, node b restores op203's
        # membership from its astdb and op101 unpaused (a fixed desk, from its configuration); the API process
        # applies there what it missed.
        asyncio.run(availability.log_in(settings, MODEL, "op203", db))
        wait_until(lambda: set(states("op203")) == {node_a.name, NODE_B}
                   and "logged_out" not in states("op203").values(), 20, "op203 logged in on both nodes")
        asterisk.stop(node_b.root)
        wait_until(lambda: not board()["connected"], 30, "the board losing node b")
        asyncio.run(availability.log_out(settings, MODEL, "op203", db))
        asyncio.run(availability.pause(settings, MODEL, "op101", "lunch", db))
        with db.session() as session:
            assert [i.operator for i in desk_intents.missed_on(session, NODE_B)] == ["op101", "op203"]
        asterisk.start(node_b.root, node_b.model, node_b.settings)
        wait_until(lambda: operator("op203")["nodes"] == {node_a.name: "logged_out", NODE_B: "logged_out"}
                   and operator("op101")["nodes"] == {node_a.name: "paused", NODE_B: "paused"}, 60,
                   "node b back, with op203 logged out and op101 paused there too")
        with db.session() as session:
            assert desk_intents.missed_on(session, NODE_B) == []

        # Node b restarts while op101 is still at lunch: it brings the fixed desk back from its configuration, not
        # paused (nothing was missed this time); the API process pauses op101 there again.
        asterisk.stop(node_b.root)
        wait_until(lambda: not board()["connected"], 30, "the board losing node b again")
        asterisk.start(node_b.root, node_b.model, node_b.settings)
        wait_until(lambda: board()["connected"]
                   and operator("op101")["nodes"] == {node_a.name: "paused", NODE_B: "paused"}, 60,
                   "node b restarted, with op101's pause given again")
        asyncio.run(availability.resume(settings, MODEL, "op101", db))
        # (op101's phone registers on node b again only when baresip renews its registration)
        wait_until(lambda: states("op101")[node_a.name] == "free"
                   and states("op101")[NODE_B] in ("free", "unreachable"), 20, "op101 no longer paused on either node")
    finally:
        server.stop()
        # After a failure: leave node a as the other tests expect it (each on its own: one failing skips nothing).
        with contextlib.suppress(Exception):
            asyncio.run(availability.log_out(SETTINGS, MODEL, "op203"))
        with contextlib.suppress(Exception):
            asyncio.run(availability.resume(SETTINGS, MODEL, "op101"))


def _page_shows_both_nodes(server: WebServer, placed: dict[str, str], node_a: str) -> None:
    """The live page in a real Chromium (while both calls talk): each call's node beside its line, each
    operator's state on every node in its badge's title."""
    errors: list[str] = []
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB").new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(page, server, "super2")
            page.goto(f"{server.url}/live")
            rows = wait_js(page, """(() => {
                const rows = [...document.querySelectorAll('tbody[data-stage="talking"] tr[data-node]')]
                    .map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent, tr.dataset.node]);
                return rows.length >= 2 ? rows : null; })()""", timeout=20)
            shown = {number: (line, node) for cells, line, node in rows  # type: ignore[attr-defined]
                     for number in placed if cells.startswith(number)}
            assert {number: node for number, (_, node) in shown.items()} == placed
            assert all(line.endswith(f" · {placed[number]}") for number, (line, _) in shown.items()), shown
            badge = page.evaluate("""[...document.querySelectorAll('#operators tr')]
                .find((tr) => tr.cells[0].textContent.includes('(op201)')).querySelector('.pill').title""")
            assert badge.startswith(f"{node_a}: ") and f", {NODE_B}: " in badge, badge
            screenshot(page, "live-board-two-nodes")
        finally:
            chromium.close()
    assert not errors, errors
