"""A network partition: a service instance cut off from the run's network.

Unlike ``link_down`` (one edge's proxy stops listening) and ``pause`` (the
process freezes), the instance keeps running but nothing reaches it and it
reaches nothing: Toxiproxy cannot dial it, its own calls fail, and its
published port goes away. Revert connects it again under its own name.
Needs a runtime that has networks (docker); others get a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase, service_instance
from .registry import register


@runtime_checkable
class Partitionable(Protocol):
    """The optional runtime capability a partition needs."""

    def partition(self, service: str, instance: int = 0) -> None: ...
    def heal(self, service: str, instance: int = 0) -> None: ...


@register
@dataclass(frozen=True)
class Partition(FaultBase):
    kind: ClassVar[str] = "partition"

    def _runtime(self, runtime: Runtime) -> Partitionable:
        if not isinstance(runtime, Partitionable):
            raise FaultError(f"{self.kind} on {self.on}: the {runtime.name} runtime has no networks to cut; "
                             "use --runtime docker (or link_down on each of the service's links)")
        return runtime

    def apply(self, runtime: Runtime) -> None:
        self._runtime(runtime).partition(*service_instance(runtime, self.on, self.kind))

    def revert(self, runtime: Runtime) -> None:
        self._runtime(runtime).heal(*service_instance(runtime, self.on, self.kind))
