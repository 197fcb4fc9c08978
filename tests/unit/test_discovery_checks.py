"""Discovery checks on synthetic timelines built by hand: membership events of
the registry and balancer probes, requests naming the instance that served
them, and the runtime's lifecycle. Each check passes on a correct run, fails
on what its broken variant does, and says 'unknown' when the evidence it
needs is missing."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import pytest

from harness.checks.discovery import (
    dead_instance_removed, graceful_stop_loses_nothing, members_at, membership_converges, membership_events,
    running_at_end, serves_through_registry_outage, takes_traffic,
)
from harness.timeline import OBSERVED_COLUMNS, REQUEST_COLUMNS, Frames, EFFECT_COLUMNS

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
RATE = 20          # requests per second, one every 50 ms
END = 12.0         # baseline 0-3 s, fault 3-7 s, recovery 7-12 s
FAULT = (3.0, 7.0)
W0, W1, W2 = "web-0", "web-1", "web-2"

Pick = Callable[[float, int], str]      # (t_s, index) -> the instance the balancer sends it to
Fails = Callable[[float, str], bool]    # (t_s, instance) -> the request fails


def rr(*members: str) -> Pick:
    return lambda t, i: members[i % len(members)]


def switch(at_s: float, before: Pick, after: Pick) -> Pick:
    return lambda t, i: before(t, i) if t < at_s else after(t, i)


def traffic(pick: Pick, fails: Fails = lambda t, m: False, *, start: float = 0.0, end: float = END,
            field: str | None = "instance") -> list[dict[str, Any]]:
    rows = []
    for i in range(int(end * RATE)):
        t = i / RATE
        if t < start:
            continue
        member = pick(t, i)
        bad = fails(t, member)
        row = {"t_s": t, "name": "/", "method": "GET", "latency_ms": 5.0, "status": 502 if bad else 200,
               "ok": not bad, "error": "HTTP 502" if bad else None}
        if field:
            row[field] = None if bad else member
        rows.append(row)
    return rows


def seen(t: float, view: str, event: str, member: str, **facts: Any) -> dict[str, Any]:
    return {"t_s": t, "source": view, "event": event, "member": member, **facts}


def both_join(t_registry: float = 0.1, t_balancer: float = 0.2) -> list[dict[str, Any]]:
    return [seen(t_registry, "registry", "joined", W0), seen(t_registry, "registry", "joined", W1),
            seen(t_balancer, "balancer", "joined", W0), seen(t_balancer, "balancer", "joined", W1)]


def frames(observed: list[dict[str, Any]], requests: list[dict[str, Any]], *,
           lifecycle: list[tuple[float, str, int, str]] = (), fault: tuple[str, str] = ("crash", "web[0]"),
           phases: bool = True) -> Frames:
    req = pd.DataFrame(requests) if requests else pd.DataFrame(columns=REQUEST_COLUMNS)
    req["end_s"] = req["t_s"] + req["latency_ms"] / 1000
    for col in REQUEST_COLUMNS:
        if col not in req:
            req[col] = None
    obs = pd.DataFrame(observed).sort_values("t_s").reset_index(drop=True) if observed \
        else pd.DataFrame(columns=OBSERVED_COLUMNS)
    return Frames(
        meta={"name": "synthetic-discovery", "target": "discovery", "variant": "x"},
        t0_ns=T0,
        requests=req,
        phases=pd.DataFrame([("baseline", 0.0, FAULT[0]), ("fault", *FAULT), ("recovery", FAULT[1], END)]
                            if phases else [], columns=["phase", "start_s", "end_s"]),
        faults=pd.DataFrame([(fault[0], fault[1], {}, *FAULT, None)],
                            columns=["fault", "on", "params", "start_s", "end_s", "error"]),
        lifecycle=pd.DataFrame([(t, s, i, a, "") for t, s, i, a in lifecycle],
                               columns=["t_s", "service", "instance", "action", "detail"]),
        probes=pd.DataFrame(columns=["t_s", "probe", "value"]),
        observed=obs,
        effects=pd.DataFrame([(FAULT[0], fault[0], fault[1], True, None, [], {})], columns=EFFECT_COLUMNS),
        complete=True,
    )


def ns(t_s: float) -> int:
    return T0 + int(round(t_s * 1e9))


# -- members_at, running_at_end ----------------------------------------------------------------


def test_members_at_replays_joins_and_leaves_up_to_the_moment():
    f = frames(both_join() + [seen(4.0, "registry", "left", W0), seen(5.0, "registry", "left", "web-7"),
                              seen(7.0, "registry", "joined", W0), seen(1.0, "balancer", "left", W1)], [])
    registry = membership_events(f, "registry")
    assert members_at(registry, 0.0) == set()
    assert members_at(registry, 0.1) == {W0, W1}          # an event at exactly t counts
    assert members_at(registry, 4.0) == {W1}
    assert members_at(registry, 6.0) == {W1}              # a left of a stranger changes nothing
    assert members_at(registry, 7.0) == {W0, W1}
    assert members_at(membership_events(f, "balancer"), 2.0) == {W0}   # views are apart


def test_running_at_end_starts_from_the_initial_instances_and_follows_the_lifecycle():
    def run(*lifecycle: tuple[float, str, int, str]) -> set[int]:
        return running_at_end(frames([], [], lifecycle=list(lifecycle)), "web", 2)

    assert run() == {0, 1}
    assert run((3.0, "web", 0, "kill")) == {1}
    assert run((6.9, "web", 0, "start"), (3.0, "web", 0, "kill")) == {0, 1}    # replayed in time order
    assert run((3.0, "web", 0, "kill"), (6.9, "web", 0, "start"), (7.0, "web", 0, "ready")) == {0, 1}
    assert run((3.0, "web", 2, "start"), (3.2, "web", 2, "ready")) == {0, 1, 2}    # scaled out
    assert run((3.0, "web", 2, "start"), (6.0, "web", 2, "scale-in")) == {0, 1}   # and back in
    assert run((4.0, "web", 1, "stop")) == {0}
    assert run((4.0, "web", 1, "pause")) == {0, 1}                                # paused still runs
    assert run((3.0, "registry", 0, "kill"), (3.0, "balancer", 1, "stop")) == {0, 1}  # other services
    assert running_at_end(frames([], []), "web", 0) == set()


# -- takes-traffic -------------------------------------------------------------------------------

SCALE_OUT = dict(lifecycle=[(3.0, "web", 2, "start"), (3.1, "web", 2, "ready")], fault=("scale_out", "web"))


def scale_out_observed(*, balancer_at: float | None = 3.3, stamp: bool = True) -> list[dict[str, Any]]:
    # the probe saw web-2 at 3.2 s; it says it registered at 3.1 s
    extra = {"registered_ns": ns(3.1)} if stamp else {}
    rows = both_join() + [seen(3.2, "registry", "joined", W2, **extra)]
    return rows + ([seen(balancer_at, "balancer", "joined", W2)] if balancer_at is not None else [])


def test_takes_traffic_passes_when_the_new_instance_serves_soon_after_registering():
    pick = switch(3.5, rr(W0, W1), rr(W0, W1, W2))
    v = takes_traffic(frames(scale_out_observed(), traffic(pick), **SCALE_OUT), member=W2, bound_s=1.0)
    first = min(i / RATE for i in range(int(END * RATE)) if i / RATE >= 3.5 and i % 3 == 2) + 0.005
    assert v.status == "pass", v
    assert v.figures["registered_s"] == 3.1           # its own stamp, earlier than the probe saw it
    assert v.figures["in_balancer_s"] == 3.3
    assert v.figures["first_served_s"] == pytest.approx(first)
    assert v.figures["delay_s"] == pytest.approx(first - 3.1, abs=1e-3) and v.figures["bound_s"] == 1.0
    assert v.figures["served_by_it"] == sum(1 for i in range(70, 240) if i % 3 == 2)
    assert "registered at 3.10 s" in v.explanation and "in the balancer at 3.30 s" in v.explanation


def test_takes_traffic_without_a_registration_stamp_counts_from_when_the_probe_saw_it():
    pick = switch(3.5, rr(W0, W1), rr(W0, W1, W2))
    v = takes_traffic(frames(scale_out_observed(stamp=False), traffic(pick), **SCALE_OUT), member=W2, bound_s=1.0)
    assert v.status == "pass" and v.figures["registered_s"] == 3.2, v


def test_takes_traffic_fails_when_the_balancer_never_takes_the_new_instance():
    """static-lb: web-2 registers but the balancer never re-reads the registry."""
    v = takes_traffic(frames(scale_out_observed(balancer_at=None), traffic(rr(W0, W1)), **SCALE_OUT),
                      member=W2, bound_s=1.0)
    assert v.status == "fail", v
    assert v.figures["in_balancer_s"] is None and v.figures["first_served_s"] is None
    assert v.figures["delay_s"] is None and v.figures["served_by_it"] == 0
    assert "in the balancer at never" in v.explanation and "first served a client at never" in v.explanation


def test_takes_traffic_fails_when_the_first_answer_comes_after_the_bound():
    pick = switch(5.0, rr(W0, W1), rr(W0, W1, W2))
    v = takes_traffic(frames(scale_out_observed(balancer_at=4.9), traffic(pick), **SCALE_OUT), member=W2, bound_s=1.0)
    assert v.status == "fail", v
    assert v.figures["delay_s"] > 1.0 and v.figures["first_served_s"] >= 5.0


def test_takes_traffic_is_unknown_without_a_registration_membership_or_instance_field():
    pick = switch(3.5, rr(W0, W1), rr(W0, W1, W2))
    # web-0 joined before the fault: not a join the fault caused
    early = takes_traffic(frames(scale_out_observed(), traffic(pick), **SCALE_OUT), member=W0, bound_s=1.0)
    assert early.status == "unknown" and "web-0 never appeared in the registry" in early.explanation
    blind = takes_traffic(frames([], traffic(pick), **SCALE_OUT), member=W2, bound_s=1.0)
    assert blind.status == "unknown" and "no membership events" in blind.explanation, blind
    no_field = takes_traffic(frames(scale_out_observed(), traffic(pick, field=None), **SCALE_OUT),
                             member=W2, bound_s=1.0)
    assert no_field.status == "unknown" and "'instance'" in no_field.explanation, no_field
    other = takes_traffic(frames(scale_out_observed(), traffic(pick), **SCALE_OUT), member=W2, bound_s=1.0,
                          field="served_by")
    assert other.status == "unknown" and "'served_by'" in other.explanation


def test_takes_traffic_reads_the_instance_from_the_field_given():
    pick = switch(3.5, rr(W0, W1), rr(W0, W1, W2))
    v = takes_traffic(frames(scale_out_observed(), traffic(pick, field="served_by"), **SCALE_OUT), member=W2,
                      bound_s=1.0, field="served_by")
    assert v.status == "pass", v


# -- dead-instance-removed -----------------------------------------------------------------------

REMOVAL = dict(ttl_s=2.0, bound_s=1.5, budget_s=3.5)   # limit 3.5 s; budget 20 req/s * 3.5 s / 2 = 35


def crash_observed(*, registry_left: float | None = 5.0, balancer_left: float | None = 5.1) -> list[dict]:
    rows = both_join()
    if registry_left is not None:
        rows += [seen(registry_left, "registry", "left", W0), seen(7.1, "registry", "joined", W0)]
    if balancer_left is not None:
        rows += [seen(balancer_left, "balancer", "left", W0), seen(7.2, "balancer", "joined", W0)]
    return rows


CRASH_LIFECYCLE = [(3.0, "web", 0, "kill"), (6.9, "web", 0, "start"), (7.0, "web", 0, "ready")]


def dead_web0_until(t_end: float) -> Fails:
    return lambda t, m: m == W0 and FAULT[0] <= t < t_end


def test_dead_instance_removed_passes_within_ttl_and_budget():
    pick = switch(3.0, rr(W0, W1), switch(5.1, rr(W0, W1), switch(7.3, rr(W1), rr(W0, W1))))
    f = frames(crash_observed(), traffic(pick, dead_web0_until(5.1)), lifecycle=CRASH_LIFECYCLE)
    v = dead_instance_removed(f, member=W0, **REMOVAL)
    assert v.status == "pass", v
    assert v.figures["registry_left_after_s"] == 2.0 and v.figures["balancer_left_after_s"] == 2.1
    assert v.figures["limit_s"] == 3.5
    assert v.figures["failed_requests"] == 21 and v.figures["failure_budget"] == 35.0   # 20 req/s * 3.5 s / 2 members
    assert v.figures["requests_in_window"] == 80
    assert "21 requests failed" in v.explanation and "budget 35" in v.explanation


def test_dead_instance_removed_fails_when_it_never_leaves_the_registry():
    """no-ttl: the crashed instance stays registered and keeps being sent requests."""
    f = frames(crash_observed(registry_left=None, balancer_left=None), traffic(rr(W0, W1), dead_web0_until(7.0)),
               lifecycle=CRASH_LIFECYCLE)
    v = dead_instance_removed(f, member=W0, **REMOVAL)
    assert v.status == "fail", v
    assert v.figures["registry_left_after_s"] is None and v.figures["balancer_left_after_s"] is None
    assert v.figures["failed"] == ["left_registry_in_time", "left_balancer_in_time", "failures_within_budget"]
    assert v.figures["failed_requests"] == 40 and v.figures["failure_budget"] == 35.0
    assert "left the registry never, balancer never" in v.explanation


def test_dead_instance_removed_fails_when_it_leaves_late_or_too_many_requests_fail():
    late = frames(crash_observed(registry_left=5.0, balancer_left=6.6), traffic(rr(W1)), lifecycle=CRASH_LIFECYCLE)
    v = dead_instance_removed(late, member=W0, **REMOVAL)
    assert v.status == "fail" and v.figures["balancer_left_after_s"] == 3.6 and v.figures["failed_requests"] == 0, v
    assert v.figures["failed"] == ["left_balancer_in_time"]
    # left in time, but every request failed for 2 s
    costly = frames(crash_observed(), traffic(rr(W0, W1), lambda t, m: 3.0 <= t < 5.0), lifecycle=CRASH_LIFECYCLE)
    v = dead_instance_removed(costly, member=W0, **REMOVAL)
    assert v.status == "fail" and v.figures["failed_requests"] == 40 and v.figures["failure_budget"] == 35.0, v
    assert v.figures["failed"] == ["failures_within_budget"]


def test_dead_instance_removed_is_unknown_without_baseline_traffic_or_membership():
    thin = frames(crash_observed(), traffic(rr(W0, W1), start=2.8), lifecycle=CRASH_LIFECYCLE)
    v = dead_instance_removed(thin, member=W0, **REMOVAL)
    assert v.status == "unknown" and "only 4 requests" in v.explanation, v
    no_phase = frames(crash_observed(), traffic(rr(W0, W1)), phases=False)
    assert dead_instance_removed(no_phase, member=W0, **REMOVAL).status == "unknown"
    blind = frames(both_join()[:2], traffic(rr(W0, W1)), lifecycle=CRASH_LIFECYCLE)   # no balancer probe
    v = dead_instance_removed(blind, member=W0, **REMOVAL)
    assert v.status == "unknown" and "balancer probe recorded no membership" in v.explanation, v


# -- graceful-stop-loses-nothing -----------------------------------------------------------------

STOP = dict(member=W1, service="web", instance=1)
STOP_LIFECYCLE = [(5.0, "web", 1, "stop"), (6.9, "web", 1, "start"), (7.0, "web", 1, "ready")]


def stop_frames(*, left: float | None = 3.05, lifecycle=STOP_LIFECYCLE, pick: Pick | None = None,
                fails: Fails = lambda t, m: False) -> Frames:
    observed = both_join() + [seen(7.1, "registry", "joined", W1), seen(7.2, "balancer", "joined", W1)]
    if left is not None:
        observed += [seen(left, "registry", "left", W1), seen(left + 0.05, "balancer", "left", W1)]
    pick = pick or switch(3.1, rr(W0, W1), switch(7.2, rr(W0), rr(W0, W1)))
    return frames(observed, traffic(pick, fails), lifecycle=lifecycle, fault=("stop", "web[1]"))


def test_graceful_stop_passes_when_it_deregisters_first_and_nothing_fails():
    v = graceful_stop_loses_nothing(stop_frames(), **STOP)
    assert v.status == "pass", v
    assert v.figures == {"left_registry_s": 3.05, "exited_s": 5.0, "failed_requests": 0, "requests": 80,
                         "clauses": ["deregistered_before_exit", "no_request_failed"], "failed": [],
                         "fault_landed": True}
    assert "deregistered first" in v.explanation and "NOT" not in v.explanation


def test_graceful_stop_fails_on_requests_failing_after_the_stop():
    """static-lb: the balancer keeps sending to the instance after it exited."""
    v = graceful_stop_loses_nothing(
        stop_frames(pick=rr(W0, W1), fails=lambda t, m: m == W1 and 5.0 <= t < 7.0), **STOP)
    assert v.status == "fail", v
    assert v.figures["failed_requests"] == 20 and v.figures["requests"] == 80
    assert v.figures["failed"] == ["no_request_failed"]
    assert "20 of 80 requests failed" in v.explanation and "{'502': 20}" in v.explanation


def test_graceful_stop_fails_when_it_exits_before_deregistering_or_never_does():
    exit_first = graceful_stop_loses_nothing(stop_frames(left=5.2), **STOP)
    assert exit_first.status == "fail" and exit_first.figures["failed_requests"] == 0, exit_first
    assert exit_first.figures["failed"] == ["deregistered_before_exit"]
    assert "NOT deregistered first" in exit_first.explanation
    never = graceful_stop_loses_nothing(stop_frames(left=None), **STOP)
    assert never.status == "fail" and never.figures["left_registry_s"] is None, never
    other = graceful_stop_loses_nothing(stop_frames(lifecycle=[(5.0, "web", 0, "stop")]), **STOP)
    assert other.status == "fail" and other.figures["exited_s"] is None, other   # web-1 never stopped


def test_graceful_stop_is_unknown_without_traffic_or_membership():
    quiet = frames(both_join(), traffic(rr(W0, W1), end=3.2), lifecycle=STOP_LIFECYCLE, fault=("stop", "web[1]"))
    v = graceful_stop_loses_nothing(quiet, **STOP)
    assert v.status == "unknown" and "only 4 requests" in v.explanation, v
    blind = frames([], traffic(rr(W0, W1)), lifecycle=STOP_LIFECYCLE, fault=("stop", "web[1]"))
    assert graceful_stop_loses_nothing(blind, **STOP).status == "unknown"


# -- serves-through-registry-outage -------------------------------------------------------------

OUTAGE = dict(fault=("crash", "registry"), lifecycle=[(3.0, "registry", 0, "kill"), (7.0, "registry", 0, "ready")])


def test_outage_passes_when_the_balancer_keeps_its_members_and_serves():
    observed = both_join() + [seen(3.1, "registry", "left", W0), seen(3.1, "registry", "left", W1)]
    v = serves_through_registry_outage(frames(observed, traffic(rr(W0, W1)), **OUTAGE), max_failed_ratio=0.01)
    assert v.status == "pass", v
    assert v.figures == {"failed_requests": 0, "requests": 80, "failed_ratio": 0.0, "limit": 0.01,
                         "balancer_members_before": 2, "dropped": [],
                         "clauses": ["failures_within_limit", "balancer_kept_members"], "failed": [],
                         "fault_landed": True}


def test_outage_fails_when_the_balancer_empties_and_requests_fail():
    """empties-on-outage: no registry, no members, nothing served."""
    observed = both_join() + [seen(3.5, "balancer", "left", W0), seen(3.5, "balancer", "left", W1),
                              seen(7.2, "balancer", "joined", W0), seen(7.2, "balancer", "joined", W1)]
    v = serves_through_registry_outage(
        frames(observed, traffic(rr(W0, W1), lambda t, m: 3.5 <= t < 7.2), **OUTAGE), max_failed_ratio=0.01)
    assert v.status == "fail", v
    assert v.figures["failed_requests"] == 70 and v.figures["requests"] == 80 and v.figures["failed_ratio"] == 0.875
    assert v.figures["dropped"] == [W0, W1] and v.figures["balancer_members_before"] == 2
    assert v.figures["failed"] == ["failures_within_limit", "balancer_kept_members"]
    assert "70 of 80 requests failed" in v.explanation and "dropped web-0, web-1" in v.explanation


def test_outage_fails_on_a_dropped_member_alone_or_on_failures_alone():
    dropped = both_join() + [seen(4.0, "balancer", "left", W1), seen(4.5, "balancer", "joined", W1)]
    v = serves_through_registry_outage(frames(dropped, traffic(rr(W0, W1)), **OUTAGE), max_failed_ratio=0.01)
    assert v.status == "fail" and v.figures["failed_requests"] == 0 and v.figures["dropped"] == [W1], v
    assert v.figures["failed"] == ["balancer_kept_members"]
    # a left before the fault or after its end is not the outage's doing
    outside = both_join() + [seen(2.0, "balancer", "left", W1), seen(2.5, "balancer", "joined", W1),
                             seen(7.5, "balancer", "left", W1)]
    assert serves_through_registry_outage(frames(outside, traffic(rr(W0, W1)), **OUTAGE),
                                          max_failed_ratio=0.01).status == "pass"
    one_failure = traffic(rr(W0, W1), lambda t, m: t == 4.0)
    within = serves_through_registry_outage(frames(both_join(), one_failure, **OUTAGE), max_failed_ratio=0.02)
    assert within.status == "pass" and within.figures["failed_requests"] == 1 and within.figures["failed_ratio"] == 0.0125
    over = serves_through_registry_outage(frames(both_join(), one_failure, **OUTAGE), max_failed_ratio=0.01)
    assert over.status == "fail" and over.figures["failed_ratio"] == 0.0125, over


def test_outage_is_unknown_without_a_balancer_view_or_traffic():
    registry_only = both_join()[:2]
    v = serves_through_registry_outage(frames(registry_only, traffic(rr(W0, W1)), **OUTAGE), max_failed_ratio=0.01)
    assert v.status == "unknown" and "balancer probe recorded no membership" in v.explanation, v
    v = serves_through_registry_outage(frames(both_join(), [], **OUTAGE), max_failed_ratio=0.01)
    assert v.status == "unknown" and "only 0 requests" in v.explanation, v


# -- membership-converges ------------------------------------------------------------------------

CONVERGE = dict(service="web", initial=2, bound_s=3.0)   # judged at 7 + 3 = 10 s


def test_converges_passes_when_all_views_match_what_runs_at_the_bound():
    pick = switch(5.1, rr(W0, W1), switch(7.3, rr(W1), rr(W0, W1)))
    f = frames(crash_observed(), traffic(pick, dead_web0_until(5.1)), lifecycle=CRASH_LIFECYCLE)
    v = membership_converges(f, **CONVERGE)
    assert v.status == "pass", v
    assert v.figures["expected"] == [W0, W1] == v.figures["registry"] == v.figures["balancer"] == v.figures["clients"]
    assert v.figures["converged_after_s"] == 0.2   # the balancer took web-0 back at 7.2 s, clients saw both
    assert v.figures["bound_s"] == 3.0 and "disagree" not in v.explanation


def test_converges_fails_when_the_balancer_misses_a_new_instance():
    """static-lb after a scale-out that stays: web-2 runs and is registered, the balancer never knows it."""
    f = frames(scale_out_observed(balancer_at=None), traffic(rr(W0, W1)), **SCALE_OUT)
    v = membership_converges(f, **CONVERGE)
    assert v.status == "fail", v
    assert v.figures["expected"] == [W0, W1, W2] == v.figures["registry"]
    assert v.figures["balancer"] == [W0, W1] and v.figures["clients"] == [W0, W1]
    assert v.figures["converged_after_s"] is None
    assert "balancer, clients disagree" in v.explanation and "all agreed never" in v.explanation


def test_converges_is_judged_at_the_bound_even_if_the_balancer_catches_up_later():
    observed = both_join() + [seen(5.0, "registry", "left", W0), seen(7.1, "registry", "joined", W0),
                              seen(5.1, "balancer", "left", W0), seen(11.0, "balancer", "joined", W0)]
    pick = switch(5.1, rr(W0, W1), switch(11.0, rr(W1), rr(W0, W1)))
    requests = traffic(pick, dead_web0_until(5.1), end=14.0)
    v = membership_converges(frames(observed, requests, lifecycle=CRASH_LIFECYCLE), **CONVERGE)
    assert v.status == "fail" and v.figures["balancer"] == [W1] and v.figures["clients"] == [W1], v
    assert v.figures["registry"] == [W0, W1]
    assert v.figures["converged_after_s"] == 4.0   # a figure only: all agreed from 11 s


def test_converges_expects_a_killed_instance_gone():
    """A crash never reverted: web-0 does not run, so no view may still list it."""
    observed = both_join() + [seen(5.0, "registry", "left", W0), seen(5.1, "balancer", "left", W0)]
    pick = switch(5.1, rr(W0, W1), rr(W1))
    f = frames(observed, traffic(pick, dead_web0_until(5.1)), lifecycle=[(3.0, "web", 0, "kill")])
    v = membership_converges(f, **CONVERGE)
    assert v.status == "pass" and v.figures["expected"] == [W1], v


def test_converges_is_unknown_with_too_few_requests_after_the_bound_or_no_evidence():
    thin = frames(crash_observed(), traffic(rr(W0, W1), end=10.2), lifecycle=CRASH_LIFECYCLE)
    v = membership_converges(thin, **CONVERGE)
    assert v.status == "unknown" and "only 4 successful requests" in v.explanation, v
    no_field = frames(crash_observed(), traffic(rr(W0, W1), field=None), lifecycle=CRASH_LIFECYCLE)
    v = membership_converges(no_field, **CONVERGE)
    assert v.status == "unknown" and "'instance'" in v.explanation, v
    blind = frames([], traffic(rr(W0, W1)), lifecycle=CRASH_LIFECYCLE)
    v = membership_converges(blind, **CONVERGE)
    assert v.status == "unknown" and "no membership events" in v.explanation, v


def test_takes_traffic_on_a_timeline_written_and_loaded_like_a_real_run(tmp_path):
    """registered_ns survives the real Recorder and load_frames (a column with gaps, so floats)."""
    import json

    from harness.timeline import Recorder, load_frames

    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="discovery", variant="correct", fault=None)
        for phase, start, end in (("baseline", 0.0, 3.0), ("fault", *FAULT), ("recovery", FAULT[1], END)):
            rec.record("phase", t_ns=ns(start), phase=phase, edge="start")
            rec.record("phase", t_ns=ns(end), phase=phase, edge="end")
        for edge, t in (("start", FAULT[0]), ("end", FAULT[1])):
            rec.record("fault", t_ns=ns(t), fault="scale_out", on="web", params={"count": 1, "keep": True}, edge=edge)
            if edge == "start":
                record_landed(rec, "scale_out", "web", t_ns=ns(t), params={"count": 1, "keep": True})
        rec.record("lifecycle", t_ns=ns(3.0), service="web", instance=2, action="start", detail="")
        for row in scale_out_observed():
            t = row.pop("t_s")
            rec.record("observed", t_ns=ns(t), **row)
        rec.record("end", t_ns=ns(END))
    pick = switch(3.5, rr(W0, W1), rr(W0, W1, W2))
    rows = [{k: v for k, v in r.items() if k != "t_s"} | {"t_ns": ns(r["t_s"])} for r in traffic(pick)]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    v = takes_traffic(load_frames(tmp_path), member=W2, bound_s=1.0)
    assert v.status == "pass" and v.figures["registered_s"] == 3.1 and v.figures["in_balancer_s"] == 3.3, v


def test_missing_data_is_reported_as_missing_not_as_a_crash():
    v = takes_traffic(frames([], traffic(rr(W0, W1)), **SCALE_OUT), member=W2, bound_s=1.0)
    assert v.status == "unknown"
    assert v.explanation.startswith("no membership events were recorded"), v.explanation
