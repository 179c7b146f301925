"""JSON for the listener's hot path (the spool's lines, the journal's payloads): orjson, with the standard library
for what orjson refuses.

At full rate every CEL event is encoded twice (its spool line, its journal payload) and decoded once; with the
standard library that was a tenth of the listener's CPU, with orjson a fifth of that. orjson refuses integers
beyond 64 bits and keys that are not strings, and reads no ``NaN``: those values go through :mod:`json` as before.
It writes ``NaN`` and infinities as ``null``, which both databases take (the standard library's ``NaN`` is no
JSON: PostgreSQL refuses it).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """``value`` as JSON text (what SQLAlchemy's JSON columns store)."""
    return encode(value).decode("utf-8")


def encode(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))  # an ASCII digit becomes "0", all else " "
_LONG_RUN = b"0" * 19


def has_long_number(text: str | bytes) -> bool:
    """Whether ``text`` holds 19 ASCII digits in a row: digits enough for an integer beyond 64 bits (or a long
    string of digits). A JSON number has only ASCII digits, and no byte of a UTF-8 character beyond ASCII is one.
    (The regular expression ``\\d{19}`` started again at every digit of a run: 5.7 us for a journal row's payload
    and 2.6 us an event for the spool's lines, against 0.6 and 0.2 for this mapping and one search.)"""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return _LONG_RUN in data.translate(_DIGITS)


def loads(text: str | bytes) -> Any:
    """The value of a JSON text. (orjson reads an integer beyond 64 bits as a float: a text with 19 digits in a
    row, a long number or a long string of digits, goes through :mod:`json`, which reads it exactly.)"""
    long = has_long_number(text)
    if not long:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except RecursionError:  # deeper than json reads in this thread (orjson reads 1,024 levels)
        if not long:
            raise ValueError("JSON nested too deeply") from None
        return orjson.loads(text)  # its integers beyond 64 bits become floats: better than nothing at all
