"""CEL parsing from both sources, and the dedupe key they must agree on."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.ami.events import (
    CEL_LAYOUT,
    FIELDS,
    CelEvent,
    MalformedEvent,
    Ordinals,
    event_in_order,
    event_of,
    from_ami,
    from_file_line,
    from_headers,
    from_text,
    headers_of,
)
from callcenter.listener import spool as spool_module
from callcenter.store import journal, jsoncodec
from callcenter.store.db import Database
from tests.factories import FIXTURES, ami_headers, cel, load_jsonl
from tests.unit.fuzzing import fuzz

UTC = ZoneInfo("UTC")


def test_file_and_ami_give_the_same_key() -> None:
    for event in load_jsonl("cel_answered.jsonl"):
        ami = from_ami(ami_headers(event, _ami_time(event.second)), UTC)
        assert ami.key == event.key
        assert ami.second == event.second
        assert ami.cid_name == event.cid_name


def test_the_dedupe_key_is_the_one_journals_already_hold() -> None:
    """A key that changed would let every event of a journal written before be journaled again, unless a
    migration rekeys the journals (0021 did, when the extra's digest went in)."""
    from dataclasses import replace

    event = load_jsonl("cel_answered.jsonl")[3]
    assert (event.event, event.appdata, event.ordinal) == ("QUEUE_ENTER", "QUEUE_ENTER,queue=operators", 0)
    assert event.key == "2402a8c5e8d8d770658bf370b7da60ef2567e0e4"
    assert replace(event, ordinal=2).key == "fc12f62bf2d77a7266bc25077a1fe9786546f431"


def test_headers_taken_direct_give_the_same_event_as_the_message() -> None:
    saigon = ZoneInfo("Asia/Ho_Chi_Minh")
    for event in load_jsonl("cel_answered.jsonl"):
        headers = {**ami_headers(event, _ami_time(event.second + 7 * 3600)), "Timestamp": f"{event.time:.6f}"}
        direct = from_headers({name.lower(): value for name, value in headers.items()}, saigon)
        assert direct == from_ami(headers, saigon) and direct.key == event.key


def _ami_time(second: int) -> str:
    from datetime import UTC as utc
    from datetime import datetime

    return datetime.fromtimestamp(second, utc).strftime("%Y-%m-%d %H:%M:%S")


def test_ami_timestamp_gives_sub_second_precision_only_inside_the_second() -> None:
    event = load_jsonl("cel_answered.jsonl")[0]
    headers = ami_headers(event, _ami_time(event.second))
    assert from_ami({**headers, "Timestamp": f"{event.second}.250000"}, UTC).time == event.second + 0.25
    assert from_ami({**headers, "Timestamp": f"{event.second + 3}.5"}, UTC).time == event.second


def test_ami_event_time_is_read_in_asterisks_zone() -> None:
    event = load_jsonl("cel_answered.jsonl")[0]
    saigon = ZoneInfo("Asia/Ho_Chi_Minh")
    from datetime import datetime

    local = datetime.fromtimestamp(event.second, saigon).strftime("%Y-%m-%d %H:%M:%S")
    assert from_ami(ami_headers(event, local), saigon).second == event.second


@pytest.mark.parametrize("drop", ["EventName", "EventTime", "UniqueID", "LinkedID"])
def test_ami_event_without_essentials_is_malformed(drop: str) -> None:
    event = load_jsonl("cel_answered.jsonl")[0]
    headers = ami_headers(event, _ami_time(event.second))
    del headers[drop]
    with pytest.raises(MalformedEvent):
        from_ami(headers, UTC)


@pytest.mark.parametrize("header", ["EventName", "UniqueID", "LinkedID"])
def test_a_name_or_id_longer_than_the_journal_holds_is_malformed_from_either_source(header: str) -> None:
    """PostgreSQL refuses a value longer than its column: stored, such an event would hold up every event spooled
    after it, retried for ever. 64 characters still go in (a systemname of 32 leaves room for any id)."""
    event = load_jsonl("cel_answered.jsonl")[0]
    headers = ami_headers(event, _ami_time(event.second))
    assert from_ami({**headers, header: "x" * 64}, UTC)
    with pytest.raises(MalformedEvent, match="longer than the journal's 64 characters"):
        from_ami({**headers, header: "x" * 65}, UTC)
    field = {"EventName": "eventtype", "UniqueID": "uniqueid", "LinkedID": "linkedid"}[header]
    line = {"eventtype": "CHAN_START", "eventtime": "1700000000.5", "uniqueid": "1.1", "linkedid": "1.1"}
    assert from_file_line(json.dumps({**line, field: "x" * 64}))
    with pytest.raises(MalformedEvent, match="longer than the journal's 64 characters"):
        from_file_line(json.dumps({**line, field: "x" * 65}))


def test_ami_bad_time_is_malformed() -> None:
    event = load_jsonl("cel_answered.jsonl")[0]
    with pytest.raises(MalformedEvent, match="EventTime"):
        from_ami(ami_headers(event, "yesterday"), UTC)


BAD_TIME = json.dumps({"eventtype": "X", "eventtime": "soon", "uniqueid": "1", "linkedid": "1"})


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", json.dumps({"eventtype": "HANGUP"}), BAD_TIME])
def test_bad_file_lines_are_malformed(line: str) -> None:
    with pytest.raises(MalformedEvent):
        from_file_line(line)


def test_user_event_payload_is_decoded() -> None:
    hotline = next(e for e in load_jsonl("cel_answered.jsonl") if e.event == "HOTLINE")
    assert hotline.user_fields == {"line": "02621022"}


def test_ordinals_separate_equal_events_and_repeat_across_streams() -> None:
    event = load_jsonl("cel_answered.jsonl")[0]
    first, second = Ordinals(), Ordinals()
    a = [first.assign(event), first.assign(event)]
    b = [second.assign(event), second.assign(event)]
    assert a[0].key != a[1].key
    assert [e.key for e in a] == [e.key for e in b]


def test_asterisk_in_another_zone_still_gives_the_same_key_when_timestamp_is_sent() -> None:
    saigon = ZoneInfo("Asia/Ho_Chi_Minh")
    from datetime import datetime

    for event in load_jsonl("cel_answered.jsonl"):
        local = datetime.fromtimestamp(event.second, saigon).strftime("%Y-%m-%d %H:%M:%S")
        headers = {**ami_headers(event, local), "Timestamp": f"{event.time + 0.0004:.6f}"}
        parsed = from_ami(headers, UTC)  # the setting says UTC, wrongly
        assert (parsed.key, parsed.second) == (event.key, event.second)


@pytest.mark.parametrize("bad", ["nan", "inf", "1e400", "-5"])
def test_non_finite_file_times_are_malformed(bad: str) -> None:
    line = json.dumps({"eventtype": "X", "eventtime": bad, "uniqueid": "1.1", "linkedid": "1.1"})
    with pytest.raises(MalformedEvent):
        from_file_line(line)


def test_an_event_made_from_its_values_is_the_event_its_constructor_makes() -> None:
    """The listener makes events without the dataclass's __init__ (it costs): the same event, still frozen."""
    from dataclasses import FrozenInstanceError

    events = load_jsonl("cel_answered.jsonl")
    for event in events:
        by_name, in_order = event_of(event.to_json()), event_in_order(list(event.to_json().values()))
        assert by_name == event and in_order == event
        assert list(by_name.to_json()) == list(in_order.to_json()) == list(FIELDS)
    with pytest.raises(FrozenInstanceError):
        in_order.event = "HANGUP"  # type: ignore[misc]
    values = events[0].to_json()
    del values["ordinal"]  # not every field: the constructor, with its default
    assert event_of(values) == events[0] and events[0].ordinal == 0
    with pytest.raises(TypeError):
        event_of({**events[0].to_json(), "unknown": 1})
    with pytest.raises(ValueError, match="16 fields"):
        event_in_order(list(events[0].to_json().values())[:-1])


@pytest.mark.parametrize("text, extra", [
    ('{"hangupcause":16,"dialstatus":"ANSWER"}', {"hangupcause": 16, "dialstatus": "ANSWER"}),
    ('{"name":"Nguy\\u1ec5n"}', {"name": "Nguyễn"}),
    ('[1, 2]', {"raw": [1, 2]}),
    ('{"a": NaN, "b": 1e400, "c": [-Infinity], "d": 1.5e300, "e": "NaN"}',  # non-finite: null, as the spool writes
     {"a": None, "b": None, "c": [None], "d": 1.5e300, "e": "NaN"}),
    ('{"deep": ' + "[" * 300 + "]" * 300 + "}", "deep"),  # beyond what orjson writes: read by json, kept
    ("[" * 1000 + "]" * 1000, {"raw": "[" * 1000 + "]" * 1000}),  # orjson reads it, nothing writes it: text
    ('{"big": 123456789012345678901234567890}', {"big": 123456789012345678901234567890}),
    ('{"half": "\\ud800"}', {"raw": '{"half": "\\ud800"}'}),  # half a character: kept as text
    ('{"cut": ', {"raw": '{"cut": '}),
    ("[" * 100_000 + "]" * 100_000, {"raw": "[" * 100_000 + "]" * 100_000}),
])
def test_extra_is_read_as_the_standard_library_reads_it(text: str, extra: dict[str, object] | str) -> None:
    headers = {name.lower(): value for name, value in ami_headers(cel("HANGUP", 5), "2026-11-30 08:00:05").items()}
    event = from_headers({**headers, "extra": text}, UTC)
    if extra == "deep":
        assert list(event.extra) == ["deep"] and event.extra == json.loads(text)
    else:
        assert event.extra == extra
    # What the listener delivers from memory is what its spool line says after a restart.
    assert spool_module._event(jsoncodec.loads(spool_module._line(event))) == event


# -- a CEL event's text read in one match: the same event as its headers split line by line ---------------------

CAPTURES = ("cel_local_call.txt", "cel_local_call_systemname.txt")  # Asterisk 22.10, timestampevents = yes


def _captured_cel(name: str) -> list[str]:
    """The CEL messages of a captured AMI session (the listener's user), as the protocol hands them over."""
    text = (FIXTURES / "ami" / name).read_bytes().decode("utf-8")  # CRLF kept, as AMI sends it
    return [chunk.strip() for chunk in text.split("\r\n\r\n") if chunk.startswith("Event: CEL")]


def _same_as_split(text: str, tz: ZoneInfo = UTC) -> CelEvent | None:
    """from_text's event, asserted equal to what the line-by-line split gives (or the same refusal)."""
    try:
        split = from_headers(headers_of(text), tz)
    except MalformedEvent as exc:
        with pytest.raises(MalformedEvent) as raised:
            from_text(text, tz)
        assert str(raised.value) == str(exc)
        return None
    event = from_text(text, tz)
    assert event == split and event.__dict__ == split.__dict__ and event.key == split.key
    return event


@pytest.mark.parametrize("capture", CAPTURES)
def test_asterisk_22_cel_events_are_read_in_one_match(capture: str) -> None:
    texts = _captured_cel(capture)
    assert len(texts) == 7
    for text in texts:
        assert CEL_LAYOUT.match(text) is not None, text  # the fast path is taken for what Asterisk really sends
        event = _same_as_split(text)
        assert event is not None and event.linkedid.endswith(".0") and event.event in {
            "CHAN_START", "HANGUP", "CHAN_END", "LINKEDID_END"}
    hangups = [from_text(text, UTC) for text in texts if "EventName: HANGUP" in text]
    assert {event.cid_name for event in hangups} <= {"Nguyễn Văn A", "Trần Thị B"}
    assert hangups[0].extra["hangupcause"] == 1


def _lines(text: str) -> list[str]:
    return text.split("\r\n")


MUTATIONS = st.sampled_from(["value", "drop", "twice", "swap", "case", "append", "bare", "glued"])


@given(data=st.data())
@fuzz(300)
def test_any_cel_text_gives_the_event_its_split_headers_give(data: st.DataObject) -> None:
    """Values with colons, CR or LF alone, Unicode; lines dropped, doubled, swapped, renamed, added: the one-match
    reading and the split agree on the event or on its refusal."""
    lines = _lines(data.draw(st.sampled_from(_captured_cel(CAPTURES[0]) + _captured_cel(CAPTURES[1]))))
    for _ in range(data.draw(st.integers(0, 4))):
        where = data.draw(st.integers(0, len(lines) - 1))
        name = lines[where].partition(":")[0]
        match data.draw(MUTATIONS):
            case "value":
                value = data.draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
                    ["", " ", ": ", "\r", "\n", "a\rb", "{\"x\": 1}", "2026-11-30 08:00:05", "1796061505.5"]))
                lines[where] = f"{name}: {value}"
            case "drop" if len(lines) > 1:
                del lines[where]
            case "twice":
                lines.insert(where, lines[where])
            case "swap":
                other = data.draw(st.integers(0, len(lines) - 1))
                lines[where], lines[other] = lines[other], lines[where]
            case "case":
                lines[where] = lines[where].swapcase()
            case "append":
                lines.append(data.draw(st.sampled_from(["UserDefType: X", "Extra:", "Extra: ", "Foo: bar", ""])))
            case "bare":
                lines[where] = name
            case "glued":  # no space after the colon
                lines[where] = lines[where].replace(": ", ":", 1)
    _same_as_split("\r\n".join(lines).strip(), ZoneInfo("Asia/Ho_Chi_Minh"))


# -- the dedupe key across an AMI gap -------------------------------------------------------------------------------

DTMF_LINE = json.dumps({
    "eventtype": "DTMF", "eventenum": "DTMF", "userdeftype": "Received", "eventtime": "1795989236.143974",
    "name": "", "num": "0917363230", "ani": "0917363230", "rdnis": "", "dnid": "02621099", "exten": "02621099",
    "context": "plain-hotline", "channame": "PJSIP/citizen3-00000006", "appname": "Read",
    "appdata": "CASE,beep,8,,,8", "amaflags": 3, "accountcode": "", "uniqueid": "1795989235.6",
    "linkedid": "1795989235.6", "peer": "", "peeraccount": "", "userfield": "",
    "eventextra": '{"digit":"5","duration_ms":180}'})


def _dtmf(digit: str, fraction: str) -> str:
    """The captured DTMF line with another digit, at another moment of the same second."""
    record = json.loads(DTMF_LINE)
    record["eventextra"] = record["eventextra"].replace('"5"', f'"{digit}"')
    record["eventtime"] = f"1795989236.{fraction}"
    return json.dumps(record)


def test_events_differing_only_in_extra_survive_a_gap_in_the_live_stream(db: Database) -> None:
    """Two digits typed in one second (same channel, name, second, application data): AMI missed the first, the
    backfill reads both from the file. Each is journaled once."""
    first, second = _dtmf("5", "143974"), _dtmf("7", "643974")
    live = from_file_line(second)
    headers = {**ami_headers(live, _ami_time(live.second), stamp=live.time),
               "Extra": json.loads(second)["eventextra"]}  # the text Asterisk sends, as the file has it
    with db.session() as session:
        journal.append(session, "n1", [Ordinals().assign(from_ami(headers, UTC))], "ami")
    from_file = Ordinals()
    with db.session() as session:
        journal.append(session, "n1", [from_file.assign(from_file_line(line)) for line in (first, second)], "file")
    with db.session() as session:
        digits = [event.extra["digit"] for event in journal.events_for(session, "n1", "1795989235.6")]
    assert sorted(digits) == ["5", "7"]


def test_the_same_event_gets_the_same_key_from_either_source_whatever_its_extras_order() -> None:
    record = json.loads(DTMF_LINE)
    reordered = from_file_line(json.dumps({**record, "eventextra": '{"duration_ms":180,"digit":"5"}'}))
    event = from_file_line(DTMF_LINE)
    ami = from_ami({**ami_headers(event, _ami_time(event.second)), "Extra": record["eventextra"]}, UTC)
    assert ami.extra == event.extra and ami.key == event.key == reordered.key
    assert event.key != from_file_line(_dtmf("7", "143974")).key
