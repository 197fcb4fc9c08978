"""One experiment: a running target, load, a fault in its phase, a timeline.

    baseline (load, no fault) -> fault (applied .. reverted) -> recovery

Phases are stamped in the timeline as they happen, so checks never guess.
The fault is reverted in a ``finally``; the timeline is written as events
happen, so an interrupted experiment still leaves a readable timeline. What
the experiment itself records goes through the typed events of
``harness.events`` (the first event, fault edges, lifecycle, the drain).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import contextlib

from .errors import WaitTimeout
from .events import DrainEvent, Edge, ExperimentStarted, FaultDescription, FaultEffect, FaultEvent, LifecycleEvent
from .faults.base import Fault, injected
from .load import LoadRun, LoadSpec
from .probes import Probe, Prober
from .runtime.base import Runtime
from .timeline import Frames, Recorder, load_frames
from .topology import Topology
from .wait import NotYet, wait_until


@dataclass(frozen=True)
class Phases:
    """Lengths of the phases, in seconds of load."""

    baseline_s: float = 3.0
    fault_s: float = 4.0
    recovery_s: float = 5.0
    # After recovery the load stops and a "drain" phase waits (at most this
    # long) for the system to settle, e.g. a consumer to work off its backlog,
    # so a history check can tell lost from not-yet-processed.
    drain_s: float = 0.0

    @property
    def total_s(self) -> float:
        """Seconds under load (the drain phase has none)."""
        return self.baseline_s + self.fault_s + self.recovery_s


@dataclass
class ExperimentRun:
    """What an experiment leaves: its folder, frames, and the target's spec."""

    name: str
    folder: Path
    frames: Frames
    spec: dict[str, Any]
    target: str
    variant: str
    broken: bool
    fault: FaultDescription | None
    load_summary: dict[str, Any] = field(default_factory=dict)


def _pace(seconds: float) -> None:
    """Holds a phase for its length: pacing by design, not a wait for readiness."""
    if seconds > 0:
        time.sleep(seconds)  # poll: a phase lasts this long by definition


@contextlib.contextmanager
def _recording(runtime: Runtime, recorder: Recorder) -> Iterator[None]:
    """Lifecycle events of the runtime go to the timeline while the block runs."""

    def listener(service: str, instance: int, action: str, detail: str) -> None:
        recorder.write(LifecycleEvent(service=service, instance=instance, action=action, detail=str(detail)))

    runtime.add_listener(listener)
    try:
        yield
    finally:
        runtime.remove_listener(listener)


def run_experiment(
    *,
    name: str,
    runtime: Runtime,
    load: LoadSpec,
    fault: Fault | None,
    phases: Phases,
    folder: Path,
    probes: list[Probe] | None = None,
    probe_interval_s: float = 0.5,
    settled: Callable[[], bool] | None = None,
    first_request_timeout_s: float = 30.0,
) -> ExperimentRun:
    """Runs the phases against a runtime that is up, and loads the frames."""
    topo = runtime.topology
    load = _with_duration(load, phases.total_s + 5.0)
    described = fault.describe() if fault else None
    broken = _broken(topo)
    with Recorder(folder) as rec:
        rec.write(ExperimentStarted(
            name=name, target=topo.name, variant=topo.variant, broken=broken, runtime=runtime.name,
            fault=described, topology=topo.describe(), spec=dict(topo.spec), phases=asdict(phases),
            load={"users": load.users, "rate_per_s": load.rate_per_s, "timeout_s": load.timeout_s},
        ))

        def on_fault(description: FaultDescription, edge: Edge, error: str | None) -> None:
            rec.write(FaultEvent(fault=description, edge=edge, error=error))

        def on_effect(effect: FaultEffect) -> None:
            rec.write(effect)

        load_run = LoadRun(load, host_url=runtime.entry_url(), requests_file=rec.requests_path, log_dir=folder, run_id=runtime.run_id)
        with _recording(runtime, rec), load_run, Prober(probes or [], rec, interval_s=probe_interval_s):
            load_run.wait_first_request(timeout_s=first_request_timeout_s)
            _phase(rec, "baseline", lambda: _pace(phases.baseline_s))
            _phase(rec, "fault", lambda: _fault_phase(fault, runtime, on_fault, on_effect, phases.fault_s))
            _phase(rec, "recovery", lambda: _pace(phases.recovery_s))
            load_run.stop()
            summary = load_run.summary()
            if phases.drain_s > 0:
                _phase(rec, "drain", lambda: rec.write(_drain(settled, phases.drain_s)))
        rec.record("end")
    return ExperimentRun(
        name=name, folder=folder, frames=load_frames(folder), spec=dict(topo.spec), target=topo.name,
        variant=topo.variant, broken=broken, fault=described, load_summary=summary,
    )


def _broken(topo: Topology) -> bool:
    """Whether the topology's variant is one that violates the pattern (a topology built
    in Python may have no variants: it is then the correct one)."""
    variant = topo.variants.get(topo.variant)
    return bool(variant and variant.broken)


def _phase(rec: Recorder, phase: str, body: Any) -> None:
    rec.record("phase", phase=phase, edge="start")
    try:
        body()
    finally:
        rec.record("phase", phase=phase, edge="end")


def _fault_phase(fault: Fault | None, runtime: Runtime, listener: Any, on_effect: Any, seconds: float) -> None:
    if fault is None:
        _pace(seconds)
        return
    with injected(fault, runtime, listener=listener, on_effect=on_effect):
        _pace(seconds)


def _drain(settled: Callable[[], bool] | None, limit_s: float) -> DrainEvent:
    """Until `settled` says so (polled), or for limit_s when there is none or it never does.

    A poll that raises (a service still recovering may not answer yet) is
    polled again, and the last error is kept: a drain that never settles
    says why in its event."""
    started = time.monotonic()
    if settled is None:
        _pace(limit_s)
        return DrainEvent(settled=None, waited_s=time.monotonic() - started)
    polls, errors = [0], [None]

    def poll() -> bool:
        polls[0] += 1
        try:
            return settled()
        except Exception as exc:
            errors[0] = f"{type(exc).__name__}: {exc}"[:300]
            raise NotYet(errors[0]) from None

    try:
        wait_until(poll, what="the drain", timeout_s=limit_s, interval_s=0.1)
        done = True
    except WaitTimeout:
        done = False
    return DrainEvent(settled=done, waited_s=time.monotonic() - started, polls=polls[0], last_error=errors[0])


def _with_duration(load: LoadSpec, duration_s: float) -> LoadSpec:
    """Load outlasts the phases; the experiment stops it after recovery."""
    if load.stages:
        return load
    from dataclasses import replace

    return replace(load, duration_s=max(load.duration_s, math.ceil(duration_s)))  # Locust takes whole seconds
