"""``host:port`` addresses in the model (where Asterisk and the project's servers listen)."""

from __future__ import annotations

import ipaddress
from typing import Any, NamedTuple

from pydantic import BeforeValidator

from callcenter.model.text import is_digits


class Address(NamedTuple):
    """A host (an IP address or a name) and a TCP/UDP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can reach it."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_address(value: Any) -> Address:
    """``"127.0.0.1:5060"`` (or ``"[::1]:5060"``) -> Address; a clear ValueError otherwise."""
    if isinstance(value, Address):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        value = f"{value[0]}:{value[1]}"
    if not isinstance(value, str):
        raise ValueError(f"expected \"host:port\", got {value!r}")
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not is_digits(port) or not 0 < int(port) < 65536:
        raise ValueError(f"bad address {value!r}: expected \"host:port\", e.g. \"127.0.0.1:5060\"")
    return Address(host, int(port))


ParsedAddress = BeforeValidator(parse_address)
