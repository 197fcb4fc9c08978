"""Several faults as one window: applied in order, reverted in reverse.

For a change that only means something together with another, e.g. a new
instance started while the registry is down: ``combined(crash on registry,
scale_out on web)``. Every part that was applied is reverted, also when a
later part fails to apply or an earlier revert fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import ClassVar

from ..errors import FaultError
from ..events import FaultDescription
from ..runtime.base import Runtime
from .base import Fault


@dataclass(frozen=True)
class Combined:
    """The parts as one fault; its kind and target join the parts' with '+'."""

    parts: tuple[Fault, ...]
    kind: ClassVar[str] = "combined"

    @property
    def on(self) -> str:
        return "+".join(p.on for p in self.parts)

    def apply(self, runtime: Runtime) -> None:
        object.__setattr__(self, "_applied", 0)  # how many parts to revert
        for part in self.parts:
            object.__setattr__(self, "_applied", self._applied + 1)  # a failed apply may have half-happened
            part.apply(runtime)

    def revert(self, runtime: Runtime) -> None:
        failed: BaseException | None = None
        for part in reversed(self.parts[: getattr(self, "_applied", len(self.parts))]):
            try:
                part.revert(runtime)
            except BaseException as exc:  # the others are still reverted; the first failure is raised
                failed = failed or exc
        if failed is not None:
            raise failed

    def describe(self) -> FaultDescription:
        described = [p.describe() for p in self.parts]
        return FaultDescription(kind="+".join(d.kind for d in described), on=self.on,
                                params={f"{d.kind} on {d.on}": d.params for d in described if d.params})

    def __str__(self) -> str:
        return " + ".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Delayed:
    """A part of combined() applied after_s after the parts before it, so the first
    parts' effect can build up first (e.g. an outbox fills while its broker is out
    of reach, then the producer is killed). Watched, reverted and described as the
    fault itself, with after_s among its parameters."""

    fault: Fault
    after_s: float

    @property
    def on(self) -> str:
        return self.fault.on

    def apply(self, runtime: Runtime) -> None:
        time.sleep(self.after_s)  # poll: not a wait for a state, the window's pace by design
        self.fault.apply(runtime)

    def revert(self, runtime: Runtime) -> None:
        self.fault.revert(runtime)

    def describe(self) -> FaultDescription:
        described = self.fault.describe()
        return replace(described, params={**described.params, "after_s": self.after_s})

    def __str__(self) -> str:
        return f"{self.fault} after {self.after_s:g}s"


def after(fault: Fault, after_s: float) -> Delayed:
    """`fault`, applied after_s after the parts of combined() before it."""
    if not after_s >= 0:
        raise FaultError(f"after: after_s must be >= 0 seconds, got {after_s!r}")
    return Delayed(fault, float(after_s))


def combined(*parts: Fault) -> Combined:
    if len(parts) < 2:
        raise FaultError(f"combined: give two faults or more, got {len(parts)}")
    return Combined(tuple(parts))
