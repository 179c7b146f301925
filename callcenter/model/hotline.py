"""The telephony model: the hotline's lines, topics, operators, queues, the sandbox's test citizens and the
addresses the parts use, read from one TOML file a person edits (``hotline.toml``).

Everything that depends on these facts derives from this model: Asterisk's endpoints, queue members, hotline
extensions and globals (``callcenter.asterisk.render``), the IVR's menus, the call log's knowledge of who is an
operator and which number is a line, and the sandbox's SIP agents. :func:`load` validates the whole file and
raises :class:`ModelError` listing every problem and where it is.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from callcenter.model.addresses import Address, ParsedAddress
from callcenter.model.contract import DeviceType
from callcenter.model.ivr import IvrRules, Part, Texts, Topic
from callcenter.model.schedule import Schedule
from callcenter.model.text import CallerName, OneLine

Language = Literal["vi", "en"]
LANGUAGES: tuple[Language, ...] = ("vi", "en")
OperatorId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
Extension = Annotated[str, Field(pattern=r"^[0-9]{2,8}$")]
# The sentences every greeting ends with: a 1900 number is paid by the caller, so "free" is said only where true.
FREE_CALL = Texts(vi="Cuộc gọi này miễn phí.", en="This call is free of charge.")
CONFIDENTIAL = Texts(vi="Nội dung cuộc gọi được giữ bí mật và có thể được ghi âm.",
                     en="Your call is confidential and may be recorded.")


class ModelError(ValueError):
    """The telephony model cannot be used; the message lists every problem."""


class Pbx(Part):
    """Where Asterisk listens (the renderer writes these into its configuration; the parts connect to them)."""

    sip: Annotated[Address, ParsedAddress] = Address("127.0.0.1", 5060)  # SIP over UDP and TCP
    ami: Annotated[Address, ParsedAddress] = Address("127.0.0.1", 5038)  # the manager interface
    ami_clients: tuple[str, ...] = ("127.0.0.1/255.255.255.255",)  # who may log in to AMI (address/mask)
    spool: str = Field(default="/var/spool/asterisk/monitor", pattern=r"^/[A-Za-z0-9_./-]+$")  # as Asterisk sees it
    # Browser softphones: secure WebSocket to Asterisk's own HTTP server (TLS) here, and their media (ICE, DTLS-SRTP)
    # on the same host, which operators' browsers must reach (ICE lists no loopback candidates).
    webrtc: Annotated[Address, ParsedAddress] = Address("127.0.0.1", 8089)
    tls_cert: str = Field(default="/etc/asterisk/keys/asterisk.crt", pattern=r"^/[A-Za-z0-9_./-]+$")  # PEM, as
    tls_key: str = Field(default="/etc/asterisk/keys/asterisk.key", pattern=r"^/[A-Za-z0-9_./-]+$")  # Asterisk sees it
    # How the PBX reaches a citizen's number (the operator desk's call-backs): an Asterisk dial string with
    # {number}, e.g. "PJSIP/{number}@carrier". Empty: no call-backs (the sandbox reaches its test citizens itself).
    outbound: str = Field(default="", pattern=r"^$|^[A-Za-z0-9_/@.:-]*\{number\}[A-Za-z0-9_/@.:-]*$")

    @property
    def wss_origin(self) -> str:
        """The origin of Asterisk's secure WebSocket (what the pages' CSP must allow)."""
        return f"wss://{self.webrtc}"

    @property
    def wss_url(self) -> str:
        """Where a browser softphone opens its SIP WebSocket (Asterisk's HTTP server, path /ws)."""
        return f"{self.wss_origin}/ws"


class Line(Part):
    """A hotline number: its greeting, whether the call is free, language, topics (in menu order), hours."""

    number: str = Field(pattern=r"^[0-9]{3,20}$")
    name: OneLine = Field(min_length=1)  # a comment in the dialplan
    free: bool  # whether callers pay nothing (a 1900 number is usually paid): the greeting says so only if true
    language: Language = "vi"
    welcome: Texts  # the greeting's first sentence; the free-call and confidentiality sentences follow
    topics: tuple[str, ...] = Field(min_length=1)
    queue: str = "operators"
    schedule: Schedule | None = None  # None: always open

    @property
    def greeting_prompt(self) -> str:
        """The prompt that greets callers of this line."""
        return f"greeting-{self.number}"

    @property
    def greeting(self) -> Texts:
        """What the greeting says: welcome, free call (only where it is), confidential and may be recorded."""
        parts = [self.welcome, *([FREE_CALL] if self.free else []), CONFIDENTIAL]
        return Texts(vi=" ".join(p.vi for p in parts), en=" ".join(p.en for p in parts))

    def is_open(self, now: datetime) -> bool:
        """Whether the line is inside working hours at ``now`` (aware)."""
        return self.schedule is None or self.schedule.is_open(now)


class Operator(Part):
    """A person who answers calls: SIP endpoint id, name shown to callers' logs, short extension, device type."""

    id: OperatorId
    name: CallerName = Field(min_length=1, max_length=64)  # the endpoint's callerid, a dialplan comment
    extension: Extension  # what colleagues dial, and where transfers go
    device: DeviceType = DeviceType.IP_PHONE

    @field_validator("device")
    @classmethod
    def _known(cls, device: DeviceType) -> DeviceType:
        if device is DeviceType.UNKNOWN:
            raise ValueError("device must be ip_phone, softphone or browser")
        return device


class Queue(Part):
    """A queue of callers and the operators who answer it."""

    strategy: Literal["leastrecent", "fewestcalls", "rrmemory", "ringall", "random", "linear"] = "leastrecent"
    ring_seconds: int = Field(default=15, ge=5, le=120)  # each operator's phone rings this long per try
    wait_seconds: int = Field(default=120, ge=5, le=3600)  # a caller waits this long before the call is missed
    wrapup_seconds: int = Field(default=0, ge=0, le=600)  # after a call, before the next is offered
    autopause: bool = True  # an operator who lets a call ring out is paused (the desk says why)
    members: tuple[OperatorId, ...] = ()  # always in the queue (a fixed desk phone): pause, never log out
    agents: tuple[OperatorId, ...] = ()  # log in and out at the operator desk (not in the queue until they do)

    def admits(self, operator: str) -> bool:
        """Whether ``operator`` answers this queue (always, or after logging in)."""
        return operator in self.members or operator in self.agents


class Sandbox(Part):
    """The development sandbox only (never rendered for a deployment): test citizens and a plain dialplan."""

    citizens: int = Field(default=12, ge=0, le=200)  # SIP accounts citizen1..citizenN that call like the public
    plain_number: str = Field(default="02621099", pattern=r"^[0-9]{3,20}$")  # a PBX dialplan with no user events

    @property
    def citizen_ids(self) -> tuple[str, ...]:
        """``citizen1`` .. ``citizenN``."""
        return tuple(f"citizen{n}" for n in range(1, self.citizens + 1))


def _keyed(tables: Any, field: str) -> Any:
    """``[lines.02621022]`` / ``[operators.op101]`` tables: the key is the id (a value inside must agree)."""
    if not isinstance(tables, dict):
        return tables
    return {key: {field: key, **value} if isinstance(value, dict) else value for key, value in tables.items()}


class Department(Part):
    """A department cases are forwarded to; its desk phone is where operators may transfer a caller."""

    name: OneLine = Field(min_length=1, max_length=128)  # a comment in the dialplan
    phone: str = Field(default="", pattern=r"^$|^[0-9]{3,20}$")  # reached through pbx.outbound
    # Where the department learns of a case forwarded to it or overdue (callcenter notify): either, both or none.
    email: str = Field(default="", max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
    webhook: str = Field(default="", max_length=2000, pattern=r"^$|^https?://[^\s]+$")

    @field_validator("webhook")
    @classmethod
    def _reachable(cls, url: str) -> str:
        """A URL an HTTP client can send to: one the pattern lets through but no client reads (``http://[::1/``,
        ``http://a..b/``) would fail every delivery, to be found only in the outbox's errors."""
        if not url:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (reading it checks it)
        except ValueError as exc:
            raise ValueError(f"webhook {url!r} is not a URL an HTTP client can send to ({exc})") from None
        host = parts.hostname or ""
        if not host or (":" not in host and "" in host.rstrip(".").split(".")):
            raise ValueError(f"webhook {url!r} has no usable host name")
        return url


class HotlineModel(Part):
    """The whole model, validated as a whole (cross-references checked in :mod:`callcenter.model.checks`)."""

    pbx: Pbx = Field(default_factory=Pbx)
    ivr: IvrRules = Field(default_factory=IvrRules)
    topics: tuple[Topic, ...] = Field(min_length=1)
    lines: dict[str, Line] = Field(min_length=1)
    operators: dict[str, Operator] = Field(default_factory=dict)
    queues: dict[str, Queue] = Field(default_factory=lambda: {"operators": Queue()})
    departments: dict[str, Department] = Field(default_factory=dict)  # by a short key (users link to it)
    sandbox: Sandbox = Field(default_factory=Sandbox)

    @field_validator("lines", mode="before")
    @classmethod
    def _line_numbers(cls, tables: Any) -> Any:
        return _keyed(tables, "number")

    @field_validator("operators", mode="before")
    @classmethod
    def _operator_ids(cls, tables: Any) -> Any:
        return _keyed(tables, "id")

    @model_validator(mode="after")
    def _consistent(self) -> HotlineModel:
        from callcenter.model.checks import problems

        found = problems(self)
        if found:
            raise ValueError("\n".join(found))
        return self

    @property
    def topic_codes(self) -> list[str]:
        """Every topic code, in file order."""
        return [topic.code for topic in self.topics]

    def topic(self, code: str) -> Topic:
        """The topic with ``code`` (a KeyError for an unknown code)."""
        for topic in self.topics:
            if topic.code == code:
                return topic
        raise KeyError(code)

    def line_topics(self, line: Line) -> tuple[Topic, ...]:
        """The topics ``line`` offers, in its menu order."""
        return tuple(self.topic(code) for code in line.topics)

    def operator_by_extension(self, extension: str) -> Operator | None:
        """The operator whose extension is ``extension``."""
        return next((op for op in self.operators.values() if op.extension == extension), None)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in item["loc"])
        lines += [f"  {where}: {message}"] if where else [f"  {problem}" for problem in message.splitlines()]
    return "\n".join(lines)


def parse(data: dict[str, Any], source: str = "<model>") -> HotlineModel:
    """Validate already-parsed TOML data."""
    try:
        return HotlineModel.model_validate(data)
    except ValidationError as error:
        raise ModelError(f"{source}: invalid telephony model:\n{_describe(error)}") from None


def load(path: Path) -> HotlineModel:
    """Read and validate the model file at ``path``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelError(f"{path}: cannot read the telephony model: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ModelError(f"{path}: not valid TOML: {error}") from None
    return parse(data, str(path))
