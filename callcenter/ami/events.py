"""Parse CEL events, as AMI sends them or as Asterisk's cel_custom JSON file has them, into one shape.

The same event can reach the journal twice (live over AMI and again when backfilling from the file), so each event
gets a dedupe key built from what both sources carry identically: linkedid, uniqueid, name, the event's whole
second (AMI's EventTime has no fraction), the application data, a digest of the extra (parsed from the same JSON
text in both: Extra over AMI, eventextra in the file), and an ordinal among events equal in all of those.

The extra is in the key because without it two events of one channel and name in one second that differ only there
(two DTMF digits typed fast, a channel entering two bridges) were numbered 0 and 1 in each stream: a stream that
missed the first (an AMI gap) gave the second ordinal 0, the first's key, and the backfill then dropped the first
and doubled the second. (Migration 0021 rekeyed the journals written before.) The other fields stay out: where two
such events differ, the extra differs too (a digit, a bridge's id), and every field in the key is one more that
the two sources must render alike to the character (a caller-id name's, say).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson

from callcenter.store.jsoncodec import has_long_number

# The cel_custom JSON keys (asterisk-conf/cel_custom.conf) -> CelEvent fields (AMI's headers: see from_headers).
FILE_FIELDS = {"uniqueid": "uniqueid", "linkedid": "linkedid", "channame": "channel", "num": "cid_num",
               "name": "cid_name", "dnid": "cid_dnid", "exten": "exten", "context": "context", "appname": "app",
               "appdata": "appdata", "peer": "peer"}
AMI_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The journal's columns for a name and the ids (an id is "<systemname>-<epoch>.<sequence>", systemname at most 32):
# an event with a longer one cannot be stored, and PostgreSQL refusing it would hold up every event spooled after it.
STORED_MAX = 64
ORJSON_DEPTH = 255  # the nesting orjson writes


OrdinalKey = tuple[str, str, str, int, str, str]  # CelEvent.base_key: what the ordinal counts within


class MalformedEvent(ValueError):
    """A CEL event that lacks what the call log needs (name, time, ids); it is logged and skipped."""


@dataclass(frozen=True)
class CelEvent:
    """One CEL event, whichever source it came from."""

    event: str
    time: float  # epoch seconds, UTC, as precise as the source allows
    second: int  # the whole second of the event, identical from both sources
    linkedid: str
    uniqueid: str
    channel: str = ""
    cid_num: str = ""
    cid_name: str = ""
    cid_dnid: str = ""
    exten: str = ""
    context: str = ""
    app: str = ""
    appdata: str = ""
    peer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ordinal: int = 0

    @property
    def base_key(self) -> OrdinalKey:
        """What identifies the event apart from the ordinal."""
        return (self.linkedid, self.uniqueid, self.event, self.second, self.appdata, extra_digest(self.extra))

    @property
    def key(self) -> str:
        """The dedupe key stored with the event in the journal."""
        # base_key's fields and the ordinal joined by \x1f (written out: joining the tuple cost a third more).
        text = (f"{self.linkedid}\x1f{self.uniqueid}\x1f{self.event}\x1f{self.second}\x1f{self.appdata}"
                f"\x1f{extra_digest(self.extra)}\x1f{self.ordinal}")
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    @property
    def user_fields(self) -> dict[str, str]:
        """A user event's ``k=v&k=v`` payload (CELGenUserEvent extra), decoded."""
        return dict(parse_qsl(str(self.extra.get("extra", "")), keep_blank_values=True))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the journal, the event timeline and fixtures)."""
        return dict(self.__dict__)  # exactly the fields, in their order (no other attribute is ever set)


def extra_digest(extra: Mapping[str, Any]) -> str:
    """A short digest of an event's extra, the same for equal values whatever their keys' order: empty for none
    (most events), else 16 hex digits of BLAKE2b over the JSON with sorted keys (a collision between two extras of
    one channel's same-named events in one second is a 1 in 2**64 chance). Migration 0021 has a copy."""
    if not extra:
        return ""
    try:
        text = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, nesting beyond orjson's 255 levels
        text = json.dumps(extra, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.blake2b(text, digest_size=8).hexdigest()


FIELDS = tuple(item.name for item in fields(CelEvent))  # in their order
_NAMES = frozenset(FIELDS)


def event_of(values: Mapping[str, Any]) -> CelEvent:
    """The CelEvent of ``values`` (its fields by name), taken as its attributes when they are exactly its fields.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``: for 16 fields about 1.5 us,
    a fifth of parsing the event's AMI headers, and the listener makes each event twice (parsed, then read back
    from its spool), more for calls rebuilt from the journal. Values that are not exactly the fields go through
    ``__init__`` (its defaults, its TypeError for an unknown name)."""
    if values.keys() != _NAMES:
        return CelEvent(**values)
    event = object.__new__(CelEvent)
    event.__dict__.update(values)
    return event


def event_in_order(values: Sequence[Any]) -> CelEvent:
    """The CelEvent of ``values`` given in FIELDS order (every field), as :func:`event_of` makes it."""
    if len(values) != len(FIELDS):
        raise ValueError(f"{len(values)} values for the {len(FIELDS)} fields of a CEL event")
    event = object.__new__(CelEvent)
    event.__dict__.update(zip(FIELDS, values, strict=True))
    return event


def _json(text: str, finite: bool = False) -> Any:
    """``json.loads`` for text from outside, raising ValueError for anything the journal could not store either:
    bad JSON, nesting too deep to decode (RecursionError otherwise), or a ``\\udXXX`` escape of half a character,
    which decodes to a lone surrogate that has no UTF-8 (SQLite and PostgreSQL refuse it). ``finite``: NaN and
    infinities are read as null, as the spool's lines and the journal's payloads will say (orjson reads neither)."""
    # orjson first, a fifth of the time; it refuses all that is refused below (and NaN, which json reads). Not for
    # an integer beyond 64 bits (orjson reads a float, json the integer), nor for more than 255 levels of nesting
    # (orjson reads 1,024, json fewer; the spool's encoder, orjson, writes 255, json's fallback what json reads).
    if not has_long_number(text) and text.count("{") + text.count("[") <= ORJSON_DEPTH:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        value = json.loads(text, parse_constant=_null, parse_float=_finite_or_null) if finite else json.loads(text)
        if "\\u" in text:  # an escape may decode to half a character
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        else:  # every string in the value is then a piece of the text: the text must be valid (the cheap check)
            text.encode("utf-8")
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    return value


def _extra(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = _json(text, finite=True)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"raw": value}


def _null(_: str) -> None:
    return None


def _finite_or_null(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _require(values: Mapping[str, Any], *names: str) -> None:
    missing = [name for name in names if not values.get(name)]
    if missing:
        raise MalformedEvent(f"CEL event without {', '.join(missing)}")


def _too_long(name: str, linkedid: str, uniqueid: str) -> MalformedEvent:
    return MalformedEvent(f"CEL event {name[:80]!r} of call {linkedid[:80]!r} (channel {uniqueid[:80]!r}): a name or "
                          f"id longer than the journal's {STORED_MAX} characters")


def from_ami(headers: Mapping[str, Any], asterisk_tz: ZoneInfo) -> CelEvent:
    """Build a CelEvent from an AMI ``Event: CEL`` message (header names case-insensitive)."""
    return from_headers({str(k).lower(): ("" if v is None else str(v)) for k, v in headers.items()}, asterisk_tz)


def from_headers(lower: Mapping[str, str], asterisk_tz: ZoneInfo) -> CelEvent:
    """:func:`from_ami` for headers that are text already, with lower-case names."""
    get = lower.get
    return _made(get("eventname", ""), get("eventtime", ""), get("timestamp", ""), get("uniqueid", ""),
                 get("linkedid", ""), get("channel", ""), get("calleridnum", ""), get("calleridname", ""),
                 get("calleriddnid", ""), get("exten", ""), get("context", ""), get("application", ""),
                 get("appdata", ""), get("peer", ""), get("extra", ""), asterisk_tz)


def headers_of(text: str) -> dict[str, str]:
    """An AMI message's headers as a dict, names lower-cased: lines without ``: `` are left out and a header given
    twice keeps its last value, as panoramisk's Message reads them."""
    headers = {}
    for line in text.split("\r\n"):
        name, separator, value = line.partition(": ")
        if separator:
            headers[name.lower()] = value
    return headers


# A CEL event exactly as Asterisk 22 writes it (manager.c's Event, Privilege, Timestamp with timestampevents,
# SystemName with a systemname; cel_manager.c's fields in their order, UserDefType with show_user_defined, Extra
# last: the protocol strips the message, so an empty Extra ends in "Extra:").
CEL_LAYOUT = re.compile(
    "Event: CEL\r\nPrivilege: .*(?:\r\nTimestamp: (.*))?(?:\r\nSystemName: .*)?"
    "\r\nEventName: (.*)\r\nAccountCode: .*\r\nCallerIDnum: (.*)"
    "\r\nCallerIDname: (.*)\r\nCallerIDani: .*\r\nCallerIDrdnis: .*"
    "\r\nCallerIDdnid: (.*)\r\nExten: (.*)\r\nContext: (.*)\r\nChannel: (.*)"
    "\r\nApplication: (.*)\r\nAppData: (.*)\r\nEventTime: (.*)\r\nAMAFlags: .*"
    "\r\nUniqueID: (.*)\r\nLinkedID: (.*)\r\nUserfield: .*\r\nPeer: (.*)"
    "\r\nPeerAccount: .*(?:\r\nUserDefType: .*)?(?:\r\nExtra:(?: (.*))?)?\\Z")


def from_text(text: str, asterisk_tz: ZoneInfo) -> CelEvent:
    """The CelEvent of an AMI CEL message's text (as the protocol cuts it, stripped): the same event as
    ``from_headers(headers_of(text))``, read in one match when the message has Asterisk's own layout (splitting
    the lines and looking each header up was the listener's largest cost before storing). Any other layout (header
    case, order, another header) is split line by line."""
    match = CEL_LAYOUT.match(text)
    if match is None:
        return from_headers(headers_of(text), asterisk_tz)
    stamp, name, cid_num, cid_name, dnid, exten, context, channel, app, appdata, eventtime, uniqueid, linkedid, \
        peer, extra = match.groups()
    return _made(name, eventtime, stamp or "", uniqueid, linkedid, channel, cid_num, cid_name, dnid, exten,
                 context, app, appdata, peer, extra or "", asterisk_tz)


def _made(name: str, eventtime: str, stamp_text: str, uniqueid: str, linkedid: str, channel: str, cid_num: str,
          cid_name: str, dnid: str, exten: str, context: str, app: str, appdata: str, peer: str, extra: str,
          asterisk_tz: ZoneInfo) -> CelEvent:
    """The event of its AMI header values (absent ones empty): its attributes set in one go, the same values as
    ``CelEvent(...)`` gives (a helper per field cost as much as splitting the message's lines)."""
    if not (name and eventtime and uniqueid and linkedid):
        _require({"eventname": name, "eventtime": eventtime, "uniqueid": uniqueid, "linkedid": linkedid},
                  "eventname", "eventtime", "uniqueid", "linkedid")
    if len(name) > STORED_MAX or len(linkedid) > STORED_MAX or len(uniqueid) > STORED_MAX:
        raise _too_long(name, linkedid, uniqueid)
    wall, naive_utc = _wall_clock(eventtime)
    stamp = _finite(stamp_text)
    second = _epoch_second(wall, naive_utc, stamp, asterisk_tz)
    # Timestamp is when the event was sent, to the microsecond: the precise time when inside the event's second.
    when = stamp if stamp is not None and int(stamp) == second else float(second)
    event = object.__new__(CelEvent)
    event.__dict__.update({  # FIELDS, in order
        "event": name, "time": when, "second": second, "linkedid": linkedid, "uniqueid": uniqueid,
        "channel": channel, "cid_num": cid_num, "cid_name": cid_name, "cid_dnid": dnid, "exten": exten,
        "context": context, "app": app, "appdata": appdata, "peer": peer,
        "extra": _extra(extra) if extra else {}, "ordinal": 0})
    return event


@lru_cache(maxsize=4096)
def _wall_clock(text: str) -> tuple[datetime, int]:
    """AMI's EventTime read, and its seconds since 1970 as if it were UTC (events of the same second share the
    text: strptime is slow)."""
    try:
        wall = datetime.strptime(text, AMI_TIME_FORMAT)
    except ValueError as exc:
        raise MalformedEvent(f"bad EventTime {text!r}") from exc
    return wall, int(wall.replace(tzinfo=UTC).timestamp())


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 < value < 2**40 else None


def _epoch_second(wall: datetime, naive_utc: int, stamp: float | None, asterisk_tz: ZoneInfo) -> int:
    """EventTime is Asterisk's local wall-clock time (cel_manager ignores cel.conf's dateformat). With the UTC
    Timestamp header (timestampevents=yes) the zone offset is read off the two, rounded to a quarter hour, so a
    wrong ``ami.timezone`` setting cannot shift calls; without it the setting decides."""
    if stamp is None:
        return int(wall.replace(tzinfo=asterisk_tz).timestamp())
    offset = round((naive_utc - stamp) / 900) * 900
    return naive_utc - offset


def from_file_line(line: str) -> CelEvent:
    """Build a CelEvent from one line of the cel_custom JSON file."""
    try:
        record = _json(line)
    except ValueError as exc:
        raise MalformedEvent(f"not JSON that can be stored ({exc}): {line[:80]!r}") from exc
    if not isinstance(record, dict):
        raise MalformedEvent("CEL line is not an object")
    record = {str(k).lower(): ("" if v is None else str(v)) for k, v in record.items()}
    _require(record, "eventtype", "eventtime", "uniqueid", "linkedid")
    if max(len(record["eventtype"]), len(record["linkedid"]), len(record["uniqueid"])) > STORED_MAX:
        raise _too_long(record["eventtype"], record["linkedid"], record["uniqueid"])
    when = _finite(record["eventtime"])
    if when is None:
        raise MalformedEvent(f"bad eventtime {record['eventtime']!r}")
    fields: dict[str, Any] = {ours: record.get(theirs, "") for theirs, ours in FILE_FIELDS.items()}
    return CelEvent(event=record["eventtype"], time=when, second=int(when), extra=_extra(record.get("eventextra", "")),
                    **fields)


class Ordinals:
    """Numbers events that are equal in everything but order, the same way in every source stream."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._seen: OrderedDict[OrdinalKey, int] = OrderedDict()
        self._capacity = capacity
        self._newest = 0  # the latest second seen

    def assign(self, event: CelEvent) -> CelEvent:
        """Return the event with its ordinal among equal events seen so far in this stream."""
        base = (event.linkedid, event.uniqueid, event.event, event.second, event.appdata,  # base_key, inlined
                extra_digest(event.extra))
        count = self._seen.pop(base, 0)
        self._seen[base] = count + 1
        if event.second > self._newest:
            self._newest = event.second
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        if count == 0:
            return event
        return event_of({**event.__dict__, "ordinal": count})

    def recent(self, window: int) -> list[list[Any]]:
        """The counts of the last ``window`` seconds, as JSON-ready lists: what a reader that resumes this stream
        later needs (equal events share their second, and Asterisk writes its CEL file in time order)."""
        oldest = self._newest - window
        return [[*key, count] for key, count in self._seen.items() if key[3] >= oldest]

    @classmethod
    def restore(cls, recent: list[list[Any]]) -> Ordinals:
        """Ordinals that go on from counts saved by :meth:`recent`. Counts without the extra's digest (saved by a
        listener older than migration 0021 that still ran after the migration converted the saved ones) are left
        out: they cannot say which extra they counted."""
        ordinals = cls()
        for entry in recent:
            if len(entry) != 7:
                continue
            linkedid, uniqueid, name, second, appdata, digest, count = entry
            key = (str(linkedid), str(uniqueid), str(name), int(second), str(appdata), str(digest))
            ordinals._seen[key] = int(count)
            ordinals._newest = max(ordinals._newest, int(second))
        return ordinals
