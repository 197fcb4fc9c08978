"""Circuit breaker checks on synthetic timelines written with the real
Recorder: a good breaker passes, each way of breaking it fails, and a
timeline without the dependency's arrivals gives 'unknown'."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.checks.circuit_breaker import fast_fails_while_open, opens_after_threshold
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
FAULT = (3.0, 7.0)
SPEC = dict(fast_fail_status=503, fast_fail_p99_ms=50, open_s=2.0, half_open_probes=1,
            arrival_grace_ms=400, dependency="dep")


@dataclass
class Breaker:
    """A simulated client view: requests every 50 ms; during the fault the
    first `opens_after` calls time out after 300 ms, then answers fail fast
    (`ff_ms`); `leak` makes every fast-fail also reach the dependency."""

    opens_after: int | None = 5
    ff_ms: float = 2.0
    leak: bool = False
    probe_arrivals: bool = True

    def rows_and_arrivals(self) -> tuple[list[dict], list[float]]:
        rows, arrivals, failed = [], [], 0
        for i in range(240):
            t = i * 0.05
            if FAULT[0] <= t < FAULT[1] and (self.opens_after is None or failed < self.opens_after):
                failed += 1
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


def frames_of(tmp_path: Path, breaker: Breaker):
    rows, arrivals = breaker.rows_and_arrivals()
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="circuit_breaker", variant="x", fault=None)
        for phase, start, end in (("baseline", 0.0, FAULT[0]), ("fault", *FAULT), ("recovery", FAULT[1], 12.0)):
            rec.record("phase", t_ns=T0 + int(start * 1e9), phase=phase, edge="start")
            rec.record("phase", t_ns=T0 + int(end * 1e9), phase=phase, edge="end")
        rec.record("fault", t_ns=T0 + int(FAULT[0] * 1e9), fault="timeout", on="front->dep", params={}, edge="start")
        record_landed(rec, "timeout", "front->dep", t_ns=T0 + int(FAULT[0] * 1e9), params={})
        rec.record("fault", t_ns=T0 + int(FAULT[1] * 1e9), fault="timeout", on="front->dep", params={}, edge="end")
        if breaker.probe_arrivals:
            for t in arrivals:
                rec.record("observed", t_ns=T0 + int(t * 1e9), source="dep", event="arrival")
        rec.record("end", t_ns=T0 + 12 * 10**9)
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def test_a_good_breaker_passes_both(tmp_path):
    frames = frames_of(tmp_path, Breaker())
    opened = opens_after_threshold(frames, failure_threshold=5, fast_fail_status=503)
    assert opened.status == "pass", opened
    assert opened.figures["failures_before_open"] == 5 and opened.figures["calls_after_threshold"] == 0
    open_ = fast_fails_while_open(frames, **SPEC)
    assert open_.status == "pass", open_
    assert open_.figures["arrivals_while_open"] == 0
    assert open_.figures["clauses"] == ["failed_fast", "fast_fail_p99_within_limit", "no_calls_beyond_probes"]


def test_opening_late_fails(tmp_path):
    v = opens_after_threshold(frames_of(tmp_path, Breaker(opens_after=20)), failure_threshold=5, fast_fail_status=503)
    assert v.status == "fail" and v.figures["calls_after_threshold"] > 0, v
    assert v.figures["failed"] == ["no_late_calls"]


def test_in_flight_counts_the_failed_calls_under_way_when_the_threshold_was_reached(tmp_path):
    """A call every 50 ms taking 300 ms: 6 at a time. When the 5th failure is
    answered (3.5 s), the 5 started 3.25-3.45 s are in flight, not 20 - 5."""
    v = opens_after_threshold(frames_of(tmp_path, Breaker(opens_after=20)), failure_threshold=5, fast_fail_status=503)
    assert v.figures["in_flight"] == 5 and v.figures["failures_before_open"] == 20, v
    assert "5 more were in flight" in v.explanation


def test_never_opening_fails_both(tmp_path):
    frames = frames_of(tmp_path, Breaker(opens_after=None))
    opened = opens_after_threshold(frames, failure_threshold=5, fast_fail_status=503)
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
