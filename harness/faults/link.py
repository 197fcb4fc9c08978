"""A link taken down: its proxies stop listening (clients get refused)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase
from .registry import register


def link_proxies(runtime: Runtime, link: str, kind: str) -> list[str]:
    """The proxies of a link (one per server instance); an unknown link is a FaultError naming the known ones."""
    try:
        return [p.proxy for p in runtime.link_proxies(link)]
    except Exception as exc:
        raise FaultError(f"{kind}: {exc}") from None


@register
@dataclass(frozen=True)
class LinkDown(FaultBase):
    kind: ClassVar[str] = "link_down"

    def apply(self, runtime: Runtime) -> None:
        for proxy in link_proxies(runtime, self.on, self.kind):
            runtime.toxiproxy.set_enabled(proxy, False)

    def revert(self, runtime: Runtime) -> None:
        for proxy in link_proxies(runtime, self.on, self.kind):
            runtime.toxiproxy.set_enabled(proxy, True)
