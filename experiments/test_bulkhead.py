"""Bulkhead: an app with two connection pools to one PostgreSQL, critical
work (checkout) apart from the rest (reports). The promise: while the
reports pool is saturated, checkout keeps its success and latency, report
overflow is turned away fast, and both recover.

Faults that saturate the reports pool: latency on its link, slow report
queries (the app's own switch), and a stalled connection (Toxiproxy's
timeout toxic: data stops, the query waits out its timeout).

Each check fails on the broken variant made for it:

- critical-isolated: shared-pool (one pool for both routes; checkout starves)
  and shared-limit (two pools over one shared cap: slow reports hold all of
  it, checkout waits out POOL_WAIT_MS and is turned away)
- overflow-rejected-fast: unbounded-wait (overflow queues for 60 s)
- recovers (GET /report): leaky-pool (failed requests never give their
  connection back, so the pool stays exhausted after a stall)
"""

from __future__ import annotations

import pytest

from harness import ExperimentRun, LoadSpec, Phases, RequestSpec, http_json_probe, load_topology, make_fault
from harness.checks import critical_isolated, overflow_rejected_fast, recovers

TARGET = load_topology("bulkhead")
SPEC = TARGET.spec
CRITICAL, REPORTS = SPEC["critical_request"], SPEC["reports_request"]
# Reports at ~40/s against a pool that carries ~8/s under the latency fault;
# checkout at ~40/s. Enough checkouts in 5 s for a stable p99 (~200).
LOAD = LoadSpec(
    users=24, rate_per_s=80, timeout_s=10.0,
    requests=(RequestSpec(path="/checkout", name=CRITICAL), RequestSpec(path="/report", name=REPORTS)),
)
PHASES = Phases(baseline_s=4.0, fault_s=5.0, recovery_s=5.0)

FAULTS = {
    "latency": (make_fault("latency", SPEC["reports_link"], latency=SPEC["report_latency_ms"]), "queue_bound_ms"),
    "slow-queries": (make_fault("service_call", "app", apply_path=f"/admin/slow_reports?ms={SPEC['report_slow_ms']}",
                                revert_path="/admin/slow_reports?ms=0"), "slow_queue_bound_ms"),
    "stall": (make_fault("timeout", SPEC["reports_link"], timeout=0), "stall_queue_bound_ms"),
}

# fault, variant, expected of (critical-isolated, overflow-rejected-fast, recovers of both routes);
# ("fail", clause): the clause the broken variant must break
CASES = [
    *[(fault, "correct", ("pass", "pass", "pass")) for fault in FAULTS],
    ("latency", "shared-pool", (("fail", "critical_success_held"), None, None)),
    ("stall", "shared-pool", (("fail", "critical_success_held"), None, None)),
    # ~40 reports/s of 520 ms each want ~20 connections: the cap of 8 is held by reports all the window
    ("latency", "shared-limit", (("fail", "critical_success_held"), None, None)),
    ("latency", "unbounded-wait", ("pass", ("fail", "no_request_queued"), None)),
    ("stall", "leaky-pool", ("pass", "pass", ("fail", "success_back_within_bound"))),
    ("latency", "bypasses-proxy", ("unknown", "unknown", "unknown")),  # the reports pool bypasses the faulted proxy
]


def pool_usage(runtime):
    """The pools as the app sees them, for the plot."""
    return [http_json_probe("app", runtime.url("app") + "/admin/state",
                            fields=("pools.critical.in_use", "pools.critical.waiting",
                                    "pools.reports.in_use", "pools.reports.waiting"))]


def run(harness_run, name: str, variant: str, fault) -> ExperimentRun:
    return harness_run.experiment(TARGET, name=name, variant=variant, fault=fault, load=LOAD, phases=PHASES,
                              probes=pool_usage, probe_interval_s=0.25)


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", CASES, ids=[f"{f}-{v}" for f, v, _ in CASES])
def test_bulkhead_under_saturation(harness_run, fault, variant, expected):
    chosen, queue_bound = FAULTS[fault]
    result = run(harness_run, f"bulkhead-{fault}-{variant}", variant, chosen)
    frames = result.frames
    isolated, rejected, back = expected
    judged = [(critical_isolated(frames, request_name=CRITICAL, min_success_pct=SPEC["critical_success_pct"],
                                 p99_factor=SPEC["critical_p99_factor"], p99_floor_ms=SPEC["critical_p99_floor_ms"]),
               isolated)]
    if rejected:
        judged.append((overflow_rejected_fast(frames, request_name=REPORTS, reject_status=SPEC["reject_status"],
                                              reject_reason=SPEC["reject_reason"],
                                              reject_bound_ms=SPEC["reject_bound_ms"],
                                              queue_bound_ms=SPEC[queue_bound]), rejected))
    if back:  # checkout recovers in every variant here; reports is what a leak breaks
        judged += [(recovers(frames, bound_s=SPEC["recovery_bound_s"], request_name=CRITICAL),
                    "unknown" if back == "unknown" else "pass"),
                   (recovers(frames, bound_s=SPEC["recovery_bound_s"], request_name=REPORTS), back)]
    harness_run.expect(result, judged)
