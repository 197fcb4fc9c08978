"""Checks of the circuit breaker, from what clients saw and what reached
the dependency.

The breaker's state is derived black-box: an answer with the fast-fail
status (and reason, when the service names one) means it was open when
that request arrived; every other answer was a real call. What reached the
dependency comes from two sides (``observed`` events): the harness's own
count of the connections its client opened through the dependency's proxy
(a probe of the proxy, see fast_fails_while_open), and the dependency's own
record of arrivals. A service's ``/admin/state`` is drawn beside these in
the report as a cross-check; it is never the evidence.

The policy is judged in the words of Resilience4j, opossum and gobreaker: a
count of failures in a time-based sliding window (``failure_threshold``
within ``window_s``), a wait in the open state (``open_s``), and a number of
calls permitted when half-open (``half_open_probes``).
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


def _failures_answered(failures: pd.DataFrame, lo_s: float, hi_s: float) -> int:
    """Failed calls whose answer came within [lo_s, hi_s] (a breaker stamps a failure when it is answered)."""
    return int(((failures["end_s"] >= lo_s) & (failures["end_s"] <= hi_s)).sum())


def _densest(times_s: pd.Series, window_s: float) -> int:
    """The most of these moments (failures answered, calls seen) that lie within any window_s."""
    ends, most, lo = sorted(float(e) for e in times_s), 0, 0
    for hi, end in enumerate(ends):
        while end - ends[lo] > window_s:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _real_failures(requests: pd.DataFrame, ff: pd.Series) -> pd.DataFrame:
    """Calls that went out and failed (not fast-fails), by answer time."""
    return requests[~ff & ~requests["ok"].astype(bool)].sort_values("end_s")


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
def opens_after_threshold(frames: Frames, *, failure_threshold: int, window_s: float, fast_fail_status: int,
                          fast_fail_reason: str | None = "circuit open", slack_s: float = 0.05) -> Verdict:
    """The breaker opens once `failure_threshold` calls have failed within
    `window_s`, and not before. Upper bound: every real call started more
    than slack_s after the threshold-th failure was answered is a call it
    should have refused (calls already in flight then are allowed: they are
    the concurrency the spec adds to the threshold). Lower bound: at least
    `failure_threshold` failed calls were answered within `window_s` before
    the first fast-fail was (give or take slack_s: that failure's answer and
    the first fast-fail race to the client). Clauses: opened,
    threshold_failures_before_open, no_late_calls."""
    name = "opens-after-threshold"
    start, end = fault_window(frames)
    during = requests_between(frames, start, end, min_count=failure_threshold + 1)
    ff = fast_failed(during, status=fast_fail_status, reason=fast_fail_reason)
    real_failures = _real_failures(during, ff)
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
    everything = frames.requests  # the breaker also counts failures from before the fault window
    first = during.loc[ff].sort_values("t_s").iloc[0]
    in_window = _failures_answered(_real_failures(everything, fast_failed(everything, status=fast_fail_status,
                                                                           reason=fast_fail_reason)),
                                   float(first["t_s"]) - window_s - slack_s, float(first["end_s"]) + slack_s)
    clauses = {"opened": True, "threshold_failures_before_open": in_window >= failure_threshold,
               "no_late_calls": late == 0}
    return judged(
        name, clauses,
        f"opened {span[0] - start:.2f}s into the fault after {len(before)} failed calls, {in_window} of them "
        f"answered within {window_s:g} s before the first fast-fail (threshold {failure_threshold}, "
        f"{in_flight} more were in flight); {late} failed calls were started after the threshold was reached",
        **round_figures(failures_before_open=len(before), failures_in_window_before_open=in_window,
                        threshold=failure_threshold, window_s=window_s, in_flight=in_flight,
                        calls_after_threshold=late, opened_after_s=span[0] - start,
                        threshold_reached_after_s=threshold_at - start, admin_opened_after_s=admin),
    )


def _connection_times(frames: Frames, link: str | None) -> pd.Series | None:
    """When the harness saw its client open a connection through `link`'s proxy; None when it recorded none
    (no such probe)."""
    o = frames.observed
    if link is None or o.empty:
        return None
    seen = o[(o["source"] == link) & (o["event"] == "connection")]
    return None if seen.empty else seen["t_s"]


def _canaries(frames: Frames) -> int:
    """How many canaries the harness itself sent through the faulted proxy in the window (its fault_effect)."""
    effects = frames.effects
    figures = effects.iloc[0]["figures"] if len(effects) else None
    count = figures.get("canaries") if isinstance(figures, dict) else None
    return int(count) if isinstance(count, (int, float)) else 0


def _arrivals_while_open(frames: Frames, arrivals: pd.DataFrame, dependency: str, span: tuple[float, float],
                         grace_s: float) -> pd.Series:
    """The dependency's own record of arrivals while open, less those within grace_s of opening and the
    backlog a paused dependency stamps when it resumes (calls sent before it opened, not while open)."""
    arrivals = arrivals[(arrivals["t_s"] >= span[0] + grace_s) & (arrivals["t_s"] <= span[1])]
    life = frames.lifecycle
    for resumed in life[(life["service"] == dependency) & (life["action"] == "resume")]["t_s"]:
        arrivals = arrivals[(arrivals["t_s"] < resumed) | (arrivals["t_s"] > resumed + grace_s)]
    return arrivals["t_s"]


def _within(times: pd.Series | None, lo_s: float, hi_s: float) -> pd.Series | None:
    return None if times is None else times[(times >= lo_s) & (times <= hi_s)]


@check("fast-fails-while-open")
def fast_fails_while_open(frames: Frames, *, fast_fail_status: int, fast_fail_p99_ms: float, open_s: float,
                          half_open_probes: int, arrival_grace_ms: float, dependency: str, link: str | None = None,
                          fast_fail_reason: str | None = "circuit open") -> Verdict:
    """While open (first to last fast-fail during the fault), answers come
    fast (p99 of fast-fails <= bound) and nothing reaches the dependency
    beyond the calls permitted when half-open: at most half_open_probes in
    any half-open, which come at least open_s apart (so at most that many
    within any open_s / 2, room for the stamps' own jitter), and at most
    half_open_probes per open_s in all. Calls within arrival_grace_ms of
    opening may have been made before it opened.

    What reached the dependency is the larger of two counts. The harness's
    own, when `link` names the guarded link: the connections its client
    opened through that link's proxy (observed "connection" events of a
    probe named after the link), less the harness's canaries. A lower bound
    of the calls (a call on a kept-alive connection opens none), and exact
    where it matters: a crashed dependency makes the proxy close every
    connection at once, and a call that timed out closes its own, so every
    call then needs a new one. And the dependency's own record of arrivals,
    which a crashed or paused dependency cannot keep (after a pause it
    stamps its backlog at the resume: those within the grace are left out).
    Clauses: failed_fast, fast_fail_p99_within_limit, no_calls_beyond_probes."""
    name = "fast-fails-while-open"
    start, end = fault_window(frames)
    during = requests_between(frames, start, end, min_count=5)
    o = frames.observed
    arrivals_all = o[(o["source"] == dependency) & (o["event"] == "arrival")] if len(o) else o
    connections_all = _connection_times(frames, link)
    if arrivals_all.empty and connections_all is None:
        return unknown(name, f"no arrivals at {dependency} were recorded: probe its arrivals (arrivals_probe)"
                             + (f" or the connections through {link}" if link else ""))
    ff = fast_failed(during, status=fast_fail_status, reason=fast_fail_reason)
    span = _open_span(during, ff)
    if span is None:
        slow = percentile(during["latency_ms"], 99)
        return judged(name, {"failed_fast": False},
                      f"never failed fast: 0 of {len(during)} answers were fast-fails; p99 {slow:.0f} ms",
                      **round_figures(fast_fails=0, p99_ms=slow, requests=len(during)))
    p99 = percentile(during.loc[ff, "latency_ms"], 99)
    grace_s = arrival_grace_ms / 1000
    arrivals = _arrivals_while_open(frames, arrivals_all, dependency, span, grace_s)
    connections, canaries = _within(connections_all, span[0] + grace_s, span[1]), _canaries(frames)
    silenced = _silenced(frames, dependency, start, end)
    if connections is None and silenced:
        return unknown(name, f"{dependency} was {silenced} during the fault, so its own record cannot show calls "
                             f"made while open, and no connections through {link or 'its link'} were recorded "
                             "(probe them: a proxy-connections probe named after the link)")
    proxied = None if connections is None else max(0, len(connections) - canaries)
    calls = max(len(arrivals), proxied or 0)
    bunch = max(_densest(arrivals, open_s / 2),
                0 if connections is None else max(0, _densest(connections, open_s / 2) - canaries))
    allowed = half_open_probes * (math.floor(max(0.0, span[1] - span[0]) / open_s) + 1)
    clauses = {"failed_fast": True, "fast_fail_p99_within_limit": p99 <= fast_fail_p99_ms,
               "no_calls_beyond_probes": calls <= allowed and bunch <= half_open_probes}
    seen_by = (f"{proxied} connections through {link}'s proxy, " if proxied is not None
               else f"no connections through {link} recorded, " if link else "")
    return judged(
        name, clauses,
        f"{int(ff.sum())} fast-fails over {span[1] - span[0]:.1f}s open, p99 {p99:.1f} ms (limit {fast_fail_p99_ms:.0f} ms); "
        f"{calls} calls reached {dependency} while open ({seen_by}{len(arrivals)} arrivals in its own record), "
        f"at most {bunch} within {open_s / 2:g}s (limits: {half_open_probes} permitted half-open calls, "
        f"{allowed} in all)",
        **round_figures(fast_fails=int(ff.sum()), p99_ms=p99, limit_ms=fast_fail_p99_ms, open_s_seen=span[1] - span[0],
                        calls_while_open=calls, connections_while_open=proxied, arrivals_while_open=len(arrivals),
                        calls_in_one_half_open=bunch, arrivals_allowed=allowed, half_open_probes=half_open_probes),
    )


def _silenced(frames: Frames, dependency: str, start_s: float, end_s: float) -> str | None:
    """How the dependency was kept from recording arrivals in the window (killed,
    paused, stopped), as the runtime's lifecycle events say; None if it never was."""
    life = frames.lifecycle
    hit = life[(life["service"] == dependency) & life["action"].isin(("kill", "pause", "stop"))
               & (life["t_s"] >= start_s) & (life["t_s"] <= end_s)]
    return {"kill": "killed", "pause": "paused", "stop": "stopped"}[hit["action"].iloc[0]] if len(hit) else None


@check("stays-closed-under-sparse-failures")
def stays_closed_under_sparse_failures(frames: Frames, *, failure_threshold: int, window_s: float,
                                       fast_fail_status: int, fast_fail_reason: str | None = "circuit open",
                                       slack_s: float = 0.05) -> Verdict:
    """Failures sparser than the policy must not open the breaker: a fast-fail
    is owed only once `failure_threshold` failed calls were answered within
    some `window_s`. From the fault's start on, the first fast-fail must come
    after such a window (give or take slack_s); none at all is a pass.
    Unknown when the calls that failed from the fault's start, up to the
    first fast-fail, were fewer than `failure_threshold`: a count that never
    forgets could not be told from one in a window. Clause: no_fast_fail."""
    name = "stays-closed-under-sparse-failures"
    start, end = fault_window(frames)
    requests_between(frames, start, end, min_count=failure_threshold + 1)  # too few to judge: MissingData
    rows = frames.requests
    ff = fast_failed(rows, status=fast_fail_status, reason=fast_fail_reason)
    later_ff = rows[ff & (rows["t_s"] >= start)]
    first_ff = later_ff.sort_values("t_s").iloc[0] if len(later_ff) else None
    until = float(first_ff["end_s"]) + slack_s if first_ff is not None else math.inf
    failures = _real_failures(rows, ff)
    failures = failures[failures["end_s"] <= until]
    counted = failures[failures["t_s"] >= start]
    if len(counted) < failure_threshold:
        return unknown(name, f"only {len(counted)} calls failed from the fault's start"
                             f"{' to the first fast-fail' if first_ff is not None else ''} (threshold "
                             f"{failure_threshold}): too few to tell a count in a window from one that never forgets",
                       failures=len(counted), threshold=failure_threshold)
    densest = _densest(failures["end_s"], window_s)
    first_after = float(first_ff["t_s"]) - start if first_ff is not None else None
    figures = round_figures(failures=len(counted), densest_in_window=densest, threshold=failure_threshold,
                            window_s=window_s, fast_fails=int(len(later_ff)), first_fast_fail_after_s=first_after)
    if first_ff is None:
        return judged(name, {"no_fast_fail": True},
                      f"stayed closed: {len(counted)} calls failed from the fault's start, at most {densest} within "
                      f"any {window_s:g} s (threshold {failure_threshold}); no fast-fail", **figures)
    owed = densest >= failure_threshold
    return judged(name, {"no_fast_fail": owed},
                  f"{'opened with cause' if owed else 'opened on sparse failures'}: first fast-fail "
                  f"{first_after:.2f}s into the fault, after {len(counted)} failed calls, at most {densest} of them "
                  f"within any {window_s:g} s (threshold {failure_threshold})", **figures)


__all__ = ["fast_failed", "fast_fails_while_open", "opens_after_threshold", "recovers",
           "stays_closed_under_sparse_failures"]
