"""Chain checks on synthetic timelines: each must pass on good data and
fail on bad data, and say 'unknown' when the timeline lacks what it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from harness.checks.chained import answers_within_budget, latency_passes_through, recovers
from harness.checks.verdict import check, verdict
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
PHASES = [("baseline", 0.0, 3.0), ("fault", 3.0, 7.0), ("recovery", 7.0, 12.0)]

# t_s -> (latency_ms, status, hop)
Shape = Callable[[float], tuple[float, int, str | None]]


def make(tmp_path: Path, shape: Shape, *, rate: float = 20.0, with_fault: bool = True) -> Path:
    folder = tmp_path / "exp"
    with Recorder(folder) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="chained", variant="correct", fault=None, topology={}, spec={})
        for phase, start, end in PHASES:
            rec.record("phase", t_ns=T0 + int(start * 1e9), phase=phase, edge="start")
            if phase == "fault" and with_fault:
                rec.record("fault", t_ns=T0 + int(start * 1e9), fault="pause", on="c", params={}, edge="start")
                record_landed(rec, "pause", "c", t_ns=T0 + int(start * 1e9), params={})
                rec.record("fault", t_ns=T0 + int(end * 1e9), fault="pause", on="c", params={}, edge="end")
            rec.record("phase", t_ns=T0 + int(end * 1e9), phase=phase, edge="end")
        rec.record("end", t_ns=T0 + 12 * 10**9)
    with (folder / "requests.jsonl").open("w") as f:
        n = int(12 * rate)
        for i in range(n):
            t = i / rate
            latency, status, hop = shape(t)
            ok = 0 < status < 400
            f.write(json.dumps({"t_ns": T0 + int(t * 1e9), "name": "/", "method": "GET", "latency_ms": latency,
                                "status": status, "ok": ok, "error": None if ok else "x", "hop": hop}) + "\n")
    return folder


def in_fault(t: float) -> bool:
    return 3.0 <= t < 7.0


def test_latency_passes_through_when_median_rises_by_the_latency(tmp_path):
    frames = load_frames(make(tmp_path, lambda t: (205.0 if in_fault(t) else 5.0, 200, None)))
    v = latency_passes_through(frames, latency_ms=200)
    assert v.status == "pass", v
    assert v.figures["added_ms"] == 200.0


def test_latency_fails_when_requests_fail_or_latency_amplifies(tmp_path):
    failing = load_frames(make(tmp_path / "1", lambda t: (100.0, 504, "b->c") if in_fault(t) else (5.0, 200, None)))
    v = latency_passes_through(failing, latency_ms=200)
    assert v.status == "fail" and v.figures["failed"] == ["success_held"], v
    doubled = load_frames(make(tmp_path / "2", lambda t: (405.0 if in_fault(t) else 5.0, 200, None)))
    v = latency_passes_through(doubled, latency_ms=200)
    assert v.status == "fail" and v.figures["added_ms"] == 400.0
    assert v.figures["failed"] == ["latency_added_as_injected"]


def test_budget_passes_on_fast_errors_that_name_the_hop(tmp_path):
    frames = load_frames(make(tmp_path, lambda t: (720.0, 504, "b->c") if in_fault(t) else (5.0, 200, None)))
    v = answers_within_budget(frames, budget_ms=800, margin_ms=150, hop="b->c", hang_ms=5000)
    assert v.status == "pass", v
    assert v.figures["errors_naming_hop"] == v.figures["failed_requests"]


def test_budget_fails_on_slow_answers_wrong_hop_or_hangs(tmp_path):
    slow = load_frames(make(tmp_path / "1", lambda t: (3000.0, 200, None) if in_fault(t) else (5.0, 200, None)))
    v = answers_within_budget(slow, budget_ms=800, margin_ms=150, hop="b->c", hang_ms=5000)
    assert v.status == "fail" and v.figures["failed"] == ["p99_within_budget"], v
    wrong = load_frames(make(tmp_path / "2", lambda t: (50.0, 503, "a->b") if in_fault(t) else (5.0, 200, None)))
    v = answers_within_budget(wrong, budget_ms=800, margin_ms=150, hop="b->c", hang_ms=5000)
    assert v.status == "fail" and v.figures["failed"] == ["errors_name_hop"], v
    hung = load_frames(make(tmp_path / "3", lambda t: (10000.0, 0, None) if t == 4.0 else (5.0, 200, None)))
    v = answers_within_budget(hung, budget_ms=20000, margin_ms=0, hop="b->c", hang_ms=5000)
    assert v.status == "fail" and v.figures["hung"] == 1 and v.figures["failed"] == ["no_request_hung"]
    assert v.figures["clauses"] == ["p99_within_budget", "no_request_hung", "errors_name_hop"]


def test_budget_judges_requests_caught_in_flight_when_the_fault_began(tmp_path):
    # users in step: every request of the last batch before the pause hangs through it, and
    # only 3 start inside the window; the hung ones are the evidence, not a reason for unknown
    def shape(t: float) -> tuple[float, int, str | None]:
        return (4000.0, 200, None) if 2.8 <= t < 3.0 else (5.0, 200, None)

    folder = make(tmp_path, shape, rate=20.0)
    rows = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    kept = [r for r in rows if not (3.0 <= (r["t_ns"] - T0) / 1e9 < 7.0)] + rows[61:64]
    (folder / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    v = answers_within_budget(load_frames(folder), budget_ms=800, margin_ms=150, hop="b->c", hang_ms=5000)
    assert v.status == "fail" and v.figures["failed"] == ["p99_within_budget"], v
    assert v.figures["requests"] == 3 + 4  # 3 started in the window, 4 caught in flight


def test_recovers_measures_time_to_success(tmp_path):
    frames = load_frames(make(tmp_path, lambda t: (5.0, 503, "b->c") if 3.0 <= t < 7.5 else (5.0, 200, None)))
    v = recovers(frames, bound_s=2.0)
    assert v.status == "pass", v
    assert 0.4 <= v.figures["recovery_s"] <= 0.5


def test_recovers_fails_when_failures_never_stop(tmp_path):
    frames = load_frames(make(tmp_path, lambda t: (5.0, 503, "b->c") if t >= 3.0 else (5.0, 200, None)))
    v = recovers(frames, bound_s=2.0)
    assert v.status == "fail" and v.figures["recovery_s"] is None
    assert v.figures["failed"] == ["success_back_within_bound"]


def test_recovers_fails_when_slower_than_the_bound(tmp_path):
    frames = load_frames(make(tmp_path, lambda t: (5.0, 503, "b->c") if 3.0 <= t < 10.0 else (5.0, 200, None)))
    assert recovers(frames, bound_s=2.0).status == "fail"


def test_missing_fault_window_is_unknown(tmp_path):
    frames = load_frames(make(tmp_path, lambda t: (5.0, 200, None), with_fault=False))
    for v in (latency_passes_through(frames, latency_ms=100),
              answers_within_budget(frames, budget_ms=1, margin_ms=1, hop="x", hang_ms=1),
              recovers(frames, bound_s=1)):
        assert v.status == "unknown" and "fault window" in v.explanation


def test_a_crashing_check_says_unknown_not_pass():
    @check("explodes")
    def explodes(frames):
        raise KeyError("latency_ms")

    v = explodes(None)
    assert v.status == "unknown" and "crashed" in v.explanation and not v.passed
    assert verdict("x", True, "fine").passed
