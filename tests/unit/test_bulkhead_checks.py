"""Bulkhead checks on synthetic timelines written with the real Recorder."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checks.bulkhead import critical_isolated, overflow_rejected_fast
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
S = 10**9
CRITICAL = dict(request_name="GET /checkout", min_success_pct=99.5, p99_factor=3.0, p99_floor_ms=50)
OVERFLOW = dict(request_name="GET /report", reject_status=503, reject_bound_ms=200, queue_bound_ms=1000,
                reject_reason="pool exhausted")


def timeline(tmp_path: Path, *, checkout_in_fault=(5.0, 200), report_in_fault=(120.0, 503)):
    rows = []
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="bulkhead", target="bulkhead", variant="x", fault=None)
        for phase, start, end in (("baseline", 0, 3), ("fault", 3, 6), ("recovery", 6, 9)):
            rec.record("phase", t_ns=T0 + start * S, phase=phase, edge="start")
            rec.record("phase", t_ns=T0 + end * S, phase=phase, edge="end")
        rec.record("fault", t_ns=T0 + 3 * S, fault="latency", on="app->db:reports", params={}, edge="start")
        record_landed(rec, "latency", "app->db:reports", t_ns=T0 + 3 * S, params={})
        rec.record("fault", t_ns=T0 + 6 * S, fault="latency", on="app->db:reports", params={}, edge="end")
        rec.record("end", t_ns=T0 + 9 * S)
    for i in range(180):
        t = i * 0.05
        in_fault = 3 <= t < 6
        for name, (latency, status) in (("GET /checkout", checkout_in_fault), ("GET /report", report_in_fault)):
            if not in_fault:
                latency, status = 5.0, 200
            rows.append({"t_ns": T0 + int(t * S), "name": name, "method": "GET", "latency_ms": latency,
                         "status": status, "ok": status < 400, "error": None if status < 400 else f"HTTP {status}",
                         "hop": None, "reason": "pool exhausted" if status == 503 else None})
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def test_isolated_pools_pass_both(tmp_path):
    frames = timeline(tmp_path)
    assert critical_isolated(frames, **CRITICAL).status == "pass"
    v = overflow_rejected_fast(frames, **OVERFLOW)
    assert v.status == "pass" and v.figures["reject_p99_ms"] == 120.0


def test_starved_or_slowed_critical_work_fails(tmp_path):
    starved = critical_isolated(timeline(tmp_path / "a", checkout_in_fault=(120.0, 503)), **CRITICAL)
    assert starved.status == "fail" and starved.figures["success_pct"] == 0.0
    assert "critical_success_held" in starved.figures["failed"]
    slowed = critical_isolated(timeline(tmp_path / "b", checkout_in_fault=(400.0, 200)), **CRITICAL)
    assert slowed.status == "fail" and slowed.figures["p99_ms"] == 400.0
    assert slowed.figures["failed"] == ["critical_p99_within_limit"]


def test_slow_rejections_or_queueing_fail(tmp_path):
    slow = overflow_rejected_fast(timeline(tmp_path / "a", report_in_fault=(600.0, 503)), **OVERFLOW)
    assert slow.status == "fail" and "rejects_p99_within_limit" in slow.figures["failed"], slow
    queued = overflow_rejected_fast(timeline(tmp_path / "b", report_in_fault=(2500.0, 200)), **OVERFLOW)
    assert queued.status == "fail" and "queued instead" in queued.explanation
    assert queued.figures["failed"] == ["no_request_queued"]


def test_an_unsaturated_pool_is_unknown(tmp_path):
    v = overflow_rejected_fast(timeline(tmp_path, report_in_fault=(30.0, 200)), **OVERFLOW)
    assert v.status == "unknown"
