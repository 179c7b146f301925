"""The voice menu's part of the telephony model: spoken texts, topics, menus and the rules for keyed-in numbers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callcenter.model.addresses import Address, ParsedAddress
from callcenter.model.contract import UNKNOWN_TOPIC

Digit = Annotated[str, Field(pattern=r"^[0-9]$")]


class Part(BaseModel):
    """Base of every model section: immutable, and an unknown key is an error (a typo must not pass silently)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Texts(Part):
    """One text per language (the source of a generated prompt)."""

    vi: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        """The text in ``language``."""
        return self.en if language == "en" else self.vi


class Topic(Part):
    """A topic of the main menu and of cases: its code in the call log, its key and its spoken label."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    digit: Digit
    label: Texts
    department: str = ""  # the department a case on this topic is forwarded to (a key of [departments])
    target_hours: int = Field(default=72, ge=1, le=24 * 365)  # a forwarded case is overdue after this long

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


class MenuConfig(Part):
    """The main (topic) menu."""

    retries: int = Field(default=2, ge=0, le=9)  # repeats after no input or an invalid key
    timeout: float = Field(default=5.0, gt=0, le=60)  # seconds to wait for a key after the menu
    case_status_digit: Digit = "8"
    repeat_digit: Digit = "9"


class AfterHoursConfig(Part):
    """The menu outside working hours: leave a message, ask for a callback or hear a case status."""

    message_digit: Digit = "1"
    callback_digit: Digit = "2"
    retries: int = Field(default=2, ge=0, le=9)
    timeout: float = Field(default=5.0, gt=0, le=60)


class EntryRules(Part):
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


class MessageConfig(Part):
    """Voice messages left outside working hours."""

    max_seconds: int = Field(default=120, ge=5, le=600)
    silence_seconds: int = Field(default=5, ge=0, le=60)  # this much silence ends the message; 0: never


class IvrRules(Part):
    """Where the FastAGI server listens, where Asterisk finds the prompts, and how the menus behave."""

    address: Annotated[Address, ParsedAddress] = Address("127.0.0.1", 4573)
    # Asterisk plays <sounds dir>/<prompts>/<lang>/<name>.wav (or an absolute folder).
    prompts: str = Field(default="callcenter", pattern=r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    menu: MenuConfig = Field(default_factory=MenuConfig)
    after_hours: AfterHoursConfig = Field(default_factory=AfterHoursConfig)
    case_number: EntryRules = Field(default_factory=lambda: EntryRules(min_length=4, max_length=12))
    callback: EntryRules = Field(default_factory=lambda: EntryRules(min_length=8, max_length=15, timeout=8.0))
    message: MessageConfig = Field(default_factory=MessageConfig)

    @field_validator("prompts")
    @classmethod
    def _no_parent(cls, root: str) -> str:
        if ".." in root.split("/"):
            raise ValueError(f"prompt folder {root!r} must not contain '..'")
        return root

    @property
    def url(self) -> str:
        """The dialplan's ``AGI()`` address of the server."""
        return f"agi://{self.address}"
