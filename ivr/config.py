"""The IVR's configuration: lines, topics, menus, input rules and schedules (``ivr/config.toml`` by default).

Topics, digits and which topics each line offers are configuration, not code. :func:`load` reads and validates
a TOML file and raises :class:`ConfigError` with every problem and where it is, so a bad file stops the IVR
server at start rather than confusing callers later.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr import schedule
from ivr.schedule import Interval, Weekday

DEFAULT_PATH = Path(__file__).with_name("config.toml")
UNKNOWN_TOPIC = "unknown"  # reserved: the topic of a caller who chose none
LANGUAGES = ("vi", "en")

Language = Literal["vi", "en"]
Digit = Annotated[str, Field(pattern=r"^[0-9]$")]
OpeningInterval = Annotated[Interval, BeforeValidator(schedule.parse_interval)]


class ConfigError(ValueError):
    """The IVR configuration cannot be used; the message lists every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Texts(_Model):
    """One text per language (the source of a generated prompt)."""

    vi: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        """The text in ``language``."""
        return self.en if language == "en" else self.vi


class Topic(_Model):
    """A topic of the main menu: its code in the call log, its key and its spoken label."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    digit: Digit
    label: Texts

    @field_validator("code")
    @classmethod
    def _not_reserved(cls, code: str) -> str:
        if code == UNKNOWN_TOPIC:
            raise ValueError(f"topic code {UNKNOWN_TOPIC!r} is reserved for callers who choose no topic")
        return code

    @property
    def prompt(self) -> str:
        """The prompt that speaks the label."""
        return f"topic-{self.code}"


class Schedule(_Model):
    """Working hours in local time; outside them (and on holidays) the after-hours branch runs."""

    timezone: str = "Asia/Ho_Chi_Minh"
    hours: dict[Weekday, tuple[OpeningInterval, ...]] = Field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Ho_Chi_Minh)") from None
        return name

    @field_validator("hours")
    @classmethod
    def _no_overlap(cls, hours: dict[Weekday, tuple[Interval, ...]]) -> dict[Weekday, tuple[Interval, ...]]:
        return {day: schedule.check_day(intervals) for day, intervals in hours.items()}

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (aware) is inside working hours."""
        return schedule.is_open(self.hours, self.holidays, ZoneInfo(self.timezone), now)


class Line(_Model):
    """A hotline number: its greeting, language, topics (in menu order) and working hours."""

    number: str = Field(pattern=r"^[0-9]{3,20}$")
    name: str = Field(min_length=1)
    language: Language = "vi"
    greeting: Texts
    topics: tuple[str, ...] = Field(min_length=1)
    schedule: Schedule | None = None  # None: always open

    @property
    def greeting_prompt(self) -> str:
        """The prompt that greets callers of this line."""
        return f"greeting-{self.number}"

    def is_open(self, now: datetime) -> bool:
        """Whether the line is inside working hours at ``now`` (aware)."""
        return self.schedule is None or self.schedule.is_open(now)


class MenuConfig(_Model):
    """The main (topic) menu."""

    retries: int = Field(default=2, ge=0, le=9)  # repeats after no input or an invalid key
    timeout: float = Field(default=5.0, gt=0, le=60)  # seconds to wait for a key after the menu
    case_status_digit: Digit = "8"
    repeat_digit: Digit = "9"


class AfterHoursConfig(_Model):
    """The menu outside working hours: leave a message, ask for a callback or hear a case status."""

    message_digit: Digit = "1"
    callback_digit: Digit = "2"
    retries: int = Field(default=2, ge=0, le=9)
    timeout: float = Field(default=5.0, gt=0, le=60)


class EntryRules(_Model):
    """A number keyed in by the caller (a case number, a callback number), ended by ``#``."""

    min_length: int = Field(ge=1, le=32)
    max_length: int = Field(ge=1, le=32)
    retries: int = Field(default=2, ge=0, le=9)
    timeout: float = Field(default=6.0, gt=0, le=60)  # seconds to wait for each key

    @model_validator(mode="after")
    def _bounds(self) -> EntryRules:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is more than max_length {self.max_length}")
        return self


class MessageConfig(_Model):
    """Voice messages left outside working hours."""

    max_seconds: int = Field(default=120, ge=5, le=600)
    silence_seconds: int = Field(default=5, ge=0, le=60)  # this much silence ends the message; 0: never


class PromptsConfig(_Model):
    """Where Asterisk finds the prompts: ``<sounds dir>/<root>/<lang>/<name>.wav`` (or an absolute root)."""

    root: str = Field(default="callcenter", pattern=r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

    @field_validator("root")
    @classmethod
    def _no_parent(cls, root: str) -> str:
        if ".." in root.split("/"):
            raise ValueError(f"prompt root {root!r} must not contain '..'")
        return root


def _key_numbers(lines: Any) -> Any:
    """``[lines.02621022]`` tables: the key is the number (a ``number`` inside must agree)."""
    if not isinstance(lines, dict):
        return lines
    return {key: {"number": key, **value} if isinstance(value, dict) else value for key, value in lines.items()}


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)


class IvrConfig(_Model):
    """Everything the flows need to know, validated as a whole."""

    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    menu: MenuConfig = Field(default_factory=MenuConfig)
    after_hours: AfterHoursConfig = Field(default_factory=AfterHoursConfig)
    case_number: EntryRules = Field(default_factory=lambda: EntryRules(min_length=4, max_length=12))
    callback: EntryRules = Field(default_factory=lambda: EntryRules(min_length=8, max_length=15, timeout=8.0))
    message: MessageConfig = Field(default_factory=MessageConfig)
    topics: tuple[Topic, ...] = Field(min_length=1)
    lines: dict[str, Line] = Field(min_length=1)

    @field_validator("lines", mode="before")
    @classmethod
    def _numbers(cls, lines: Any) -> Any:
        return _key_numbers(lines)

    @model_validator(mode="after")
    def _consistent(self) -> IvrConfig:
        problems = [*self._topic_problems(), *self._digit_problems()]
        for key, line in self.lines.items():
            if key != line.number:
                problems.append(f"lines.{key}: number {line.number!r} differs from its table name")
            unknown = [code for code in line.topics if code not in self.topic_codes]
            if unknown:
                problems.append(f"lines.{key}.topics: unknown topic codes {unknown} (known: {self.topic_codes})")
            if _duplicates(line.topics):
                problems.append(f"lines.{key}.topics: listed twice: {_duplicates(line.topics)}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _topic_problems(self) -> list[str]:
        problems = []
        if _duplicates(self.topic_codes):
            problems.append(f"topics: duplicate codes {_duplicates(self.topic_codes)}")
        if _duplicates(t.digit for t in self.topics):
            problems.append(f"topics: duplicate digits {_duplicates(t.digit for t in self.topics)}")
        return problems

    def _digit_problems(self) -> list[str]:
        problems = []
        menu = {self.menu.case_status_digit: "menu.case_status_digit", self.menu.repeat_digit: "menu.repeat_digit"}
        if len(menu) < 2:
            problems.append("menu: case_status_digit and repeat_digit are the same key")
        problems += [f"topic {t.code!r}: digit {t.digit} is also {menu[t.digit]}" for t in self.topics
                     if t.digit in menu]
        after = (self.after_hours.message_digit, self.after_hours.callback_digit, self.menu.case_status_digit)
        if _duplicates(after):
            problems.append(f"after_hours: message, callback and case status keys must differ, got {after}")
        return problems

    @property
    def topic_codes(self) -> list[str]:
        """Every topic code, in file order."""
        return [topic.code for topic in self.topics]

    def topic(self, code: str) -> Topic:
        """The topic with ``code`` (a KeyError for an unknown code)."""
        return next(topic for topic in self.topics if topic.code == code)

    def line_topics(self, line: Line) -> tuple[Topic, ...]:
        """The topics ``line`` offers, in its menu order."""
        return tuple(self.topic(code) for code in line.topics)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in item["loc"])
        lines += [f"  {where}: {message}"] if where else [f"  {problem}" for problem in message.splitlines()]
    return "\n".join(lines)


def parse(data: dict[str, Any], source: str = "<config>") -> IvrConfig:
    """Validate already-parsed TOML data."""
    try:
        return IvrConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: invalid IVR configuration:\n{_describe(error)}") from None


def load(path: Path = DEFAULT_PATH) -> IvrConfig:
    """Read and validate the TOML file at ``path``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the IVR configuration: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse(data, str(path))
