"""Messaging history checks on synthetic histories written with the real
Recorder: a clean history passes; lost, doubled and lagging ones fail."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checks.messaging import accepts_during_outage, duplicates_bounded, lag_recovers, no_message_lost
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
S = 10**9


def history(tmp_path: Path, *, lose: int = 0, double: int = 0, late_lag_until: float = 0.0,
            outage_status: int = 202, outage_ms: float = 20.0, record_processing: bool = True,
            drain_from: float | None = None):
    """100 orders over 10 s; fault 3-6 s; each processed 50 ms after it was
    accepted, or only at late_lag_until when accepted before that. With
    drain_from, the load stops there (recovery ends, the drain begins)."""
    rows = []
    phases = [("baseline", 0, 3), ("fault", 3, 6), ("recovery", 6, drain_from or 10)]
    phases += [("drain", drain_from, 10)] if drain_from else []
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="history", target="messaging", variant="x", fault=None)
        for phase, start, end in phases:
            rec.record("phase", t_ns=T0 + int(start * S), phase=phase, edge="start")
            rec.record("phase", t_ns=T0 + int(end * S), phase=phase, edge="end")
        rec.record("fault", t_ns=T0 + 3 * S, fault="crash", on="broker", params={}, edge="start")
        record_landed(rec, "crash", "broker", t_ns=T0 + 3 * S, params={})
        rec.record("fault", t_ns=T0 + 6 * S, fault="crash", on="broker", params={}, edge="end")
        for i in range(100):
            t = i * 0.1
            in_fault = 3 <= t < 6
            status = outage_status if in_fault else 202
            rows.append({"t_ns": T0 + int(t * S), "name": "POST /orders", "method": "POST",
                         "latency_ms": outage_ms if in_fault else 5.0, "status": status, "ok": status < 400,
                         "error": None, "hop": None, "reason": None, "id": f"m{i}" if status == 202 else None})
            if status != 202 or i < lose or not record_processing:
                continue
            done = max(t + 0.05, late_lag_until) if t < late_lag_until else t + 0.05
            for _ in range(2 if i >= 100 - double else 1):
                rec.record("observed", t_ns=T0 + int(done * S), source="consumer", event="processed",
                           id=f"m{i}", key="k", published_t_ns=T0 + int(t * S))
        rec.record("end", t_ns=T0 + 10 * S)
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def test_a_clean_history_passes_every_check(tmp_path):
    frames = history(tmp_path)
    assert no_message_lost(frames, consumer="consumer").status == "pass"
    assert duplicates_bounded(frames, consumer="consumer", max_duplicates=0).status == "pass"
    lag = lag_recovers(frames, consumer="consumer", lag_bound_ms=200, within_s=1.0)
    assert lag.status == "pass" and lag.figures["worst_lag_ms"] == 50.0
    assert accepts_during_outage(frames, accept_p99_ms=100).status == "pass"


def test_lost_messages_are_counted_and_named(tmp_path):
    v = no_message_lost(history(tmp_path, lose=3), consumer="consumer")
    assert v.status == "fail" and v.figures["lost"] == 3 and "m0" in v.explanation
    assert v.figures["failed"] == ["lost_within_limit"]


def test_double_processing_beyond_the_bound_fails(tmp_path):
    v = duplicates_bounded(history(tmp_path, double=2), consumer="consumer", max_duplicates=1)
    assert v.status == "fail" and v.figures["duplicates"] == 2 and v.figures["failed"] == ["duplicates_within_limit"]


def test_lag_that_stays_high_after_the_fault_fails(tmp_path):
    v = lag_recovers(history(tmp_path, late_lag_until=8.5), consumer="consumer", lag_bound_ms=200, within_s=1.0)
    assert v.status == "fail" and v.figures["recovered_after_s"] > 1.0
    assert v.figures["failed"] == ["lag_back_within_bound"]


def test_lag_back_only_once_the_load_stopped_fails_however_long_the_bound(tmp_path):
    """A consumer slower than the load catches up in the drain: within a 25 s bound, but it never kept up."""
    v = lag_recovers(history(tmp_path, late_lag_until=9.0, drain_from=8.0), consumer="consumer",
                     lag_bound_ms=200, within_s=25.0)
    assert v.status == "fail" and v.figures["failed"] == ["lag_back_within_bound"], v
    assert v.figures["deadline_s"] == 2.0 and v.figures["recovered_after_s"] > 2.0
    assert "only after the load stopped" in v.explanation


def test_lag_back_while_the_load_runs_passes_with_a_drain(tmp_path):
    v = lag_recovers(history(tmp_path, late_lag_until=7.0, drain_from=8.0), consumer="consumer",
                     lag_bound_ms=200, within_s=25.0)
    assert v.status == "pass" and v.figures["recovered_after_s"] <= 1.0 and v.figures["load_left_s"] == 2.0, v


def test_without_the_consumer_record_lag_is_unknown(tmp_path):
    v = lag_recovers(history(tmp_path, record_processing=False), consumer="consumer", lag_bound_ms=200, within_s=1.0)
    assert v.status == "unknown" and "no processed messages" in v.explanation


def test_rejecting_or_slow_accepting_during_the_outage_fails(tmp_path):
    refused = accepts_during_outage(history(tmp_path / "r", outage_status=503), accept_p99_ms=100)
    assert refused.status == "fail" and "accepted_during_outage" in refused.figures["failed"], refused
    slow = accepts_during_outage(history(tmp_path / "s", outage_ms=900.0), accept_p99_ms=100)
    assert slow.status == "fail" and slow.figures["failed"] == ["accept_p99_within_limit"], slow


def test_without_the_consumer_record_the_verdict_is_unknown(tmp_path):
    v = no_message_lost(history(tmp_path, record_processing=False), consumer="consumer")
    assert v.status == "unknown"
