"""What a fault is, and the one way to inject it: recorded, and always undone."""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Iterator, Protocol

from ..errors import FaultError
from ..events import Edge, FaultDescription, FaultEffect
from ..runtime.base import Runtime

# (description, edge, error) -> None: the experiment records it as a FaultEvent.
FaultListener = Callable[[FaultDescription, Edge, str | None], None]
# What the harness saw of the fault's effect, just before the revert (a FaultEffect event).
EffectListener = Callable[[FaultEffect], None]


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


def parse_instance(on: str) -> tuple[str, int] | None:
    """'c' as ('c', 0), 'c[1]' as ('c', 1); None when it names no instance."""
    m = _INSTANCE_RE.match(on)
    return (m["service"], int(m["index"] or 0)) if m else None


def service_instance(runtime: Runtime, on: str, kind: str) -> tuple[str, int]:
    """Parses 'c' or 'c[1]' and checks the service exists."""
    parsed = parse_instance(on)
    if parsed is None or parsed[0] not in runtime.topology.services:
        known = ", ".join(runtime.topology.services)
        raise FaultError(f"{kind}: {on!r} is not a service of target {runtime.topology.name} (services: {known}; an instance is 'name[i]')")
    return parsed


@contextlib.contextmanager
def injected(fault: Fault, runtime: Runtime, *, listener: FaultListener | None = None,
             on_effect: EffectListener | None = None) -> Iterator[Fault]:
    """Applies the fault for the body of the block and reverts it in a
    ``finally``: also when the body fails or the run is interrupted. A
    failed apply is reverted too (it may have half-happened). With
    on_effect, the fault's watch (harness.landing) gathers the evidence that
    it took effect while the block runs, and says what it saw before the revert."""
    from ..landing.choose import watch_for  # the watches read runtimes, which faults must not import first

    description = fault.describe()
    watch = watch_for(fault, runtime) if on_effect else None
    if watch:
        watch.before()
    if listener:
        listener(description, "start", None)
    error: str | None = None
    try:
        if watch:
            watch.started()
        fault.apply(runtime)
        if watch:
            watch.applied()
        yield fault
    finally:
        if watch and on_effect:
            on_effect(watch.conclude())
        try:
            fault.revert(runtime)
        except BaseException as exc:
            error = f"revert failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            if listener:
                listener(description, "end", error)
