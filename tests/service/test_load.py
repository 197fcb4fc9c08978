"""harness.load against a real stdlib HTTP server: real Locust, no mocks."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from harness.errors import LoadError, SafetyError
from harness.load import LoadRun, LoadSpec, RequestSpec, Stage
from harness.runtime.ports import free_port
from harness.timeline import read_jsonl

from ..json_server import Request
from .launcher import labelled_pids

ROW_FIELDS = {"t_ns", "name", "method", "latency_ms", "status", "ok", "error", "hop", "reason", "length"}


def _answer(request: Request) -> tuple[int, object]:
    if request.path == "/fail":
        return 503, {"hop": "b->c", "error": "timeout"}
    if request.path == "/nested":
        return 200, {"parts": {"users": {"user": "alice", "items": ["x" * 300]}}}
    if request.path == "/echo":
        return 200, {"seen_id": request.headers.get("X-Request-Id"), "token": request.headers.get("Authorization")}
    return 200, {"ok": True, "instance": "web-1"}


@pytest.fixture
def server_url(json_server) -> str:
    return json_server(_answer).url


@pytest.fixture
def run_id() -> str:
    return "test-load-" + uuid.uuid4().hex[:8]


def test_rows_record_every_request_and_the_child_is_gone(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(
        users=5,
        rate_per_s=50,
        duration_s=3,
        requests=(RequestSpec(path="/", weight=3), RequestSpec(path="/fail", weight=1)),
        timeout_s=5,
    )
    rows_path = tmp_path / "requests.jsonl"
    t_start_ns = time.time_ns()
    with LoadRun(spec, host_url=server_url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
        run.wait_first_request(timeout_s=15)
        assert labelled_pids(run_id) == [run.pid]
        assert run.wait(timeout_s=20) == 0
    t_end_ns = time.time_ns()

    rows = read_jsonl(rows_path)
    assert rows, run.log_tail()
    assert all(set(r) == ROW_FIELDS for r in rows)
    assert all(t_start_ns <= r["t_ns"] <= t_end_ns for r in rows)
    good = [r for r in rows if r["name"] == "/"]
    bad = [r for r in rows if r["name"] == "/fail"]
    assert good and bad and len(good) + len(bad) == len(rows)
    assert all(r["ok"] and r["status"] == 200 and r["error"] is None and r["hop"] is None for r in good)
    assert all(not r["ok"] and r["status"] == 503 and r["hop"] == "b->c" and r["reason"] == "timeout" for r in bad)
    assert all(r["method"] == "GET" and r["latency_ms"] >= 0 and r["length"] > 0 for r in rows)
    assert len(good) > len(bad)  # weights 3:1

    span_s = (max(r["t_ns"] for r in rows) - min(r["t_ns"] for r in rows)) / 1e9
    rate = len(rows) / max(span_s, 1e-3)
    assert 1.5 <= span_s <= 4.0, span_s
    assert 20 <= rate <= 100, rate

    summary = run.summary()
    assert summary["requests"] == len(rows)
    assert summary["failures"] == len(bad)
    assert labelled_pids(run_id) == []


def test_stages_end_by_themselves(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(
        users=2,
        rate_per_s=20,
        stages=(Stage(duration_s=1, users=1, spawn_rate=10), Stage(duration_s=1, users=2, spawn_rate=10)),
    )
    rows_path = tmp_path / "requests.jsonl"
    with LoadRun(spec, host_url=server_url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
        run.wait_first_request(timeout_s=15)
        assert run.wait(timeout_s=spec.total_duration_s + 10) == 0
    rows = read_jsonl(rows_path)
    span_s = (max(r["t_ns"] for r in rows) - min(r["t_ns"] for r in rows)) / 1e9
    assert 1.0 <= span_s <= 3.0, span_s
    assert all(r["ok"] for r in rows)
    assert labelled_pids(run_id) == []


def test_stop_ends_a_long_run_early(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(users=2, rate_per_s=20, duration_s=60)
    with LoadRun(spec, host_url=server_url, requests_file=tmp_path / "r.jsonl", log_dir=tmp_path, run_id=run_id) as run:
        run.wait_first_request(timeout_s=15)
        stop_started = time.monotonic()
    assert time.monotonic() - stop_started < 6
    assert not run.running()
    assert run.summary()["requests"] > 0, "no final stats: locust did not shut down gracefully"
    run.stop()  # idempotent
    assert labelled_pids(run_id) == []


def test_a_non_loopback_host_is_refused(run_id: str, tmp_path: Path) -> None:
    rows_path = tmp_path / "requests.jsonl"
    with pytest.raises(SafetyError, match="10.0.0.1"):
        LoadRun(LoadSpec(), host_url="http://10.0.0.1:8080", requests_file=rows_path, log_dir=tmp_path, run_id=run_id)
    assert not rows_path.exists()
    assert labelled_pids(run_id) == []


def test_connection_refused_is_a_failed_row(run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(users=1, rate_per_s=20, duration_s=1, timeout_s=2)
    rows_path = tmp_path / "requests.jsonl"
    url = f"http://127.0.0.1:{free_port()}"
    with LoadRun(spec, host_url=url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
        run.wait_first_request(timeout_s=15)
        run.wait(timeout_s=15)
    rows = read_jsonl(rows_path)
    assert rows
    assert all(r["status"] == 0 and r["ok"] is False and r["error"] and r["hop"] is None for r in rows)
    assert labelled_pids(run_id) == []


def test_hung_requests_time_out_and_still_get_their_row(run_id: str, tmp_path: Path) -> None:
    """No first row while requests hang: a LoadError naming host and log; stopping
    then lets the hung request time out (timeout_s) and record it."""
    rows_path = tmp_path / "requests.jsonl"
    with socket.socket() as black_hole:  # accepts, never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        black_hole.settimeout(15)
        url = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
        spec = LoadSpec(users=1, duration_s=30, timeout_s=2)
        with LoadRun(spec, host_url=url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
            conn, _ = black_hole.accept()  # a request is in flight now
            with conn:
                with pytest.raises(LoadError) as caught:
                    run.wait_first_request(timeout_s=0.5)
                run.stop()  # while the request still hangs: it must time out and get its row
    assert url in str(caught.value) and "locust.log" in str(caught.value)
    rows = read_jsonl(rows_path)
    assert rows, run.log_tail()
    assert all(r["status"] == 0 and not r["ok"] and "timed out" in r["error"] for r in rows)
    assert all(r["latency_ms"] >= 1900 for r in rows)
    assert labelled_pids(run_id) == []


def test_a_run_that_ends_without_requests_fails_at_once(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(stages=(Stage(duration_s=0.5, users=0, spawn_rate=1),))
    with LoadRun(spec, host_url=server_url, requests_file=tmp_path / "r.jsonl", log_dir=tmp_path, run_id=run_id) as run:
        with pytest.raises(LoadError, match="exited with code 0 before any request"):
            run.wait_first_request(timeout_s=30)
    assert labelled_pids(run_id) == []


def test_body_fields_are_copied_into_every_row(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(users=2, rate_per_s=20, duration_s=1, timeout_s=5, body_fields=("instance", "stale"),
                    requests=(RequestSpec(path="/"),))
    rows_path = tmp_path / "requests.jsonl"
    with LoadRun(spec, host_url=server_url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
        assert run.wait(timeout_s=20) == 0
    rows = read_jsonl(rows_path)
    assert rows and all(r["instance"] == "web-1" and r["stale"] is None for r in rows)
    with pytest.raises(ValueError, match="body_fields"):
        LoadSpec(body_fields=("",))


def test_request_ids_are_fresh_per_request_and_kept_in_rows(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(users=2, rate_per_s=40, duration_s=3, timeout_s=5, body_fields=("seen_id", "token"),
                    request_id_header="X-Request-Id",
                    requests=(RequestSpec(path="/echo", name="good", headers={"Authorization": "Bearer a"}),
                              RequestSpec(path="/echo", name="bad", headers={"Authorization": "Bearer b"})))
    assert LoadSpec.from_json(spec.to_json()) == spec
    rows_path = tmp_path / "requests.jsonl"
    with LoadRun(spec, host_url=server_url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
        assert run.wait(timeout_s=20) == 0
    rows = read_jsonl(rows_path)
    ids = [r["request_id"] for r in rows]
    assert len(rows) >= 10 and len(set(ids)) == len(rows) and all(ids)
    assert all(r["seen_id"] == r["request_id"] for r in rows)  # the id sent is the id recorded
    assert {(r["name"], r["token"]) for r in rows} == {("good", "Bearer a"), ("bad", "Bearer b")}
    with pytest.raises(ValueError, match="request_id_header"):
        LoadSpec(request_id_header="X Request: Id")




def test_tags_and_dotted_body_fields_land_in_rows(server_url: str, run_id: str, tmp_path: Path) -> None:
    spec = LoadSpec(users=2, rate_per_s=20, duration_s=1, timeout_s=5, body_fields=("parts.users.user", "parts.x.y"),
                    requests=(RequestSpec(path="/nested", tags={"subject": "alice", "claimed": "bob"}),))
    rows_path = tmp_path / "requests.jsonl"
    with LoadRun(spec, host_url=server_url, requests_file=rows_path, log_dir=tmp_path, run_id=run_id) as run:
        assert run.wait(timeout_s=20) == 0
    rows = read_jsonl(rows_path)
    assert rows and all((r["subject"], r["claimed"], r["parts.users.user"], r["parts.x.y"]) ==
                        ("alice", "bob", "alice", None) for r in rows)
