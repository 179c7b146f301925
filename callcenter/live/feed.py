"""The API process's own AMI session for the live board (the listener's user: it reads call and agent events and
may ask reporting questions), and the fan-out of board snapshots to every open board page (server-sent events).

On every (re)connect the board is rebuilt from what Asterisk says it has (CoreShowChannels, QueueStatus); then CEL
and queue-member events keep it current. Each change is pushed at once; today's counters come from the database
every few seconds. The snapshot carries the Asterisk time of the last event it reflects, so the delay from
Asterisk to the page can be measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from panoramisk.message import Message
from sqlalchemy import func, select

from callcenter.ami.client import AmiConnection, AmiError
from callcenter.ami.events import MalformedEvent, from_ami
from callcenter.calls.channels import Directory, endpoint_of, is_person
from callcenter.live.board import Board, LiveCall
from callcenter.model.contract import IVR_APPS, QUEUE_APP
from callcenter.model.hotline import HotlineModel
from callcenter.settings import Settings
from callcenter.store.db import Database
from callcenter.store.models import CALL

log = logging.getLogger(__name__)
MEMBER_EVENTS = ("QueueMemberStatus", "QueueMemberPause", "QueueMemberAdded", "QueueMember")
COUNTERS_EVERY = 5.0


class LiveFeed:
    """Keeps a :class:`Board` from AMI and hands its snapshots to subscribers (one queue per open page)."""

    def __init__(self, settings: Settings, model: Callable[[], HotlineModel], db: Database) -> None:
        current = model()
        self.settings, self.model, self.db = settings, model, db
        self.board = Board(Directory.from_model(current), {op.id: op.name for op in current.operators.values()})
        self.zone = ZoneInfo(settings.api.default_timezone)
        self.counters: dict[str, int] = {}
        self.last_event: float | None = None
        self._subscribers: set[asyncio.Queue[str]] = set()

    def snapshot(self) -> dict[str, Any]:
        """What a board page shows now."""
        return {**self.board.snapshot(), "today": self.counters, "event_time": self.last_event,
                "sent_at": time.time()}

    def _push(self) -> None:
        data = json.dumps(self.snapshot())
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # a slow page skips to the newest state
            queue.put_nowait(data)

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

    def on_cel(self, message: Message) -> None:
        """A CEL event: update the board (a bad one is skipped)."""
        try:
            event = from_ami(message, ZoneInfo(self.settings.ami.timezone))
        except MalformedEvent:
            return
        if self.board.apply(event):
            self.last_event = event.time  # the event this snapshot shows (what latency is measured from)
            self._push()

    def on_member(self, message: Message) -> None:
        """A queue member's state changed."""
        if self.board.member(dict(message), time.time()):
            self._push()

    async def run(self) -> None:
        """Keep an AMI session and the counters going until cancelled."""
        counters = asyncio.create_task(self._count())
        delay = 1.0
        try:
            while True:
                with contextlib.suppress(AmiError, OSError):
                    await self._session()
                    delay = 1.0
                self.board.connected = False
                self._push()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        finally:
            counters.cancel()

    async def _session(self) -> None:
        connection = AmiConnection(self.settings.ami, self.model().pbx.ami)
        connection.on("CEL", self.on_cel)
        for name in MEMBER_EVENTS:
            connection.on(name, self.on_member)
        await connection.open()
        log.info("live board: connected to AMI")
        self.board.reset()
        await self._rebuild(connection)
        self.board.connected = True
        self._push()
        keepalive = asyncio.create_task(connection.keepalive())
        try:
            await connection.lost
        finally:
            keepalive.cancel()
            connection.close()

    async def _rebuild(self, connection: AmiConnection) -> None:
        """What Asterisk has now: channels (calls and their stages) and the queue's members."""
        channels = await connection.send_action({"Action": "CoreShowChannels"})
        rebuild_calls(self.board, [dict(m) for m in _messages(channels) if m.get("Event") == "CoreShowChannel"],
                      time.time())
        status = await connection.send_action({"Action": "QueueStatus"})
        for member in _messages(status):
            if member.get("Event") == "QueueMember":
                self.board.member({**dict(member), "MemberName": member.get("Name", "")}, time.time())

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
                        row.get("Exten", "") if row.get("Exten", "").isdigit() else "", started, since=started)
        app, bridge = row.get("Application", ""), row.get("BridgeId", "")
        call.stage = "queue" if app == QUEUE_APP else "ivr" if app in IVR_APPS else "arriving"
        call.operators = [endpoint_of(c["Channel"]) for c in channels if c.get("Linkedid") == linkedid
                          and c is not row and bridge and c.get("BridgeId") == bridge and is_person(c["Channel"])]
        if call.operators:
            call.stage = "talking"
        board.calls[linkedid] = call
