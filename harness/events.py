"""The typed events of a timeline, each with its JSON form (one line of timeline.jsonl).

The experiment writes them (``Recorder.write``), ``load_frames`` reads them
back through ``from_json``, and the report reads the first one: no module
has to agree with another on a dict's keys. The JSON keeps the flat shape
the timeline has always had, so saved runs still load. Probe, observed,
phase and end events stay plain (``Recorder.record``): their fields are the
samples' own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

from .jsonform import field_of, json_object

Edge = Literal["start", "end"]
EDGES = ("start", "end")


def now_ns() -> int:
    """The one clock every event is stamped with: wall-clock nanoseconds on this host."""
    return time.time_ns()


def _edge(data: Mapping[str, Any], record: str) -> Edge:
    edge = field_of(data, "edge", str, record)
    if edge not in EDGES:
        raise ValueError(f"{record}: edge is {edge!r}, not start or end")
    return edge  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class FaultDescription:
    """What a fault does and where: its kind, what it is on, and its parameters."""

    kind: str
    on: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "on": self.on, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Any) -> "FaultDescription":
        data = json_object(data, "fault description")
        return cls(
            kind=field_of(data, "kind", str, "fault description"),
            on=field_of(data, "on", str, "fault description"),
            params=dict(field_of(data, "params", dict, "fault description")),
        )


def _flat_description(data: Mapping[str, Any], record: str) -> FaultDescription:
    """The fault a flat event names in its fault, on and params fields."""
    return FaultDescription(kind=field_of(data, "fault", str, record), on=field_of(data, "on", str, record),
                            params=dict(field_of(data, "params", dict, record)))


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault window's edge: applied (start) or reverted (end, with the error of a failed revert)."""

    kind: ClassVar[str] = "fault"
    fault: FaultDescription
    edge: Edge
    error: str | None = None
    t_ns: int = field(default_factory=now_ns, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        d = self.fault
        return {"t_ns": self.t_ns, "kind": self.kind, "fault": d.kind, "on": d.on, "params": dict(d.params),
                "edge": self.edge, "error": self.error}

    @classmethod
    def from_json(cls, data: Any) -> "FaultEvent":
        data = json_object(data, "fault event")
        fault = _flat_description(data, "fault event")
        return cls(fault=fault, edge=_edge(data, "fault event"), error=field_of(data, "error", (str, type(None)), "fault event", None),
                   t_ns=field_of(data, "t_ns", int, "fault event"))


@dataclass(frozen=True, slots=True)
class FaultEffect:
    """What the harness itself saw of a fault's effect (harness.landing): landed (True),
    not seen (False, with the reason), or not verifiable (None); the evidence in
    words and its figures, `seen_after_ms` among them (from apply to evidence)."""

    kind: ClassVar[str] = "fault_effect"
    fault: FaultDescription
    landed: bool | None
    reason: str | None = None
    evidence: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)
    t_ns: int = field(default_factory=now_ns, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        d = self.fault
        return {"t_ns": self.t_ns, "kind": self.kind, "fault": d.kind, "on": d.on, "params": dict(d.params),
                "landed": self.landed, "reason": self.reason, "evidence": list(self.evidence),
                "figures": dict(self.figures)}

    @classmethod
    def from_json(cls, data: Any) -> "FaultEffect":
        data = json_object(data, "fault effect")
        fault = _flat_description(data, "fault effect")
        return cls(fault=fault, landed=field_of(data, "landed", (bool, type(None)), "fault effect"),
                   reason=field_of(data, "reason", (str, type(None)), "fault effect", None),
                   evidence=tuple(field_of(data, "evidence", list, "fault effect", [])),
                   figures=dict(field_of(data, "figures", dict, "fault effect", {})),
                   t_ns=field_of(data, "t_ns", int, "fault effect"))


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """What the runtime did to one instance (start, kill, pause, ...), as its listener reported it."""

    kind: ClassVar[str] = "lifecycle"
    service: str
    instance: int
    action: str
    detail: str = ""
    t_ns: int = field(default_factory=now_ns, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        return {"t_ns": self.t_ns, "kind": self.kind, "service": self.service, "instance": self.instance,
                "action": self.action, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Any) -> "LifecycleEvent":
        data = json_object(data, "lifecycle event")
        return cls(
            service=field_of(data, "service", str, "lifecycle event"),
            instance=field_of(data, "instance", int, "lifecycle event"),
            action=field_of(data, "action", str, "lifecycle event"),
            detail=field_of(data, "detail", str, "lifecycle event"),
            t_ns=field_of(data, "t_ns", int, "lifecycle event"),
        )


@dataclass(frozen=True, slots=True)
class DrainEvent:
    """How the drain phase ended: settled (None when nothing was polled), and the
    last error the poll raised, so a drain that never settles says why."""

    kind: ClassVar[str] = "drain"
    settled: bool | None
    waited_s: float
    polls: int = 0
    last_error: str | None = None
    t_ns: int = field(default_factory=now_ns, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        return {"t_ns": self.t_ns, "kind": self.kind, "settled": self.settled, "waited_s": self.waited_s,
                "polls": self.polls, "last_error": self.last_error}

    @classmethod
    def from_json(cls, data: Any) -> "DrainEvent":
        data = json_object(data, "drain event")
        return cls(
            settled=field_of(data, "settled", (bool, type(None)), "drain event"),
            waited_s=float(field_of(data, "waited_s", (int, float), "drain event")),
            polls=field_of(data, "polls", int, "drain event"),
            last_error=field_of(data, "last_error", (str, type(None)), "drain event"),
            t_ns=field_of(data, "t_ns", int, "drain event"),
        )


@dataclass(frozen=True, slots=True)
class ExperimentStarted:
    """The first event of a timeline: what ran, on which variant (and whether that
    variant is a broken one), with which fault, topology, spec, phases and load."""

    kind: ClassVar[str] = "experiment"
    name: str
    target: str
    variant: str
    broken: bool
    runtime: str
    fault: FaultDescription | None
    topology: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    t_ns: int = field(default_factory=now_ns, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        return {"t_ns": self.t_ns, "kind": self.kind, "name": self.name, "target": self.target,
                "variant": self.variant, "broken": self.broken, "runtime": self.runtime,
                "fault": self.fault.to_json() if self.fault else None, "topology": self.topology,
                "spec": self.spec, "phases": self.phases, "load": self.load}

    @classmethod
    def from_json(cls, data: Any) -> "ExperimentStarted":
        data = json_object(data, "experiment event")
        fault = field_of(data, "fault", (dict, type(None)), "experiment event")
        return cls(
            name=field_of(data, "name", str, "experiment event"),
            target=field_of(data, "target", str, "experiment event"),
            variant=field_of(data, "variant", str, "experiment event"),
            # runs saved before `broken` was recorded have none: their variants show untagged
            broken=field_of(data, "broken", bool, "experiment event", False),
            runtime=field_of(data, "runtime", str, "experiment event"),
            fault=FaultDescription.from_json(fault) if fault is not None else None,
            topology=field_of(data, "topology", dict, "experiment event"),
            spec=field_of(data, "spec", dict, "experiment event"),
            phases=field_of(data, "phases", dict, "experiment event"),
            load=field_of(data, "load", dict, "experiment event"),
            t_ns=field_of(data, "t_ns", int, "experiment event"),
        )
