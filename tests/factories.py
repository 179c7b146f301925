"""Test factories: CEL events and streams, defined once for every test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from callcenter.ami.events import CelEvent, from_file_line

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1_795_000_000.0


def cel(event: str, at: float, uniqueid: str = "100.1", linkedid: str = "100.1", channel: str = "PJSIP/citizen1-1",
        **fields: Any) -> CelEvent:
    """One CEL event ``at`` seconds after T0."""
    extra = fields.pop("extra", {})
    return CelEvent(event=event, time=T0 + at, second=int(T0 + at), linkedid=linkedid, uniqueid=uniqueid,
                    channel=channel, cid_num=fields.pop("cid_num", "0912345678"),
                    cid_name=fields.pop("cid_name", "Nguyễn Thị Quỳnh Mai"), extra=extra, **fields)


def user(name: str, at: float, payload: str, **kw: Any) -> CelEvent:
    """A CELGenUserEvent with its k=v&k=v payload."""
    return cel(name, at, extra={"extra": payload}, app="CELGenUserEvent", **kw)


OP = {"uniqueid": "100.2", "channel": "PJSIP/op101-2", "cid_num": "101", "cid_name": "Operator 101"}


def answered_stream(line: str = "02621022", talk: float = 30.0) -> list[CelEvent]:
    """A caller reaching the queue and an IP-phone operator answering after 5 s, talking ``talk`` s."""
    return [
        cel("CHAN_START", 0, exten=line), user("HOTLINE", 0.01, f"line={line}"), cel("ANSWER", 0.02),
        user("QUEUE_ENTER", 1.0, "queue=operators"), cel("CHAN_START", 1.1, **OP), cel("ANSWER", 6.0, **OP),
        user("OPERATOR_ANSWER", 6.01, "endpoint=op101&device=ip_phone", **OP), cel("BRIDGE_ENTER", 6.02, **OP),
        cel("BRIDGE_ENTER", 6.03), cel("BRIDGE_EXIT", 6.03 + talk), cel("BRIDGE_EXIT", 6.04 + talk, **OP),
        cel("HANGUP", 6.05 + talk, extra={"hangupcause": 16}), cel("CHAN_END", 6.05 + talk),
        cel("HANGUP", 6.06 + talk, **OP), cel("CHAN_END", 6.06 + talk, **OP), cel("LINKEDID_END", 6.07 + talk, **OP),
    ]


def load_jsonl(name: str) -> list[CelEvent]:
    """A captured cel_custom stream from tests/fixtures."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [from_file_line(line) for line in lines if line.strip()]


def ami_headers(event: CelEvent, when_text: str) -> dict[str, str]:
    """The AMI CEL headers Asterisk would send for an event."""
    return {"Event": "CEL", "EventName": event.event, "EventTime": when_text, "UniqueID": event.uniqueid,
            "LinkedID": event.linkedid, "Channel": event.channel, "CallerIDnum": event.cid_num,
            "CallerIDname": event.cid_name, "Exten": event.exten, "Context": event.context,
            "Application": event.app, "AppData": event.appdata, "Extra": json.dumps(event.extra) if event.extra else ""}


def speech_like_wav(path: Path, seconds: float, start: float = 0.0) -> Path:
    """An 8 kHz mono 16-bit WAV of a tone with pink noise (ffmpeg), like MixMonitor writes; mtime set to ``start``."""
    import os
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    sources = [f"sine=frequency=320:duration={seconds}", f"anoisesrc=color=pink:amplitude=0.2:duration={seconds}"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", sources[0], "-f", "lavfi", "-i", sources[1],
                    "-filter_complex", "amix=inputs=2", "-ar", "8000", "-ac", "1", "-sample_fmt", "s16", str(path)],
                   check=True)
    if start:
        os.utime(path, (start, start))
    return path
