"""The sandbox's CEL-file watcher: a caller's events by type, read as the file grows, whatever else it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callcenter.sandbox.celwatch import CelWatch, CelWatchTimeout


def _line(num: str, event: str, at: float, extra: str = "", app: str = "") -> bytes:
    return json.dumps({"eventtype": event, "eventtime": str(at), "num": num, "eventextra": extra,
                       "appname": app}).encode() + b"\n"


def test_a_callers_events_are_found_by_type_extra_application_and_time(tmp_path: Path) -> None:
    path = tmp_path / "cel.json"
    path.write_bytes(b"".join([
        _line("0901", "CHAN_START", 10), _line("0902", "CHAN_START", 11), b"not json\n", b"[1]\n",
        _line("0901", "USER_DEFINED", 12, "IVR_TOPIC,key=2"), _line("0901", "APP_START", 13, app="Queue"),
        _line("0901", "APP_START", 14, app="Playback")]))
    watch = CelWatch(path)
    assert [e["eventtime"] for e in watch.events("0901", "CHAN_START")] == ["10"]
    assert [e["eventtime"] for e in watch.events("0901", "USER_DEFINED", contains="key=2")] == ["12"]
    assert watch.events("0901", "USER_DEFINED", contains="key=3") == []
    assert [e["eventtime"] for e in watch.events("0901", "APP_START", app="Queue")] == ["13"]
    assert [e["eventtime"] for e in watch.events("0901", "APP_START", since=14)] == ["14"]
    assert watch.events("0903", "CHAN_START") == []


def test_lines_are_read_as_they_are_completed_and_a_truncated_file_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "cel.json"
    whole = _line("0901", "CHAN_START", 10)
    path.write_bytes(whole[:20])  # Asterisk still writing the line
    watch = CelWatch(path)
    assert watch.events("0901", "CHAN_START") == []
    path.write_bytes(whole + _line("0901", "CHAN_START", 11))
    assert [e["eventtime"] for e in watch.events("0901", "CHAN_START")] == ["10", "11"]
    assert watch.wait("0901", "CHAN_START", count=2, timeout=1)["eventtime"] == "11"
    path.write_bytes(_line("0901", "HANGUP", 20))  # rotated: a shorter file
    assert [e["eventtime"] for e in watch.events("0901", "HANGUP")] == ["20"]
    with pytest.raises(CelWatchTimeout):
        watch.wait("0901", "HANGUP", count=2, timeout=0.3)
