"""Chaos harness: prove microservice patterns keep their promises under failure.

The names below are the public API, with the modules ``harness.checks``
(every check) and ``harness.patterns.<pattern>`` (a pattern's probes and
load helpers); everything else may change. They load on first use, so
`harness --help` and the pytest plugin do not pay for pandas until a run
needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "HarnessRun": "harness.session",
    "Judgement": "harness.judgement",
    "ExperimentRun": "harness.experiment",
    "Phases": "harness.experiment",
    "run_experiment": "harness.experiment",
    "Topology": "harness.topology",
    "Service": "harness.topology",
    "Link": "harness.topology",
    "Variant": "harness.topology",
    "load_topology": "harness.topology",
    "Fault": "harness.faults",
    "FaultWindow": "harness.faults",
    "Schedule": "harness.faults",
    "injected": "harness.faults",
    "kinds": "harness.faults",
    "make_fault": "harness.faults",
    "LoadSpec": "harness.load",
    "RequestSpec": "harness.load",
    "Stage": "harness.load",
    "combined": "harness.faults",
    "after": "harness.faults",
    "when": "harness.faults",
    "field_set": "harness.faults",
    "Probe": "harness.probes",
    "http_json_probe": "harness.probes",
    "arrivals_probe": "harness.probes",
    "records_probe": "harness.probes",
    "proxy_connections_probe": "harness.probes",
    "http_calls_probe": "harness.wiretap",
    "state_probe": "harness.probes",
    "Runtime": "harness.runtime",
    "make_runtime": "harness.runtime",
    "NotYet": "harness.wait",
    "wait_until": "harness.wait",
    "Frames": "harness.timeline",
    "load_frames": "harness.timeline",
    "Verdict": "harness.checks.verdict",
    "HarnessError": "harness.errors",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, _, attr = home.partition(":")
    value = getattr(import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
