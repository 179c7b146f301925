"""Fuzzing the AMI read path and the CEL parsers: whatever arrives, nothing raises, hangs or mixes up calls.

Well-formed CEL events (random values, Vietnamese names) are interleaved with garbage (random headers, random
bytes) and fed in reads cut at random places, inside UTF-8 characters too. Every well-formed event must come out
intact exactly once; the protocol must never raise or close the link. The checks on the pending buffer hold with
or without a cap on the size of a pending message (another branch adds one).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from callcenter.ami.events import CelEvent, MalformedEvent, from_ami, from_file_line
from callcenter.ami.framing import SEPARATOR
from callcenter.ami.protocol import Utf8AMIProtocol
from tests.unit.fake_ami import BANNER, CEL_HEADERS, cel, encode
from tests.unit.fuzzing import LINE_TEXT, NAMES, cuts, fuzz
from tests.unit.test_ami_protocol import LOGIN_OK, FakeFactory, feed, make

pytestmark = pytest.mark.timeout(120)
UTC = ZoneInfo("UTC")
MARK = "fuzz-"  # UniqueIDs of the well-formed events; garbage never contains it
VALUE = st.text(LINE_TEXT, max_size=40).map(str.strip)  # panoramisk strips a message's ends: no edge spaces
KEY = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n:"), min_size=1, max_size=20)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))


@st.composite
def cel_event(draw: st.DrawFn, number: int) -> dict[str, str]:
    """The values of a well-formed CEL event, as Asterisk would send them, with random contents."""
    values = {"UniqueID": f"{MARK}{number}", "LinkedID": f"{MARK}{number}", "CallerIDname": draw(NAMES),
              "CallerIDnum": draw(VALUE), "EventName": draw(st.sampled_from(["CHAN_START", "ANSWER", "HANGUP"])),
              "EventTime": draw(TIMES).strftime("%Y-%m-%d %H:%M:%S"), "AppData": draw(VALUE),
              "Extra": draw(VALUE | st.just('{"hangupcause":16}')), "Exten": draw(VALUE)}
    return values


GARBAGE_MESSAGE = st.lists(st.tuples(KEY, VALUE), max_size=6).map(encode) | st.binary(max_size=300)


def interleave(events: list[dict[str, str]], garbage: list[bytes]) -> bytes:
    """Banner, login, then events and garbage alternating; each piece of garbage ends with a separator."""
    pieces = [BANNER, LOGIN_OK]
    for index, values in enumerate(events):
        pieces.append(garbage[index % len(garbage)] + SEPARATOR.encode() if garbage else b"")
        pieces.append(cel(**values))
    return b"".join(pieces)


def harmless(garbage: bytes) -> bool:
    """Garbage that cannot pass for one of our events, nor for Asterisk shutting down (which ends the link)."""
    text = garbage.decode("utf-8", "replace").lower()
    return MARK not in text and "shutdown" not in text


def delivered(factory: FakeFactory) -> dict[str, list[Any]]:
    """The dispatched CEL events of ours, by UniqueID."""
    found: dict[str, list[Any]] = {}
    for message in factory.dispatched:
        uniqueid = message.get("UniqueID")
        if isinstance(uniqueid, str) and uniqueid.startswith(MARK):
            found.setdefault(uniqueid, []).append(message)
    return found


def assert_pending_bounded(protocol: Utf8AMIProtocol, stream: bytes) -> None:
    pending = getattr(protocol, "_pending", "")  # the buffer may be renamed or capped elsewhere: then vacuous
    assert SEPARATOR not in pending and len(pending) <= len(stream)


@given(st.data())
@fuzz(120)
def test_events_among_garbage_arrive_intact_once(data: st.DataObject) -> None:
    events = [data.draw(cel_event(number)) for number in range(data.draw(st.integers(1, 5)))]
    garbage = [g for g in data.draw(st.lists(GARBAGE_MESSAGE, max_size=5)) if harmless(g)]
    stream = interleave(events, garbage)
    protocol, factory, transport = make()
    feed(protocol, stream, data.draw(cuts(len(stream))))
    found = delivered(factory)
    for values in events:
        [message] = found.pop(values["UniqueID"])
        # (An empty last header loses its ": " to the strip of the message's ends: absent reads as empty.)
        assert {key: message.get(key) or "" for key in values} == values
        assert from_ami(message, UTC).cid_name == values["CallerIDname"]
    assert not found and not transport.closed and factory.lost == []
    assert_pending_bounded(protocol, stream)


@given(st.binary(max_size=4000), st.lists(st.integers(0, 4000), max_size=40))
@fuzz(150)
@example(b"\r\n\r\n".join([b"Event: CEL\r\nEvent: CEL", b"Response: Follows", b"\xff\xfe\xfd", b": \r\n:"]), [3, 30])
def test_random_bytes_never_raise_nor_close_the_link(noise: bytes, cut_at: list[int]) -> None:
    protocol, factory, transport = make()
    feed(protocol, BANNER + noise, [cut for cut in cut_at if cut < len(noise)])
    if harmless(noise):
        assert not transport.closed and factory.lost == []
    assert_pending_bounded(protocol, BANNER + noise)
    after = cel(UniqueID=f"{MARK}after", CallerIDname="Nguyễn Thị Quỳnh Mai")
    feed(protocol, SEPARATOR.encode() + after, [])
    if harmless(noise):
        assert [m["CallerIDname"] for m in delivered(factory)[f"{MARK}after"]] == ["Nguyễn Thị Quỳnh Mai"]


# -- the CEL parsers ---------------------------------------------------------------------------------------------

JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3), max_leaves=10)
SURROGATES = st.text(st.characters(categories=["Cs", "Ll", "Nd"]), max_size=6)  # \udXXX escapes in JSON
CEL_NAMES = [name for name, _ in CEL_HEADERS] + ["Timestamp", "EventTime", "Extra"]
DEEP = "[" * 100_000  # json.loads raises RecursionError, not ValueError


def assert_storable(event: CelEvent) -> None:
    """What the journal does with an event: its key, and its JSON payload as UTF-8 (SQLite and PostgreSQL)."""
    assert len(event.key) == 40
    json.dumps(event.to_json(), ensure_ascii=False).encode("utf-8")


@given(st.dictionaries(st.sampled_from(CEL_NAMES) | KEY, st.text(max_size=30) | JSON.map(json.dumps), max_size=12))
@fuzz(200)
@example({"EventName": "X", "EventTime": "2026-11-29 11:38:07", "UniqueID": "1", "LinkedID": "1", "Extra": DEEP})
@example({"EventName": "X", "EventTime": "2026-11-29 11:38:07", "UniqueID": "1", "LinkedID": "1",
          "Extra": '{"name": "\\udc80"}'})
def test_from_ami_gives_an_event_or_malformed(headers: dict[str, str]) -> None:
    try:
        event = from_ami(headers, ZoneInfo("Asia/Ho_Chi_Minh"))
    except MalformedEvent:
        return
    assert_storable(event)


@given(st.dictionaries(st.sampled_from(["eventtype", "eventtime", "uniqueid", "linkedid", "name", "eventextra"]),
                       JSON | SURROGATES | st.floats().map(str), max_size=8).map(json.dumps) | st.text(max_size=200))
@fuzz(200)
@example(DEEP)
@example(json.dumps({"eventtype": "X", "eventtime": "1795952287.5", "uniqueid": "1", "linkedid": "1",
                     "name": "Nguy\udcc3n"}))
def test_from_file_line_gives_an_event_or_malformed(line: str) -> None:
    try:
        event = from_file_line(line)
    except MalformedEvent:
        return
    assert_storable(event)
