"""What the builder needs to know about channels: whose endpoint a channel is, and which endpoints are operators
and which numbers are hotline lines (the :class:`Directory`, taken from the telephony model)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from callcenter.model.contract import DeviceType
from callcenter.model.hotline import HotlineModel

LOCAL_TECH = "Local/"  # Asterisk's internal half-channels (attended transfers, Originate): never a person


def endpoint_of(channel: str) -> str:
    """``PJSIP/op101-0000002a`` -> ``op101``."""
    tech_and_name = channel.split("/", 1)[-1]
    return tech_and_name.rsplit("-", 1)[0] if "-" in tech_and_name else tech_and_name


def is_person(channel: str) -> bool:
    """Whether a channel is a phone (a SIP endpoint, a trunk), not one of Asterisk's Local helper channels."""
    return bool(channel) and not channel.startswith(LOCAL_TECH)


@dataclass(frozen=True)
class Directory:
    """The operators (endpoint id -> device) and hotline numbers the call log recognises."""

    operators: Mapping[str, DeviceType] = field(default_factory=lambda: MappingProxyType({}))
    lines: frozenset[str] = frozenset()

    @classmethod
    def from_model(cls, model: HotlineModel) -> Directory:
        """The directory of a telephony model."""
        devices = {op.id: op.device for op in model.operators.values()}
        return cls(operators=MappingProxyType(devices), lines=frozenset(model.lines))

    def device(self, endpoint: str) -> DeviceType:
        """The operator's device, or UNKNOWN for an endpoint the model does not list."""
        return self.operators.get(endpoint, DeviceType.UNKNOWN)

    def is_operator(self, endpoint: str) -> bool:
        """Whether the model lists ``endpoint`` as an operator."""
        return endpoint in self.operators
