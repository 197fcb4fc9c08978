"""Probes against a real HTTP endpoint: samples, observed events, errors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from harness.probes import Probe, Prober, arrivals_probe, records_probe, state_probe
from harness.timeline import Recorder, load_frames


class Arrivals(BaseHTTPRequestHandler):
    """Answers like a dependency that records arrivals: only those after since_ns."""

    times: list[int] = []

    def do_GET(self) -> None:
        since = int(parse_qs(urlparse(self.path).query).get("since_ns", ["0"])[0])
        body = json.dumps({"count": len(self.times), "arrivals": [t for t in self.times if t > since]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def arrivals_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Arrivals)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/admin/arrivals"
    finally:
        server.shutdown()
        server.server_close()


def wait_until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)  # poll


def test_arrivals_are_recorded_once_each_with_their_own_time(tmp_path: Path, arrivals_url: str):
    t0 = time.time_ns()
    Arrivals.times = [t0 + 1_000_000, t0 + 2_000_000]
    with Recorder(tmp_path) as rec:
        rec.record("experiment", name="probe-test", t_ns=t0)
        with Prober([arrivals_probe("dep", arrivals_url)], rec, interval_s=0.05):
            wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"arrival"') >= 2)
            Arrivals.times = [*Arrivals.times, t0 + 3_000_000]
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


class States(BaseHTTPRequestHandler):
    """Answers like a breaker's /admin/state."""

    transitions: list[dict] = []

    def do_GET(self) -> None:
        body = json.dumps({"state": "open", "state_code": 2, "transitions": self.transitions}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_state_probe_hands_over_each_transition_once(tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), States)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    t0 = time.time_ns()
    States.transitions = [{"t_ns": t0 + 5_000_000, "from": "closed", "to": "open"}]
    try:
        probe = state_probe("front", f"http://127.0.0.1:{server.server_port}/admin/state",
                            fields=("state_code",), events_key="transitions", event="transition")
        with Recorder(tmp_path) as rec:
            rec.record("experiment", name="state", t_ns=t0)
            with Prober([probe], rec, interval_s=0.05):
                wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"probe"') >= 4)
    finally:
        server.shutdown()
        server.server_close()
    frames = load_frames(tmp_path)
    (transition,) = frames.observed.to_dict("records")
    assert transition["to"] == "open" and round(transition["t_s"], 3) == 0.005
    assert set(frames.probes["probe"]) == {"front.state_code"}


def test_flatten_names_nested_fields_with_dots():
    from harness.probes import flatten

    nested = {"pools": {"critical": {"in_use": 2, "size": 4}}, "variant": "correct", "log": [1, 2], "up": True}
    assert flatten(nested) == {"pools.critical.in_use": 2, "pools.critical.size": 4, "variant": "correct", "up": True}


class Records(BaseHTTPRequestHandler):
    """Answers like a consumer's /admin/processed."""

    records: list[dict] = []

    def do_GET(self) -> None:
        since = int(parse_qs(urlparse(self.path).query).get("since_ns", ["0"])[0])
        fresh = [r for r in self.records if r["t_ns"] > since]
        body = json.dumps({"count": len(self.records), "processed": fresh}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_records_probe_hands_over_each_record_with_its_fields(tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Records)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    t0 = time.time_ns()
    Records.records = [{"t_ns": t0 + i * 1_000_000, "id": f"m{i}", "published_t_ns": t0} for i in range(1, 4)]
    try:
        probe = records_probe("consumer", f"http://127.0.0.1:{server.server_port}/admin/processed",
                              list_key="processed", event="processed")
        with Recorder(tmp_path) as rec:
            rec.record("experiment", name="records", t_ns=t0)
            with Prober([probe], rec, interval_s=0.05):
                wait_until(lambda: (tmp_path / "timeline.jsonl").read_text().count('"probe"') >= 3)
    finally:
        server.shutdown()
        server.server_close()
    observed = load_frames(tmp_path).observed
    assert list(observed["id"]) == ["m1", "m2", "m3"] and set(observed["event"]) == {"processed"}
