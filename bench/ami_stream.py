"""A realistic AMI stream for the ingest benchmark, and a small AMI server (its own process) that serves it.

The stream is made of captured calls (tests/fixtures/cel, Asterisk 22.10 with the hotline's dialplan and IVR):
answered, abandoned in the queue, missed (queue timeout), IVR-only (hung up in the menu) and blind-transferred,
taken in turn and repeated with fresh uniqueids/linkedids (every id inside a call, extra fields included) until
there are ``calls`` calls. Each CEL event is written with the 23 headers a real Asterisk 22 CEL event has.

Non-CEL traffic: without an ``eventfilter`` a real call sends the listener's user (``read = call,agent``) 168 AMI
messages, 17 of them CEL (one captured answered call). No byte capture of those 151 is kept, so they are made up
from the call- and agent-class events such a call produces (Newchannel, Newstate, NewCallerid,
NewConnectedLine, DialBegin/DialState/DialEnd, BridgeCreate/Enter/Leave/Destroy, QueueCallerJoin/Leave,
AgentCalled/AgentConnect/AgentComplete, MusicOnHoldStart/Stop, HangupRequest, SoftHangupRequest, Hangup), each
with the channel headers Asterisk 22 puts on them (~20 lines, ~600 bytes), in the same 151:17 ratio per CEL event.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from callcenter.ami.events import CelEvent, from_file_line, headers_of

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "cel"
SCENARIOS = {"answered": "apps_answered", "abandoned": "apps_abandoned", "missed": "apps_missed_queue_timeout",
             "ivr_only": "apps_hangup_during_read", "transferred": "apps_blind_transfer"}
NON_CEL_PER_CEL = 151 / 17  # a captured real call: 168 AMI messages to the listener's user, 17 of them CEL
NON_CEL = ("Newchannel", "Newstate", "NewCallerid", "NewConnectedLine", "DialBegin", "DialState", "DialEnd",
           "BridgeCreate", "BridgeEnter", "BridgeLeave", "BridgeDestroy", "QueueCallerJoin", "QueueCallerLeave",
           "AgentCalled", "AgentConnect", "AgentComplete", "MusicOnHoldStart", "MusicOnHoldStop", "HangupRequest",
           "SoftHangupRequest", "Hangup", "NewAccountCode", "Newstate", "NewConnectedLine")
ID = re.compile(r"(?<![\d.])(\d{9,11})\.(\d+)(?![\d.])")
EOL = "\r\n"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"  # the first line the server sends


def scenario_lines(name: str) -> list[str]:
    """A captured call as Asterisk's cel_custom JSON lines."""
    return (FIXTURES / f"{SCENARIOS[name]}.jsonl").read_text(encoding="utf-8").splitlines()


def calls(count: int, start: float) -> Iterator[tuple[str, list[CelEvent]]]:
    """``count`` calls (scenario name, events), the scenarios in turn, each with fresh ids, one second apart."""
    captured = {name: scenario_lines(name) for name in SCENARIOS}
    for n, name in zip(range(count), itertools.cycle(SCENARIOS), strict=False):
        lines = captured[name]
        first = float(json.loads(lines[0])["eventtime"])
        # Every id of the captured call, wherever it appears, gets the call's own epoch part: unique per call.
        events = [from_file_line(_fresh_ids(line, 1_700_000_000 + n)) for line in lines]
        shift = start + n - first
        yield name, [_shifted(event, shift) for event in events]


def _fresh_ids(line: str, epoch: int) -> str:
    """The line with every id's epoch part replaced (event times are left alone)."""
    record = json.loads(line)
    for key, value in record.items():
        if key != "eventtime" and isinstance(value, str):
            record[key] = ID.sub(lambda m: f"{epoch}.{m.group(2)}", value)
    return json.dumps(record, ensure_ascii=False)


def _shifted(event: CelEvent, shift: float) -> CelEvent:
    when = event.time + shift
    return CelEvent(**{**event.to_json(), "time": when, "second": int(when)})


def cel_message(event: CelEvent) -> str:
    """The event as Asterisk 22 sends it over AMI (header names and order of a real CEL event; UTC EventTime)."""
    when = datetime.fromtimestamp(event.second, UTC).strftime("%Y-%m-%d %H:%M:%S")
    extra = json.dumps(event.extra, ensure_ascii=False) if event.extra else ""
    headers = (("Event", "CEL"), ("Privilege", "call,all"), ("Timestamp", f"{event.time:.6f}"),
               ("EventName", event.event), ("AccountCode", ""), ("CallerIDnum", event.cid_num),
               ("CallerIDname", event.cid_name), ("CallerIDani", event.cid_num), ("CallerIDrdnis", ""),
               ("CallerIDdnid", event.cid_dnid), ("Exten", event.exten), ("Context", event.context),
               ("Channel", event.channel), ("Application", event.app), ("AppData", event.appdata),
               ("EventTime", when), ("AMAFlags", "DOCUMENTATION"), ("UniqueID", event.uniqueid),
               ("LinkedID", event.linkedid), ("Userfield", ""), ("Peer", event.peer), ("PeerAccount", ""),
               ("Extra", extra))
    return "".join(f"{key}: {value}{EOL}" for key, value in headers) + EOL


def other_message(name: str, event: CelEvent) -> str:
    """A non-CEL call/agent event about the same channel, with the channel headers Asterisk 22 gives it."""
    headers = (("Event", name), ("Privilege", "call,all"), ("Timestamp", f"{event.time:.6f}"),
               ("Channel", event.channel), ("ChannelState", "6"), ("ChannelStateDesc", "Up"),
               ("CallerIDNum", event.cid_num), ("CallerIDName", event.cid_name),
               ("ConnectedLineNum", "<unknown>"), ("ConnectedLineName", "<unknown>"), ("Language", "vi"),
               ("AccountCode", ""), ("Context", event.context), ("Exten", event.exten), ("Priority", "1"),
               ("Uniqueid", event.uniqueid), ("Linkedid", event.linkedid), ("Queue", "hotline"),
               ("Position", "1"), ("Count", "1"), ("BridgeUniqueid", "5f1c2a7e-2b34-4c1d-9a6e-0d1f7c2b9e11"),
               ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"))
    return "".join(f"{key}: {value}{EOL}" for key, value in headers) + EOL


def ami_bytes(all_calls: list[list[CelEvent]], filtered: bool) -> bytes:
    """The calls as one AMI byte stream: CEL only (what an ``eventfilter`` lets through), or with the non-CEL
    messages a real call sends in the captured ratio, interleaved."""
    names = itertools.cycle(NON_CEL)
    owed = 0.0
    parts: list[str] = []
    for events in all_calls:
        for event in events:
            parts.append(cel_message(event))
            if not filtered:
                owed += NON_CEL_PER_CEL
                while owed >= 1:
                    parts.append(other_message(next(names), event))
                    owed -= 1
    return "".join(parts).encode("utf-8")


# -- the server (runs in a process of its own, so that the listener's CPU is measured alone) ---------------------

def serve(data: bytes, pipe: Connection) -> None:
    """Serve ``data`` to each client that logs in and asks CoreShowChannels (answered with no channels first, so
    that the listener's lost-call check runs before any event); send the port, then each start time, to ``pipe``."""
    asyncio.run(_serve(data, pipe))


async def _serve(data: bytes, pipe: Connection) -> None:
    server = await asyncio.start_server(lambda r, w: _session(r, w, data, pipe), "127.0.0.1", 0)
    pipe.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, pipe: Connection) -> None:
    writer.write(BANNER)
    streaming: asyncio.Task[None] | None = None
    try:
        while True:
            action = headers_of((await reader.readuntil(b"\r\n\r\n")).decode("utf-8", "replace"))
            name, action_id = action.get("action", "").lower(), action.get("actionid", "")
            writer.write(_answer(name, action_id).encode())
            if name == "coreshowchannels" and streaming is None:
                pipe.send(time.time())
                streaming = asyncio.create_task(_stream(writer, data))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        if streaming is not None:
            streaming.cancel()
        writer.close()


def _answer(name: str, action_id: str) -> str:
    if name == "login":
        return (f"Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n"
                "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 9\r\nLastReload: 9\r\n"
                "Status: Fully Booted\r\n\r\n")
    if name == "coreshowchannels":
        return (f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\nMessage: Channels will follow"
                f"\r\n\r\nEvent: CoreShowChannelsComplete\r\nActionID: {action_id}\r\nEventList: Complete\r\n"
                "ListItems: 0\r\n\r\n")
    if name == "ping":
        return f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\nTimestamp: {time.time():.6f}\r\n\r\n"
    return f"Response: Error\r\nActionID: {action_id}\r\nMessage: Invalid/unknown command\r\n\r\n"


async def _stream(writer: asyncio.StreamWriter, data: bytes, chunk: int = 64 * 1024) -> None:
    """Write in pieces that end at a message's end: an answer to an action (Ping) may come between two pieces."""
    start = 0
    while start < len(data):
        end = data.find(b"\r\n\r\n", start + chunk)
        end = len(data) if end < 0 else end + 4
        writer.write(data[start:end])
        await writer.drain()
        start = end
