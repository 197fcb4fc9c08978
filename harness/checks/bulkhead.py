"""Checks of the bulkhead: while one compartment (the non-critical pool) is
saturated, the critical one keeps serving, and overflow is turned away
fast instead of queueing without limit.

Black-box: routes are told apart by request name (e.g. "GET /checkout" and
"GET /report"); a rejection is an answer with the reject status (and
reason, when the service names one). Pool utilisation from the service's
/admin/state is a probe for the plot, not evidence.
"""

from __future__ import annotations

from ..timeline import Frames
from .verdict import Verdict, check, judged, unknown
from .windows import MissingData, fault_window, only, percentile, phase, requests_between, round_figures, success_rate


@check("critical-isolated")
def critical_isolated(frames: Frames, *, request_name: str, min_success_pct: float, p99_factor: float,
                      p99_floor_ms: float) -> Verdict:
    """Critical requests keep success >= min_success_pct and p99 <=
    max(p99_factor x their baseline p99, p99_floor_ms) during the fault."""
    name = "critical-isolated"
    try:
        frames = only(frames, request_name)
        base = requests_between(frames, *phase(frames, "baseline"), min_count=10)
        during = requests_between(frames, *fault_window(frames), min_count=10)
    except MissingData as exc:
        return unknown(name, str(exc))
    base_p99 = percentile(base["latency_ms"], 99)
    p99 = percentile(during["latency_ms"], 99)
    limit = max(p99_factor * base_p99, p99_floor_ms)
    rate = success_rate(during) * 100
    return judged(
        name, {"critical_success_held": rate >= min_success_pct, "critical_p99_within_limit": p99 <= limit},
        f"{request_name}: {rate:.1f}% succeeded during the fault (need {min_success_pct:g}%); "
        f"p99 {p99:.0f} ms against baseline {base_p99:.0f} ms (limit {limit:.0f} ms)",
        **round_figures(success_pct=rate, min_success_pct=min_success_pct, p99_ms=p99, baseline_p99_ms=base_p99,
                        limit_ms=limit, requests=len(during)),
    )


@check("overflow-rejected-fast")
def overflow_rejected_fast(frames: Frames, *, request_name: str, reject_status: int, reject_bound_ms: float,
                           queue_bound_ms: float, reject_reason: str | None = None) -> Verdict:
    """Requests the saturated pool cannot take are rejected within
    reject_bound_ms (p99), and none waits beyond queue_bound_ms, the longest
    a request that got a connection may take. Without any rejection the pool
    was not saturated and the verdict is unknown."""
    name = "overflow-rejected-fast"
    try:
        frames = only(frames, request_name)
        during = requests_between(frames, *fault_window(frames), min_count=10)
    except MissingData as exc:
        return unknown(name, str(exc))
    rejected = during["status"] == reject_status
    if reject_reason is not None and "reason" in during:
        rejected &= during["reason"] == reject_reason
    queued = int((during["latency_ms"] > queue_bound_ms).sum())
    if not rejected.any():
        if queued:
            return judged(name, {"no_request_queued": False},
                          f"{request_name}: none rejected, {queued} of {len(during)} waited over "
                          f"{queue_bound_ms:.0f} ms: overflow queued instead",
                          **round_figures(rejected=0, queued=queued, requests=len(during)))
        return unknown(name, f"{request_name}: no request was rejected or queued; the fault did not saturate the pool")
    p99 = percentile(during.loc[rejected, "latency_ms"], 99)
    return judged(
        name, {"rejects_p99_within_limit": p99 <= reject_bound_ms, "no_request_queued": queued == 0},
        f"{request_name}: {int(rejected.sum())} of {len(during)} rejected, p99 {p99:.0f} ms (limit "
        f"{reject_bound_ms:.0f} ms); {queued} waited over {queue_bound_ms:.0f} ms",
        **round_figures(rejected=int(rejected.sum()), reject_p99_ms=p99, limit_ms=reject_bound_ms, queued=queued,
                        queue_bound_ms=queue_bound_ms, requests=len(during)),
    )


__all__ = ["critical_isolated", "overflow_rejected_fast"]
