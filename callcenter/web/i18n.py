"""Vietnamese and English: gettext catalogs (Babel ``.po`` files, English is the source language) and dates,
times, numbers and durations in the user's locale and time zone.

Catalogs live in ``callcenter/web/translations/<lang>/LC_MESSAGES/messages.po``; ``make translations`` extracts
new messages and updates them (pybabel). They are compiled in memory at start, so no build step is needed.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

CATALOGS = Path(__file__).with_name("translations")
LANGUAGES = ("vi", "en")


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language``. English is the source language; its catalog only spells out codes shown as
    words (``voice_message`` -> "voice message")."""
    po = CATALOGS / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Formats:
    """Formatting for one user: their language and time zone."""

    def __init__(self, language: str, timezone: str) -> None:
        self.language = language if language in LANGUAGES else "vi"
        self.zone = ZoneInfo(timezone)

    def moment(self, value: dt.datetime | None, style: str = "medium") -> str:
        """A moment in the user's zone, e.g. ``30 thg 11, 2026 09:05:12``."""
        if value is None:
            return ""
        return str(format_datetime(value, style, tzinfo=self.zone, locale=self.language))

    def iso_local(self, value: dt.datetime) -> str:
        """``2026-11-30T09:05`` in the user's zone (for ``datetime-local`` inputs)."""
        return value.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")

    def number(self, value: float | int | None) -> str:
        """A number with the locale's separators."""
        return "" if value is None else str(format_decimal(value, locale=self.language))

    def size(self, count: int) -> str:
        """A file size: ``512 B``, ``34 KB``, ``2,4 MB`` (in the user's locale)."""
        if count < 1024:
            return f"{count} B"
        if count < 1024 * 1024:
            return f"{self.number(round(count / 1024))} KB"
        return f"{self.number(round(count / (1024 * 1024), 1))} MB"

    @staticmethod
    def duration(seconds: float | None) -> str:
        """``75.4`` -> ``1:15``; hours when needed: ``1:02:03``."""
        if seconds is None:
            return ""
        total = round(seconds)
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
