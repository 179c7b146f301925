"""Confidentiality helpers shared by pages and the API: masking callers' numbers (and what the voice menu heard of
them) for roles that may not see them."""

from __future__ import annotations

from urllib.parse import unquote

MASK = "•••"


def mask_number(number: str) -> str:
    """``0905123456`` -> ``0905•••456``: enough to tell calls apart, not enough to call back. Short numbers keep
    only their last two digits."""
    if not number:
        return ""
    if len(number) >= 8:
        return f"{number[:4]}{MASK}{number[-3:]}"
    return f"{MASK}{number[-2:]}" if len(number) > 2 else MASK


# The voice-menu fields that say nothing about who called: the rest (a call-back number, a case number looked up,
# the digits keyed where the menu expected none, a voice message's file) are masked for those who see numbers masked.
PLAIN_STEP_FIELDS = frozenset({"line", "lang", "menu", "attempt", "digit", "topic", "outcome", "reason", "source",
                               "result", "status"})


def mask_step(step: str) -> str:
    """A voice-menu step as the call log keeps it (``IVR_CALLBACK:number=0987654321&source=entered``) with every
    field but the plain ones masked: ``IVR_CALLBACK:number=0987•••321&source=entered``."""
    name, colon, fields = step.partition(":")
    if not colon or not fields:
        return step
    parts = []
    for part in fields.split("&"):
        key, equals, value = part.partition("=")
        if not equals or key in PLAIN_STEP_FIELDS:
            parts.append(part)
        else:
            parts.append(f"{key}={mask_number(unquote(value)) if key == 'number' else MASK}")
    return f"{name}:{'&'.join(parts)}"
