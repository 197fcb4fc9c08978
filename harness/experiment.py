"""One experiment: a running target, load, a fault in its phase, a timeline.

    baseline (load, no fault) -> fault (applied .. reverted) -> recovery

Phases are stamped in the timeline as they happen, so checks never guess.
The fault is reverted in a ``finally``; the timeline is written as events
happen, so an interrupted experiment still leaves a readable timeline.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import contextlib

from .faults.base import Fault, injected
from .load import LoadRun, LoadSpec
from .probes import Probe, Prober
from .runtime.base import Runtime
from .timeline import Frames, Recorder, load_frames


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
    fault: dict[str, Any] | None
    load_summary: dict[str, Any] = field(default_factory=dict)


def _pace(seconds: float) -> None:
    """Holds a phase for its length: pacing by design, not a wait for readiness."""
    if seconds > 0:
        time.sleep(seconds)  # poll: a phase lasts this long by definition


@contextlib.contextmanager
def _recording(runtime: Runtime, recorder: Recorder) -> Iterator[None]:
    """Lifecycle events of the runtime go to the timeline while the block runs."""

    def listener(service: str, instance: int, action: str, detail: str) -> None:
        recorder.record("lifecycle", service=service, instance=instance, action=action, detail=detail)

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
    with Recorder(folder) as rec:
        rec.record(
            "experiment", name=name, target=topo.name, variant=topo.variant, runtime=runtime.name,
            fault=fault.describe() if fault else None, topology=topo.describe(), spec=topo.spec,
            phases=asdict(phases), load={"users": load.users, "rate_per_s": load.rate_per_s, "timeout_s": load.timeout_s},
        )

        def on_fault(description: dict[str, Any], edge: str, error: str | None) -> None:
            rec.record("fault", fault=description["kind"], on=description["on"], params=description["params"], edge=edge, error=error)

        load_run = LoadRun(load, host_url=runtime.entry_url(), requests_file=rec.requests_path, log_dir=folder, run_id=runtime.run_id)
        with _recording(runtime, rec), load_run, Prober(probes or [], rec, interval_s=probe_interval_s):
            load_run.wait_first_request(timeout_s=first_request_timeout_s)
            _phase(rec, "baseline", lambda: _pace(phases.baseline_s))
            _phase(rec, "fault", lambda: _fault_phase(fault, runtime, on_fault, phases.fault_s))
            _phase(rec, "recovery", lambda: _pace(phases.recovery_s))
            load_run.stop()
            summary = load_run.summary()
            if phases.drain_s > 0:
                _phase(rec, "drain", lambda: _drain(settled, phases.drain_s))
        rec.record("end")
    return ExperimentRun(
        name=name, folder=folder, frames=load_frames(folder), spec=dict(topo.spec), target=topo.name,
        variant=topo.variant, fault=fault.describe() if fault else None, load_summary=summary,
    )


def _phase(rec: Recorder, phase: str, body: Any) -> None:
    rec.record("phase", phase=phase, edge="start")
    try:
        body()
    finally:
        rec.record("phase", phase=phase, edge="end")


def _fault_phase(fault: Fault | None, runtime: Runtime, listener: Any, seconds: float) -> None:
    if fault is None:
        _pace(seconds)
        return
    with injected(fault, runtime, listener=listener):
        _pace(seconds)


def _drain(settled: Callable[[], bool] | None, limit_s: float) -> None:
    """Until `settled` says so (polled), or for limit_s when there is none or it never does."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if settled is not None and settled():
                return
        except Exception:  # a service still recovering may not answer yet
            pass
        time.sleep(0.1)  # poll


def _with_duration(load: LoadSpec, duration_s: float) -> LoadSpec:
    """Load outlasts the phases; the experiment stops it after recovery."""
    if load.stages:
        return load
    from dataclasses import replace

    return replace(load, duration_s=max(load.duration_s, math.ceil(duration_s)))  # Locust takes whole seconds
