"""Checks of the circuit breaker, from what clients saw and what reached
the dependency.

The breaker's state is derived black-box: a fast-fail (FastFail: the
status, and the body's reason where the service names one, else a quick
answer) means it was open when that request arrived; every other answer
was a real call. What reached the
dependency comes from the harness's own records (``observed`` events):
the calls on the link from the wire (http_calls_probe) and the connections
its client opened through the dependency's proxy (see
fast_fails_while_open); a dependency's own record of arrivals serves where
no wire record is kept. A service's ``/admin/state`` is drawn beside these in
the report as a cross-check; it is never the evidence.

The policy (BreakerPolicy, in Resilience4j's words: consecutive failures,
a count or a rate of failures in a sliding window, the wait in the open
state, the calls permitted when half-open) is replayed on the client's
record of real calls to tell when the breaker was owed to open.
"""

from __future__ import annotations

import math

import pandas as pd

from ..timeline import Frames
from .breaker_policy import BreakerPolicy, FastFail
from .recovery import recovers
from .verdict import Verdict, check, judged, unknown
from .windows import fault_window, percentile, requests_between, round_figures


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


def _densest(times_s: pd.Series, window_s: float) -> int:
    """The most of these moments (failures answered, calls seen) that lie within any window_s."""
    ends, most, lo = sorted(float(e) for e in times_s), 0, 0
    for hi, end in enumerate(ends):
        while end - ends[lo] > window_s:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _real_calls(requests: pd.DataFrame, ff: pd.Series) -> pd.DataFrame:
    """Calls that went out (not fast-fails), ok or not, by answer time."""
    return requests[~ff].sort_values("end_s")


def _late_calls(calls: pd.DataFrame, owed_at: float, slack_s: float) -> int:
    """Real calls started more than slack_s after the policy was met: ones it should have refused."""
    return 0 if math.isnan(owed_at) else int((calls["t_s"] > owed_at + slack_s).sum())


def _in_flight(calls: pd.DataFrame, owed_at: float) -> int:
    """Real calls already under way when the policy was met: started before
    that answer and answered after it (at most users - 1)."""
    if math.isnan(owed_at):
        return 0
    return int(((calls["t_s"] < owed_at) & (calls["end_s"] > owed_at)).sum())


@check("opens-after-threshold")
def opens_after_threshold(frames: Frames, *, policy: BreakerPolicy, fast_fail: FastFail,
                          slack_s: float = 0.05) -> Verdict:
    """The breaker opens once its policy is met, and not before. The client's
    real calls (fast-fails left out, from before the fault too: a breaker
    counts those), replayed in answer order, say when the policy was met.
    Upper bound: every real call started more than slack_s after that is a
    call it should have refused (calls already in flight then are allowed:
    they are the concurrency the spec adds to the threshold). Lower bound:
    the policy was met by the answers up to the first fast-fail's (give or
    take slack_s: the last failure's answer and the first fast-fail race to
    the client). Clauses: opened, threshold_failures_before_open, no_late_calls."""
    name = "opens-after-threshold"
    start, end = fault_window(frames)
    during = requests_between(frames, start, end, min_count=policy.least_failures + 1)
    ff = fast_fail.of(during)
    span = _open_span(during, ff)
    admin = _admin_first_open(frames, start)
    everything = frames.requests
    real = _real_calls(everything, fast_fail.of(everything))
    real = real[real["t_s"] <= end]
    failed_in_fault = int((~real["ok"].astype(bool) & (real["t_s"] >= start)).sum())
    if span is None:
        owed_at = policy.met_at(real)
        late = _late_calls(real[real["t_s"] >= start], owed_at, slack_s)
        return judged(
            name, {"opened": False, "no_late_calls": late == 0},
            f"never opened: none of {len(during)} answers during the fault was a fast-fail "
            f"({fast_fail.said()}); {failed_in_fault} calls failed the slow way; the policy "
            f"({policy.said()}) was {'met' if late or not math.isnan(owed_at) else 'never met'}",
            **round_figures(failures=failed_in_fault, threshold=policy.least_failures, opened_after_s=None,
                            admin_opened_after_s=admin, requests=len(during), calls_after_threshold=late,
                            threshold_reached_after_s=None if math.isnan(owed_at) else owed_at - start),
        )
    first = during.loc[ff].sort_values("t_s").iloc[0]
    before = real[real["t_s"] < span[0]]  # after it, real calls are half-open probes
    owed_at = policy.met_at(before[before["end_s"] <= float(first["end_s"]) + slack_s])
    owed_ever = policy.met_at(before)  # met later than the first fast-fail, for the figures
    failures_before = before[~before["ok"].astype(bool) & (before["t_s"] >= start)]
    counted_at = owed_ever if math.isnan(owed_at) else owed_at
    in_fault = before[before["t_s"] >= start]
    late, in_flight = _late_calls(in_fault, counted_at, slack_s), _in_flight(in_fault, counted_at)
    clauses = {"opened": True, "threshold_failures_before_open": not math.isnan(owed_at), "no_late_calls": late == 0}
    met = (f"the policy ({policy.said()}) was met {owed_at - start:.2f}s into it" if not math.isnan(owed_at)
           else f"the policy ({policy.said()}) was not met by then")
    return judged(
        name, clauses,
        f"opened {span[0] - start:.2f}s into the fault after {len(failures_before)} failed calls; {met} "
        f"({in_flight} more calls were in flight then); {late} real calls were started after it was met",
        **round_figures(failures_before_open=len(failures_before), threshold=policy.least_failures,
                        policy=policy.policy, in_flight=in_flight, calls_after_threshold=late,
                        opened_after_s=span[0] - start,
                        threshold_reached_after_s=None if math.isnan(counted_at) else counted_at - start,
                        admin_opened_after_s=admin),
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
    if "via" in arrivals and bool((arrivals["via"] == "wire").all()):
        return arrivals["t_s"]  # stamped as they were sent: a resume's backlog is not restamped
    life = frames.lifecycle
    for resumed in life[(life["service"] == dependency) & (life["action"] == "resume")]["t_s"]:
        arrivals = arrivals[(arrivals["t_s"] < resumed) | (arrivals["t_s"] > resumed + grace_s)]
    return arrivals["t_s"]


def _within(times: pd.Series | None, lo_s: float, hi_s: float) -> pd.Series | None:
    return None if times is None else times[(times >= lo_s) & (times <= hi_s)]


@check("fast-fails-while-open")
def fast_fails_while_open(frames: Frames, *, policy: BreakerPolicy, fast_fail: FastFail, arrival_grace_ms: float,
                          dependency: str, link: str | None = None) -> Verdict:
    """While open (first to last fast-fail during the fault), answers come
    fast (p99 of fast-fails <= fast_fail.p99_ms) and nothing reaches the
    dependency beyond the calls permitted when half-open: at most
    permitted_calls_in_half_open in any half-open, which come at least
    wait_duration_in_open_s apart (so at most that many within half of it,
    room for the stamps' own jitter), and at most that many per
    wait_duration_in_open_s in all. Calls within arrival_grace_ms of
    opening may have been made before it opened.

    What reached the dependency is the larger of two counts. The harness's
    own, when `link` names the guarded link: the connections its client
    opened through that link's proxy (observed "connection" events of a
    probe named after the link), less the harness's canaries. A lower bound
    of the calls (a call on a kept-alive connection opens none), and exact
    where it matters: a crashed dependency makes the proxy close every
    connection at once, and a call that timed out closes its own, so every
    call then needs a new one. And the arrivals named after the dependency:
    best the harness's record of the calls on the link from the wire
    (http_calls_probe, via "wire"), stamped when they were sent, also while
    the dependency is dead or frozen; else the dependency's own record,
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
        return unknown(name, f"no arrivals at {dependency} were recorded: probe the calls on its link "
                             f"(http_calls_probe named {dependency!r}) or its own arrivals (arrivals_probe)"
                             + (f" or the connections through {link}" if link else ""))
    ff = fast_fail.of(during)
    span = _open_span(during, ff)
    open_s, half_open_probes = policy.wait_duration_in_open_s, policy.permitted_calls_in_half_open
    if span is None:
        slow = percentile(during["latency_ms"], 99)
        return judged(name, {"failed_fast": False},
                      f"never failed fast: 0 of {len(during)} answers were fast-fails ({fast_fail.said()}); "
                      f"p99 {slow:.0f} ms",
                      **round_figures(fast_fails=0, p99_ms=slow, requests=len(during)))
    p99 = percentile(during.loc[ff, "latency_ms"], 99)
    grace_s = arrival_grace_ms / 1000
    arrivals = _arrivals_while_open(frames, arrivals_all, dependency, span, grace_s)
    connections, canaries = _within(connections_all, span[0] + grace_s, span[1]), _canaries(frames)
    from_wire = "via" in arrivals_all and bool((arrivals_all["via"] == "wire").any())
    silenced = None if from_wire else _silenced(frames, dependency, start, end)
    if connections is None and silenced:
        return unknown(name, f"{dependency} was {silenced} during the fault, so its own record cannot show calls "
                             f"made while open, and no connections through {link or 'its link'} were recorded "
                             "(probe them: a proxy-connections probe named after the link)")
    proxied = None if connections is None else max(0, len(connections) - canaries)
    calls = max(len(arrivals), proxied or 0)
    bunch = max(_densest(arrivals, open_s / 2),
                0 if connections is None else max(0, _densest(connections, open_s / 2) - canaries))
    allowed = half_open_probes * (math.floor(max(0.0, span[1] - span[0]) / open_s) + 1)
    clauses = {"failed_fast": True, "fast_fail_p99_within_limit": p99 <= fast_fail.p99_ms,
               "no_calls_beyond_probes": calls <= allowed and bunch <= half_open_probes}
    seen_by = (f"{proxied} connections through {link}'s proxy, " if proxied is not None
               else f"no connections through {link} recorded, " if link else "")
    return judged(
        name, clauses,
        f"{int(ff.sum())} fast-fails over {span[1] - span[0]:.1f}s open, p99 {p99:.1f} ms (limit {fast_fail.p99_ms:.0f} ms); "
        f"{calls} calls reached {dependency} while open ({seen_by}{len(arrivals)} "
        f"{'calls on the wire' if from_wire else 'arrivals in its own record'}), "
        f"at most {bunch} within {open_s / 2:g}s (limits: {half_open_probes} permitted half-open calls, "
        f"{allowed} in all)",
        **round_figures(fast_fails=int(ff.sum()), p99_ms=p99, limit_ms=fast_fail.p99_ms, open_s_seen=span[1] - span[0],
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
def stays_closed_under_sparse_failures(frames: Frames, *, policy: BreakerPolicy, fast_fail: FastFail,
                                       slack_s: float = 0.05) -> Verdict:
    """Failures sparser than the policy must not open the breaker: a fast-fail
    is owed only once the client's real calls, replayed in answer order, met
    the policy. From the fault's start on, the first fast-fail must come
    after that (give or take slack_s); none at all is a pass. Unknown when
    the calls that failed from the fault's start, up to the first fast-fail,
    were fewer than the fewest that can meet the policy: a count that never
    forgets could not be told from one in a window. Clause: no_fast_fail."""
    name = "stays-closed-under-sparse-failures"
    start, end = fault_window(frames)
    requests_between(frames, start, end, min_count=policy.least_failures + 1)  # too few to judge: MissingData
    rows = frames.requests
    ff = fast_fail.of(rows)
    later_ff = rows[ff & (rows["t_s"] >= start)]
    first_ff = later_ff.sort_values("t_s").iloc[0] if len(later_ff) else None
    until = float(first_ff["end_s"]) + slack_s if first_ff is not None else math.inf
    real = _real_calls(rows, ff)
    real = real[real["end_s"] <= until]
    counted = real[~real["ok"].astype(bool) & (real["t_s"] >= start)]
    least = policy.least_failures
    if len(counted) < least:
        return unknown(name, f"only {len(counted)} calls failed from the fault's start"
                             f"{' to the first fast-fail' if first_ff is not None else ''} (the policy, "
                             f"{policy.said()}, needs {least}): too few to tell a count in a window from one that "
                             "never forgets", failures=len(counted), threshold=least)
    owed_at = policy.met_at(real)
    first_after = float(first_ff["t_s"]) - start if first_ff is not None else None
    figures = round_figures(failures=len(counted), threshold=least, policy=policy.policy,
                            window_s=policy.sliding_window_s if math.isfinite(policy.sliding_window_s) else None,
                            fast_fails=int(len(later_ff)),
                            first_fast_fail_after_s=first_after,
                            policy_met_after_s=None if math.isnan(owed_at) else owed_at - start)
    if first_ff is None:
        return judged(name, {"no_fast_fail": True},
                      f"stayed closed: {len(counted)} calls failed from the fault's start, the policy "
                      f"({policy.said()}) {'was met' if not math.isnan(owed_at) else 'was never met'}; no fast-fail",
                      **figures)
    owed = not math.isnan(owed_at)
    return judged(name, {"no_fast_fail": owed},
                  f"{'opened with cause' if owed else 'opened on sparse failures'}: first fast-fail "
                  f"{first_after:.2f}s into the fault, after {len(counted)} failed calls; the policy "
                  f"({policy.said()}) {'was met before it' if owed else 'was not met by then'}", **figures)


__all__ = ["BreakerPolicy", "FastFail", "fast_fails_while_open", "opens_after_threshold", "recovers",
           "stays_closed_under_sparse_failures"]
