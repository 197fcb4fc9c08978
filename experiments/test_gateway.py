"""API gateway: one entry point in front of users, orders and
recommendations. The promise: it refuses bad tokens before anything reaches
a backend, answers within its budget when an optional backend is slow (and
says the answer is partial), serves cached data marked stale when a backend
is down, and is whole again once the backend is back.

The load mixes good tokens (minted here with the gateway's key) with a
seeded set of bad ones, each kind on every route, and gives every request
its own X-Request-Id; the backends record the ids that reached them.

Every check runs on the correct variant under each fault, and on the broken
variant that violates it, where it must fail:

- rejects-bad-tokens: auth-bypass (/api/orders forwards unchecked)
- partial-within-budget: sequential-no-timeout (waits out the slow backend)
- serves-stale: no-cache (nothing to serve while users is down)
- recovers-complete: never-readmits (never calls users again)
"""

from __future__ import annotations

import time

import pytest

from harness import ExperimentRun, LoadSpec, Phases, RequestSpec, http_json_probe, load_topology, make_fault, records_probe
from harness.checks import answers_belong_to_caller, partial_within_budget, recovers_complete, rejects_bad_tokens, \
    serves_stale
from harness.patterns.gateway import bad_tokens, claims_for, mint, spoofed_identity

TARGET = load_topology("gateway")
SPEC = TARGET.spec
KEY = TARGET.services["gateway"].env["JWT_KEY"].encode()
BACKENDS = tuple(SPEC["backends"])
ROUTE = SPEC["route"]
ROUTES = (ROUTE, *(f"/api/{b}" for b in BACKENDS))
SUBJECTS = ("alice", "bob", "carol", "dave")
TOKEN_SEED = 20240611
PHASES = Phases(baseline_s=3.0, fault_s=5.0, recovery_s=6.0)

FAULTS = {
    "slow-recommendations": make_fault("latency", f"gateway->{SPEC['optional']}", latency=SPEC["slow_latency_ms"]),
    "paused-recommendations": make_fault("pause", SPEC["optional"]),
    "crash-users": make_fault("crash", "users"),
    "orders-link-down": make_fault("link_down", "gateway->orders"),
}
DOWN = {"crash-users": "users", "orders-link-down": "orders"}  # the backend whose data must be served stale

# fault, variant, expected of (rejects-bad-tokens, partial-within-budget, serves-stale, recovers-complete);
# None: not judged (budget is judged under a slow optional backend, stale under a down one);
# ("fail", clause): the clause the broken variant must break
CASES = [
    ("slow-recommendations", "correct", ("pass", "pass", None, "pass")),
    ("paused-recommendations", "correct", ("pass", "pass", None, "pass")),
    ("crash-users", "correct", ("pass", None, "pass", "pass")),
    ("orders-link-down", "correct", ("pass", None, "pass", "pass")),
    ("slow-recommendations", "auth-bypass", (("fail", "none_reached_backend"), "pass", None, "pass")),
    ("slow-recommendations", "sequential-no-timeout", ("pass", ("fail", "p99_within_budget"), None, "pass")),
    ("crash-users", "no-cache", ("pass", None, ("fail", "hit_ratio_held"), "pass")),
    ("crash-users", "never-readmits", ("pass", None, "pass", ("fail", "success_back_within_bound"))),
    ("orders-link-down", "bypasses-proxy", ("pass", None, "unknown", "unknown")),  # the link's client bypasses it
]


def load_spec() -> LoadSpec:
    """Good tokens of four users on every route (mostly the aggregate), and
    every bad kind on every route: about a third of the requests."""
    now = time.time()

    def claims(subject: str) -> dict:
        return claims_for(subject, issuer=SPEC["jwt_issuer"], audience=SPEC["jwt_audience"], now_s=now)

    good = [RequestSpec(path=route, name=route, weight=40 if route == ROUTE else 4,
                        headers={"Authorization": f"Bearer {mint(claims(who), KEY)}"})
            for who in SUBJECTS for route in ROUTES]
    bad = [RequestSpec(path=route, name=f"bad-token {token.kind} {route}",
                       headers={"Authorization": token.authorization} if token.authorization else {})
           for token in bad_tokens(key=KEY, claims=claims("mallory"), seed=TOKEN_SEED) for route in ROUTES]
    return LoadSpec(users=10, rate_per_s=60, timeout_s=10.0, requests=(*good, *bad),
                    body_fields=("partial", "missing", "stale"), request_id_header=SPEC["request_id_header"])


def probes(runtime):
    """What reached each backend (with request ids), and the gateway's cache."""
    state = runtime.url("gateway") + "/admin/state"
    return [
        *(records_probe(b, runtime.url(b) + "/admin/arrivals", list_key="arrivals", event="arrival", fields=())
          for b in BACKENDS),
        http_json_probe("gateway", state, fields=("stale_served", "missing_served", "unauthorized",
                                                  "cache.fresh_hits", "cache.entries")),
        http_json_probe("gateway-cache", state, fields=("cache.hit_ratio",)),
    ]


def run(harness_run, fault: str, variant: str) -> ExperimentRun:
    return harness_run.experiment(TARGET, name=f"gateway-{fault}-{variant}", variant=variant, fault=FAULTS[fault],
                              load=load_spec(), phases=PHASES, probes=probes, probe_interval_s=0.25)


@pytest.mark.experiment
@pytest.mark.parametrize("fault, variant, expected", CASES, ids=[f"{f}-{v}" for f, v, _ in CASES])
def test_gateway_under_backend_failure(harness_run, fault, variant, expected):
    result = run(harness_run, fault, variant)
    frames = result.frames
    auth, budget, stale, back = expected
    judged = [(rejects_bad_tokens(frames, backends=BACKENDS, status=SPEC["unauthorized_status"]), auth)]
    if budget:
        judged.append((partial_within_budget(frames, route=ROUTE, optional=SPEC["optional"],
                                             budget_ms=SPEC["budget_ms"], margin_ms=SPEC["margin_ms"],
                                             min_partial_ratio=SPEC["min_partial_ratio"],
                                             min_success=SPEC["min_success"]), budget))
    if stale:
        judged.append((serves_stale(frames, route=ROUTE, backend=DOWN[fault], ttl_s=SPEC["ttl_s"][DOWN[fault]],
                                    min_hit_ratio=SPEC["min_hit_ratio"], grace_s=SPEC["stale_grace_s"]), stale))
    judged.append((recovers_complete(frames, route=ROUTE, bound_s=SPEC["recovery_bound_s"],
                                     min_success=SPEC["recovery_min_complete"]), back))
    harness_run.expect(result, judged)


# answers-belong-to-caller (security): every answer holds the token's subject's own data, and every
# backend is asked for that subject. All under crash-users: once the users TTL runs out, every answer
# carries users' data from the stale cache, so a cache keyed by route hands one user's entry to all
# (shared-cache). A spoofed identity shows on every live call, and recommendations (TTL 0) is called on
# every profile request, crash or not (trusts-client-identity).
CALLER_PHASES = Phases(baseline_s=2.0, fault_s=4.0, recovery_s=2.0)
OWNER_FIELDS = tuple(f"parts.{b}.user" for b in BACKENDS)  # whose data each part of an answer is
CALLER_CASES = [("correct", None), ("shared-cache", "answers_own_data"),
                ("trusts-client-identity", "backends_asked_for_caller")]  # variant, the clause it must break


def caller_load_spec() -> LoadSpec:
    """The good tokens of four users on every route, each request tagged with its
    token's subject; a fifth of them also claim the next user's identity in headers."""
    now = time.time()
    requests = []
    for i, who in enumerate(SUBJECTS):
        other = SUBJECTS[(i + 1) % len(SUBJECTS)]
        token = {"Authorization": "Bearer " + mint(claims_for(who, issuer=SPEC["jwt_issuer"],
                                                              audience=SPEC["jwt_audience"], now_s=now), KEY)}
        for route in ROUTES:
            weight = 8 if route == ROUTE else 1
            requests += [RequestSpec(path=route, name=route, weight=4 * weight, headers=token, tags={"subject": who}),
                         RequestSpec(path=route, name=route, weight=weight, headers={**token, **spoofed_identity(other)},
                                     tags={"subject": who, "claimed": other})]
    return LoadSpec(users=10, rate_per_s=60, timeout_s=10.0, requests=tuple(requests),
                    body_fields=("partial", "missing", "stale", *OWNER_FIELDS),
                    request_id_header=SPEC["request_id_header"])


@pytest.mark.experiment
@pytest.mark.parametrize("variant, clause", CALLER_CASES, ids=[v for v, _ in CALLER_CASES])
def test_gateway_answers_belong_to_caller(harness_run, variant, clause):
    result = harness_run.experiment(TARGET, name=f"gateway-callers-crash-users-{variant}", variant=variant,
                                    fault=FAULTS["crash-users"], load=caller_load_spec(), phases=CALLER_PHASES,
                                    probes=probes, probe_interval_s=0.25)
    verdict = answers_belong_to_caller(result.frames, backends=BACKENDS, owner_fields=OWNER_FIELDS)
    harness_run.expect(result, [(verdict, "fail", clause) if clause else (verdict, "pass")])
