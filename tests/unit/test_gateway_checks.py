"""Gateway checks on synthetic timelines written with the real Recorder: a
good gateway passes each, each way of breaking one fails it, and missing
evidence (no request ids, no arrivals) gives 'unknown'."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.checks.gateway import listed, partial_within_budget, recovers_complete, rejects_bad_tokens, \
    serves_stale
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0 = 1_700_000_000 * 10**9
FAULT = (3.0, 8.0)
END_S = 14.0
ROUTE = "/api/profile"
BUDGET = dict(route=ROUTE, optional="recommendations", budget_ms=400, margin_ms=250, min_partial_ratio=0.95,
              min_success=0.95)
STALE = dict(route=ROUTE, backend="users", ttl_s=2.0, min_hit_ratio=0.95, grace_s=0.3)


@dataclass
class Gateway:
    """A simulated client view of /api/profile every 50 ms, bad tokens every 100 ms.

    fault: "slow" (the optional backend is slow) or "down" (users is down).
    parallel: under "slow", answers in 310 ms, partial; else 1600 ms, whole.
    cache: under "down", users' data is served (fresh for the TTL, then
    stale); else 502. mark_stale: stale answers say so. leak: bad tokens on
    /api/orders get 200 and reach orders. whole_after: answers are whole
    again after the fault. ids: rows and arrivals carry request ids.
    """

    fault: str = "slow"
    parallel: bool = True
    cache: bool = True
    mark_stale: bool = True
    leak: bool = False
    whole_after: bool = True
    ids: bool = True

    def profile(self, t: float) -> tuple[float, int, list[str], list[str]]:
        """latency ms, status, missing, stale."""
        if not FAULT[0] <= t < FAULT[1]:
            whole = self.whole_after or t < FAULT[1]
            return 25.0, 200, [], [] if whole else ["users"]
        if self.fault == "slow":
            return (310.0, 200, ["recommendations"], []) if self.parallel else (1600.0, 200, [], [])
        if not self.cache:
            return 5.0, 502, ["users"], []
        expired = t >= FAULT[0] + STALE["ttl_s"]
        return 10.0, 200, [], ["users"] if expired and self.mark_stale else []

    def events(self) -> tuple[list[dict], list[dict]]:
        rows, arrivals = [], []
        for i in range(int(END_S / 0.05)):
            t = i * 0.05
            latency, status, missing, stale = self.profile(t)
            rid = f"g{i}"
            rows.append(row(t, ROUTE, latency, status, rid if self.ids else None,
                            partial=bool(missing) if status == 200 else None, missing=missing, stale=stale))
            if status == 200:
                arrivals.append({"t": t + 0.002, "source": "users", "request_id": rid if self.ids else None})
            if i % 2:
                route = "/api/orders" if i % 4 == 1 else ROUTE
                leaked = self.leak and route == "/api/orders"
                bad_id = f"b{i}"
                rows.append(row(t, f"bad-token expired {route}", 2.0, 200 if leaked else 401,
                                bad_id if self.ids else None))
                if leaked:
                    arrivals.append({"t": t + 0.002, "source": "orders", "request_id": bad_id})
        return rows, arrivals


def row(t: float, name: str, latency: float, status: int, rid: str | None, **body: object) -> dict:
    ok = status == 200
    return {"t_ns": T0 + int(t * 1e9), "name": name, "method": "GET", "latency_ms": latency, "status": status,
            "ok": ok, "error": None if ok else f"HTTP {status}", "hop": None, "reason": None, "request_id": rid,
            **{k: json.dumps(v) if isinstance(v, list) else v for k, v in body.items()}}


def frames_of(tmp_path: Path, gateway: Gateway, *, arrivals: bool = True):
    rows, seen = gateway.events()
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="gateway", variant="x", fault=None)
        for phase, start, end in (("baseline", 0.0, FAULT[0]), ("fault", *FAULT), ("recovery", FAULT[1], END_S)):
            rec.record("phase", t_ns=T0 + int(start * 1e9), phase=phase, edge="start")
            rec.record("phase", t_ns=T0 + int(end * 1e9), phase=phase, edge="end")
        for edge, t in (("start", FAULT[0]), ("end", FAULT[1])):
            rec.record("fault", t_ns=T0 + int(t * 1e9), fault="crash", on="users", params={}, edge=edge)
            if edge == "start":
                record_landed(rec, "crash", "users", t_ns=T0 + int(t * 1e9), params={})
        for a in seen if arrivals else []:
            rec.record("observed", t_ns=T0 + int(a["t"] * 1e9), source=a["source"], event="arrival",
                       request_id=a["request_id"], trusted=True)
        rec.record("end", t_ns=T0 + int(END_S * 1e9))
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def test_lists_are_read_from_rows_as_the_load_keeps_them():
    assert listed('["users", "orders"]') == ["users", "orders"]
    assert listed(["users"]) == ["users"] and listed(None) == [] and listed("[broken") == [] and listed(3) == []


def test_a_good_gateway_passes_auth_budget_and_recovery(tmp_path):
    frames = frames_of(tmp_path, Gateway())
    auth = rejects_bad_tokens(frames, backends=("users", "orders"))
    assert auth.status == "pass" and auth.figures["reached_backends"] == 0, auth
    budget = partial_within_budget(frames, **BUDGET)
    assert budget.status == "pass" and budget.figures["partial_pct"] == 100.0, budget
    assert budget.figures["p99_ms"] == 310.0 and budget.figures["baseline_p99_ms"] == 25.0
    back = recovers_complete(frames, route=ROUTE, bound_s=2.0)
    assert back.status == "pass" and back.figures["recovery_s"] == 0.0, back


def test_bad_tokens_that_reach_a_backend_fail_auth(tmp_path):
    v = rejects_bad_tokens(frames_of(tmp_path, Gateway(leak=True)), backends=("users", "orders"))
    assert v.status == "fail" and v.figures["reached_backends"] > 0 and v.figures["not_refused"] > 0, v
    assert v.figures["leaked_kinds"] == "expired" and "orders" in v.explanation
    assert v.figures["failed"] == ["bad_tokens_refused", "none_reached_backend"]


def test_auth_without_request_ids_or_arrivals_is_unknown(tmp_path):
    no_ids = rejects_bad_tokens(frames_of(tmp_path / "ids", Gateway(ids=False)), backends=("users",))
    assert no_ids.status == "unknown" and "request id" in no_ids.explanation
    blind = rejects_bad_tokens(frames_of(tmp_path / "arr", Gateway(), arrivals=False), backends=("users",))
    assert blind.status == "unknown" and "arrivals" in blind.explanation


def test_waiting_out_the_slow_backend_fails_the_budget(tmp_path):
    v = partial_within_budget(frames_of(tmp_path, Gateway(parallel=False)), **BUDGET)
    assert v.status == "fail" and v.figures["p99_ms"] == 1600.0 and v.figures["partial_pct"] == 0.0, v
    assert {"p99_within_budget", "answers_marked_partial"} <= set(v.figures["failed"])


def test_stale_is_served_and_marked_by_a_caching_gateway(tmp_path):
    v = serves_stale(frames_of(tmp_path, Gateway(fault="down")), **STALE)
    assert v.status == "pass" and v.figures["hit_ratio"] == 1.0 and v.figures["unmarked_after_ttl"] == 0, v
    assert v.figures["from_fresh_cache"] == 40 and v.figures["stale_served"] == 60


def test_no_cache_or_an_unmarked_stale_answer_fails_stale(tmp_path):
    none = serves_stale(frames_of(tmp_path / "none", Gateway(fault="down", cache=False)), **STALE)
    assert none.status == "fail" and none.figures["hit_ratio"] == 0.0 and none.figures["errors"] == 100, none
    assert "hit_ratio_held" in none.figures["failed"]
    lying = serves_stale(frames_of(tmp_path / "lying", Gateway(fault="down", mark_stale=False)), **STALE)
    assert lying.status == "fail" and lying.figures["unmarked_after_ttl"] > 0, lying
    assert lying.figures["failed"] == ["served_stale", "stale_marked_after_ttl"]  # none says stale


def test_staying_stale_after_the_fault_fails_recovery(tmp_path):
    v = recovers_complete(frames_of(tmp_path, Gateway(fault="down", whole_after=False)), route=ROUTE, bound_s=2.0)
    assert v.status == "fail" and v.figures["recovery_s"] is None, v
    assert v.figures["failed"] == ["success_back_within_bound"] and v.check == "recovers-complete"


def test_a_timeline_without_a_fault_is_unknown(tmp_path):
    frames = frames_of(tmp_path, Gateway())
    from dataclasses import replace

    quiet = replace(frames, faults=frames.faults.iloc[0:0])
    assert partial_within_budget(quiet, **BUDGET).status == "unknown"
    assert serves_stale(quiet, **STALE).status == "unknown"
    assert recovers_complete(quiet, route=ROUTE, bound_s=2.0).status == "unknown"
