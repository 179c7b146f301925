"""Event ingest benchmark: AMI read path, CEL parsing, and journal + build + write, in events per second.

    python -m bench.ingest [--calls 2000] [--db URL]

Synthetic answered calls (16 standard CEL events each, like a real queue call) are serialised as AMI text, read through
panoramisk's own protocol (the raw read speed) and through callcenter's Utf8AMIProtocol, parsed into CelEvents,
then journaled and built into call logs by the listener's store in batches of 500.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from panoramisk.ami_protocol import AMIProtocol

from callcenter.ami.events import CelEvent, from_ami
from callcenter.ami.protocol import Utf8AMIProtocol
from callcenter.calls.builder import build_call
from callcenter.calls.channels import Directory
from callcenter.listener.service import BATCH, CallLogStore
from callcenter.model.contract import DeviceType, Status
from callcenter.store.db import Database
from callcenter.store.migrate import upgrade

T0 = 1_795_000_000
STEPS = [("CHAN_START", 0, "c"), ("ANSWER", 0, "c"), ("APP_START", 1, "c"), ("STREAM_BEGIN", 1, "c"),
         ("CHAN_START", 1, "o"), ("ANSWER", 6, "o"), ("BRIDGE_ENTER", 6, "o"),
         ("BRIDGE_ENTER", 6, "c"), ("BRIDGE_EXIT", 200, "c"), ("BRIDGE_EXIT", 200, "o"), ("HANGUP", 200, "c"),
         ("CHAN_END", 200, "c"), ("HANGUP", 200, "o"), ("CHAN_END", 200, "o"), ("APP_END", 200, "c"),
         ("LINKEDID_END", 200, "o")]
BRIDGE = '{"bridge_id":"b-%d","bridge_technology":"simple_bridge"}'
HANGUP = '{"hangupcause":16,"hangupsource":"PJSIP/citizen1-%08x","dialstatus":"ANSWER"}'
APPS = {"APP_START": "Queue", "STREAM_BEGIN": "Queue", "APP_END": "Queue", "BRIDGE_ENTER": "Queue",
        "BRIDGE_EXIT": "Queue"}


def _extra(name: str, n: int) -> str:
    if name.startswith("BRIDGE_"):
        return BRIDGE % n
    return HANGUP % n if name == "HANGUP" else ""


def ami_text(calls: int) -> bytes:
    """``calls`` calls as the bytes Asterisk would send over AMI."""
    out = []
    for n in range(calls):
        start = T0 + 300 * n
        for name, offset, who in STEPS:
            caller = who == "c"
            uniqueid = f"{T0 + n}.{2 * n + (0 if caller else 1)}"
            when = datetime.fromtimestamp(start + offset, UTC).strftime("%Y-%m-%d %H:%M:%S")
            out.append(
                f"Event: CEL\r\nPrivilege: call,all\r\nTimestamp: {start + offset}.{n % 1000:06d}\r\n"
                f"EventName: {name}\r\nCallerIDnum: {'0912' + str(n).zfill(6) if caller else '101'}\r\n"
                f"CallerIDname: {'Nguyễn Thị Quỳnh Mai' if caller else 'Operator 101'}\r\n"
                f"Exten: 02621022\r\nContext: hotline\r\nChannel: PJSIP/{'citizen1' if caller else 'op101'}-{n:08x}"
                f"\r\nApplication: {APPS.get(name, '') if caller else 'AppQueue'}\r\nAppData: operators,t"
                f"\r\nEventTime: {when}\r\nUniqueID: {uniqueid}"
                f"\r\nLinkedID: {T0 + n}.{2 * n}\r\nPeer: \r\nExtra: {_extra(name, n)}\r\n\r\n")
    return "".join(out).encode("utf-8")


class _Sink:
    """A factory stand-in that only collects dispatched messages."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def dispatch(self, message: Any) -> None:
        self.messages.append(message)


class _Transport:
    def close(self) -> None:
        pass


def read_all(protocol_class: type[AMIProtocol], data: bytes, chunk: int = 4096) -> list[Any]:
    """Feed ``data`` to a protocol in TCP-sized chunks; return the messages it dispatched."""
    protocol = protocol_class()
    protocol.connection_made(_Transport())
    sink = _Sink()
    protocol.factory = sink
    protocol.encoding = "utf8"
    for start in range(0, len(data), chunk):
        protocol.data_received(data[start:start + chunk])
    return sink.messages


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def ingest(db_url: str, events: list[CelEvent]) -> int:
    upgrade(db_url)
    store = CallLogStore(Database(db_url), "bench", Directory(operators={"op101": DeviceType.IP_PHONE},
                                                              lines=frozenset({"02621022"})))
    built = 0
    for start in range(0, len(events), BATCH):
        built += len(store.ingest(events[start:start + BATCH], "ami"))
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="synthetic calls (16 events each); default 2000")
    parser.add_argument("--db", help="database URL for the ingest stage (default: a temporary SQLite file)")
    args = parser.parse_args()
    data = ami_text(args.calls)
    count = args.calls * len(STEPS)
    print(f"{args.calls} calls, {count} CEL events, {len(data) / 1e6:.1f} MB of AMI text")
    raw, raw_s = timed(lambda: read_all(AMIProtocol, data))
    ours, ours_s = timed(lambda: read_all(Utf8AMIProtocol, data))
    utc = ZoneInfo("UTC")
    parsed, parse_s = timed(lambda: [from_ami(m, utc) for m in ours])
    assert len(raw) == len(ours) == count
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/bench.db"
        built, ingest_s = timed(lambda: ingest(url, parsed))
    assert built == args.calls
    check = build_call([e for e in parsed if e.linkedid == parsed[0].linkedid], Directory())
    assert check.status is Status.ANSWERED and check.operator == "op101", check  # the stream is a real call
    print(f"{'stage':<44}{'events/s':>12}{'calls/s':>10}")
    for name, seconds in (("AMI read, panoramisk AMIProtocol (raw)", raw_s),
                          ("AMI read, callcenter Utf8AMIProtocol", ours_s),
                          ("CEL parse (from_ami)", parse_s),
                          (f"journal + build + upsert ({url.split(':')[0]})", ingest_s)):
        print(f"{name:<44}{count / seconds:>12,.0f}{args.calls / seconds:>10,.0f}")


if __name__ == "__main__":
    main()
