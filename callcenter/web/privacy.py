"""Confidentiality helpers shared by pages and the API: masking callers' numbers for roles that may not see them."""

from __future__ import annotations

MASK = "•••"


def mask_number(number: str) -> str:
    """``0905123456`` -> ``0905•••456``: enough to tell calls apart, not enough to call back. Short numbers keep
    only their last two digits."""
    if not number:
        return ""
    if len(number) >= 8:
        return f"{number[:4]}{MASK}{number[-3:]}"
    return f"{MASK}{number[-2:]}" if len(number) > 2 else MASK
