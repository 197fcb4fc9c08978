"""The timeline: the append-only event log of one experiment.

Every event is one JSON object on its own line of ``timeline.jsonl``, written
and flushed when it happens, so a run that is killed still leaves what it
saw. One clock for everything: wall-clock nanoseconds on this host
(``time.time_ns``). Requests are written by the Locust child process into
``requests.jsonl`` beside it, with the same clock.

Event kinds written by the harness (field ``kind``):

- ``experiment``: name, target, variant, broken, runtime, fault, topology,
  spec, phases, load (first line; ``events.ExperimentStarted``)
- ``phase``: phase (baseline|fault|recovery|drain), edge (start|end)
- ``fault``: fault, on, params, edge (start|end), error (on a failed revert;
  ``events.FaultEvent``)
- ``fault_effect``: fault, on, params, landed (true, false, null), reason,
  evidence, figures: what the harness itself saw of the fault's effect,
  written just before the revert (``events.FaultEffect``, harness.landing)
- ``lifecycle``: service, instance, action, detail (``events.LifecycleEvent``)
- ``drain``: settled, waited_s, polls, last_error (``events.DrainEvent``)
- ``probe``: probe, value, plus any fields of the sample
- ``observed``: source (the probe), event (e.g. arrival, transition), its own
  t_ns as the service saw it, plus the event's fields
- ``end``: the experiment finished (a timeline without it is incomplete);
  nothing is written after it

Verdicts are not timeline events: they are judged after ``end``, into the
experiment's ``verdicts.jsonl`` (``harness.judgement``).

Request rows (``requests.jsonl``): t_ns (start), name, method, latency_ms,
status (0 for no response), ok, error, hop and reason (the ``hop`` and
``error`` an error answer's JSON body names), plus any ``body_fields`` the
load spec asked for, and ``request_id`` when it gave each request one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Protocol, TypeVar

import pandas as pd

from .events import DrainEvent, FaultEffect, FaultEvent, LifecycleEvent, now_ns

TIMELINE_FILE = "timeline.jsonl"
REQUESTS_FILE = "requests.jsonl"
T = TypeVar("T")


class Event(Protocol):
    """A typed event (see ``harness.events``): it knows its JSON form."""

    def to_json(self) -> dict[str, Any]: ...


class Recorder:
    """Appends events to a timeline file, flushed line by line, thread-safe."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / TIMELINE_FILE
        self.requests_path = self.folder / REQUESTS_FILE
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Appends a plain event (phase, probe, observed, end) stamped now unless t_ns is given."""
        event = {"t_ns": fields.pop("t_ns", None) or now_ns(), "kind": kind, **fields}
        self._append(event)
        return event

    def write(self, event: Event) -> Event:
        """Appends a typed event in its JSON form."""
        self._append(event.to_json())
        return event

    def _append(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str)
        with self._lock:
            if self._file.closed:
                raise ValueError(f"timeline {self.path} is closed; cannot record {event['kind']}")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Reads a JSONL file, tolerating a last line cut short by a kill."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a partial last line from a killed writer
    return rows


@dataclass
class Frames:
    """One experiment's timeline as pandas frames; times in seconds from t0.

    requests:  t_s, end_s, name, method, latency_ms, status, ok, error, hop,
               reason, plus the load's body_fields (and request_id)
    phases:    phase, start_s, end_s
    faults:    fault, on, start_s, end_s, params, error
    effects:   t_s, fault, on, landed, reason, evidence, figures (one per
               fault window the harness watched)
    lifecycle: t_s, service, instance, action, detail
    drain:     how the drain phase ended (None without one)
    skipped:   the typed events that could not be read, each with why (the
               rest of the timeline still loads: nothing recorded is lost)
    probes:    t_s, probe, value; long format, one row per numeric field
               of a sample, named "<probe>.<field>"
    observed:  t_s, source, event, plus the events' own fields (e.g. an
               arrival at a dependency, a breaker's transition)
    """

    meta: dict[str, Any]
    t0_ns: int
    requests: pd.DataFrame
    phases: pd.DataFrame
    faults: pd.DataFrame
    lifecycle: pd.DataFrame
    probes: pd.DataFrame
    observed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=OBSERVED_COLUMNS))
    effects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EFFECT_COLUMNS))
    drain: DrainEvent | None = None
    complete: bool = False
    skipped: list[str] = field(default_factory=list)  # malformed events left out, each with why

    def phase_window(self, phase: str) -> tuple[float, float] | None:
        rows = self.phases[self.phases["phase"] == phase]
        if rows.empty:
            return None
        row = rows.iloc[0]
        return float(row["start_s"]), float(row["end_s"])

    def requests_in(self, start_s: float, end_s: float) -> pd.DataFrame:
        r = self.requests
        return r[(r["t_s"] >= start_s) & (r["t_s"] < end_s)]


OBSERVED_COLUMNS = ["t_s", "source", "event"]
EFFECT_COLUMNS = ["t_s", "fault", "on", "landed", "reason", "evidence", "figures"]
REQUEST_COLUMNS = ["t_s", "end_s", "name", "method", "latency_ms", "status", "ok", "error", "hop", "reason"]


def _seconds(t_ns: int, t0_ns: int) -> float:
    return (t_ns - t0_ns) / 1e9


def _windows(edges: Iterable[tuple[Hashable, int, str, dict[str, Any]]], t0: int, end_s: float) -> list[dict[str, Any]]:
    """Pairs (ident, t_ns, edge, fields) start/end edges into windows; an unclosed one runs to end_s.
    An end edge's error (a failed revert) goes on its window."""
    open_: dict[Hashable, dict[str, Any]] = {}
    windows: list[dict[str, Any]] = []
    for ident, t_ns, edge, fields in edges:
        if edge == "start":
            row = dict(fields, start_s=_seconds(t_ns, t0), end_s=None)
            open_[ident] = row
            windows.append(row)
        elif edge == "end" and ident in open_:
            row = open_.pop(ident)
            row["end_s"] = _seconds(t_ns, t0)
            if fields.get("error"):
                row["error"] = fields["error"]
    for row in open_.values():
        row["end_s"] = end_s
    return windows


def _phase_edges(events: list[dict[str, Any]]) -> list[tuple[Hashable, int, str, dict[str, Any]]]:
    return [(e.get("phase"), e["t_ns"], e.get("edge", ""), {"phase": e.get("phase")}) for e in events if e["kind"] == "phase"]


def _fault_edges(events: list[FaultEvent]) -> list[tuple[Hashable, int, str, dict[str, Any]]]:
    return [
        ((e.fault.kind, e.fault.on), e.t_ns, e.edge,
         {"fault": e.fault.kind, "on": e.fault.on, "params": e.fault.params, "error": e.error})
        for e in events
    ]


def _probe_rows(events: list[dict[str, Any]], t0: int) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        for key, value in e.items():
            if key in ("t_ns", "kind", "probe") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            rows.append({"t_s": _seconds(e["t_ns"], t0), "probe": f"{e['probe']}.{key}", "value": float(value)})
    return rows


def _typed(events: list[tuple[int, dict[str, Any]]], kind: str, parse: Callable[[Any], T], skipped: list[str]) -> list[T]:
    """The events of one kind, parsed; one that cannot be parsed is left out and noted in `skipped`."""
    out: list[T] = []
    for number, event in events:
        if event.get("kind") != kind:
            continue
        try:
            out.append(parse(event))
        except (ValueError, TypeError, KeyError) as exc:
            skipped.append(f"{kind} event {number} of {TIMELINE_FILE} left out: {exc}")
    return out


def load_frames(folder: Path) -> Frames:
    """Loads one experiment folder (timeline.jsonl + requests.jsonl)."""
    folder = Path(folder)
    skipped: list[str] = []
    numbered: list[tuple[int, dict[str, Any]]] = []  # (line among the file's events, event)
    for number, event in enumerate(read_jsonl(folder / TIMELINE_FILE), 1):
        if isinstance(event, dict) and isinstance(event.get("kind"), str) and type(event.get("t_ns")) is int:
            numbered.append((number, event))
        else:
            skipped.append(f"event {number} of {TIMELINE_FILE} left out: it needs a kind and an integer t_ns")
    events = [event for _, event in numbered]
    if not events:
        raise FileNotFoundError(f"no timeline events in {folder / TIMELINE_FILE}")
    meta = next((e for e in events if e["kind"] == "experiment"), {})
    t0 = meta.get("t_ns", events[0]["t_ns"])
    raw = read_jsonl(folder / REQUESTS_FILE)
    req = pd.DataFrame(raw)
    if req.empty:
        req = pd.DataFrame(columns=REQUEST_COLUMNS)
    else:
        req["t_s"] = (req["t_ns"] - t0) / 1e9
        req["end_s"] = req["t_s"] + req["latency_ms"] / 1000.0
        for col in REQUEST_COLUMNS:
            if col not in req:
                req[col] = None
        req = req.sort_values("t_s").reset_index(drop=True)
    last_s = max([_seconds(e["t_ns"], t0) for e in events] + ([float(req["end_s"].max())] if len(req) else []))
    phases = _windows(_phase_edges(events), t0, last_s)
    faults = _windows(_fault_edges(_typed(numbered, "fault", FaultEvent.from_json, skipped)), t0, last_s)
    life = [
        {"t_s": _seconds(e.t_ns, t0), "service": e.service, "instance": e.instance, "action": e.action, "detail": e.detail}
        for e in _typed(numbered, "lifecycle", LifecycleEvent.from_json, skipped)
    ]
    drains = _typed(numbered, "drain", DrainEvent.from_json, skipped)
    effects = [
        {"t_s": _seconds(e.t_ns, t0), "fault": e.fault.kind, "on": e.fault.on, "landed": e.landed, "reason": e.reason,
         "evidence": list(e.evidence), "figures": e.figures}
        for e in _typed(numbered, FaultEffect.kind, FaultEffect.from_json, skipped)
    ]
    probes = _probe_rows([e for e in events if e["kind"] == "probe"], t0)
    observed = pd.DataFrame(
        [{k: v for k, v in dict(e, t_s=_seconds(e["t_ns"], t0)).items() if k not in ("kind", "t_ns")}
         for e in events if e["kind"] == "observed"]
    )
    if observed.empty:
        observed = pd.DataFrame(columns=OBSERVED_COLUMNS)
    else:
        observed = observed.sort_values("t_s").reset_index(drop=True)
    return Frames(
        meta=meta,
        t0_ns=t0,
        requests=req,
        phases=pd.DataFrame(phases, columns=["phase", "start_s", "end_s"]),
        faults=pd.DataFrame(faults, columns=["fault", "on", "params", "start_s", "end_s", "error"]),
        lifecycle=pd.DataFrame(life, columns=["t_s", "service", "instance", "action", "detail"]),
        probes=pd.DataFrame(probes, columns=["t_s", "probe", "value"]),
        observed=observed,
        effects=pd.DataFrame(effects, columns=EFFECT_COLUMNS),
        drain=drains[-1] if drains else None,
        complete=any(e["kind"] == "end" for e in events),
        skipped=skipped,
    )
