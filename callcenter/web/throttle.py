"""Failed sign-ins, limited per account and per address (the ``limits`` library, moving windows): past the limit
the account or address is locked out until its window has room again. Kept in the API process's memory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute, storage, strategies

from callcenter.settings import ApiSettings


@dataclass(frozen=True)
class Lockout:
    """Why sign-in is refused now, and for how many more minutes."""

    who: str  # "account" or "address"
    minutes: int


class SignInThrottle:
    """Counts failures; :meth:`locked` says whether an account or address may try now."""

    def __init__(self, settings: ApiSettings) -> None:
        window = max(1, math.ceil(settings.sign_in_window_minutes))
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._items = {"account": RateLimitItemPerMinute(settings.sign_in_failures_per_account, window),
                       "address": RateLimitItemPerMinute(settings.sign_in_failures_per_address, window)}

    def _keys(self, account: str, address: str) -> dict[str, str]:
        return {"account": account.strip().lower(), "address": address}

    def locked(self, account: str, address: str) -> Lockout | None:
        """A lock-out in force for this account or address, or None."""
        for who, key in self._keys(account, address).items():
            item = self._items[who]
            if not self._limiter.test(item, who, key):
                reset = self._limiter.get_window_stats(item, who, key).reset_time
                return Lockout(who, max(1, math.ceil((reset - time.time()) / 60)))
        return None

    def failed(self, account: str, address: str) -> None:
        """Count one failed attempt against both."""
        for who, key in self._keys(account, address).items():
            self._limiter.hit(self._items[who], who, key)
