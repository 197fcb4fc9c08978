"""Chained services A -> B -> C: the promise of timeout budgets.

Every check runs on the correct variant, where it must pass, and on a broken
variant that violates what it checks, where it must fail:

- latency-passes-through: fixed-timeouts (a 100 ms timeout blind to the budget)
- answers-within-budget: no-timeouts (slow C, paused C)
- recovers: sticky-failure (B marks C dead forever)
- retry-amplification: retry-every-hop (every hop makes 3 attempts, so up to
  9 calls reach C per request at A), under a partial failure: reset_peer on
  b->c with toxicity below 1, so some calls fail and retries happen. Calls
  are counted on the wire (harness.wiretap: every call B made through the
  b->c proxy), matched to the load's rows by the request id the load gives
  each request and the chain passes on; C's own record is kept beside them.

A crash or a reset fails fast even without timeouts, so no-timeouts passes
the budget check under a crash: that row is expected "pass" and shows why
the pause (no reset, no answer) is the fault that matters.

bypasses-proxy is a no-op case: B calls C at its own address, so the toxic
on b->c touches nothing; the harness sees no traffic through that proxy and
every check must say unknown, never pass (each pattern has one).
"""

from __future__ import annotations

import pytest

from harness import ExperimentRun, LoadSpec, Phases, http_calls_probe, http_json_probe, load_topology, make_fault, records_probe
from harness.checks import answers_within_budget, latency_passes_through, recovers, retry_amplification

TARGET = load_topology("chained")
SPEC = TARGET.spec
LOAD = LoadSpec(users=10, rate_per_s=60, timeout_s=10.0)
PHASES = Phases(baseline_s=3.0, fault_s=4.0, recovery_s=5.0)

FAULTS = {
    "slow": make_fault("latency", SPEC["hop"], latency=SPEC["over_budget_latency_ms"]),
    "reset": make_fault("reset_peer", SPEC["hop"], timeout=0),
    "crash": make_fault("crash", "c"),
    "pause": make_fault("pause", "c"),
}

# fault, variant, expected of answers-within-budget, expected of recovers (None: not judged;
# ("fail", clause): the clause the broken variant must break)
CASES = [
    ("slow", "correct", "pass", "pass"),
    ("slow", "no-timeouts", ("fail", "p99_within_budget"), None),
    ("reset", "correct", "pass", "pass"),
    ("reset", "sticky-failure", None, ("fail", "success_back_within_bound")),
    ("crash", "correct", "pass", "pass"),
    ("crash", "no-timeouts", "pass", None),
    ("crash", "sticky-failure", None, ("fail", "success_back_within_bound")),
    ("pause", "correct", "pass", "pass"),
    ("pause", "no-timeouts", ("fail", "p99_within_budget"), None),
    ("pause", "sticky-failure", None, ("fail", "success_back_within_bound")),
    ("slow", "bypasses-proxy", "unknown", "unknown"),  # B calls C at its own address: the toxic touches nothing
]


def arrivals_at_c(runtime):
    """C's own counters, a cross-check beside what the client saw."""
    return [http_json_probe("c", runtime.url("c") + "/admin/state", fields=("requests", "in_flight"))]


def run(harness_run, name: str, variant: str, fault) -> ExperimentRun:
    return harness_run.experiment(
        TARGET, name=name, variant=variant, fault=fault, load=LOAD, phases=PHASES, probes=arrivals_at_c
    )


@pytest.mark.experiment
@pytest.mark.parametrize("variant, expected", [("correct", "pass"), ("fixed-timeouts", ("fail", "success_held"))],
                         ids=["correct-pass", "fixed-timeouts-fail"])
def test_latency_under_budget_passes_through(harness_run, variant, expected):
    latency = SPEC["under_budget_latency_ms"]
    fault = make_fault("latency", SPEC["hop"], latency=latency)
    result = run(harness_run, f"latency-under-budget-{variant}", variant, fault)
    harness_run.expect(result, [(latency_passes_through(result.frames, latency_ms=latency), expected)])


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, budget, recovery", CASES,  # ids as "slow-no-timeouts-fail-None"
                         ids=["-".join(str(x[0] if isinstance(x, tuple) else x) for x in case) for case in CASES])
def test_dependency_failure(harness_run, fault, variant, budget, recovery):
    result = run(harness_run, f"{fault}-{variant}", variant, FAULTS[fault])
    expectations = []
    if budget:
        verdict = answers_within_budget(
            result.frames, budget_ms=SPEC["budget_ms"], margin_ms=SPEC["margin_ms"], hop=SPEC["hop"], hang_ms=SPEC["hang_ms"]
        )
        expectations.append((verdict, budget))
    if recovery:
        expectations.append((recovers(result.frames, bound_s=SPEC["recovery_bound_s"]), recovery))
    harness_run.expect(result, expectations)


RETRY_LOAD = LoadSpec(users=10, rate_per_s=60, timeout_s=10.0, request_id_header="X-Request-Id")
RETRY_PHASES = Phases(baseline_s=2.0, fault_s=4.0, recovery_s=1.0)
PARTIAL_RESET = make_fault("reset_peer", SPEC["hop"], timeout=0, toxicity=SPEC["partial_toxicity"])


def arrivals_with_ids(runtime):
    """Every call B made to C, with the request id it carried, from the wire (the harness's own
    record, as "c"); C's own record of arrivals beside it as a cross-check ("c-own")."""
    return [*arrivals_at_c(runtime), *http_calls_probe(runtime, SPEC["hop"], name="c"),
            records_probe("c-own", runtime.url("c") + "/admin/arrivals", list_key="arrivals", event="arrival")]


@pytest.mark.experiment
@pytest.mark.parametrize("variant, amplification, budget", [
    ("correct", "pass", "pass"),
    ("retry-every-hop", ("fail", "calls_per_request_within_budget"), None),
], ids=["correct-pass", "retry-every-hop-fail"])
def test_partial_failure_retries_stay_within_budget(harness_run, variant, amplification, budget):
    result = harness_run.experiment(TARGET, name=f"partial-reset-{variant}", variant=variant, fault=PARTIAL_RESET,
                                    load=RETRY_LOAD, phases=RETRY_PHASES, probes=arrivals_with_ids)
    expectations = [(retry_amplification(result.frames, retry_budget=SPEC["retry_budget"], dependency="c"),
                     amplification)]
    if budget:
        expectations.append((answers_within_budget(result.frames, budget_ms=SPEC["budget_ms"],
                                                   margin_ms=SPEC["margin_ms"], hop=SPEC["hop"],
                                                   hang_ms=SPEC["hang_ms"]), budget))
    harness_run.expect(result, expectations)
