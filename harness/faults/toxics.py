"""Toxiproxy toxics on a link: one fault kind per toxic type.

Every proxy of the link (one per server instance) gets the toxic; revert
removes it. Attribute names and units are Toxiproxy's own (ms, KB/s, bytes,
microseconds for slicer's delay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase
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

    def _proxies(self, runtime: Runtime) -> list[str]:
        try:
            return [p.proxy for p in runtime.link_proxies(self.on)]
        except Exception as exc:
            raise FaultError(f"{self.kind}: {exc}") from None

    def apply(self, runtime: Runtime) -> None:
        attrs: dict[str, Any] = {name: getattr(self, name) for name in self.attributes}
        for proxy in self._proxies(runtime):
            runtime.toxiproxy.add_toxic(
                proxy, type=self.kind, name=self.toxic_name, stream=self.stream, toxicity=self.toxicity, attributes=attrs
            )

    def revert(self, runtime: Runtime) -> None:
        for proxy in self._proxies(runtime):
            if any(t["name"] == self.toxic_name for t in runtime.toxiproxy.toxics(proxy)):
                runtime.toxiproxy.remove_toxic(proxy, self.toxic_name)


@register
@dataclass(frozen=True)
class Latency(ToxicFault):
    kind: ClassVar[str] = "latency"
    attributes: ClassVar[tuple[str, ...]] = ("latency", "jitter")
    latency: int = 100
    jitter: int = 0


@register
@dataclass(frozen=True)
class Bandwidth(ToxicFault):
    kind: ClassVar[str] = "bandwidth"
    attributes: ClassVar[tuple[str, ...]] = ("rate",)
    rate: int = 10


@register
@dataclass(frozen=True)
class SlowClose(ToxicFault):
    kind: ClassVar[str] = "slow_close"
    attributes: ClassVar[tuple[str, ...]] = ("delay",)
    delay: int = 1000


@register
@dataclass(frozen=True)
class Timeout(ToxicFault):
    kind: ClassVar[str] = "timeout"
    attributes: ClassVar[tuple[str, ...]] = ("timeout",)
    timeout: int = 0


@register
@dataclass(frozen=True)
class ResetPeer(ToxicFault):
    kind: ClassVar[str] = "reset_peer"
    attributes: ClassVar[tuple[str, ...]] = ("timeout",)
    timeout: int = 0


@register
@dataclass(frozen=True)
class Slicer(ToxicFault):
    kind: ClassVar[str] = "slicer"
    attributes: ClassVar[tuple[str, ...]] = ("average_size", "size_variation", "delay")
    average_size: int = 64
    size_variation: int = 32
    delay: int = 10


@register
@dataclass(frozen=True)
class LimitData(ToxicFault):
    kind: ClassVar[str] = "limit_data"
    attributes: ClassVar[tuple[str, ...]] = ("bytes",)
    bytes: int = 1024
