"""Test factories: CEL events and streams, defined once for every test."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from callcenter.ami.events import CelEvent, from_file_line
from callcenter.calls.channels import Directory
from callcenter.listener.service import CallLogStore
from callcenter.model.addresses import Address
from callcenter.model.contract import DeviceType
from callcenter.settings import NodeSettings
from callcenter.store.cursors import FilePosition
from callcenter.store.db import Database

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1_795_000_000.0
CALLER = "PJSIP/citizen1-1"
# The operators and lines of the shipped model, as the builder sees them.
DIRECTORY = Directory(operators={"op101": DeviceType.IP_PHONE, "op102": DeviceType.IP_PHONE,
                                 "op103": DeviceType.IP_PHONE, "op201": DeviceType.SOFTPHONE,
                                 "op202": DeviceType.SOFTPHONE},
                      lines=frozenset({"02621022", "1900868647"}))


def cel(event: str, at: float, uniqueid: str = "100.1", linkedid: str = "100.1", channel: str = CALLER,
        **fields: Any) -> CelEvent:
    """One CEL event ``at`` seconds after T0."""
    extra = fields.pop("extra", {})
    return CelEvent(event=event, time=T0 + at, second=int(T0 + at), linkedid=linkedid, uniqueid=uniqueid,
                    channel=channel, cid_num=fields.pop("cid_num", "0912345678"),
                    cid_name=fields.pop("cid_name", "Nguyễn Thị Quỳnh Mai"), extra=extra, **fields)


def user(name: str, at: float, payload: str, **kw: Any) -> CelEvent:
    """A CELGenUserEvent with its k=v&k=v payload."""
    return cel(name, at, extra={"extra": payload}, app="CELGenUserEvent", **kw)


OP: dict[str, Any] = {"uniqueid": "100.2", "channel": "PJSIP/op101-2", "cid_num": "101", "cid_name": "Operator 101"}
BRIDGE: dict[str, Any] = {"bridge_id": "b-1", "bridge_technology": "simple_bridge"}
QUEUE: dict[str, Any] = {"app": "Queue", "appdata": "operators,t,,,120"}


def hangup(at: float, source: str = CALLER, cause: int = 16, **kw: Any) -> CelEvent:
    """A HANGUP; ``source`` is who ended the call (Asterisk's hangupsource)."""
    return cel("HANGUP", at, extra={"hangupcause": cause, "hangupsource": source, "dialstatus": ""}, **kw)


def answered_stream(line: str = "02621022", talk: float = 30.0) -> list[CelEvent]:
    """Standard CEL (no user events): a caller reaching the queue and an IP-phone operator answering after 5 s,
    talking ``talk`` s; the caller hangs up."""
    return [
        cel("CHAN_START", 0, exten=line), cel("ANSWER", 0.02, app="Answer"), cel("APP_START", 1.0, **QUEUE),
        cel("STREAM_BEGIN", 1.0, **QUEUE), cel("CHAN_START", 1.1, **OP),
        cel("ANSWER", 6.0, app="AppQueue", **OP), cel("BRIDGE_ENTER", 6.02, extra=BRIDGE, app="AppQueue", **OP),
        cel("BRIDGE_ENTER", 6.03, extra=BRIDGE, **QUEUE), cel("BRIDGE_EXIT", 6.03 + talk, extra=BRIDGE, **QUEUE),
        cel("BRIDGE_EXIT", 6.04 + talk, extra=BRIDGE, **OP), cel("APP_END", 6.04 + talk, **QUEUE),
        hangup(6.05 + talk), cel("CHAN_END", 6.05 + talk), hangup(6.06 + talk, **OP),
        cel("CHAN_END", 6.06 + talk, **OP), cel("LINKEDID_END", 6.07 + talk, **OP),
    ]


def load_jsonl(name: str) -> list[CelEvent]:
    """A captured cel_custom stream from tests/fixtures."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [from_file_line(line) for line in lines if line.strip()]


def old_key(event: CelEvent) -> str:
    """The event's dedupe key as listeners before migration 0021 computed it (without the extra's digest)."""
    text = (f"{event.linkedid}\x1f{event.uniqueid}\x1f{event.event}\x1f{event.second}\x1f{event.appdata}"
            f"\x1f{event.ordinal}")
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def ami_headers(event: CelEvent, when_text: str, stamp: float | None = None) -> dict[str, str]:
    """The AMI CEL headers Asterisk 22 sends for an event, in its order (``stamp``: the Timestamp header that
    ``timestampevents = yes`` adds after Privilege)."""
    headers = {"Event": "CEL", "Privilege": "call,all"}
    if stamp is not None:
        headers["Timestamp"] = f"{stamp:.6f}"
    return {**headers, "EventName": event.event, "AccountCode": "", "CallerIDnum": event.cid_num,
            "CallerIDname": event.cid_name, "CallerIDani": event.cid_num, "CallerIDrdnis": "",
            "CallerIDdnid": event.cid_dnid, "Exten": event.exten, "Context": event.context, "Channel": event.channel,
            "Application": event.app, "AppData": event.appdata, "EventTime": when_text, "AMAFlags": "DOCUMENTATION",
            "UniqueID": event.uniqueid, "LinkedID": event.linkedid, "Userfield": "", "Peer": event.peer,
            "PeerAccount": "", "Extra": json.dumps(event.extra) if event.extra else ""}


def speech_like_wav(path: Path, seconds: float, start: float = 0.0, seed: int = -1) -> Path:
    """An 8 kHz mono 16-bit WAV of a tone with pink noise (ffmpeg), like MixMonitor writes; mtime set to ``start``;
    the noise is new each time unless ``seed`` fixes it (then the same bytes every time)."""
    import os
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    sources = [f"sine=frequency=320:duration={seconds}",
               f"anoisesrc=color=pink:amplitude=0.2:duration={seconds}:seed={seed}"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", sources[0], "-f", "lavfi", "-i", sources[1],
                    "-filter_complex", "amix=inputs=2", "-ar", "8000", "-ac", "1", "-sample_fmt", "s16", str(path)],
                   check=True)
    if start:
        os.utime(path, (start, start))
    return path


def file_call(n: int, *, end: bool = True) -> list[str]:
    """Call number ``n`` as Asterisk's cel_custom file has it: the captured answered call (17 lines) moved to its own
    uniqueids/linkedid and ``n`` × 600 s later; ``end=False`` leaves out its LINKEDID_END."""
    lines = []
    for line in (FIXTURES / "cel_answered.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key in ("uniqueid", "linkedid"):
            epoch, _, sequence = record[key].partition(".")
            record[key] = f"{int(epoch) + 600 * n}.{sequence}"
        record["eventtime"] = f"{float(record['eventtime']) + 600 * n:.6f}"
        if end or record["eventtype"] != "LINKEDID_END":
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return lines


class FlakyStore(CallLogStore):
    """The real call-log store, failing like an unreachable database while ``down`` (or after ``fail_after``
    successful ingests); it counts what it stored and what it refused."""

    def __init__(self, db: Database, node: str = "n1") -> None:
        super().__init__(db, node, DIRECTORY)
        self.down = False
        self.fail_after: int | None = None
        self.ingested: list[int] = []  # events per successful ingest
        self.refused = 0

    def ingest(self, events: Sequence[CelEvent], source: str, position: FilePosition | None = None) -> list[str]:
        if self.down or (self.fail_after is not None and len(self.ingested) >= self.fail_after):
            self.refused += 1
            raise OperationalError("INSERT INTO cel_journal", {}, ConnectionRefusedError("database down"))
        self.ingested.append(len(events))
        return super().ingest(events, source, position)


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"  # a document as cases' attachments see it


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (grey pixels), e.g. a photo posted with a case's progress."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def p90_bound(waits: Sequence[float]) -> float:
    """How far the summary's 90th percentile of ``waits`` may be from the exact one: the widest of the wait
    buckets holding the two waits around the 90% rank (callcenter.store.summary.wait_percentile)."""
    from callcenter.store.models import WAIT_EDGES
    from callcenter.store.summary import wait_bucket

    ordered = sorted(waits)
    low = int(0.9 * (len(ordered) - 1))
    widths = [WAIT_EDGES[i + 1] - WAIT_EDGES[i] if i + 1 < len(WAIT_EDGES) else float("inf")
              for i in (wait_bucket(ordered[low]), wait_bucket(ordered[min(low + 1, len(ordered) - 1)]))]
    return max(widths)


def free_port() -> int:
    """A TCP port free on the loopback now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_nodes(folder: Path, ports: Mapping[str, int]) -> list[NodeSettings]:
    """Asterisk nodes by name and AMI port on this host (their CEL file and spool paths under ``folder``)."""
    return [NodeSettings(name=name, ami=Address("127.0.0.1", port), cel_file=folder / "cel", spool=folder / "spool")
            for name, port in ports.items()]
