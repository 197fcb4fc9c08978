"""Toxiproxy toxics on a link: one fault kind per toxic type, made from the table below.

Every proxy of the link (one per server instance) gets the toxic; revert
removes it. Attribute names and units are Toxiproxy's own (ms, KB/s, bytes,
microseconds for slicer's delay).
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any, ClassVar

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase
from .link import link_proxies
from .registry import register

STREAMS = ("downstream", "upstream")


@dataclass(frozen=True)
class ToxicFault(FaultBase):
    """Base of the toxic kinds; subclasses name their Toxiproxy attributes."""

    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise FaultError(f"{self.kind} on {self.on}: stream must be one of {STREAMS}, got {self.stream!r}")
        if not 0.0 <= self.toxicity <= 1.0:
            raise FaultError(f"{self.kind} on {self.on}: toxicity is a probability in [0, 1], got {self.toxicity}")
        for name in self.attributes:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise FaultError(f"{self.kind} on {self.on}: {name} must be a number >= 0, got {value!r}")

    @property
    def toxic_name(self) -> str:
        return f"harness_{self.kind}_{self.stream}"

    def apply(self, runtime: Runtime) -> None:
        attrs: dict[str, Any] = {name: getattr(self, name) for name in self.attributes}
        for proxy in link_proxies(runtime, self.on, self.kind):
            runtime.toxiproxy.add_toxic(
                proxy, type=self.kind, name=self.toxic_name, stream=self.stream, toxicity=self.toxicity, attributes=attrs
            )

    def revert(self, runtime: Runtime) -> None:
        for proxy in link_proxies(runtime, self.on, self.kind):
            if any(t["name"] == self.toxic_name for t in runtime.toxiproxy.toxics(proxy)):
                runtime.toxiproxy.remove_toxic(proxy, self.toxic_name)


# Every toxic type of Toxiproxy v2.12: its attributes, with the defaults a
# fault gets when it names none. Units are Toxiproxy's own.
TOXICS: dict[str, dict[str, int]] = {
    "latency": {"latency": 100, "jitter": 0},  # ms, per chunk
    "bandwidth": {"rate": 10},  # KB/s
    "slow_close": {"delay": 1000},  # ms before a close is passed on
    "timeout": {"timeout": 0},  # ms; 0: data stops and the connection stays open
    "reset_peer": {"timeout": 0},  # ms before the reset
    "slicer": {"average_size": 64, "size_variation": 32, "delay": 10},  # bytes, bytes, microseconds
    "limit_data": {"bytes": 1024},  # closes a connection after that many bytes
}


def _toxic_kind(kind: str, attributes: dict[str, int]) -> type[ToxicFault]:
    """One fault kind per toxic: a frozen dataclass whose fields are the toxic's attributes."""
    name = "".join(part.title() for part in kind.split("_"))
    fields = [(attr, int, field(default=default)) for attr, default in attributes.items()]
    return make_dataclass(name, fields, bases=(ToxicFault,), frozen=True,
                          namespace={"kind": kind, "attributes": tuple(attributes), "__module__": __name__})


for _kind, _attributes in TOXICS.items():
    _cls = register(_toxic_kind(_kind, _attributes))
    globals()[_cls.__name__] = _cls  # Latency, Bandwidth, ... for whoever wants the class
del _kind, _attributes, _cls
