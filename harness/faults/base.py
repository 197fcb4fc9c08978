"""What a fault is, and the one way to inject it: recorded, and always undone."""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Iterator, Protocol

from ..errors import FaultError
from ..events import Edge, FaultDescription
from ..runtime.base import Runtime

# (description, edge, error) -> None: the experiment records it as a FaultEvent.
FaultListener = Callable[[FaultDescription, Edge, str | None], None]


class Fault(Protocol):
    kind: ClassVar[str]
    on: str

    def apply(self, runtime: Runtime) -> None: ...
    def revert(self, runtime: Runtime) -> None: ...
    def describe(self) -> FaultDescription: ...


@dataclass(frozen=True)
class FaultBase:
    """Shared plumbing: parameters are the dataclass fields other than ``on``."""

    kind: ClassVar[str] = ""
    on: str

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "on"}

    def describe(self) -> FaultDescription:
        return FaultDescription(kind=self.kind, on=self.on, params=self.params())

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.kind}({self.on}{', ' + params if params else ''})"


_INSTANCE_RE = re.compile(r"^(?P<service>[a-z][a-z0-9_-]*)(\[(?P<index>\d+)\])?$")


def service_instance(runtime: Runtime, on: str, kind: str) -> tuple[str, int]:
    """Parses 'c' or 'c[1]' and checks the service exists."""
    m = _INSTANCE_RE.match(on)
    if not m or m["service"] not in runtime.topology.services:
        known = ", ".join(runtime.topology.services)
        raise FaultError(f"{kind}: {on!r} is not a service of target {runtime.topology.name} (services: {known}; an instance is 'name[i]')")
    return m["service"], int(m["index"] or 0)


@contextlib.contextmanager
def injected(fault: Fault, runtime: Runtime, *, listener: FaultListener | None = None) -> Iterator[Fault]:
    """Applies the fault for the body of the block and reverts it in a
    ``finally``: also when the body fails or the run is interrupted. A
    failed apply is reverted too (it may have half-happened)."""
    description = fault.describe()
    if listener:
        listener(description, "start", None)
    error: str | None = None
    try:
        fault.apply(runtime)
        yield fault
    finally:
        try:
            fault.revert(runtime)
        except BaseException as exc:
            error = f"revert failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            if listener:
                listener(description, "end", error)
