"""Service discovery: instances register in etcd under a lease kept alive by
heartbeats, and Envoy follows the registry with no restart. The promise: a
new instance takes traffic soon after it registers; a dead one (crashed, or
frozen so its heartbeats stop) is taken out within TTL + a bound, at the
cost of few requests; a graceful stop costs none; and while the registry
is down the balancer keeps serving, converging again once it is back.

Membership is recorded three ways (the registry's and the balancer's, by
probes, and the clients', from which instance answered each request) and
plotted together in the report.

Every check runs on the correct variant, and on the broken variant that
violates it, where it must fail:

- takes-traffic, membership-converges: static-lb (never re-reads the registry)
- dead-instance-removed: no-ttl (a crashed instance stays registered)
- graceful-stop-loses-nothing: static-lb (keeps sending to the stopped instance)
- serves-through-registry-outage: empties-on-outage (no registry, no members)
"""

from __future__ import annotations

import pytest

from harness import ExperimentRun, LoadSpec, Phases, RequestSpec, combined, http_json_probe, load_topology, make_fault
from harness.checks import (
    dead_instance_removed, graceful_stop_loses_nothing, membership_converges, serves_through_registry_outage,
    takes_traffic,
)
from harness.patterns.discovery import envoy_members, etcd_members, membership_probe

TARGET = load_topology("discovery")
SPEC = TARGET.spec
SERVICE = SPEC["service"]
FIELD = SPEC["request_field"]
# fault: long enough for TTL + removal bound (3.5 s); recovery: the convergence
# bound (3 s) and the clients' window after it (1 s)
PHASES = Phases(baseline_s=2.0, fault_s=4.5, recovery_s=4.5)

FAULTS = {
    "scale-out": make_fault("scale_out", SERVICE, keep=True),  # a third instance, here to stay
    "crash": make_fault("crash", f"{SERVICE}[0]"),
    "pause": make_fault("pause", f"{SERVICE}[1]"),
    "graceful-stop": make_fault("stop", f"{SERVICE}[1]"),
    # etcd killed, and a third instance started while it is down: it can only register once etcd is back
    "registry-outage": combined(make_fault("crash", "registry"), make_fault("scale_out", SERVICE, keep=True)),
}
SUBJECT = {"scale-out": f"{SERVICE}-2", "crash": f"{SERVICE}-0", "pause": f"{SERVICE}-1",
           "graceful-stop": f"{SERVICE}-1", "registry-outage": f"{SERVICE}-2"}

# fault, variant, expected of (the fault's own check, membership-converges);
# ("fail", clause): the clause the broken variant must break
CASES = [
    ("scale-out", "correct", ("pass", "pass")),
    ("crash", "correct", ("pass", "pass")),
    ("pause", "correct", ("pass", "pass")),
    ("graceful-stop", "correct", ("pass", "pass")),
    ("registry-outage", "correct", ("pass", "pass")),
    ("scale-out", "static-lb", (("fail", "served_within_bound"), ("fail", "balancer_agrees"))),
    ("crash", "no-ttl", (("fail", "left_registry_in_time"), "pass")),
    ("graceful-stop", "static-lb", (("fail", "no_request_failed"), "pass")),
    ("registry-outage", "empties-on-outage", (("fail", "balancer_kept_members"), "pass")),
    pytest.param("pause", "no-ttl", (("fail", "left_registry_in_time"), "pass"), marks=pytest.mark.extended),
    pytest.param("registry-outage", "static-lb", ("pass", ("fail", "balancer_agrees")), marks=pytest.mark.extended),
]


def load_spec() -> LoadSpec:
    return LoadSpec(users=8, rate_per_s=40, timeout_s=5.0, requests=(RequestSpec(path="/", name="/"),),
                    body_fields=(FIELD,))


def probes(runtime):
    """The registry's members (read from etcd), the balancer's (Envoy's own
    /clusters), and each instance's count of registrations."""
    return [
        membership_probe("registry", etcd_members(runtime.url("registry"), SPEC["prefix"])),
        membership_probe("balancer", envoy_members(runtime.entry_url() + "/admin/lb/clusters", SERVICE)),
        *(http_json_probe(f"{SERVICE}-{i}", runtime.url(SERVICE, i) + "/admin/state",
                          fields=("registered", "registrations"))
          for i in range(SPEC["instances"])),
    ]


def run(harness_run, fault: str, variant: str, name: str = "") -> ExperimentRun:
    return harness_run.experiment(TARGET, name=name or f"discovery-{fault}-{variant}", variant=variant, fault=FAULTS[fault],
                              load=load_spec(), phases=PHASES, probes=probes, probe_interval_s=0.1)


def own_check(fault: str, frames):
    member = SUBJECT[fault]
    if fault == "scale-out":
        return takes_traffic(frames, member=member, bound_s=SPEC["takes_traffic_bound_s"], field=FIELD)
    if fault in ("crash", "pause"):
        return dead_instance_removed(frames, member=member, ttl_s=SPEC["ttl_s"], bound_s=SPEC["removal_bound_s"],
                                     budget_s=SPEC["failure_budget_s"], field=FIELD)
    if fault == "graceful-stop":
        return graceful_stop_loses_nothing(frames, member=member, service=SERVICE, instance=1)
    return serves_through_registry_outage(frames, max_failed_ratio=SPEC["outage_max_failed_ratio"])


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", CASES,
                         ids=[f"{c[0]}-{c[1]}" if isinstance(c, tuple) else f"{c.values[0]}-{c.values[1]}"
                              for c in CASES])
def test_discovery_under_membership_change(harness_run, fault, variant, expected):
    result = run(harness_run, fault, variant)
    own, converges = expected
    harness_run.expect(result, [
        (own_check(fault, result.frames), own),
        (membership_converges(result.frames, service=SERVICE, initial=SPEC["instances"],
                              bound_s=SPEC["converge_bound_s"], field=FIELD),
         converges),
    ])
