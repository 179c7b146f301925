"""Utf8AMIProtocol's read path, fed directly (no sockets): UTF-8 split across reads, malformed input.

The CEL event below is copied from a real Asterisk 22 AMI stream (an answered hotline call).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callcenter.ami.events import headers_of
from callcenter.ami.protocol import Utf8AMIProtocol

pytestmark = pytest.mark.timeout(20)

NAME = "Nguyễn Thị Quỳnh Mai"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n"
CEL = (
    b"Event: CEL\r\n"
    b"Privilege: call,all\r\n"
    b"Timestamp: 1795952287.189461\r\n"
    b"EventName: CHAN_START\r\n"
    b"AccountCode: \r\n"
    b"CallerIDnum: 0912345678\r\n"
    b"CallerIDname: " + NAME.encode() + b"\r\n"
    b"CallerIDani: \r\n"
    b"CallerIDrdnis: \r\n"
    b"CallerIDdnid: \r\n"
    b"Exten: 1900868647\r\n"
    b"Context: from-citizens\r\n"
    b"Channel: PJSIP/citizen2-00000004\r\n"
    b"Application: \r\n"
    b"AppData: \r\n"
    b"EventTime: 2026-11-29 11:38:07\r\n"
    b"AMAFlags: DOCUMENTATION\r\n"
    b"UniqueID: 1795952287.4\r\n"
    b"LinkedID: 1795952287.4\r\n"
    b"Userfield: \r\n"
    b"Peer: \r\n"
    b"PeerAccount: \r\n"
    b"Extra: \r\n"
    b"\r\n"
)
STREAM = BANNER + LOGIN_OK + CEL
NAME_START = STREAM.index(NAME.encode())
NAME_END = NAME_START + len(NAME.encode())
# Cuts that fall inside a multi-byte character (before a UTF-8 continuation byte).
MID_CHARACTER = [cut for cut in range(NAME_START, NAME_END) if STREAM[cut] & 0xC0 == 0x80]


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


class FakeFactory:
    """Stands in for the Manager: records what the protocol dispatches."""

    forgetable_actions = ("ping", "login")

    def __init__(self, fail_on: str | None = None) -> None:
        self.dispatched: list[Message] = []
        self.lost: list[object] = []
        self.awaiting_actions: list[Any] = []
        self.fail_on = fail_on

    def dispatch(self, message: Message) -> list[str]:
        if self.fail_on is not None and message.get("EventName") == self.fail_on:
            raise RuntimeError("dispatch blew up")
        self.dispatched.append(message)
        return []

    def connection_lost(self, exc: object) -> None:
        self.lost.append(exc)

    def names(self) -> list[str]:
        return [m["CallerIDname"] for m in self.dispatched if m.get("Event") == "CEL"]


def make(protocol_class: type[AMIProtocol] = Utf8AMIProtocol, factory: FakeFactory | None = None,
         protocol: AMIProtocol | None = None) -> tuple[AMIProtocol, FakeFactory, FakeTransport]:
    protocol = protocol or protocol_class()
    transport = FakeTransport()
    protocol.connection_made(transport)
    factory = factory or FakeFactory()
    protocol.factory = factory
    protocol.encoding = "utf8"  # what panoramisk's Manager sets on its protocol
    return protocol, factory, transport


def feed(protocol: AMIProtocol, data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *cuts})
    for start, end in itertools.pairwise(bounds):
        protocol.data_received(data[start:end])


def test_the_cuts_really_fall_inside_characters() -> None:
    assert len(MID_CHARACTER) == 6  # ễ, ị and ỳ are three bytes each: two inner cuts apiece
    for cut in MID_CHARACTER:
        with pytest.raises(UnicodeDecodeError):
            STREAM[NAME_START:cut].decode("utf-8")


@pytest.mark.parametrize("cut", range(NAME_START, NAME_END + 1))
def test_name_split_at_any_byte_arrives_intact(cut: int) -> None:
    protocol, factory, transport = make()
    feed(protocol, STREAM, [cut])
    assert factory.names() == [NAME]
    assert protocol.version == "11.0.0"
    assert protocol.malformed == 0
    assert not transport.closed


@pytest.mark.parametrize("cuts", [[a, b] for a in MID_CHARACTER for b in MID_CHARACTER if a < b])
def test_name_split_in_three_reads_arrives_intact(cuts: list[int]) -> None:
    protocol, factory, _ = make()
    feed(protocol, STREAM, cuts)
    assert factory.names() == [NAME]


def test_name_fed_one_byte_per_read_arrives_intact() -> None:
    protocol, factory, _ = make()
    feed(protocol, STREAM, list(range(len(STREAM))))
    assert factory.names() == [NAME]
    assert factory.dispatched[0]["LinkedID"] == "1795952287.4"


def test_banner_fed_one_byte_per_read_sets_the_version() -> None:
    protocol, _, _ = make()
    feed(protocol, STREAM, list(range(len(STREAM))))
    assert protocol.version == "11.0.0"


def test_plain_panoramisk_keeps_the_name_when_not_split() -> None:
    """Control for the next test: the harness itself does deliver the name through panoramisk."""
    protocol, factory, _ = make(AMIProtocol)
    feed(protocol, STREAM, [len(BANNER + LOGIN_OK)])
    assert factory.names() == [NAME]


@pytest.mark.parametrize("cut", MID_CHARACTER)
def test_plain_panoramisk_loses_a_character_split_across_reads(cut: int) -> None:
    """panoramisk 1.4 decodes each read on its own with errors='ignore': the split character vanishes."""
    protocol, factory, _ = make(AMIProtocol)
    feed(protocol, STREAM, [cut])
    [name] = factory.names()
    assert name != NAME
    assert len(name) == len(NAME) - 1  # silently one character short, no replacement mark


def test_several_events_in_one_read_and_one_event_over_many() -> None:
    protocol, factory, _ = make()
    two = CEL.replace(b"CHAN_START", b"ANSWER")
    feed(protocol, STREAM + CEL + two, [len(STREAM) + 7, len(STREAM) + len(CEL) + 3])
    assert [m["EventName"] for m in factory.dispatched if m.get("Event") == "CEL"] == [
        "CHAN_START", "CHAN_START", "ANSWER"]
    assert factory.names() == [NAME] * 3


def test_separator_split_between_its_two_line_ends() -> None:
    protocol, factory, _ = make()
    end = len(STREAM) - 1  # "...Extra: \r\n\r" | "\n"
    feed(protocol, STREAM, [end])
    assert factory.names() == [NAME]


def test_malformed_messages_are_skipped_and_the_next_event_delivered() -> None:
    protocol, factory, transport = make()
    garbage = (
        b"this is not AMI at all\r\nneither is this\r\n\r\n"  # lines without ": "
        b"Foo: bar\r\nBaz: qux\r\n\r\n"  # neither Event nor Response
        b"\xff\xfe\xfd\xc3(\r\n\r\n"  # invalid UTF-8, no header
        b"Event: CEL\r\nEvent: CEL\r\n\r\n"  # a repeated Event header: panoramisk's handle_message raises
        b"\r\n\r\n\r\n\r\n"  # empty messages
    )
    bad_name = CEL.replace(NAME.encode(), b"Nguy\xe1\xbb\x85n \xff\xfe Mai")  # valid, then invalid bytes
    feed(protocol, BANNER + LOGIN_OK + garbage + bad_name + CEL, [len(BANNER) + 5, len(BANNER + LOGIN_OK) + 30])
    assert protocol.malformed == 4
    assert factory.names() == ["Nguyễn \ufffd\ufffd Mai", NAME]  # invalid bytes become U+FFFD, not nothing
    assert not transport.closed
    assert factory.lost == []


def test_invalid_bytes_do_not_swallow_the_following_character() -> None:
    protocol, factory, _ = make()
    truncated = "Nguyễn".encode()[:-2]  # "Nguy" + the first byte of "ễ" + ... cut short
    feed(protocol, CEL.replace(NAME.encode(), truncated + "n Thị".encode()), [])
    assert factory.names() == ["Nguy\ufffdn Thị"]


def test_a_dispatch_that_raises_skips_only_that_message() -> None:
    protocol, factory, transport = make(factory=FakeFactory(fail_on="CHAN_START"))
    feed(protocol, STREAM + CEL.replace(b"CHAN_START", b"ANSWER"), [len(STREAM) + 3])
    assert [m["EventName"] for m in factory.dispatched if m.get("Event") == "CEL"] == ["ANSWER"]
    assert protocol.malformed == 1
    assert not transport.closed


# -- a message that never ends: capped, dropped, resynchronised, in linear time ------------------------------------

def _feed_without_blank_line(protocol: AMIProtocol, size: int, after_each: Any = None, read: int = 4096) -> None:
    """Feed ``size`` bytes of headers that never reach a blank line, ``read`` bytes at a time."""
    line = b"Junk: " + b"x" * 58 + b"\r\n"
    piece = line * (read // len(line))
    for _ in range(size // len(piece)):
        protocol.data_received(piece)
        if after_each is not None:
            after_each()


def test_a_message_without_a_blank_line_is_capped_dropped_and_the_stream_resynchronises(
        caplog: pytest.LogCaptureFixture) -> None:
    protocol, factory, transport = make(protocol=Utf8AMIProtocol(max_message_chars=64 * 1024))
    feed(protocol, BANNER + LOGIN_OK, [])
    held: list[int] = []
    _feed_without_blank_line(protocol, 1024 * 1024, lambda: held.append(protocol.pending_chars))
    assert max(held) <= 64 * 1024  # never more than the cap is kept
    protocol.data_received(b"Tail: of the monster\r\n\r\n" + CEL)
    assert factory.names() == [NAME]  # the next message after the blank line is read normally
    assert protocol.oversized == 1
    assert not transport.closed
    assert any("without a blank line" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)


def test_a_huge_message_costs_linear_time() -> None:
    """16 MiB without a blank line took 47 s when every read re-split all pending text; linear is well under 2 s
    (0.01 s here). The process's own CPU time, not the clock's: other work on the machine does not count."""
    protocol, factory, _ = make()
    feed(protocol, BANNER + LOGIN_OK, [])
    started = time.process_time()
    _feed_without_blank_line(protocol, 16 * 1024 * 1024)
    protocol.data_received(b"\r\n" + CEL)
    assert time.process_time() - started < 2.0
    assert factory.names() == [NAME]


def test_a_long_message_under_the_cap_is_delivered_whole() -> None:
    protocol, factory, _ = make()
    long_name = " ".join(["Nguyễn"] * 20_000)  # ~160 KB of one header, far over one read, under the 1 MiB default
    event = CEL.replace(NAME.encode(), long_name.encode())
    feed(protocol, BANNER + LOGIN_OK + event, list(range(0, len(BANNER + LOGIN_OK + event), 4096)))
    assert factory.names() == [long_name]
    assert protocol.oversized == 0


@pytest.mark.parametrize("cut", range(1, 4))
def test_resynchronises_on_a_blank_line_split_across_reads_after_a_drop(cut: int) -> None:
    protocol, factory, _ = make(protocol=Utf8AMIProtocol(max_message_chars=8192))
    feed(protocol, BANNER + LOGIN_OK, [])
    _feed_without_blank_line(protocol, 64 * 1024)
    feed(protocol, b"\r\n\r\n" + CEL, [cut])
    assert factory.names() == [NAME]
    assert protocol.oversized == 1


# -- only the events asked for -----------------------------------------------------------------------------------

NEWCHANNEL = (b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/citizen2-00000004\r\n"
              b"Uniqueid: 1795952287.4\r\nLinkedid: 1795952287.4\r\n\r\n")
SHOW_ITEM = (b"Event: CoreShowChannel\r\nActionID: action/7\r\nChannel: PJSIP/citizen2-00000004\r\n"
             b"Linkedid: 1795952287.4\r\n\r\n")
FULLY_BOOTED = b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
QUEUE_JOIN = b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nQueue: hotline\r\n\r\n"


def test_events_not_asked_for_are_dropped_before_parsing_but_answers_to_actions_are_kept() -> None:
    protocol, _factory, _ = make(protocol=Utf8AMIProtocol(events=frozenset({"CEL", "FullyBooted", "Shutdown"})))
    answered: list[Message] = []
    protocol.handle_message = lambda message: answered.append(message)  # type: ignore[method-assign]
    stream = BANNER + LOGIN_OK + FULLY_BOOTED + NEWCHANNEL + CEL + QUEUE_JOIN + SHOW_ITEM + NEWCHANNEL + CEL
    feed(protocol, stream, list(range(0, len(stream), 7)))
    assert [(m.get("Event") or m.get("Response")) for m in answered] == [
        "Success", "FullyBooted", "CEL", "CoreShowChannel", "CEL"]
    assert answered[2]["CallerIDname"] == NAME
    assert protocol.unwanted == 3 and protocol.malformed == 0


def test_without_a_list_every_event_is_parsed() -> None:
    protocol, factory, _ = make()
    feed(protocol, BANNER + LOGIN_OK + NEWCHANNEL + QUEUE_JOIN + CEL, [])
    assert [m.get("Event") for m in factory.dispatched] == ["Newchannel", "QueueCallerJoin", "CEL"]


# -- events taken direct: their text to their callback, no Message -----------------------------------------------

def test_events_taken_direct_reach_their_callback_as_text_and_the_rest_goes_on_as_messages() -> None:
    taken: list[str] = []
    protocol, factory, _ = make(protocol=Utf8AMIProtocol(events=frozenset({"CEL", "Newchannel"}),
                                                         direct={"CEL": taken.append}))
    answered: list[Message] = []
    protocol.handle_message = lambda message: answered.append(message)  # type: ignore[method-assign]
    show_cel = CEL.replace(b"Privilege: call,all\r\n", b"ActionID: action/8\r\n")  # answers an action of ours
    stream = BANNER + LOGIN_OK + CEL + NEWCHANNEL + show_cel + QUEUE_JOIN + CEL.replace(b"CHAN_START", b"ANSWER")
    feed(protocol, stream, list(range(0, len(stream), 11)))
    headers = [headers_of(text) for text in taken]
    assert [(each["eventname"], each["calleridname"]) for each in headers] == [("CHAN_START", NAME), ("ANSWER", NAME)]
    assert taken[0] == CEL.decode().strip()
    message = Message.from_line(taken[0])  # the headers panoramisk would have given
    assert headers[0] == {name.lower(): value for name, value in message.items() if name != "content"}
    assert [(m.get("Event") or m.get("Response")) for m in answered] == ["Success", "Newchannel", "CEL"]
    assert protocol.unwanted == 1 and protocol.malformed == 0 and not factory.dispatched


def test_a_direct_callback_that_raises_costs_only_its_event(caplog: pytest.LogCaptureFixture) -> None:
    taken: list[str] = []

    def take(text: str) -> None:
        name = headers_of(text)["eventname"]
        if name == "CHAN_START":
            raise RuntimeError("callback bug")
        taken.append(name)

    protocol, _, transport = make(protocol=Utf8AMIProtocol(direct={"CEL": take}))
    feed(protocol, STREAM + CEL.replace(b"CHAN_START", b"ANSWER"), [])
    assert taken == ["ANSWER"] and protocol.malformed == 1 and not transport.closed
    assert "callback bug" in caplog.text
