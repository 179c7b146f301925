"""The flows' :class:`~ivr.channel.Channel` over a pyst2 AGI session: thin, one AGI command per call.

Everything that goes onto the AGI command line is made safe here: prompt names and paths are checked against a
narrow character set, user-event payloads are url-encoded (no spaces, commas, quotes or ``$``: Asterisk would
split or substitute them), and variable values lose quotes and backslashes. Any AGI failure (hang-up, a dead
channel refusing commands, EOF, a timeout, a missing prompt file) becomes :class:`~ivr.channel.Hangup`: the flow
stops and the dialplan takes over, which sends a live caller on to the queue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

from asterisk.agi import AGIException

from callcenter.model.contract import IVR_EVENT_PREFIX, Spool
from callcenter.model.hotline import LANGUAGES
from ivr.channel import Hangup

log = logging.getLogger(__name__)
T = TypeVar("T")

_PROMPT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EVENT = re.compile(r"^[A-Z][A-Z_]*$")
_SPOOL = re.compile(r"^/[A-Za-z0-9_./-]+$")
_UNSAFE_VALUE = re.compile(r'["\\\r\n]')
RECORDED = {"DTMF", "SILENCE", "TIMEOUT"}  # Record()'s RECORD_STATUS when a message was kept


class Agi(Protocol):
    """The part of pyst2's ``AGI`` the adapter uses."""

    env: dict[str, str]

    def stream_file(self, filename: str, escape_digits: str = "", sample_offset: int = 0) -> str: ...
    def wait_for_digit(self, timeout: int = ...) -> str: ...
    def get_data(self, filename: str, timeout: int = ..., max_digits: int = ...) -> str: ...
    def get_variable(self, name: str) -> str: ...
    def get_full_variable(self, name: str, channel: Any = None) -> str: ...
    def set_variable(self, name: str, value: str) -> None: ...
    def appexec(self, application: str, options: str = "") -> str: ...


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class AgiChannel:
    """The flows' Channel over pyst2; prompts are ``<root>/<lang>/<name>`` as Asterisk finds them."""

    def __init__(self, agi: Agi, prompts_root: str) -> None:
        self.agi = agi
        self.prompts_root = prompts_root.rstrip("/")
        self.language = "vi"

    def _call(self, command: Callable[..., T], *args: Any) -> T:
        try:
            return command(*args)
        except (AGIException, OSError, ValueError) as exc:  # ValueError: pyst2 on a reply without a code
            raise Hangup(f"{getattr(command, '__name__', command)}: {exc!r}") from exc

    def _prompt(self, name: str) -> str:
        if not _PROMPT.match(name):
            raise ValueError(f"bad prompt name {name!r}")
        return f"{self.prompts_root}/{self.language}/{name}"

    def use_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        self.language = language

    def play(self, prompt: str, interrupt: str = "") -> str:
        return self._call(self.agi.stream_file, self._prompt(prompt), _keys(interrupt))

    def wait_key(self, timeout: float) -> str:
        return self._call(self.agi.wait_for_digit, _ms(timeout))

    def collect(self, prompt: str, *, max_digits: int, timeout: float) -> str:
        return str(self._call(self.agi.get_data, self._prompt(prompt), _ms(timeout), max(1, max_digits)))

    def message_path(self) -> str:
        # The spool is the dialplan's RECORDINGS_SPOOL (as Asterisk sees it); the name follows the spool contract.
        spool = self._call(self.agi.get_full_variable, "${RECORDINGS_SPOOL}").rstrip("/")
        linkedid = self._call(self.agi.get_full_variable, "${CHANNEL(linkedid)}")  # LINKEDID is no variable
        uniqueid = self.agi.env.get("agi_uniqueid", "")
        usable = _SPOOL.match(spool) and ".." not in spool and all(
            Spool.ID_PATTERN.match(value) for value in (linkedid, uniqueid))
        path = Spool.message(spool, linkedid, uniqueid) if usable else ""
        if not path:
            log.warning("no usable message path: spool=%r linkedid=%r uniqueid=%r", spool, linkedid, uniqueid)
        return path

    def record(self, path: str, *, max_seconds: int, silence_seconds: int) -> bool:
        # Record() rather than AGI RECORD FILE: it creates the directory, and "k" keeps the file when the caller
        # hangs up instead of pressing # (the usual way to end a message).
        if not (_SPOOL.match(path) and ".." not in path and path.endswith(".wav")):
            raise ValueError(f"bad recording path {path!r}")
        self._call(self.agi.appexec, "Record", f"{path},{silence_seconds},{max_seconds},k")
        status = self._call(self.agi.get_variable, "RECORD_STATUS")
        if status not in RECORDED:
            log.warning("Record(%s) ended with RECORD_STATUS=%r", path, status)
        return status in RECORDED

    def set_variable(self, name: str, value: str) -> None:
        self._call(self.agi.set_variable, _safe_name(name), _UNSAFE_VALUE.sub("", str(value)))

    def user_event(self, name: str, **fields: str) -> None:
        self._call(self.agi.appexec, "CELGenUserEvent", event_argument(name, fields))


def _keys(keys: str) -> str:
    return "".join(key for key in keys if key in "0123456789*#")


def _safe_name(name: str) -> str:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ValueError(f"bad variable name {name!r}")
    return name


def event_argument(name: str, fields: dict[str, str]) -> str:
    """``IVR_<name>,k=v&k=v`` with url-encoded values: safe inside CELGenUserEvent and the AGI command line."""
    if not _EVENT.match(name):
        raise ValueError(f"bad event name {name!r}")
    # "/" stays readable (file paths in IVR_MESSAGE): it means nothing to CELGenUserEvent or the AGI parser.
    payload = urlencode({key: str(value) for key, value in fields.items()}, safe="/", quote_via=quote)
    return f"{IVR_EVENT_PREFIX}{name},{payload}"
