"""Which watch observes which fault, and the watches of faults the service enacts or that come in parts."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from ..events import FaultDescription, FaultEffect
from ..runtime.base import Runtime
from .instance_watch import EndWatch, PartitionWatch, PauseWatch, RestartWatch, ScaleOutWatch, _target
from .link_watch import LinkWatch
from .watches import Finding, Watch

LINK_KINDS = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "link_down")
INSTANCE_WATCHES: dict[str, type[Watch]] = {
    "pause": PauseWatch, "crash": EndWatch, "stop": EndWatch, "restart": RestartWatch,
    "scale_out": ScaleOutWatch, "partition": PartitionWatch,
}


class ServiceCallWatch(Watch):
    """A fault the service enacts is verified only as its target declares: a request
    to verify_path must take at least verify_min_ms once the fault is on."""

    def observe(self, stop: threading.Event) -> Finding:
        params = self.description.params
        path, min_ms = str(params.get("verify_path") or ""), float(params.get("verify_min_ms") or 0)
        if not path:
            return Finding(None, f"not verified: the service_call on {self.description.on} declares no verify_path")
        service, index = _target(self.description.on)
        url = self.runtime.url(service, index) + path
        took: list[float] = []

        def look() -> bool:
            started = time.monotonic()
            try:
                httpx.get(url, timeout=max(5.0, 2 * min_ms / 1000), trust_env=False)
            except httpx.HTTPError:
                return False
            took.append((time.monotonic() - started) * 1000)
            return took[-1] >= min_ms

        figures: dict[str, Any] = {"verify_path": path, "verify_min_ms": min_ms}
        if self.poll(stop, look, limit_s=10.0):
            return Finding(True, None, [f"GET {path} took {took[-1]:.0f} ms (at least {min_ms:.0f} once the fault is on)"],
                           {**figures, "verify_ms": round(took[-1], 1)})
        return Finding(False, f"GET {path} never took {min_ms:.0f} ms ({len(took)} tries"
                              f"{f', the last {took[-1]:.0f} ms' if took else ''})", [], figures)


class CombinedWatch(Watch):
    """Every part's watch; the whole landed when every part did."""

    def __init__(self, description: FaultDescription, runtime: Runtime, parts: list[Watch]) -> None:
        super().__init__(description, runtime)
        self.parts = parts

    def before(self) -> None:
        for part in self.parts:
            part.before()

    def started(self) -> None:
        super().started()
        for part in self.parts:
            part.started()

    def applied(self) -> None:
        for part in self.parts:
            part.applied()

    def conclude(self, *, join_s: float = 5.0) -> FaultEffect:
        effects = [part.conclude(join_s=join_s) for part in self.parts]
        landed = [e.landed for e in effects]
        whole = False if False in landed else (None if None in landed else True)
        reasons = [f"{e.fault.kind} on {e.fault.on}: {e.reason}" for e in effects if e.landed is not True and e.reason]
        figures = {f"{e.fault.kind} on {e.fault.on}": {"landed": e.landed, **e.figures} for e in effects}
        seen = [e.figures.get("seen_after_ms") for e in effects]
        if whole and all(isinstance(s, (int, float)) for s in seen):
            figures["seen_after_ms"] = max(seen)  # type: ignore[type-var]
        return FaultEffect(fault=self.description, landed=whole, reason="; ".join(reasons) or None,
                           evidence=tuple(line for e in effects for line in e.evidence), figures=figures)


def watch_for(fault: Any, runtime: Runtime) -> Watch:
    """The watch of a fault: by its kind; a fault in parts gets one per part; a kind the
    harness does not know gets a watch that says it cannot be observed."""
    description: FaultDescription = fault.describe()
    parts = getattr(fault, "parts", None)
    try:
        if parts is not None:
            return CombinedWatch(description, runtime, [watch_for(part, runtime) for part in parts])
        if description.kind in LINK_KINDS:
            return LinkWatch(description, runtime)
        if description.kind in INSTANCE_WATCHES:
            return INSTANCE_WATCHES[description.kind](description, runtime)
        if description.kind == "service_call":
            return ServiceCallWatch(description, runtime)
    except Exception as exc:  # a watch that cannot even be made says so in its effect
        return _Broken(description, runtime, exc)
    return Watch(description, runtime)


class _Broken(Watch):
    def __init__(self, description: FaultDescription, runtime: Runtime, exc: Exception) -> None:
        super().__init__(description, runtime)
        self.error = f"{type(exc).__name__}: {exc}"[:300]

    def observe(self, stop: threading.Event) -> Finding:
        return Finding(False, f"the watch could not be set up: {self.error}")
