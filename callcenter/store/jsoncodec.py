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
import re
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


LONG_NUMBER = re.compile(r"\d{19}")  # digits enough for an integer beyond 64 bits (or a long string of digits)
LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def loads(text: str | bytes) -> Any:
    """The value of a JSON text. (orjson reads an integer beyond 64 bits as a float: a text with 19 digits in a
    row, a long number or a long string of digits, goes through :mod:`json`, which reads it exactly.)"""
    long = (LONG_NUMBER_BYTES if isinstance(text, bytes) else LONG_NUMBER).search(text)  # type: ignore[arg-type]
    if long is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except RecursionError:  # deeper than json reads in this thread (orjson reads 1,024 levels)
        if long is None:
            raise ValueError("JSON nested too deeply") from None
        return orjson.loads(text)  # its integers beyond 64 bits become floats: better than nothing at all
