"""Faults on a service instance through the runtime: crash, pause, restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..runtime.base import Runtime
from .base import FaultBase, service_instance
from .registry import register


@register
@dataclass(frozen=True)
class Crash(FaultBase):
    """SIGKILL: no goodbye, no deregistration. Revert starts it again and waits until healthy."""

    kind: ClassVar[str] = "crash"

    def apply(self, runtime: Runtime) -> None:
        runtime.kill(*service_instance(runtime, self.on, self.kind))

    def revert(self, runtime: Runtime) -> None:
        service, index = service_instance(runtime, self.on, self.kind)
        runtime.kill(service, index)  # make sure, then a fresh start
        runtime.start(service, index)


@register
@dataclass(frozen=True)
class Pause(FaultBase):
    """SIGSTOP: the process keeps its sockets but never answers; no reset is sent."""

    kind: ClassVar[str] = "pause"

    def apply(self, runtime: Runtime) -> None:
        runtime.pause(*service_instance(runtime, self.on, self.kind))

    def revert(self, runtime: Runtime) -> None:
        runtime.resume(*service_instance(runtime, self.on, self.kind))


@register
@dataclass(frozen=True)
class Restart(FaultBase):
    """A graceful stop and start; the fault window covers the restart itself."""

    kind: ClassVar[str] = "restart"

    def apply(self, runtime: Runtime) -> None:
        runtime.restart(*service_instance(runtime, self.on, self.kind))

    def revert(self, runtime: Runtime) -> None:
        service, index = service_instance(runtime, self.on, self.kind)
        if not runtime.is_running(service, index):  # the restart failed half-way
            runtime.start(service, index)
