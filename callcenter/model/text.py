"""Checks on text from outside: numbers written in ASCII digits, and free text of the model that lands in
Asterisk's configuration (the names :mod:`callcenter.asterisk.render` writes into an endpoint's ``callerid`` and
after a dialplan line's ``;``).

Asterisk reads its files a line at a time, so a line break in a name would end the line it is written on and
make the rest of the name configuration of its own (a dialplan line, an endpoint option). Inside a callerid's
quoted display name ``"`` ends the quotes and ``\\`` escapes what follows, and a ``;`` anywhere in a value starts
a comment that cuts the value short. Letters of any script pass: operators' names are Vietnamese.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator

# Cc: C0 controls (line feed, carriage return, tab ...), DEL and C1 controls (NEL); Zl, Zp: U+2028 and U+2029,
# which are line breaks to Python's splitlines and to editors, if not to Asterisk.
LINE_BREAKING = ("Cc", "Zl", "Zp")
NOT_IN_CALLERID = '"\\;'


def is_digits(text: str) -> bool:
    """``text`` is one or more ASCII digits. ``str.isdigit`` alone also admits "²" and other scripts' digits, which
    ``int()`` refuses or reads otherwise, and which neither the dialplan nor the databases' integers take."""
    return text.isascii() and text.isdigit()


def one_line(text: str) -> str:
    """``text`` when it has no control character and no line or paragraph separator; else a ValueError."""
    found = {char for char in text if unicodedata.category(char) in LINE_BREAKING}
    if found:
        raise ValueError(f"must be one line without control characters (found {_shown(found)})")
    return text


def caller_name(text: str) -> str:
    """``text`` when it can be a callerid's quoted display name: one line, none of ``" \\ ;``; else a ValueError."""
    found = set(one_line(text)) & set(NOT_IN_CALLERID)
    if found:
        raise ValueError(f'a name shown as caller ID must not contain ", \\ or ; (found {_shown(found)})')
    return text


def _shown(chars: Iterable[str]) -> str:
    """The characters as Python writes them (``'\\n'``, ``'\\u2028'``): the message stays on one line."""
    return ", ".join(ascii(char) for char in sorted(chars))


OneLine = Annotated[str, AfterValidator(one_line)]
CallerName = Annotated[str, AfterValidator(caller_name)]
