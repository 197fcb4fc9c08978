"""Circuit breaker checks on synthetic timelines written with the real
Recorder: a good breaker passes, each way of breaking it fails (opening
late or early, calls leaking through while open, slow fast-fails, opening
on sparse failures), and a timeline without evidence gives 'unknown'."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from harness.checks.breaker_policy import BreakerPolicy, FastFail
from harness.checks.circuit_breaker import (
    fast_fails_while_open, opens_after_threshold, stays_closed_under_sparse_failures,
)
from harness.events import FaultDescription, FaultEffect
from harness.timeline import Recorder, load_frames

T0 = 1_700_000_000 * 10**9
FAULT = (3.0, 7.0)
FAST_FAIL = FastFail(status=(503,), p99_ms=50, reason="circuit open")


def count_policy(failure_threshold: int = 5, window_s: float = 3.0) -> BreakerPolicy:
    return BreakerPolicy(policy="count", failure_threshold=failure_threshold, sliding_window_s=window_s,
                         wait_duration_in_open_s=2.0, permitted_calls_in_half_open=1)


SPEC = dict(policy=count_policy(), fast_fail=FAST_FAIL, arrival_grace_ms=400, dependency="dep")
OPENS = dict(policy=count_policy(), fast_fail=FAST_FAIL)


@dataclass
class Breaker:
    """A simulated client view: requests every 50 ms; during the fault every
    call times out after 300 ms, and the breaker opens when the
    `opens_after`-th failure is answered: the calls started before then fail
    too (they were in flight), later answers fail fast (`ff_ms`). `leak`
    makes every fast-fail also reach the dependency."""

    opens_after: int | None = 5
    ff_ms: float = 2.0
    leak: bool = False
    probe_arrivals: bool = True

    def rows_and_arrivals(self) -> tuple[list[dict], list[float]]:
        rows, arrivals = [], []
        opens_at = math.inf if self.opens_after is None else FAULT[0] + (self.opens_after - 1) * 0.05 + 0.3
        for i in range(240):
            t = i * 0.05
            if FAULT[0] <= t < FAULT[1] and t < opens_at - 1e-9:
                rows.append(row(t, 300.0, 504, "timeout"))
                arrivals.append(t + 0.001)
            elif FAULT[0] <= t < FAULT[1]:
                rows.append(row(t, self.ff_ms, 503, "circuit open"))
                if self.leak:
                    arrivals.append(t + 0.001)
            else:
                rows.append(row(t, 5.0, 200, None))
                arrivals.append(t + 0.001)
        return rows, arrivals


def row(t: float, latency: float, status: int, reason: str | None) -> dict:
    ok = status == 200
    return {"t_ns": T0 + int(t * 1e9), "name": "/", "method": "GET", "latency_ms": latency, "status": status,
            "ok": ok, "error": None if ok else f"HTTP {status}", "hop": None if ok else "front->dep", "reason": reason}


def frames_of(tmp_path: Path, breaker: Breaker, *, connections: tuple[float, ...] = (), canaries: int = 0,
              via: str | None = None):
    """The timeline of `breaker`'s client view; `connections`: when the harness saw front open a connection
    through front->dep's proxy; `canaries`: how many of its own it sent through it in the fault window."""
    rows, arrivals = breaker.rows_and_arrivals()
    return timeline_of(tmp_path, rows, arrivals if breaker.probe_arrivals else [], connections, canaries, via)


def timeline_of(tmp_path: Path, rows: list[dict], arrivals: list[float], connections: tuple[float, ...] = (),
                canaries: int = 0, via: str | None = None):
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="circuit_breaker", variant="x", fault=None)
        for phase, start, end in (("baseline", 0.0, FAULT[0]), ("fault", *FAULT), ("recovery", FAULT[1], 12.0)):
            rec.record("phase", t_ns=T0 + int(start * 1e9), phase=phase, edge="start")
            rec.record("phase", t_ns=T0 + int(end * 1e9), phase=phase, edge="end")
        rec.record("fault", t_ns=T0 + int(FAULT[0] * 1e9), fault="timeout", on="front->dep", params={}, edge="start")
        rec.write(FaultEffect(FaultDescription("timeout", "front->dep", {}), True, None, ("seen by hand",),
                              {"canaries": canaries}, t_ns=T0 + int(FAULT[0] * 1e9)))
        rec.record("fault", t_ns=T0 + int(FAULT[1] * 1e9), fault="timeout", on="front->dep", params={}, edge="end")
        for t in arrivals:
            rec.record("observed", t_ns=T0 + int(t * 1e9), source="dep", event="arrival",
                       **({"via": via} if via else {}))
        for k, t in enumerate(connections):
            rec.record("observed", t_ns=T0 + int(t * 1e9), source="front->dep", event="connection",
                       client=f"127.0.0.1:{40000 + k}")
        rec.record("end", t_ns=T0 + 12 * 10**9)
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def test_a_good_breaker_passes_both(tmp_path):
    frames = frames_of(tmp_path, Breaker())
    opened = opens_after_threshold(frames, **OPENS)
    assert opened.status == "pass", opened
    assert opened.figures["failures_before_open"] == 10 and opened.figures["calls_after_threshold"] == 0
    assert opened.figures["threshold_reached_after_s"] == 0.5  # the 5th failure, answered 2 ms before the first fast-fail
    assert opened.figures["clauses"] == ["opened", "threshold_failures_before_open", "no_late_calls"]
    open_ = fast_fails_while_open(frames, **SPEC)
    assert open_.status == "pass", open_
    assert open_.figures["arrivals_while_open"] == 0
    assert open_.figures["clauses"] == ["failed_fast", "fast_fail_p99_within_limit", "no_calls_beyond_probes"]


def test_opening_late_fails(tmp_path):
    v = opens_after_threshold(frames_of(tmp_path, Breaker(opens_after=20)), **OPENS)
    assert v.status == "fail" and v.figures["calls_after_threshold"] > 0, v
    assert v.figures["failed"] == ["no_late_calls"]


def test_opening_on_the_first_failure_fails_the_lower_bound(tmp_path):
    """opens-early: the first failure is answered at 3.3 s and the next answer
    fails fast; only the call answered 50 ms later is within the slack."""
    v = opens_after_threshold(frames_of(tmp_path, Breaker(opens_after=1)), **OPENS)
    assert v.status == "fail" and v.figures["failed"] == ["threshold_failures_before_open"], v
    assert v.figures["failures_before_open"] == 6 and v.figures["threshold"] == 5
    assert "was not met by then" in v.explanation


def test_failures_older_than_the_window_do_not_count_toward_opening(tmp_path):
    """The same 5 failures, judged against a window too short to hold them all."""
    v = opens_after_threshold(frames_of(tmp_path, Breaker()), policy=count_policy(window_s=0.05), fast_fail=FAST_FAIL)
    assert v.status == "fail" and v.figures["failed"] == ["threshold_failures_before_open"], v


def test_in_flight_counts_the_failed_calls_under_way_when_the_threshold_was_reached(tmp_path):
    """A call every 50 ms taking 300 ms: 6 at a time. When the 5th failure is
    answered (3.5 s), the 5 started 3.25-3.45 s are in flight, not 25 - 5."""
    v = opens_after_threshold(frames_of(tmp_path, Breaker(opens_after=20)), **OPENS)
    assert v.figures["in_flight"] == 5 and v.figures["failures_before_open"] == 25, v
    assert "5 more calls were in flight then" in v.explanation


def test_never_opening_fails_both(tmp_path):
    frames = frames_of(tmp_path, Breaker(opens_after=None))
    opened = opens_after_threshold(frames, **OPENS)
    assert opened.status == "fail" and opened.figures["failed"] == ["opened", "no_late_calls"], opened
    fast = fast_fails_while_open(frames, **SPEC)
    assert fast.status == "fail" and fast.figures["failed"] == ["failed_fast"], fast


def test_slow_fast_fails_or_calls_leaking_through_fail(tmp_path):
    slow = fast_fails_while_open(frames_of(tmp_path / "slow", Breaker(ff_ms=120.0)), **SPEC)
    assert slow.status == "fail" and slow.figures["p99_ms"] == 120.0
    assert slow.figures["failed"] == ["fast_fail_p99_within_limit"]
    leak = fast_fails_while_open(frames_of(tmp_path / "leak", Breaker(leak=True)), **SPEC)
    assert leak.status == "fail" and leak.figures["arrivals_while_open"] > leak.figures["arrivals_allowed"]
    assert leak.figures["failed"] == ["no_calls_beyond_probes"]


def test_without_arrivals_the_open_check_is_unknown(tmp_path):
    v = fast_fails_while_open(frames_of(tmp_path, Breaker(probe_arrivals=False)), **SPEC)
    assert v.status == "unknown" and "arrivals_probe" in v.explanation


def test_backlog_stamped_at_a_resume_is_not_a_call_while_open(tmp_path):
    frames = frames_of(tmp_path, Breaker())
    resumed_at = 6.9
    backlog = frames.observed.iloc[:0].copy()
    for k in range(10):  # ten queued calls read the moment dep resumes
        backlog.loc[k] = {"t_s": resumed_at + 0.001 * k, "source": "dep", "event": "arrival"}
    from dataclasses import replace

    import pandas as pd

    life = pd.DataFrame([{"t_s": resumed_at, "service": "dep", "instance": 0, "action": "resume", "detail": "SIGCONT"}])
    with_backlog = replace(frames, observed=pd.concat([frames.observed, backlog], ignore_index=True))
    assert fast_fails_while_open(with_backlog, **SPEC).status == "fail"  # without the resume: calls while open
    v = fast_fails_while_open(replace(with_backlog, lifecycle=life), **SPEC)
    assert v.status == "pass" and v.figures["arrivals_while_open"] == 0, v


def test_a_killed_or_paused_dependency_without_proxy_evidence_is_unknown_not_a_pass(tmp_path):
    """A dead or frozen dep records no arrivals while open, so its own record alone
    would pass a flood; without the connections through its proxy it is unknown."""
    from dataclasses import replace

    import pandas as pd

    frames = frames_of(tmp_path, Breaker(leak=True))
    for action in ("kill", "pause"):
        life = pd.DataFrame([{"t_s": FAULT[0] + 0.01, "service": "dep", "instance": 0, "action": action, "detail": ""}])
        v = fast_fails_while_open(replace(frames, lifecycle=life), **SPEC)
        assert v.status == "unknown" and "its own record cannot show calls made while open" in v.explanation, v


def test_calls_seen_on_the_wire_are_evidence_also_while_the_dependency_is_dead_or_frozen(tmp_path):
    """The harness's own record of the calls on the link is stamped when they were
    sent, so a killed or paused dep silences nothing: a flood is a fail, no calls a pass."""
    from dataclasses import replace

    import pandas as pd

    for action in ("kill", "pause"):
        life = pd.DataFrame([{"t_s": FAULT[0] + 0.01, "service": "dep", "instance": 0, "action": action, "detail": ""}])
        good = frames_of(tmp_path / action / "good", Breaker(), via="wire")
        v = fast_fails_while_open(replace(good, lifecycle=life), **SPEC)
        assert v.status == "pass" and v.figures["arrivals_while_open"] == 0, v
        flood = frames_of(tmp_path / action / "flood", Breaker(leak=True), via="wire")
        v = fast_fails_while_open(replace(flood, lifecycle=life), **SPEC)
        assert v.status == "fail" and v.figures["failed"] == ["no_calls_beyond_probes"], v


PROXIED = {**SPEC, "link": "front->dep"}  # open 3.5-6.95 s: 1 probe per 2 s, 2 allowed; grace 0.4 s


def test_the_harness_counts_calls_through_the_proxy_that_a_dead_dependency_cannot_record(tmp_path):
    """A crashed or paused dep records no arrivals while open; the connections
    front opened through its proxy are the harness's own evidence."""
    probe = fast_fails_while_open(frames_of(tmp_path / "probe", Breaker(), connections=(0.1, 3.3, 5.5)), **PROXIED)
    assert probe.status == "pass", probe
    assert (probe.figures["connections_while_open"], probe.figures["arrivals_while_open"]) == (1, 0)
    flood = fast_fails_while_open(frames_of(tmp_path / "flood", Breaker(),
                                            connections=tuple(5.5 + 0.01 * k for k in range(10))), **PROXIED)
    assert flood.status == "fail" and flood.figures["failed"] == ["no_calls_beyond_probes"], flood
    assert (flood.figures["calls_while_open"], flood.figures["arrivals_while_open"]) == (10, 0)
    assert "10 connections through front->dep's proxy" in flood.explanation


def test_the_harness_leaves_its_own_canaries_out_of_the_calls_through_the_proxy(tmp_path):
    v = fast_fails_while_open(frames_of(tmp_path, Breaker(), connections=(4.0, 4.1, 4.2, 5.5), canaries=3),
                              **PROXIED)
    assert v.status == "pass" and v.figures["connections_while_open"] == 1, v


def test_connections_alone_are_evidence_enough(tmp_path):
    v = fast_fails_while_open(frames_of(tmp_path, Breaker(probe_arrivals=False), connections=(0.1,)), **PROXIED)
    assert v.status == "pass" and v.figures["connections_while_open"] == 0, v


def sparse(*, failures_at: list[float], opens_at: float | None = None) -> list[dict]:
    """A call every 50 ms; the ones started at `failures_at` fail at once (a cut answer), the rest succeed;
    from `opens_at` on every answer is a fast-fail."""
    rows = []
    for i in range(240):
        t = round(i * 0.05, 3)
        if opens_at is not None and opens_at <= t < FAULT[1]:
            rows.append(row(t, 2.0, 503, "circuit open"))
        elif any(abs(t - f) < 1e-6 for f in failures_at):
            rows.append(row(t, 3.0, 502, "unavailable"))
        else:
            rows.append(row(t, 3.0, 200, None))
    return rows


SPARSE = dict(policy=count_policy(window_s=1.0), fast_fail=FAST_FAIL)
EVERY_600_MS = [3.0, 3.6, 4.2, 4.8, 5.4, 6.0, 6.6]  # at most 2 within any 1 s


def test_sparse_failures_leave_a_windowed_breaker_closed(tmp_path):
    v = stays_closed_under_sparse_failures(timeline_of(tmp_path, sparse(failures_at=EVERY_600_MS), []), **SPARSE)
    assert v.status == "pass", v
    assert (v.figures["failures"], v.figures["policy_met_after_s"], v.figures["fast_fails"]) == (7, None, 0)


def test_a_breaker_that_never_forgets_opens_on_sparse_failures(tmp_path):
    """no-window: the 5th failure since start (5.4 s) opens it."""
    rows = sparse(failures_at=EVERY_600_MS, opens_at=5.45)
    v = stays_closed_under_sparse_failures(timeline_of(tmp_path, rows, []), **SPARSE)
    assert v.status == "fail" and v.figures["failed"] == ["no_fast_fail"], v
    assert (v.figures["failures"], v.figures["policy_met_after_s"]) == (5, None)
    assert v.figures["first_fast_fail_after_s"] == 2.45 and "opened on sparse failures" in v.explanation


def test_opening_after_the_threshold_within_a_window_is_owed(tmp_path):
    dense = [3.0, 3.6, 3.8, 4.0, 4.2, 4.4]
    v = stays_closed_under_sparse_failures(timeline_of(tmp_path, sparse(failures_at=dense, opens_at=4.45), []),
                                           **SPARSE)
    assert v.status == "pass" and v.figures["policy_met_after_s"] == 1.4, v  # the 5th within 1 s, answered 4.403 s
    assert "opened with cause" in v.explanation


def test_too_few_failures_cannot_tell_a_window_from_a_count_since_start(tmp_path):
    v = stays_closed_under_sparse_failures(timeline_of(tmp_path, sparse(failures_at=[3.0, 4.5, 6.0]), []), **SPARSE)
    assert v.status == "unknown" and "too few" in v.explanation, v


def test_one_half_open_letting_more_than_its_probes_through_fails_within_the_total(tmp_path):
    """2 calls in all are within the 2 allowed over 3.45 s open, but both came in one half-open that permits 1."""
    v = fast_fails_while_open(frames_of(tmp_path, Breaker(), connections=(5.5, 5.51)), **PROXIED)
    assert v.status == "fail" and v.figures["failed"] == ["no_calls_beyond_probes"], v
    assert (v.figures["calls_while_open"], v.figures["arrivals_allowed"], v.figures["calls_in_one_half_open"]) == (2, 2, 2)
