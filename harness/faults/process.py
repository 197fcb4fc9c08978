"""Faults on a service's instances through the runtime: crash, pause, restart, stop, scale out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase, service_instance
from .registry import register


@dataclass(frozen=True)
class InstanceFault(FaultBase):
    """A fault on one instance ('c' is c[0], or 'c[1]'), named and checked when it acts."""

    def target(self, runtime: Runtime) -> tuple[str, int]:
        return service_instance(runtime, self.on, self.kind)


@register
@dataclass(frozen=True)
class Crash(InstanceFault):
    """SIGKILL: no goodbye, no deregistration. Revert starts it again and waits until healthy."""

    kind: ClassVar[str] = "crash"

    def apply(self, runtime: Runtime) -> None:
        runtime.kill(*self.target(runtime))

    def revert(self, runtime: Runtime) -> None:
        runtime.kill(*self.target(runtime))  # make sure, then a fresh start
        runtime.start(*self.target(runtime))


@register
@dataclass(frozen=True)
class Pause(InstanceFault):
    """SIGSTOP: the process keeps its sockets but never answers; no reset is sent."""

    kind: ClassVar[str] = "pause"

    def apply(self, runtime: Runtime) -> None:
        runtime.pause(*self.target(runtime))

    def revert(self, runtime: Runtime) -> None:
        runtime.resume(*self.target(runtime))


@register
@dataclass(frozen=True)
class Restart(InstanceFault):
    """A graceful stop and start; the fault window covers the restart itself.
    Revert starts it only if the restart failed half-way."""

    kind: ClassVar[str] = "restart"

    def apply(self, runtime: Runtime) -> None:
        runtime.restart(*self.target(runtime))

    def revert(self, runtime: Runtime) -> None:
        _start_if_down(runtime, *self.target(runtime))


@register
@dataclass(frozen=True)
class Stop(InstanceFault):
    """A graceful stop (SIGTERM, then SIGKILL after the runtime's grace): the
    instance may say goodbye first. Revert starts it again and waits until healthy."""

    kind: ClassVar[str] = "stop"

    def apply(self, runtime: Runtime) -> None:
        runtime.stop(*self.target(runtime))

    def revert(self, runtime: Runtime) -> None:
        _start_if_down(runtime, *self.target(runtime))


def _start_if_down(runtime: Runtime, service: str, index: int) -> None:
    if not runtime.is_running(service, index):
        runtime.start(service, index)


@register
@dataclass(frozen=True)
class ScaleOut(FaultBase):
    """Starts `count` more instances of a service (each waited for until healthy).
    Revert takes them away again, gracefully; with keep=True they stay until
    the target is taken down (a change that must outlast the fault, e.g. made
    while the registry is down)."""

    kind: ClassVar[str] = "scale_out"
    count: int = 1
    keep: bool = False

    def apply(self, runtime: Runtime) -> None:
        service, _ = service_instance(runtime, self.on, self.kind)
        if self.count < 1:
            raise FaultError(f"{self.kind} on {self.on}: count must be at least 1, got {self.count}")
        # the count before, for revert (a frozen fault keeps this one piece of run state)
        object.__setattr__(self, "_before", len(runtime.addresses()[service]))
        runtime.scale(service, self._before + self.count)

    def revert(self, runtime: Runtime) -> None:
        service, _ = service_instance(runtime, self.on, self.kind)
        before = getattr(self, "_before", None)
        if before is not None and not self.keep and len(runtime.addresses()[service]) > before:
            runtime.scale(service, before)
