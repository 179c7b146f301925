"""Open311 parameters, pure: read the query string or the posted form (GeoReport v2 names) into typed values, or
refuse with an :class:`Open311Error` whose description says what is wrong. No database, no clock (``now`` is
passed in).

Dates are W3C date-times (ISO 8601); one without an offset is read as UTC, like the rest of the API.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from callcenter.model.cases import NUMBER, OPEN, CaseStatus
from callcenter.model.text import is_digits

MAX_DAYS = 90  # the spec's largest (and default) date range for a request list
MAX_ROWS = 1000  # the spec's guidance for the most requests one answer carries: our page size cap
DESCRIPTION_MAX = 4000  # the spec's limit for a request's description
FORMATS = ("json", "xml")
LOCALES = ("vi", "en")
PHONE = re.compile(r"^\+?[0-9]{3,20}$")
UNENCODED_PLUS = re.compile(r"(T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$")
# GeoReport's two statuses over ours: a case is "closed" once the department reported a result (or staff closed
# it); the model's OPEN set is the rest.
STATUSES = {"open": tuple(s.value for s in CaseStatus if s in OPEN),
            "closed": tuple(s.value for s in CaseStatus if s not in OPEN)}


class Open311Error(ValueError):
    """A request refused: the HTTP code (400, 403, 404) and the description the client is shown."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def bad(description: str) -> Open311Error:
    return Open311Error(400, description)


def text(values: Mapping[str, str], name: str, limit: int, default: str = "") -> str:
    """A parameter's text, stripped; 400 when too long or carrying NUL."""
    value = values.get(name, default).strip()
    if len(value) > limit:
        raise bad(f"{name}: at most {limit} characters")
    if "\x00" in value:
        raise bad(f"{name}: no NUL characters")
    return value


def listed(values: Mapping[str, str], name: str, limit: int = 400) -> list[str]:
    """A comma-separated parameter's items (empty items dropped)."""
    return [item.strip() for item in text(values, name, limit).split(",") if item.strip()]


def output_format(ext: str) -> str:
    """The format a resource's extension asks for; 404 for any other."""
    if ext not in FORMATS:
        raise Open311Error(404, f"unknown format {ext[:16]!r}: use .json or .xml")
    return ext


def locale(values: Mapping[str, str], default: str) -> str:
    """The language of service names (``locale``, e.g. ``vi``, ``en`` or ``en-US``); the server's by default."""
    asked = text(values, "locale", 35).lower()
    if not asked:
        return default
    if asked[:2] not in LOCALES or asked[2:3] not in ("", "-", "_"):
        raise bad(f"locale: one of {', '.join(LOCALES)}")
    return asked[:2]


def moment(values: Mapping[str, str], name: str) -> datetime | None:
    """A W3C date-time parameter as aware UTC (naive: UTC); None when absent."""
    value = text(values, name, 40)
    if not value:
        return None
    # An offset's "+" arrives as a space when a client forgets to percent-encode it in the query string.
    value = UNENCODED_PLUS.sub(r"\1+\2", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"{name}: a W3C date-time such as 2026-11-30T08:00:00+07:00") from None
    if not 1900 <= parsed.year <= 2999:
        raise bad(f"{name}: a year between 1900 and 2999")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def window(values: Mapping[str, str], now: datetime, days: int = MAX_DAYS) -> tuple[datetime, datetime]:
    """[start_date, end_date): by default the last ``days`` days; one bound given, the other ``days`` away; never
    longer than ``days``."""
    asked_start, asked_end = moment(values, "start_date"), moment(values, "end_date")
    span = timedelta(days=days)
    end = asked_end or (asked_start + span if asked_start else now)
    start = asked_start or end - span
    if start >= end:
        raise bad("start_date must be before end_date")
    if end - start > span:
        raise bad(f"start_date to end_date: at most {days} days")
    return start, end


def service_codes(values: Mapping[str, str], known: Sequence[str]) -> tuple[str, ...]:
    """``service_code`` (comma-separated): each one of the hotline's topics."""
    codes = listed(values, "service_code", 2000)
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise bad(f"service_code: unknown {', '.join(unknown)[:200]} (known: {', '.join(known)})")
    return tuple(codes)


def statuses(values: Mapping[str, str]) -> tuple[str, ...]:
    """``status`` (open, closed, or both comma-separated) as the case statuses it covers."""
    asked = listed(values, "status")
    unknown = [status for status in asked if status not in STATUSES]
    if unknown:
        raise bad(f"status: open or closed, not {', '.join(unknown)[:200]}")
    return tuple(ours for status in dict.fromkeys(asked) for ours in STATUSES[status])


def request_ids(values: Mapping[str, str]) -> tuple[str, ...]:
    """``service_request_id`` (comma-separated case numbers, at most :data:`MAX_ROWS`)."""
    ids = listed(values, "service_request_id", 17 * MAX_ROWS)
    wrong = [i for i in ids if not NUMBER.fullmatch(i)]
    if wrong:
        raise bad(f"service_request_id: case numbers (5-16 digits), not {', '.join(wrong)[:200]}")
    return tuple(dict.fromkeys(ids))


def whole(values: Mapping[str, str], name: str, default: int, high: int) -> int:
    """A whole-number parameter between 1 and ``high``, in ASCII digits."""
    value = text(values, name, 12)
    if not value:
        return default
    if not is_digits(value) or not 1 <= int(value) <= high:
        raise bad(f"{name}: a whole number from 1 to {high}")
    return int(value)


def paging(values: Mapping[str, str]) -> tuple[int, int]:
    """(page, page_size): page size up to :data:`MAX_ROWS`, which is also the default."""
    return whole(values, "page", 1, 1_000_000), whole(values, "page_size", MAX_ROWS, MAX_ROWS)


@dataclass(frozen=True)
class NewRequest:
    """A service request as posted, checked."""

    service_code: str
    description: str
    latitude: float | None
    longitude: float | None
    address: str
    contact_name: str
    contact_phone: str


def coordinate(values: Mapping[str, str], name: str, limit: float) -> float | None:
    value = text(values, name, 32)
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise bad(f"{name}: a number such as 10.82") from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise bad(f"{name}: between {-limit:g} and {limit:g}")
    return number


def _place(values: Mapping[str, str]) -> tuple[float | None, float | None, str]:
    lat, long = coordinate(values, "lat", 90), coordinate(values, "long", 180)
    address = text(values, "address_string", 500)
    if (lat is None) != (long is None):
        raise bad("lat and long: both or neither")
    if text(values, "address_id", 64) and lat is None and not address:
        raise bad("address_id: this server keeps no address register; send lat and long or address_string")
    if lat is None and not address:
        raise bad("where: send lat and long, or address_string")
    return lat, long, address


def _contact(values: Mapping[str, str]) -> tuple[str, str]:
    name = " ".join(part for part in (text(values, "first_name", 63), text(values, "last_name", 64)) if part)
    phone = re.sub(r"[\s().-]", "", text(values, "phone", 40))
    if phone and not PHONE.match(phone):
        raise bad("phone: digits (a leading + allowed), 3 to 20 of them")
    email = text(values, "email", 254)
    if email and "@" not in email:
        raise bad("email: an address such as name@example.org")
    return name, phone


def _description(values: Mapping[str, str]) -> str:
    description = text(values, "description", DESCRIPTION_MAX)
    if not description:
        raise bad("description: write what is wrong")
    media = text(values, "media_url", 2000)
    if media:
        if not re.match(r"^https?://[^\s]+$", media):
            raise bad("media_url: an http or https URL")
        description = f"{description}\n\nmedia_url: {media}"  # no media column: staff see it with the text
        if len(description) > DESCRIPTION_MAX:
            raise bad(f"description and media_url: at most {DESCRIPTION_MAX} characters together")
    return description


def new_request(values: Mapping[str, str], known: Sequence[str]) -> NewRequest:
    """A posted service request, checked (every problem is a 400 naming the field)."""
    code = text(values, "service_code", 64)
    if not code:
        raise bad("service_code: required")
    if code not in known:
        raise bad(f"service_code: unknown {code!r} (known: {', '.join(known)})")
    lat, long, address = _place(values)
    name, phone = _contact(values)
    return NewRequest(code, _description(values), lat, long, address, name, phone)
