"""The SIP accounts the sandbox knows, defined once for the config, the tests and ``simulate``."""

from __future__ import annotations

HOTLINES: dict[str, str] = {
    "02621022": "provincial",  # Smart City Operations Center line
    "1900868647": "city",  # city People's Committee line
}
IP_PHONE_OPERATORS = ("op101", "op102", "op103")
SOFTPHONE_OPERATORS = ("op201", "op202")
OPERATORS = IP_PHONE_OPERATORS + SOFTPHONE_OPERATORS
CITIZENS = tuple(f"citizen{n}" for n in range(1, 13))
ENDPOINTS = OPERATORS + CITIZENS
