"""A link taken down: its proxies stop listening (clients get refused)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase
from .registry import register


@register
@dataclass(frozen=True)
class LinkDown(FaultBase):
    kind: ClassVar[str] = "link_down"

    def _proxies(self, runtime: Runtime) -> list[str]:
        try:
            return [p.proxy for p in runtime.link_proxies(self.on)]
        except Exception as exc:
            raise FaultError(f"{self.kind}: {exc}") from None

    def apply(self, runtime: Runtime) -> None:
        for proxy in self._proxies(runtime):
            runtime.toxiproxy.set_enabled(proxy, False)

    def revert(self, runtime: Runtime) -> None:
        for proxy in self._proxies(runtime):
            runtime.toxiproxy.set_enabled(proxy, True)
