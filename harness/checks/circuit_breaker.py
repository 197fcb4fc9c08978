"""Checks of the circuit breaker, from what clients saw and what reached
the dependency.

The breaker's state is derived black-box: an answer with the fast-fail
status (and reason, when the service names one) means it was open when
that request arrived; every other answer was a real call. What reached the
dependency comes from its own record of arrivals (``observed`` events).
A service's ``/admin/state`` is drawn beside these in the report as a
cross-check; it is never the evidence.
"""

from __future__ import annotations

import math

import pandas as pd

from ..timeline import Frames
from .recovery import recovers
from .verdict import Verdict, check, judged, unknown
from .windows import fault_window, percentile, requests_between, round_figures


def fast_failed(requests: pd.DataFrame, *, status: int, reason: str | None) -> pd.Series:
    """True where the answer was the breaker's fast-fail."""
    hit = requests["status"] == status
    if reason is not None and "reason" in requests:
        hit &= requests["reason"] == reason
    return hit


def _open_span(during: pd.DataFrame, ff: pd.Series) -> tuple[float, float] | None:
    """First and last fast-fail start inside the fault window, or None."""
    starts = during.loc[ff, "t_s"]
    return (float(starts.min()), float(starts.max())) if len(starts) else None


def _admin_first_open(frames: Frames, start_s: float) -> float | None:
    """When the service said it opened (its own transitions), for the figures."""
    o = frames.observed
    if o.empty or "to" not in o:
        return None
    opened = o[(o["event"] == "transition") & (o["to"] == "open") & (o["t_s"] >= start_s)]
    return float(opened["t_s"].min()) - start_s if len(opened) else None


def _threshold_reached(failures: pd.DataFrame, threshold: int) -> float:
    """When the threshold-th failure was answered (failures sorted by end_s); NaN if never."""
    return float(failures["end_s"].iloc[threshold - 1]) if len(failures) >= threshold else math.nan


def _late_calls(failures: pd.DataFrame, threshold_at: float, slack_s: float) -> int:
    """Failed calls started more than slack_s after the threshold was reached: ones it should have refused."""
    return 0 if math.isnan(threshold_at) else int((failures["t_s"] > threshold_at + slack_s).sum())


def _in_flight(failures: pd.DataFrame, threshold_at: float) -> int:
    """Failed calls already under way when the threshold was reached: started
    before the threshold-th failure was answered and answered after it (at
    most users - 1, since that failure's own caller is not among them)."""
    if math.isnan(threshold_at):
        return 0
    return int(((failures["t_s"] < threshold_at) & (failures["end_s"] > threshold_at)).sum())


@check("opens-after-threshold")
def opens_after_threshold(frames: Frames, *, failure_threshold: int, fast_fail_status: int,
                          fast_fail_reason: str | None = "circuit open", slack_s: float = 0.05) -> Verdict:
    """The breaker opens once `failure_threshold` calls have failed: every
    real call started more than slack_s after the threshold-th failure was
    answered is a call it should have refused. Calls already in flight then
    are allowed (they are the concurrency the spec adds to the threshold).
    Clauses: opened, failed_before_open (some call failed before the first
    fast-fail), no_late_calls."""
    name = "opens-after-threshold"
    start, end = fault_window(frames)
    during = requests_between(frames, start, end, min_count=failure_threshold + 1)
    ff = fast_failed(during, status=fast_fail_status, reason=fast_fail_reason)
    real_failures = during[~ff & ~during["ok"].astype(bool)].sort_values("end_s")
    span = _open_span(during, ff)
    admin = _admin_first_open(frames, start)
    if span is None:
        late = _late_calls(real_failures, _threshold_reached(real_failures, failure_threshold), slack_s)
        return judged(
            name, {"opened": False, "no_late_calls": late == 0},
            f"never opened: none of {len(during)} answers during the fault was a fast-fail "
            f"({fast_fail_status} {fast_fail_reason or ''}); {len(real_failures)} calls failed the slow way",
            **round_figures(failures=len(real_failures), threshold=failure_threshold, opened_after_s=None,
                            admin_opened_after_s=admin, requests=len(during), calls_after_threshold=late),
        )
    before = real_failures[real_failures["t_s"] < span[0]]  # after it, real calls are half-open probes
    threshold_at = _threshold_reached(before, failure_threshold)
    late, in_flight = _late_calls(before, threshold_at, slack_s), _in_flight(before, threshold_at)
    return judged(
        name, {"opened": True, "failed_before_open": len(before) >= 1, "no_late_calls": late == 0},
        f"opened {span[0] - start:.2f}s into the fault after {len(before)} failed calls "
        f"(threshold {failure_threshold}, {in_flight} more were in flight); "
        f"{late} failed calls were started after the threshold was reached",
        **round_figures(failures_before_open=len(before), threshold=failure_threshold, in_flight=in_flight,
                        calls_after_threshold=late, opened_after_s=span[0] - start,
                        threshold_reached_after_s=threshold_at - start, admin_opened_after_s=admin),
    )


@check("fast-fails-while-open")
def fast_fails_while_open(frames: Frames, *, fast_fail_status: int, fast_fail_p99_ms: float, open_s: float,
                          half_open_probes: int, arrival_grace_ms: float, dependency: str,
                          fast_fail_reason: str | None = "circuit open") -> Verdict:
    """While open (first to last fast-fail during the fault), answers come
    fast (p99 of fast-fails <= bound) and nothing reaches the dependency
    beyond the half-open probes: at most half_open_probes per open_s.
    Arrivals within arrival_grace_ms of opening, or of the dependency's
    resume after a pause, may be calls made before it opened."""
    name = "fast-fails-while-open"
    start, end = fault_window(frames)
    during = requests_between(frames, start, end, min_count=5)
    o = frames.observed
    arrivals_all = o[(o["source"] == dependency) & (o["event"] == "arrival")] if len(o) else o
    if arrivals_all.empty:
        return unknown(name, f"no arrivals at {dependency} were recorded: probe its arrivals (arrivals_probe)")
    ff = fast_failed(during, status=fast_fail_status, reason=fast_fail_reason)
    span = _open_span(during, ff)
    if span is None:
        slow = percentile(during["latency_ms"], 99)
        return judged(name, {"failed_fast": False},
                      f"never failed fast: 0 of {len(during)} answers were fast-fails; p99 {slow:.0f} ms",
                      **round_figures(fast_fails=0, p99_ms=slow, requests=len(during)))
    p99 = percentile(during.loc[ff, "latency_ms"], 99)
    grace_s = arrival_grace_ms / 1000
    arrivals = arrivals_all[(arrivals_all["t_s"] >= span[0] + grace_s) & (arrivals_all["t_s"] <= span[1])]
    # A paused dependency stamps the calls queued in its kernel backlog when it
    # resumes: those were sent before the breaker opened, not while it was open.
    life = frames.lifecycle
    for resumed in life[(life["service"] == dependency) & (life["action"] == "resume")]["t_s"]:
        arrivals = arrivals[(arrivals["t_s"] < resumed) | (arrivals["t_s"] > resumed + grace_s)]
    allowed = half_open_probes * (math.floor(max(0.0, span[1] - span[0]) / open_s) + 1)
    clauses = {"failed_fast": True, "fast_fail_p99_within_limit": p99 <= fast_fail_p99_ms,
               "no_calls_beyond_probes": len(arrivals) <= allowed}
    return judged(
        name, clauses,
        f"{int(ff.sum())} fast-fails over {span[1] - span[0]:.1f}s open, p99 {p99:.1f} ms (limit {fast_fail_p99_ms:.0f} ms); "
        f"{len(arrivals)} calls reached {dependency} while open (limit {allowed}: {half_open_probes} probes per {open_s:g}s)",
        **round_figures(fast_fails=int(ff.sum()), p99_ms=p99, limit_ms=fast_fail_p99_ms, open_s_seen=span[1] - span[0],
                        arrivals_while_open=len(arrivals), arrivals_allowed=allowed),
    )


__all__ = ["fast_failed", "fast_fails_while_open", "opens_after_threshold", "recovers"]
