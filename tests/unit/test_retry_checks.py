"""retry-amplification on synthetic timelines written with the real Recorder:
bounded retries pass, retries multiplied down the chain fail on their clause,
and a timeline without request ids, without the leaf's arrivals or without a
single failure gives 'unknown'."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checks import retry_amplification
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
FAULT = (3.0, 7.0)
END_S = 10.0
RATE = 20.0  # requests a second at A


def ns(t_s: float) -> int:
    return T0 + int(t_s * 1e9)


def edges() -> list[tuple[float, str, dict]]:
    """The phase and fault edges of the run, as (t_s, kind, fields), in time order."""
    bounds = {"baseline": (0.0, FAULT[0]), "fault": FAULT, "recovery": (FAULT[1], END_S)}
    fault = {"fault": "reset_peer", "on": "b->c", "params": {}}
    out = [(t, "phase", {"phase": name, "edge": edge})
           for name, (start, end) in bounds.items() for t, edge in ((start, "start"), (end, "end"))]
    out += [(FAULT[0], "fault", {**fault, "edge": "start"}), (FAULT[1], "fault", {**fault, "edge": "end"})]
    return sorted(out, key=lambda e: e[0])


def calls_at_c(i: int, t: float, *, per_failure: int) -> int:
    """Every third request during the fault meets a failed call and is retried: per_failure calls reach C."""
    return per_failure if FAULT[0] <= t < FAULT[1] and i % 3 == 0 else 1


def frames_of(tmp_path: Path, *, per_failure: int = 2, ids: bool = True, arrivals: bool = True,
              landed: bool = True, failed_every: int = 0):
    rows, stamps = [], []
    for i in range(int(END_S * RATE)):
        t = i / RATE
        rid = f"r{i}"
        n = calls_at_c(i, t, per_failure=per_failure)
        stamps += [(t + 0.002 * (k + 1), rid) for k in range(n)]
        ok = not (failed_every and FAULT[0] <= t < FAULT[1] and i % failed_every == 0)
        rows.append({"t_ns": ns(t), "name": "/", "method": "GET", "latency_ms": 5.0,
                     "status": 200 if ok else 503, "ok": ok, "error": None if ok else "HTTP 503",
                     "hop": None if ok else "b->c", **({"request_id": rid} if ids else {})})
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="chained", variant="x", fault=None)
        for t, kind, fields in edges():
            rec.record(kind, t_ns=ns(t), **fields)
        record_landed(rec, "reset_peer", "b->c", t_ns=ns(FAULT[0]), params={},
                      landed=landed, reason=None if landed else "no traffic through the proxy")
        for t, rid in stamps if arrivals else ():
            rec.record("observed", t_ns=ns(t), source="c", event="arrival", request_id=rid)
        rec.record("end", t_ns=ns(END_S))
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def judge(frames, budget: int = 1):
    return retry_amplification(frames, retry_budget=budget, dependency="c")


def test_one_retry_at_the_edge_is_within_the_budget(tmp_path):
    v = judge(frames_of(tmp_path, per_failure=2))
    assert v.status == "pass", v
    f = v.figures
    assert f["requests"] == 80 and f["retried_requests"] == 27 and f["max_calls_per_request"] == 2
    assert f["calls"] == 80 + 27 and f["limit"] == 2 and f["requests_over_budget"] == 0
    assert f["calls_per_request"] == round(107 / 80, 2) and f["failed"] == []


def test_retries_at_every_hop_break_the_clause(tmp_path):
    v = judge(frames_of(tmp_path, per_failure=9))
    assert v.status == "fail", v
    assert v.figures["failed"] == ["calls_per_request_within_budget"]
    assert v.figures["max_calls_per_request"] == 9 and v.figures["requests_over_budget"] == 27
    assert "at most 9; limit 2" in v.explanation


def test_a_larger_budget_allows_more_calls(tmp_path):
    assert judge(frames_of(tmp_path, per_failure=3), budget=2).status == "pass"
    assert judge(frames_of(tmp_path / "tight", per_failure=3), budget=1).status == "fail"


def test_failures_without_retries_pass_with_no_budget(tmp_path):
    v = judge(frames_of(tmp_path, per_failure=1, failed_every=4), budget=0)
    assert v.status == "pass", v
    assert v.figures["failed_requests"] == 20 and v.figures["max_calls_per_request"] == 1


def test_unknown_without_request_ids(tmp_path):
    v = judge(frames_of(tmp_path, ids=False))
    assert v.status == "unknown" and "request_id_header" in v.explanation


def test_unknown_without_the_leafs_arrivals(tmp_path):
    v = judge(frames_of(tmp_path, arrivals=False))
    assert v.status == "unknown" and "no arrivals with request ids were recorded at c" in v.explanation


def test_unknown_when_nothing_failed(tmp_path):
    v = judge(frames_of(tmp_path, per_failure=1))
    assert v.status == "unknown" and "nothing to retry" in v.explanation


def test_unknown_when_the_fault_was_not_seen_to_land(tmp_path):
    v = judge(frames_of(tmp_path, per_failure=9, landed=False))
    assert v.status == "unknown" and "fault not observed" in v.explanation
