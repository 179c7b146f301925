"""The API process's own AMI sessions for the live board (the listener's user: it reads call and agent events and
may ask reporting questions), and the fan-out of board snapshots to every open board page (server-sent events).

One session per Asterisk node (``CALLCENTER_NODES``, as the listener follows them; else the model's one AMI), each
keeping its node's board. On every (re)connect a node's board is rebuilt from what that Asterisk says it has
(CoreShowChannels, QueueStatus), and the desk changes the node lacks (missed while it was away; a standing pause it
forgot when it restarted) are applied there (:func:`callcenter.desk.availability.catch_up`), and every minute during
the session what it missed meanwhile; then CEL and queue-member events keep it current. Pages see the boards merged.
Each change is pushed at once; today's counters come from the database every few seconds. The snapshot carries the
Asterisk time of the last event it reflects, so the delay from Asterisk to the page can be measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from panoramisk.message import Message
from sqlalchemy import func, select

from callcenter.ami.client import AmiConnection, AmiError
from callcenter.ami.control import send_actions, wait_booted
from callcenter.ami.events import MalformedEvent, from_ami
from callcenter.calls.channels import Directory, endpoint_of, is_person
from callcenter.desk import availability
from callcenter.live.board import Board, LiveCall, Offer, latest, merged, operator_across
from callcenter.model.addresses import Address
from callcenter.model.contract import IVR_APPS, QUEUE_APP
from callcenter.model.hotline import HotlineModel
from callcenter.settings import NodeSettings, Settings
from callcenter.store import cases, desk_intents, worklist
from callcenter.store.db import Database
from callcenter.store.desk_intents import Intent
from callcenter.store.models import CALL

log = logging.getLogger(__name__)
MEMBER_EVENTS = ("QueueMemberStatus", "QueueMemberPause", "QueueMemberAdded", "QueueMemberRemoved", "QueueMember")
AGENT_EVENTS = ("AgentCalled", "AgentConnect", "AgentRingNoAnswer", "AgentComplete", "AgentDump")
COUNTERS_EVERY = 5.0
MISSED_EVERY = 60.0  # seconds between two looks, during a session with a node, for desk changes it missed meanwhile
LOOKUPS_KEPT = 500
BOOT_WAIT = 30.0  # seconds a node back may take to finish booting before the desk changes it lacks wait (for the
# session after this one)
PHONE_AWAY = frozenset({"unreachable", "logged_out"})  # states in which a node cannot tell that it has the phone


class LiveFeed:
    """Keeps a :class:`Board` from AMI and hands its snapshots to subscribers (one queue per open page)."""

    def __init__(self, settings: Settings, model: Callable[[], HotlineModel], db: Database) -> None:
        current = model()
        self.settings, self.model, self.db = settings, model, db
        agents = frozenset(op for queue in current.queues.values() for op in queue.agents)
        names = {op.id: op.name for op in current.operators.values()}
        self.nodes = settings.listener_nodes(current.pbx.ami)
        self.boards = [Board(Directory.from_model(current), names, agents, node.name) for node in self.nodes]
        self.zone = ZoneInfo(settings.api.default_timezone)
        self.counters: dict[str, int] = {}
        self.last_event: float | None = None
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._desks: dict[asyncio.Queue[str], str] = {}  # an open desk page's queue -> its operator
        self.lookups: dict[str, dict[str, Any]] = {}  # linkedid -> the caller's earlier calls and open requests
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """Whether every node's AMI session is up."""
        return all(board.connected for board in self.boards)

    def snapshot(self) -> dict[str, Any]:
        """What a board page shows now."""
        return {**merged(self.boards), "today": self.counters, "event_time": self.last_event,
                "sent_at": time.time()}

    def desk(self, operator: str) -> dict[str, Any]:
        """What an operator's desk shows now: their state, the call offered to them (the screen-pop: caller, line,
        topic, time waited, earlier calls, open call-back requests) and their last conversation (after-call work)."""
        model = self.model()
        me = operator_across(self.boards, operator) if operator in self.boards[0].operators else None

        def describe(offer: Offer | None) -> dict[str, Any] | None:
            if offer is None:
                return None
            line = model.lines.get(offer.line)
            return {**asdict(offer), "line_name": line.name if line else "",
                    **self.lookups.get(offer.linkedid, {"earlier": None, "requests": None, "cases": None})}

        wrapup = max((q.wrapup_seconds for q in model.queues.values() if q.admits(operator)), default=0)
        away = [board.node for board in self.boards if not board.connected]
        # Several nodes: a node away does not matter to an operator whose phone a connected node has.
        here = me is not None and any(board.connected and me["nodes"][board.node] not in PHONE_AWAY
                                      for board in self.boards)
        return {"connected": not away or here, "away": away, "operator": me,
                "offer": describe(latest([board.offers.get(operator) for board in self.boards])),
                "last": describe(latest([board.finished.get(operator) for board in self.boards])),
                "wrapup_seconds": wrapup,
                "sent_at": time.time()}

    def _push(self) -> None:
        data = json.dumps(self.snapshot())
        for queue in list(self._subscribers):
            _offer(queue, data)
        for queue, operator in list(self._desks.items()):
            _offer(queue, json.dumps(self.desk(operator)))

    async def subscribe_desk(self, operator: str) -> AsyncIterator[str]:
        """Desk states for one operator's page: the current one at once, then one per change."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=4)
        self._desks[queue] = operator
        try:
            yield json.dumps(self.desk(operator))
            while True:
                yield await queue.get()
        finally:
            self._desks.pop(queue, None)

    async def subscribe(self) -> AsyncIterator[str]:
        """Snapshots for one page: the current one at once, then one per change."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=4)
        self._subscribers.add(queue)
        try:
            yield json.dumps(self.snapshot())
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    def on_cel(self, board: Board, zone: ZoneInfo, message: Message) -> None:
        """A CEL event from ``board``'s node: update its board (a bad one is skipped)."""
        try:
            event = from_ami(message, zone)
        except MalformedEvent:
            return
        if board.apply(event):
            self.last_event = event.time  # the event this snapshot shows (what latency is measured from)
            self._push()

    def on_member(self, board: Board, message: Message) -> None:
        """A queue member's state changed on ``board``'s node."""
        if board.member(dict(message), time.time()):
            self._push()

    def on_agent(self, board: Board, message: Message) -> None:
        """A call offered to an operator (or its answer, ring-out, end) on ``board``'s node: the desk's pop-up."""
        fields = dict(message)
        if board.agent_event(fields, time.time()):
            self._push()
            linkedid = fields.get("Linkedid", "")
            if fields.get("Event") == "AgentCalled" and linkedid not in self.lookups:
                task = asyncio.get_running_loop().create_task(self._look_up(linkedid, fields.get("CallerIDNum", "")))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _look_up(self, linkedid: str, number: str) -> None:
        """The caller's earlier calls and open call-back requests, from the call log (for the screen-pop)."""
        try:
            found = await asyncio.to_thread(self._history, linkedid, number)
        except Exception:  # the database being down must not stop the desk: the pop-up says it is unknown
            log.exception("desk: looking up %s failed", number)
            return
        if len(self.lookups) > LOOKUPS_KEPT:
            self.lookups.pop(next(iter(self.lookups)))
        self.lookups[linkedid] = found
        self._push()

    def _history(self, linkedid: str, number: str) -> dict[str, Any]:
        with self.db.session() as session:
            earlier = [{"id": c.id, "started_at": c.started_at.timestamp(), "status": c.status, "topic": c.topic,
                        "operator": c.operator} for c in worklist.earlier_calls(session, number, but=linkedid)]
            requests = [{"id": c.id, "started_at": c.started_at.timestamp(), "status": c.status,
                         "callback_number": c.callback_number} for c in worklist.open_requests(session, number)]
            theirs = [{"number": c.number, "status": c.status, "topic": c.topic,
                       "updated_at": c.updated_at.timestamp()} for c in cases.of_caller(session, number)]
        return {"earlier": earlier, "requests": requests, "cases": theirs}

    async def run(self) -> None:
        """Keep an AMI session per node and the counters going until cancelled."""
        tasks = [asyncio.create_task(self._count())]
        tasks += [asyncio.create_task(self._follow(node, board)) for node, board in zip(self.nodes, self.boards,
                                                                                       strict=True)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _follow(self, node: NodeSettings, board: Board) -> None:
        """One node's session, reconnected with a growing pause while that Asterisk is away. Whatever ends it, the
        node's board forgets its calls, offers and queue states (what the page shows of a node that is away: nothing
        but that it is away; each operator's last conversation stays), and the other nodes go on."""
        delay = 1.0
        while True:
            try:
                await self._session(node, board)
                delay = 1.0
            except (AmiError, OSError):
                pass
            except Exception:  # a bug or bad data in one node's session must not stop the others
                log.exception("live board: the session with node %s failed", node.name)
            board.connected = False
            board.reset()
            self._push()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _session(self, node: NodeSettings, board: Board) -> None:
        api = self.settings.api
        address = node.ami if self.settings.nodes else self.model().pbx.ami  # one node: the model's, as reloaded
        connection = AmiConnection(self.settings.ami, address, username=api.live_username, secret=api.live_secret)
        zone = ZoneInfo(node.timezone or self.settings.ami.timezone)
        connection.on("CEL", lambda message: self.on_cel(board, zone, message))
        for name in MEMBER_EVENTS:
            connection.on(name, lambda message: self.on_member(board, message))
        for name in AGENT_EVENTS:
            connection.on(name, lambda message: self.on_agent(board, message))
        await connection.open()
        log.info("live board: connected to AMI of node %s", node.name)
        board.reset()
        await self._rebuild(connection, board)
        board.connected = True
        self._push()
        await self._catch_up(node, address, connection)
        keepalive = asyncio.create_task(connection.keepalive())
        missed = asyncio.create_task(self._missed_meanwhile(node, address, connection))
        try:
            await connection.lost
        finally:
            keepalive.cancel()
            missed.cancel()
            connection.close()

    async def _missed_meanwhile(self, node: NodeSettings, address: Address, connection: AmiConnection) -> None:
        """While the session lasts, every :data:`MISSED_EVERY` seconds, give the node the desk changes it missed
        meanwhile: one that another API process could not send it (its own link to the node failed while this one
        stayed up), or the newest change sent again after an older one landed late, which it refused."""
        while True:
            await asyncio.sleep(MISSED_EVERY)
            try:
                await self._catch_up(node, address, connection, only_missed=True)
            except Exception as exc:  # the node or the database away: the next round or session tries again
                log.warning("desk: could not give node %s the changes it missed (%r)", node.name, exc)

    @staticmethod
    async def _rebuild(connection: AmiConnection, board: Board) -> None:
        """What a node's Asterisk has now: channels (calls and their stages) and the queue's members."""
        channels = await connection.send_action({"Action": "CoreShowChannels"})
        rebuild_calls(board, [dict(m) for m in _messages(channels) if m.get("Event") == "CoreShowChannel"],
                      time.time())
        for member in await LiveFeed._queue_status(connection):
            board.member({**member, "MemberName": member.get("Name", "")}, time.time())

    async def _catch_up(self, node: NodeSettings, address: Address, connection: AmiConnection,
                        only_missed: bool = False) -> None:
        """Give a node, as a session with it begins, what it lacks of the desk's changes (with the control user):
        those it missed while away, each operator's latest (a change made meanwhile is applied after it: the older
        one may have landed after it), and the standing pauses, which a restart forgets for fixed desks
        (``only_missed``: the missed changes alone, as looked for during the session). What fails is logged and stays
        owed: tried again at the next look or session. Only once the node has booted: the queues restore their
        members from the astdb and the configuration while it boots."""
        model = self.model()
        try:
            intents = await asyncio.to_thread(self.db.run, desk_intents.missed_on if only_missed
                                              else desk_intents.owed_to, node.name)
        except Exception:  # the database away: the board goes on; the next look or session tries again
            log.exception("desk: could not read the desk changes node %s may lack", node.name)
            return
        if not intents:
            return
        try:
            if not only_missed:  # during the session the node has booted long since
                await wait_booted(self.settings, address, BOOT_WAIT)
        except AmiError as exc:  # this session ends; the next one tries again
            log.warning("desk: node %s lacks desk changes, which wait for it to boot: %s", node.name, exc)
            raise
        members = await self._queue_status(connection)  # as booted
        for intent in intents:
            current: Intent | None = intent
            theirs = availability.members_of(members, intent.operator)
            try:
                for _ in range(5):  # a change a second, from elsewhere, would keep this going: enough is enough
                    if current is None:
                        break
                    actions = availability.catch_up(model, current, theirs)
                    if actions:
                        await send_actions(self.settings, address, actions)
                        why = ("was away when %s changed their availability" if node.name in current.missed
                               else "had forgotten %s's pause (restarted)")
                        log.info("desk: node %s " + why + ": applied there now (%s)", node.name, current.operator,
                                 ", ".join(a["Action"] for a in actions))
                    current = await asyncio.to_thread(self.db.run, desk_intents.caught_up, current, node.name)
                    if current is not None:  # their membership now, after what was just sent
                        theirs = availability.members_of(
                            await self._queue_status(connection, availability.interface(current.operator)),
                            current.operator)
            except Exception as exc:  # refused, the link or the database gone: the board goes on
                log.warning("desk: node %s lacks a change of %s's availability and did not take it now (%r); "
                            "tried again when it next reconnects (a change it missed: within a minute)", node.name,
                            intent.operator, exc)

    @staticmethod
    async def _queue_status(connection: AmiConnection, member: str = "") -> list[dict[str, str]]:
        """The queues' members (QueueStatus), or one interface's."""
        status = await connection.send_action({"Action": "QueueStatus", **({"Member": member} if member else {})})
        return [dict(m) for m in _messages(status) if m.get("Event") == "QueueMember"]

    async def _count(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the database being down must not stop the board
                self.counters = await asyncio.to_thread(self._today)
                self._push()
            await asyncio.sleep(COUNTERS_EVERY)

    def _today(self) -> dict[str, int]:
        midnight = datetime.now(self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        with self.db.session() as session:
            rows = session.execute(select(CALL.status, func.count()).where(
                CALL.started_at >= midnight.astimezone(UTC), CALL.started_at < midnight + timedelta(days=1))
                .group_by(CALL.status)).all()
        return {status: int(count) for status, count in rows}


def _offer(queue: asyncio.Queue[str], data: str) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()  # a slow page skips to the newest state
    queue.put_nowait(data)


def _messages(answer: object) -> list[Any]:
    return answer if isinstance(answer, list) else [answer]


def _seconds(duration: str) -> float:
    parts = [int(p) for p in duration.split(":") if p.isdigit()]
    return float(sum(value * 60**power for power, value in enumerate(reversed(parts))))


def rebuild_calls(board: Board, channels: list[Mapping[str, str]], now: float) -> None:
    """Calls from CoreShowChannel rows: the caller's channel (uniqueid = linkedid) gives the stage by its
    application; other people's channels in the caller's bridge are its operators."""
    callers = {c["Linkedid"]: c for c in channels if c.get("Uniqueid") == c.get("Linkedid")}
    for linkedid, row in callers.items():
        started = now - _seconds(row.get("Duration", "0"))
        call = LiveCall(linkedid, row.get("CallerIDNum", ""), row.get("CallerIDName", ""),
                        row.get("Exten", "") if row.get("Exten", "").isdigit() else "", started, since=started,
                        node=board.node)
        app, bridge = row.get("Application", ""), row.get("BridgeId", "")
        call.stage = "queue" if app == QUEUE_APP else "ivr" if app in IVR_APPS else "arriving"
        call.queued = started if call.stage == "queue" else 0.0  # not known exactly after a reconnect
        call.operators = [endpoint_of(c["Channel"]) for c in channels if c.get("Linkedid") == linkedid
                          and c is not row and bridge and c.get("BridgeId") == bridge and is_person(c["Channel"])]
        if call.operators:
            call.stage = "talking"
        board.calls[linkedid] = call
