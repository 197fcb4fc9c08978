"""Checks of the chained pattern (A -> B -> C with a timeout budget).

Black-box: they read only what the client saw (the requests frame) and
the phase and fault windows, so they work on services the user cannot
instrument. retry-amplification also reads the leaf's own record of
arrivals (``observed`` ``arrival`` events with the ``request_id`` the chain
passed on), matched to the load's rows by the id the load gave each request.
"""

from __future__ import annotations

import pandas as pd

from ..timeline import Frames
from .recovery import recovers
from .verdict import Verdict, check, judged
from .windows import MissingData, fault_window, percentile, phase, requests_between, requests_during, round_figures, success_rate


@check("latency-passes-through")
def latency_passes_through(frames: Frames, *, latency_ms: float, tolerance_ms: float | None = None, min_success: float = 0.99) -> Verdict:
    """Latency L on a hop under budget adds about L to the entry's median,
    and no request fails for it (no premature timeout, no amplification).
    Tolerance: max(25 ms, 25% of L) unless given."""
    name = "latency-passes-through"
    base = requests_between(frames, *phase(frames, "baseline"), min_count=10)
    start, end = fault_window(frames)
    during = requests_between(frames, start, end, min_count=10)
    tol = tolerance_ms if tolerance_ms is not None else max(25.0, 0.25 * latency_ms)
    base_ok, during_ok = base[base["ok"].astype(bool)], during[during["ok"].astype(bool)]
    if during_ok.empty:
        return judged(name, {"success_held": False},
                      f"no request succeeded under {latency_ms:.0f} ms of added latency (0 of {len(during)})",
                      **round_figures(requests=len(during), success_pct=0.0))
    b50, f50 = percentile(base_ok["latency_ms"], 50), percentile(during_ok["latency_ms"], 50)
    added, ok_rate = f50 - b50, success_rate(during)
    clauses = {"latency_added_as_injected": abs(added - latency_ms) <= tol, "success_held": ok_rate >= min_success}
    return judged(
        name, clauses,
        f"median rose by {added:.0f} ms for {latency_ms:.0f} ms injected (tolerance {tol:.0f} ms); "
        f"{ok_rate * 100:.1f}% succeeded during the fault (need {min_success * 100:.0f}%)",
        **round_figures(baseline_p50_ms=b50, fault_p50_ms=f50, added_ms=added, injected_ms=float(latency_ms),
                        tolerance_ms=tol, success_pct=ok_rate * 100, requests=len(during)),
    )


@check("answers-within-budget")
def answers_within_budget(frames: Frames, *, budget_ms: float, margin_ms: float, hop: str, hang_ms: float) -> Verdict:
    """While a dependency is slow, dead or paused, the entry still answers
    every request within its budget (p99 <= budget + margin), failures
    name the failing hop, and no request hangs (no answer, or >= hang_ms).
    Requests in flight when the fault began are judged too."""
    name = "answers-within-budget"
    start, end = fault_window(frames)
    during = requests_during(frames, start, end, min_count=5)
    p50, p99 = percentile(during["latency_ms"], 50), percentile(during["latency_ms"], 99)
    failed = during[~during["ok"].astype(bool)]
    answered = failed[failed["status"] > 0]
    naming = int((answered["hop"] == hop).sum())
    hung = int(((during["status"] == 0) | (during["latency_ms"] >= hang_ms)).sum())
    limit = budget_ms + margin_ms
    clauses = {"p99_within_budget": p99 <= limit, "no_request_hung": hung == 0,
               "errors_name_hop": naming == len(answered)}
    return judged(
        name, clauses,
        f"p99 {p99:.0f} ms during the fault (limit {budget_ms:.0f} + {margin_ms:.0f} ms); "
        f"{naming} of {len(answered)} error answers name hop {hop}; {hung} of {len(during)} requests hung",
        **round_figures(p50_ms=p50, p99_ms=p99, limit_ms=limit, requests=len(during), failed_requests=len(failed),
                        errors_naming_hop=naming, hung=hung),
    )


def calls_per_request(frames: Frames, rows: pd.DataFrame, dependency: str) -> tuple[pd.Series, int]:
    """How many calls reached `dependency` for each of `rows` (by request id, 0 if
    none), from its own arrivals; and how many of its arrivals carried no id of theirs."""
    if "request_id" not in rows or rows["request_id"].isna().all():
        raise MissingData("request rows carry no request id: load with request_id_header")
    o = frames.observed
    arrivals = o[(o["source"] == dependency) & (o["event"] == "arrival")] if len(o) else o
    if arrivals.empty or "request_id" not in arrivals:
        raise MissingData(f"no arrivals with request ids were recorded at {dependency}: probe its arrivals "
                          "(records_probe) and pass the request id down the chain")
    ids = rows["request_id"].dropna()
    matched = arrivals["request_id"].isin(set(ids))
    counts = arrivals.loc[matched, "request_id"].value_counts()
    return ids.map(counts).fillna(0).astype(int), int((~matched & arrivals["request_id"].isna()).sum())


@check("retry-amplification")
def retry_amplification(frames: Frames, *, retry_budget: int, dependency: str, min_requests: int = 20) -> Verdict:
    """While some calls fail, retries do not multiply down the chain: for every
    request at the entry started during the fault, at most 1 + retry_budget
    calls reach `dependency` (the leaf's own record, matched by request id).
    Unknown when nothing failed: with no failure to retry, amplification cannot show."""
    name = "retry-amplification"
    start, end = fault_window(frames)
    rows = requests_between(frames, start, end, min_count=min_requests)
    per_request, unmatched = calls_per_request(frames, rows, dependency)
    failed = int((~rows["ok"].astype(bool)).sum())
    retried = int((per_request > 1).sum())
    if failed == 0 and retried == 0:
        raise MissingData(f"no request failed and none reached {dependency} twice during the fault: "
                          "no call failed, so there was nothing to retry")
    limit = 1 + retry_budget
    calls, worst = int(per_request.sum()), int(per_request.max())
    over = int((per_request > limit).sum())
    return judged(
        name, {"calls_per_request_within_budget": over == 0},
        f"{calls} calls reached {dependency} for {len(per_request)} requests at the entry during the fault "
        f"({calls / len(per_request):.2f} per request, at most {worst}; limit {limit} = 1 + retry budget "
        f"{retry_budget}); {over} requests went over it, {retried} were retried, {failed} failed",
        **round_figures(requests=len(per_request), calls=calls, calls_per_request=calls / len(per_request),
                        max_calls_per_request=worst, limit=limit, requests_over_budget=over,
                        retried_requests=retried, failed_requests=failed,
                        unreached_requests=int((per_request == 0).sum()), calls_without_id=unmatched),
    )


__all__ = ["answers_within_budget", "calls_per_request", "latency_passes_through", "recovers", "retry_amplification"]
