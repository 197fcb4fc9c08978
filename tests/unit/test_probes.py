"""Probes against a real HTTP endpoint: samples, observed events, errors."""

from __future__ import annotations

import time
from pathlib import Path
import pytest

from harness.wait import wait_until as harness_wait
from harness.probes import Probe, Prober, arrivals_probe, records_probe, state_probe
from harness.timeline import Recorder, load_frames

from ..json_server import Request


@pytest.fixture
def dependency(json_server) -> tuple[str, list[int]]:
    """A dependency that records arrivals: answers only those after since_ns."""
    times: list[int] = []

    def answer(request: Request) -> tuple[int, dict]:
        since = request.since_ns()
        return 200, {"count": len(times), "arrivals": [t for t in times if t > since]}

    return json_server(answer).url + "/admin/arrivals", times


def wait_until(predicate, timeout_s: float = 5.0) -> None:
    harness_wait(predicate, what="the probe's samples", timeout_s=timeout_s, interval_s=0.02)


def test_arrivals_are_recorded_once_each_with_their_own_time(tmp_path: Path, dependency):
    arrivals_url, times = dependency
    t0 = time.time_ns()
    times += [t0 + 1_000_000, t0 + 2_000_000]
    with Recorder(tmp_path) as rec:
        rec.record("experiment", name="probe-test", t_ns=t0)
        with Prober([arrivals_probe("dep", arrivals_url)], rec, interval_s=0.05):
            wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"arrival"') >= 2)
            times.append(t0 + 3_000_000)
            wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"arrival"') >= 3)
    frames = load_frames(tmp_path)
    arrivals = frames.observed[frames.observed["event"] == "arrival"]
    assert list(arrivals["t_s"].round(3)) == [0.001, 0.002, 0.003]
    assert set(arrivals["source"]) == {"dep"}
    counts = frames.probes[frames.probes["probe"] == "dep.count"]["value"]
    assert counts.max() == 3


def test_a_failing_probe_records_its_error_and_goes_on(tmp_path: Path):
    calls = []

    def broken() -> dict:
        calls.append(1)
        raise ConnectionError("refused")

    with Recorder(tmp_path) as rec:
        with Prober([Probe("gone", broken)], rec, interval_s=0.02):
            wait_until(lambda: len(calls) >= 3)
    text = (tmp_path / "timeline.jsonl").read_text()
    assert "ConnectionError: refused" in text
    assert load_frames(tmp_path).observed.empty


def test_state_probe_hands_over_each_transition_once(tmp_path: Path, json_server):
    """Against an endpoint answering like a breaker's /admin/state."""
    t0 = time.time_ns()
    transitions = [{"t_ns": t0 + 5_000_000, "from": "closed", "to": "open"}]
    server = json_server(lambda _: (200, {"state": "open", "state_code": 2, "transitions": transitions}))
    probe = state_probe("front", f"{server.url}/admin/state",
                        fields=("state_code",), events_key="transitions", event="transition")
    with Recorder(tmp_path) as rec:
        rec.record("experiment", name="state", t_ns=t0)
        with Prober([probe], rec, interval_s=0.05):
            wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"probe"') >= 4)
    frames = load_frames(tmp_path)
    (transition,) = frames.observed.to_dict("records")
    assert transition["to"] == "open" and round(transition["t_s"], 3) == 0.005
    assert set(frames.probes["probe"]) == {"front.state_code"}


def test_flatten_names_nested_fields_with_dots():
    from harness.probes import flatten

    nested = {"pools": {"critical": {"in_use": 2, "size": 4}}, "variant": "correct", "log": [1, 2], "up": True}
    assert flatten(nested) == {"pools.critical.in_use": 2, "pools.critical.size": 4, "variant": "correct", "up": True}


def test_records_probe_hands_over_each_record_with_its_fields(tmp_path: Path, json_server):
    """Against an endpoint answering like a consumer's /admin/processed."""
    t0 = time.time_ns()
    records = [{"t_ns": t0 + i * 1_000_000, "id": f"m{i}", "published_t_ns": t0} for i in range(1, 4)]

    def answer(request: Request) -> tuple[int, dict]:
        since = request.since_ns()
        return 200, {"count": len(records), "processed": [r for r in records if r["t_ns"] > since]}

    probe = records_probe("consumer", f"{json_server(answer).url}/admin/processed",
                          list_key="processed", event="processed")
    with Recorder(tmp_path) as rec:
        rec.record("experiment", name="records", t_ns=t0)
        with Prober([probe], rec, interval_s=0.05):
            wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"probe"') >= 3)
    observed = load_frames(tmp_path).observed
    assert list(observed["id"]) == ["m1", "m2", "m3"] and set(observed["event"]) == {"processed"}


def test_a_lagging_recorder_settles_before_the_last_round(tmp_path: Path):
    order: list[str] = []
    probe = Probe("tap", lambda: order.append("sample") or {"n": 1}, close=lambda: order.append("close"),
                  settle=lambda: order.append("settle"))
    with Recorder(tmp_path) as rec:
        with Prober([probe], rec, interval_s=0.02):
            wait_until(lambda: order.count("sample") >= 2)
    assert order[-3:] == ["settle", "sample", "close"] and order.count("settle") == 1
