"""Circuit breaker: front calls dep through a breaker. The promise: once its
policy is met ([spec]: 5 failures within 3 s) it stops calling dep and fails
fast, and once dep is back it closes again. What reached dep is the
harness's own record: the calls on front->dep from the wire, and the
connections through its proxy.

Every check runs on the correct variant under each fault, and on the broken
variant that violates it, where it must fail:

- opens-after-threshold, fast-fails-while-open: no-breaker (keeps calling
  dep, every caller waits out the timeout)
- opens-after-threshold's lower bound: opens-early (opens on the first failure)
- fast-fails-while-open's calls while open, under a crash and a pause of dep,
  which can record nothing then: half-open-flood (every call let through when
  half-open), seen by the harness on the wire and in the connections through
  front->dep's proxy (Toxiproxy's log, on both runtimes)
- recovers: never-closes (stays open after dep is back)
- stays-closed-under-sparse-failures, a case of its own: no-window (counts
  failures since start, so sparse ones add up and open it)

The other checks of a broken variant are judged too, with what it should
show (no-breaker still recovers; never-closes still opens and fails fast),
so the table in the report reads as a matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import (ExperimentRun, LoadSpec, Phases, Topology, arrivals_probe, http_calls_probe, load_topology,
                     make_fault, proxy_connections_probe, state_probe)
from harness.checks import (BreakerPolicy, FastFail, fast_fail_from_spec, fast_fails_while_open,
                            opens_after_threshold, policy_from_spec, recovers, stays_closed_under_sparse_failures)


@dataclass(frozen=True)
class Subject:
    """A breaker under test: its topology, and what its [spec] says. `own_records`: it keeps the
    reference target's own records (dep's /admin/arrivals, front's /admin/state), drawn as cross-checks."""

    topology: Topology
    own_records: bool = False

    @property
    def spec(self) -> dict[str, Any]:
        return self.topology.spec

    @property
    def policy(self) -> BreakerPolicy:
        return policy_from_spec(self.spec, where=f"{self.topology.source} [spec]")

    @property
    def fast_fail(self) -> FastFail:
        return fast_fail_from_spec(self.spec, where=f"{self.topology.source} [spec]")


TARGET = load_topology("circuit_breaker")
REFERENCE = Subject(TARGET, own_records=True)
# Go, sony/gobreaker: a breaker written without the harness in mind (examples/gobreaker)
GOBREAKER = Subject(load_topology(Path(__file__).resolve().parent.parent / "examples" / "gobreaker"))
SPEC = TARGET.spec
POLICY, FAST_FAIL = REFERENCE.policy, REFERENCE.fast_fail
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
FLOODS = ("pass", ("fail", "no_calls_beyond_probes"), "pass")  # seen in the connections: dep records nothing
CASES = [
    *[(fault, "correct", ("pass", "pass", "pass")) for fault in FAULTS],
    ("timeout", "no-breaker", NO_BREAKER),
    ("crash", "no-breaker", NO_BREAKER),
    ("timeout", "never-closes", NEVER_CLOSES),
    ("pause", "never-closes", NEVER_CLOSES),
    ("crash", "half-open-flood", FLOODS),
    ("pause", "half-open-flood", FLOODS),
    ("reset", "bypasses-proxy", ("unknown", "unknown", "unknown")),  # front bypasses the faulted proxy
]

# One caller, one call at a time. LOAD's 10 users send in step (10 calls
# within ~3 ms every 167 ms, seen in the runs of 2 Dec), so a fault fails 10
# calls at once, all in flight when the breaker opens: opening after the first
# or the fifth looks the same from outside. One caller's failures come one by
# one, and the lower bound of opens-after-threshold is sharp (5 of 5).
ONE_CALLER = LoadSpec(users=1, rate_per_s=60, timeout_s=10.0)
ONE_CALLER_PHASES = Phases(baseline_s=2.0, fault_s=4.0, recovery_s=5.0)
ONE_CALLER_CASES = [
    ("reset", "correct", ("pass", "pass", "pass")),
    ("reset", "opens-early", (("fail", "threshold_failures_before_open"), "pass", "pass")),
]

# Sparse failures. Toxicity is drawn per connection, and front keeps its
# connections to dep alive: reset_peer with toxicity 0.05 fails a few of them
# once, and their healthy replacements never again (the runs of 2 Dec opened
# 7-10 connections per case). limit_data fails calls at a steady rate instead:
# it closes a connection once it has carried `bytes` of dep's answers, cutting
# the answer under way, so one call in bytes / ANSWER_BYTES fails. One caller
# keeps one connection, so the failures are evenly spaced (10 callers in step
# would wear out 10 connections in step, and fail 10 calls at once).
# SPARSE_PER_WINDOW failures per window_s at the load's rate, half the
# threshold: at most 3 ever lie within a window, while over the fault they add
# up to 6, so a count that never forgets opens at the 5th (6 s in).
ANSWER_BYTES = 123  # dep's answer to GET / with a 3-digit n (pinned by tests/service/test_circuit_breaker_service.py)
SPARSE_PER_WINDOW = 2.5
SPARSE_CALLS = round(ONE_CALLER.rate_per_s * SPEC["sliding_window_s"] / SPARSE_PER_WINDOW)  # 72: 1.2 s apart
SPARSE_PHASES = Phases(baseline_s=2.0, fault_s=8.0, recovery_s=1.0)
SPARSE_CASES = [("correct", "pass"), ("no-window", ("fail", "no_fast_fail"))]

# The Go breaker (5 failures in a row): a dependency that is out, and failures
# one call in 72 (never two in a row), which its broken twin, counting every
# failure since start, adds up to its threshold.
GOBREAKER_CASES = [("timeout", "correct", ("pass", "pass", "pass")), ("crash", "correct", ("pass", "pass", "pass"))]
GOBREAKER_SPARSE_CASES = [("correct", "pass"), ("total-failures", ("fail", "no_fast_fail"))]


def sparse_failures(subject: Subject = REFERENCE):
    """limit_data cutting one of dep's answers in SPARSE_CALLS, mid-answer."""
    answer = int(subject.spec.get("answer_bytes", ANSWER_BYTES))
    return make_fault("limit_data", subject.spec["hop"], bytes=SPARSE_CALLS * answer - answer // 2)


def probes_of(subject: Subject):
    def probes(runtime):
        """What reached dep: the calls front made on front->dep, from the wire (the harness's
        own record, which a crashed or paused dep cannot spoil), the connections through its
        proxy; the reference's own records (dep's arrivals, front's breaker) as cross-checks."""
        hop = subject.spec["hop"]
        own = [
            arrivals_probe("dep-own", runtime.url("dep") + "/admin/arrivals"),
            state_probe("front", runtime.url("front") + "/admin/state", fields=("state_code", "failures_in_window"),
                        events_key="transitions", event="transition"),
        ] if subject.own_records else []
        return [*http_calls_probe(runtime, hop, name="dep"), *proxy_connections_probe(runtime, hop), *own]

    return probes


def run(harness_run, name: str, variant: str, fault, *, load: LoadSpec = LOAD,
        phases: Phases = PHASES, subject: Subject = REFERENCE) -> ExperimentRun:
    return harness_run.experiment(subject.topology, name=name, variant=variant, fault=fault, load=load,
                                  phases=phases, probes=probes_of(subject), probe_interval_s=0.25)


def expect_breaker(harness_run, result: ExperimentRun, expected, subject: Subject = REFERENCE) -> None:
    frames, (opens, fast, back), spec = result.frames, expected, subject.spec
    policy, fast_fail = subject.policy, subject.fast_fail
    harness_run.expect(result, [
        (opens_after_threshold(frames, policy=policy, fast_fail=fast_fail), opens),
        (fast_fails_while_open(frames, policy=policy, fast_fail=fast_fail, arrival_grace_ms=spec["arrival_grace_ms"],
                               dependency="dep", link=spec["hop"]), fast),
        (recovers(frames, bound_s=spec["recovery_bound_s"]), back),
    ])


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", CASES, ids=[f"{f}-{v}" for f, v, _ in CASES])
def test_breaker_under_dependency_failure(harness_run, fault, variant, expected):
    expect_breaker(harness_run, run(harness_run, f"breaker-{fault}-{variant}", variant, FAULTS[fault]), expected)


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", ONE_CALLER_CASES,
                         ids=[f"one-caller-{f}-{v}" for f, v, _ in ONE_CALLER_CASES])
def test_breaker_with_one_caller(harness_run, fault, variant, expected):
    result = run(harness_run, f"breaker-one-caller-{fault}-{variant}", variant, FAULTS[fault], load=ONE_CALLER,
                 phases=ONE_CALLER_PHASES)
    expect_breaker(harness_run, result, expected)


@pytest.mark.experiment
@pytest.mark.parametrize("variant, expected", SPARSE_CASES, ids=[f"sparse-{v}" for v, _ in SPARSE_CASES])
def test_breaker_under_sparse_failures(harness_run, variant, expected):
    result = run(harness_run, f"breaker-sparse-{variant}", variant, sparse_failures(), load=ONE_CALLER,
                 phases=SPARSE_PHASES)
    harness_run.expect(result, [
        (stays_closed_under_sparse_failures(result.frames, policy=POLICY, fast_fail=FAST_FAIL), expected),
    ])


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", GOBREAKER_CASES,
                         ids=[f"gobreaker-{f}-{v}" for f, v, _ in GOBREAKER_CASES])
def test_a_go_breaker_under_dependency_failure(harness_run, fault, variant, expected):
    fault_of = {"timeout": make_fault("timeout", GOBREAKER.spec["hop"], timeout=0), "crash": make_fault("crash", "dep")}
    result = run(harness_run, f"gobreaker-{fault}-{variant}", variant, fault_of[fault], subject=GOBREAKER)
    expect_breaker(harness_run, result, expected, GOBREAKER)


@pytest.mark.experiment
@pytest.mark.parametrize("variant, expected", GOBREAKER_SPARSE_CASES,
                         ids=[f"gobreaker-sparse-{v}" for v, _ in GOBREAKER_SPARSE_CASES])
def test_a_go_breaker_under_sparse_failures(harness_run, variant, expected):
    result = run(harness_run, f"gobreaker-sparse-{variant}", variant, sparse_failures(GOBREAKER), load=ONE_CALLER,
                 phases=SPARSE_PHASES, subject=GOBREAKER)
    harness_run.expect(result, [
        (stays_closed_under_sparse_failures(result.frames, policy=GOBREAKER.policy, fast_fail=GOBREAKER.fast_fail),
         expected),
    ])
