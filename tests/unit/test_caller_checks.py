"""answers-belong-to-caller on synthetic timelines written with the real
Recorder: a gateway that keeps users apart passes, a cache keyed without
the user and a gateway that believes a client-sent identity fail their
clause, and missing evidence gives 'unknown', never a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks import answers_belong_to_caller
from harness.timeline import Recorder, load_frames

T0 = 1_700_000_000 * 10**9
USERS = ("alice", "bob", "carol", "dave")
BACKENDS = ("users", "orders")
FIELDS = tuple(f"parts.{b}.user" for b in BACKENDS)


def history(mistake: str | None, *, spoof: bool = True, ids: bool = True, tags: bool = True,
            users: tuple[str, ...] = USERS) -> tuple[list[dict], list[dict]]:
    """200 profile requests, every fifth claiming the next user's identity.
    mistake: None, "shared-cache" (orders' part is whoever asked before) or
    "trusts-client-identity" (a claimed identity is believed)."""
    rows, arrivals = [], []
    for i in range(200):
        who, other = users[i % len(users)], users[(i + 1) % len(users)]
        claimed = other if spoof and i % 5 == 0 else None
        served = claimed if mistake == "trusts-client-identity" and claimed else who
        parts = {"users": served, "orders": users[(i - 1) % len(users)] if mistake == "shared-cache" else served}
        rid = f"r{i}"
        tagged = {"subject": who, **({"claimed": claimed} if claimed else {})} if tags else {}
        rows.append({"t_ns": T0 + i * 50_000_000, "name": "/api/profile", "method": "GET", "latency_ms": 20.0,
                     "status": 200, "ok": True, "error": None, "hop": None, "reason": None,
                     "request_id": rid if ids else None, **tagged,
                     **{f"parts.{b}.user": u for b, u in parts.items()}})
        arrivals.append({"t_ns": T0 + i * 50_000_000 + 1000, "source": "users", "request_id": rid, "user": served})
    return rows, arrivals


def frames_of(tmp_path: Path, rows: list[dict], arrivals: list[dict]):
    with Recorder(tmp_path) as rec:
        rec.record("experiment", t_ns=T0, name="synthetic", target="gateway", variant="x", fault=None)
        for a in arrivals:
            rec.record("observed", event="arrival", trusted=True, **a)
        rec.record("end", t_ns=T0 + 11 * 10**9)
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_frames(tmp_path)


def judge(tmp_path: Path, mistake: str | None = None, **how):
    return answers_belong_to_caller(frames_of(tmp_path, *history(mistake, **how)), backends=BACKENDS,
                                    owner_fields=FIELDS)


def test_a_gateway_that_keeps_users_apart_passes_and_says_it_is_security(tmp_path):
    v = judge(tmp_path)
    assert v.status == "pass" and v.figures["failed"] == [] and v.figures["kind"] == "security", v
    assert v.figures | {"subjects": 4, "answers": 200, "foreign_answers": 0, "spoofed_requests": 40,
                        "foreign_when_spoofed": 0, "backend_calls_matched": 200} == v.figures
    assert v.explanation.startswith("security:")


def test_a_cache_shared_between_users_breaks_only_answers_own_data(tmp_path):
    v = judge(tmp_path, "shared-cache")
    assert v.status == "fail" and v.figures["failed"] == ["answers_own_data"], v
    assert v.figures["foreign_answers"] == 200 and v.figures["foreign_parts"] == "parts.orders.user 200"
    assert (v.figures["foreign_when_spoofed"], v.figures["foreign_when_plain"]) == (40, 160)
    assert v.figures["backend_calls_for_other_user"] == 0


def test_believing_a_client_sent_identity_breaks_both_clauses(tmp_path):
    v = judge(tmp_path, "trusts-client-identity")
    assert v.status == "fail" and v.figures["failed"] == ["answers_own_data", "backends_asked_for_caller"], v
    assert (v.figures["foreign_when_spoofed"], v.figures["foreign_when_plain"]) == (40, 0)
    assert v.figures["backend_calls_for_claimed"] == 40
    assert v.figures["other_user_at"] == "users 40" and "for the claimed identity" in v.explanation


@pytest.mark.parametrize("how, reason", [
    (dict(tags=False), "token subjects"),
    (dict(users=("alice",)), "token subjects"),
    (dict(spoof=False), "claimed another user's identity"),
    (dict(ids=False), "no request id"),
])
def test_missing_evidence_is_unknown(tmp_path, how, reason):
    v = judge(tmp_path, "shared-cache", **how)
    assert v.status == "unknown" and reason in v.explanation, v


def test_answers_that_name_no_owner_and_no_arrivals_are_unknown(tmp_path):
    rows, arrivals = history(None)
    frames = frames_of(tmp_path, rows, [])
    v = answers_belong_to_caller(frames, backends=BACKENDS, owner_fields=FIELDS)
    assert v.status == "unknown" and "arrivals" in v.explanation, v
    v = answers_belong_to_caller(frames, backends=BACKENDS, owner_fields=("parts.nobody.user",))
    assert v.status == "unknown" and "body_fields" in v.explanation, v
