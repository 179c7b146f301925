"""The hot path's JSON: orjson where it can, the standard library for what orjson refuses, one result either way."""

from __future__ import annotations

import json
import math

import pytest

from callcenter.store import jsoncodec

PAYLOAD = {"event": "CHAN_START", "time": 1795952287.189461, "second": 1795952287, "cid_name": "Nguyễn Thị Quỳnh Mai",
           "extra": {"hangupcause": 16, "dialstatus": "ANSWER", "nested": [1, 2.5, None, True]}, "ordinal": 0}


def test_values_come_back_as_the_standard_library_reads_them() -> None:
    text = jsoncodec.dumps(PAYLOAD)
    assert json.loads(text) == PAYLOAD and jsoncodec.loads(text) == PAYLOAD
    assert jsoncodec.loads(jsoncodec.encode(PAYLOAD)) == PAYLOAD
    assert "Nguyễn" in text  # UTF-8, not \\u escapes


def test_what_orjson_refuses_goes_through_the_standard_library() -> None:
    huge = {"n": 2**70, 7: "a key that is no string"}
    assert json.loads(jsoncodec.dumps(huge)) == {"n": 2**70, "7": "a key that is no string"}
    assert jsoncodec.loads('{"n": NaN, "big": 123456789012345678901234567890}')["big"] == 123456789012345678901234567890
    assert math.isnan(jsoncodec.loads('{"n": NaN}')["n"])


def test_an_integer_beyond_64_bits_is_read_exactly_where_orjson_would_make_it_a_float() -> None:
    for big in (2**64, 2**70, 123456789012345678901234567890, -(2**65)):
        text = json.dumps({"big": big, "name": "Nguyễn"})
        assert jsoncodec.loads(text)["big"] == big and isinstance(jsoncodec.loads(text)["big"], int)
        assert jsoncodec.loads(text.encode())["big"] == big
    assert jsoncodec.loads('{"n": 18446744073709551615}')["n"] == 2**64 - 1
    for edge in (-(2**63) - 1, -(2**63), 2**63 - 1, 2**63, 10**18, -(10**18)):  # 19 and 20 digits, both signs
        assert jsoncodec.loads(json.dumps([edge])) == [edge], edge


def test_a_long_number_is_19_ascii_digits_in_a_row_wherever_they_are() -> None:
    for text in ("1234567890123456789", '{"n": -12345678901234567890}', '"x": "0912345678901234567890"',
                 "Nguyễn 1234567890123456789 Quỳnh", "a" * 10_000 + "9" * 19):
        assert jsoncodec.has_long_number(text) and jsoncodec.has_long_number(text.encode()), text
    for text in ("123456789012345678", "123456789.0123456789", "1796202047.902146 1796202047 0912345678",
                 "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩", "１２３４５６７８９０１２３４５６７８９", "", "Nguyễn Văn A"):
        assert not jsoncodec.has_long_number(text) and not jsoncodec.has_long_number(text.encode()), text
    assert not jsoncodec.has_long_number("\udc80" + "1" * 18)  # half a character (surrogatepass) is no digit


def test_deep_json_with_a_long_number_is_read_or_refused_with_a_value_error() -> None:
    deep = "[" * 1000 + "1234567890123456789" + "]" * 1000  # json's recursion gives up here, orjson reads it
    value = jsoncodec.loads(deep)
    for _ in range(1000):
        value = value[0]
    assert value == 1234567890123456789
    with pytest.raises(ValueError, match="nested too deeply"):  # neither reads it: a ValueError, not a RecursionError
        jsoncodec.loads("[" * 1100 + "]" * 1100)


def test_not_a_number_is_written_as_null_which_every_database_takes() -> None:
    assert jsoncodec.loads(jsoncodec.dumps({"wait": math.nan, "talk": math.inf})) == {"wait": None, "talk": None}
