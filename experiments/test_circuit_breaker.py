"""Circuit breaker: front calls dep through a breaker. The promise: after
`failure_threshold` failures it stops calling dep and fails fast, and once
dep is back it closes again.

Every check runs on the correct variant under each fault, and on the broken
variant that violates it, where it must fail:

- opens-after-threshold, fast-fails-while-open: no-breaker (keeps calling
  dep, every caller waits out the timeout)
- recovers: never-closes (stays open after dep is back)

The other checks of a broken variant are judged too, with what it should
show (no-breaker still recovers; never-closes still opens and fails fast),
so the table in the report reads as a matrix.
"""

from __future__ import annotations

import pytest

from harness import ExperimentRun, LoadSpec, Phases, arrivals_probe, load_topology, make_fault, state_probe
from harness.checks import fast_fails_while_open, opens_after_threshold, recovers

TARGET = load_topology("circuit_breaker")
SPEC = TARGET.spec
LOAD = LoadSpec(users=10, rate_per_s=60, timeout_s=10.0)
PHASES = Phases(baseline_s=3.0, fault_s=5.0, recovery_s=6.0)

FAULTS = {
    "timeout": make_fault("timeout", SPEC["hop"], timeout=0),  # data stops, connection stays open
    "reset": make_fault("reset_peer", SPEC["hop"], timeout=0),
    "slow": make_fault("latency", SPEC["hop"], latency=SPEC["latency_beyond_timeout_ms"]),
    "crash": make_fault("crash", "dep"),
    "pause": make_fault("pause", "dep"),
}

# fault, variant, expected of (opens-after-threshold, fast-fails-while-open, recovers);
# ("fail", clause): the clause the broken variant must break
NO_BREAKER = (("fail", "no_late_calls"), ("fail", "failed_fast"), "pass")
NEVER_CLOSES = ("pass", "pass", ("fail", "success_back_within_bound"))
CASES = [
    *[(fault, "correct", ("pass", "pass", "pass")) for fault in FAULTS],
    ("timeout", "no-breaker", NO_BREAKER),
    ("crash", "no-breaker", NO_BREAKER),
    ("timeout", "never-closes", NEVER_CLOSES),
    ("pause", "never-closes", NEVER_CLOSES),
    ("reset", "bypasses-proxy", ("unknown", "unknown", "unknown")),  # front bypasses the faulted proxy
]


def probes(runtime):
    """What reached dep (its own record of arrivals) and front's own view of its breaker."""
    return [
        arrivals_probe("dep", runtime.url("dep") + "/admin/arrivals"),
        state_probe("front", runtime.url("front") + "/admin/state", fields=("state_code", "failures_in_window"),
                    events_key="transitions", event="transition"),
    ]


def run(harness_run, name: str, variant: str, fault) -> ExperimentRun:
    return harness_run.experiment(TARGET, name=name, variant=variant, fault=fault, load=LOAD, phases=PHASES,
                              probes=probes, probe_interval_s=0.25)


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", CASES, ids=[f"{f}-{v}" for f, v, _ in CASES])
def test_breaker_under_dependency_failure(harness_run, fault, variant, expected):
    result = run(harness_run, f"breaker-{fault}-{variant}", variant, FAULTS[fault])
    frames = result.frames
    opens, fast, back = expected
    harness_run.expect(result, [
        (opens_after_threshold(frames, failure_threshold=SPEC["failure_threshold"],
                               fast_fail_status=SPEC["fast_fail_status"]), opens),
        (fast_fails_while_open(frames, fast_fail_status=SPEC["fast_fail_status"],
                               fast_fail_p99_ms=SPEC["fast_fail_p99_ms"], open_s=SPEC["open_s"],
                               half_open_probes=SPEC["half_open_probes"],
                               arrival_grace_ms=SPEC["arrival_grace_ms"], dependency="dep"), fast),
        (recovers(frames, bound_s=SPEC["recovery_bound_s"]), back),
    ])
