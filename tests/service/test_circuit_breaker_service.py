"""The circuit_breaker target's reference services, run for real as front -> dep subprocesses.

No Toxiproxy here: front's DEP_URL points straight at dep, at a closed port
(connection refused), or at a small server in this process that answers a
chosen status; dep itself is paused with SIGSTOP to make calls time out.
Evidence is taken from both sides: what the client got, and what dep says
arrived (its /admin/arrivals), with front's /admin/state as the cross-check.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.runtime.ports import free_port
from harness.topology import load_topology

from ..json_server import JsonServer, Request
from .launcher import Launcher, Proc, wait_for

SPEC = load_topology("circuit_breaker").spec
TIMEOUT_MS = int(load_topology("circuit_breaker").services["front"].env["CALL_TIMEOUT_MS"])  # configuration, not spec


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers
    elapsed_ms: float


class Breaker:
    """front and dep on the shared launcher, and what the tests ask of them."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher, self.http = launcher, launcher.http

    def start(self, role: str, **env: Any) -> Proc:
        return self.launcher.program("circuit_breaker", f"{role}.py", role,
                                     **{"SERVICE_NAME": role, "INSTANCE": 0, **env})

    def pair(self, variant: str = "correct", **front_env: Any) -> tuple[Proc, Proc]:
        """A dep and a front calling it, both healthy."""
        dep = self.start("dep")
        front = self.start("front", DEP_URL=dep.url, VARIANT=variant, **front_env)
        self.ready(dep, front)
        return front, dep

    def ready(self, *procs: Proc) -> None:
        self.launcher.healthy(*procs)

    def get(self, proc: Proc, path: str = "/") -> Reply:
        started = time.monotonic()
        resp = self.http.get(f"{proc.url}{path}")
        return Reply(resp.status_code, resp.json(), resp.headers, (time.monotonic() - started) * 1000)

    def burst(self, proc: Proc, n: int) -> list[Reply]:
        """n requests at once, as n clients would send them."""
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(lambda _: self.get(proc), range(n)))

    def state(self, front: Proc) -> dict[str, Any]:
        return self.get(front, "/admin/state").body

    def arrivals(self, dep: Proc, since_ns: int = 0) -> dict[str, Any]:
        return self.get(dep, f"/admin/arrivals?since_ns={since_ns}").body

    def stop(self, proc: Proc) -> int:
        return self.launcher.stop(proc)


@pytest.fixture
def launch(launcher: Launcher) -> Breaker:
    return Breaker(launcher)


@pytest.fixture
def status_server(json_server: Callable[..., JsonServer]) -> Iterator[tuple[str, Callable[[int], None]]]:
    """A dependency in this process answering a chosen status, to show which ones count."""
    chosen = {"status": 200}

    def answer(_request: Request) -> tuple[int, dict[str, Any]]:
        return chosen["status"], {"service": "stub"}

    yield json_server(answer).url, lambda s: chosen.update(status=s)


def trip_with_paused_dep(launch: Breaker, front: Proc, dep: Proc) -> float:
    """Pause dep and send FAILURE_THRESHOLD calls at once; all time out and open the breaker."""
    dep.signal(signal.SIGSTOP)
    replies = launch.burst(front, SPEC["failure_threshold"])
    assert [r.status for r in replies] == [504] * SPEC["failure_threshold"], replies
    assert all(r.body["hop"] == "front->dep" and r.body["error"] == "timeout" for r in replies)
    assert max(r.elapsed_ms for r in replies) < TIMEOUT_MS + 250
    assert launch.state(front)["state"] == "open"
    return time.monotonic()


def test_topology_env_agrees_with_spec() -> None:
    t = load_topology("circuit_breaker")
    env = t.services["front"].env
    assert t.entry == "front" and [l.name for l in t.links] == [SPEC["hop"]]
    for key, name in (("failure_threshold", "failure_threshold"), ("window_s", "sliding_window_s"),
                      ("open_s", "wait_duration_in_open_s"), ("half_open_probes", "permitted_calls_in_half_open"),
                      ("fast_fail_status", "fast_fail_status")):
        assert float(env[key.upper()]) == float(SPEC[name]), key
    assert SPEC["policy"] == "count"
    assert {n: v.broken for n, v in t.variants.items()} == {
        "correct": False, "no-breaker": True, "never-closes": True, "opens-early": True, "no-window": True,
        "half-open-flood": True, "bypasses-proxy": False}


def test_dep_answer_is_120_bytes_and_the_digits_of_n(launch: Breaker) -> None:
    """The sparse-failures case sizes its limit_data toxic from it (experiments' ANSWER_BYTES, 123 for n < 1000)."""
    dep = launch.start("dep")
    launch.ready(dep)
    with socket.create_connection(("127.0.0.1", dep.port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: dep\r\n\r\n")
        raw = b""
        while not raw.endswith(b"}"):
            chunk = conn.recv(4096)
            assert chunk, raw
            raw += chunk
    assert raw.endswith(b'{"service": "dep", "n": 1}') and len(raw) == 121, raw


def test_closed_passes_dep_answer_through_and_dep_counts_arrivals(launch: Breaker) -> None:
    front, dep = launch.pair()
    before_ns = time.time_ns()
    first, second = launch.get(front), launch.get(front)
    assert (first.status, first.body) == (200, {"service": "dep", "n": 1})
    assert (second.status, second.body) == (200, {"service": "dep", "n": 2})
    launch.get(dep, "/health")  # neither health nor admin requests are arrivals
    seen = launch.arrivals(dep, since_ns=before_ns)
    assert seen["count"] == 2 and len(seen["arrivals"]) == 2
    assert before_ns < seen["arrivals"][0] <= seen["arrivals"][1] <= time.time_ns()
    assert launch.arrivals(dep, since_ns=seen["arrivals"][0])["arrivals"] == seen["arrivals"][1:]
    assert launch.get(dep, "/admin/arrivals?since_ns=soon").status == 400
    state = launch.state(front)
    assert state | {"state": "closed", "calls": 2, "fast_failed": 0, "opened": 0,
                    "failures_in_window": 0, "transitions": []} == state
    assert [launch.stop(p) for p in (front, dep)] == [0, 0]


def test_opens_after_threshold_then_fails_fast(launch: Breaker) -> None:
    front = launch.start("front", DEP_URL=f"http://127.0.0.1:{free_port()}")  # nothing listens
    launch.ready(front)
    threshold = SPEC["failure_threshold"]
    started = time.monotonic()
    for i in range(1, threshold):
        reply = launch.get(front)
        assert (reply.status, reply.body["error"], reply.body["hop"]) == (502, "unavailable", "front->dep")
        state = launch.state(front)
        assert (state["state"], state["failures_in_window"]) == ("closed", i)
    assert launch.get(front).status == 502  # the threshold-th failure: answered, and opens it
    time_to_open_ms = (time.monotonic() - started) * 1000
    state = launch.state(front)
    assert (state["state"], state["opened"], state["calls"]) == ("open", 1, threshold)
    assert [(t["from"], t["to"]) for t in state["transitions"]] == [("closed", "open")]

    replies = [launch.get(front) for _ in range(200)]
    assert {r.status for r in replies} == {SPEC["fast_fail_status"]}
    body = replies[0].body
    assert body | {"error": "circuit open", "hop": "front->dep", "state": "open"} == body
    assert 0 < body["retry_after_s"] <= SPEC["wait_duration_in_open_s"]
    assert replies[0].headers["content-type"] == "application/json"
    assert int(replies[0].headers["retry-after"]) >= 1
    latencies = sorted(r.elapsed_ms for r in replies)
    p99_ms = latencies[int(len(latencies) * 0.99) - 1]
    print(f"time to open {time_to_open_ms:.1f} ms; fast-fail p50 {latencies[100]:.2f} ms, "
          f"p99 {p99_ms:.2f} ms, max {latencies[-1]:.2f} ms")
    assert p99_ms < SPEC["fast_fail_p99_ms"]
    state = launch.state(front)
    assert (state["calls"], state["fast_failed"]) == (threshold, 200)


def test_open_keeps_calls_off_dep_then_half_open_probes_close_it(launch: Breaker) -> None:
    open_s, probes = 1.0, SPEC["permitted_calls_in_half_open"]
    front, dep = launch.pair(OPEN_S=open_s)
    assert launch.get(front).status == 200
    opened_at = trip_with_paused_dep(launch, front, dep)
    dep.signal(signal.SIGCONT)
    # dep answers the calls that waited in its backlog (stamped now, not when sent) ...
    wait_for("the paused calls reaching dep", lambda: launch.arrivals(dep)["count"],
             lambda n: n == 1 + SPEC["failure_threshold"], within_s=2)
    since_ns = time.time_ns()
    # ... and from then on, while open, nothing reaches it although it is healthy.
    replies = [launch.get(front) for _ in range(20)]
    assert time.monotonic() - opened_at < open_s, "too slow to test the open state"
    assert {r.status for r in replies} == {503}
    assert launch.arrivals(dep, since_ns)["arrivals"] == []

    wait_for("half_open", lambda: launch.state(front)["state"],
                           lambda s: s == "half_open", within_s=open_s + 1)
    assert time.monotonic() - opened_at >= open_s - 0.05
    since_ns = time.time_ns()
    for _ in range(probes):
        assert launch.state(front)["state"] == "half_open"
        assert launch.get(front).status == 200
    assert launch.state(front)["state"] == "closed"
    assert len(launch.arrivals(dep, since_ns)["arrivals"]) == probes
    assert launch.get(front).status == 200
    state = launch.state(front)
    assert [(t["from"], t["to"]) for t in state["transitions"]] == [
        ("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    opened_ns, half_ns, closed_ns = (t["t_ns"] for t in state["transitions"])
    assert half_ns - opened_ns == pytest.approx(open_s * 1e9)
    assert closed_ns > half_ns
    assert (state["opened"], state["fast_failed"], state["failures_in_window"]) == (1, 20, 0)


def test_half_open_lets_only_the_probes_through_and_a_failed_probe_reopens(launch: Breaker) -> None:
    open_s, probes, threshold = 1.0, SPEC["permitted_calls_in_half_open"], SPEC["failure_threshold"]
    front, dep = launch.pair(OPEN_S=open_s)
    trip_with_paused_dep(launch, front, dep)
    wait_for("half_open", lambda: launch.state(front)["state"], lambda s: s == "half_open",
             within_s=open_s + 1)
    replies = launch.burst(front, 10)  # dep still paused: the probes time out
    statuses = sorted(r.status for r in replies)
    assert statuses == [503] * (10 - probes) + [504] * probes
    assert max(r.elapsed_ms for r in replies if r.status == 503) < TIMEOUT_MS
    assert {r.body["state"] for r in replies if r.status == 503} == {"half_open"}
    state = launch.state(front)
    assert (state["state"], state["opened"], state["calls"]) == ("open", 2, threshold + probes)
    assert state["transitions"][-1] | {"from": "half_open", "to": "open"} == state["transitions"][-1]
    dep.signal(signal.SIGCONT)
    wait_for("the calls that reached dep", lambda: launch.arrivals(dep)["count"],
             lambda n: n >= threshold + probes, within_s=2)
    assert launch.arrivals(dep)["count"] == threshold + probes


def test_5xx_counts_as_a_failure_but_4xx_does_not(launch: Breaker, status_server) -> None:
    url, answer_with = status_server
    front = launch.start("front", DEP_URL=url, FAILURE_THRESHOLD=3)
    launch.ready(front)
    answer_with(404)
    for _ in range(5):
        reply = launch.get(front)
        assert (reply.status, reply.body["error"], reply.body["status"]) == (502, "bad status", 404)
    state = launch.state(front)
    assert (state["state"], state["failures_in_window"]) == ("closed", 0)
    answer_with(500)
    assert [launch.get(front).body.get("status") for _ in range(3)] == [500, 500, 500]
    assert launch.state(front)["state"] == "open"
    assert launch.get(front).status == 503


def test_failures_older_than_the_window_do_not_count(launch: Breaker) -> None:
    front = launch.start("front", DEP_URL=f"http://127.0.0.1:{free_port()}",
                         FAILURE_THRESHOLD=3, WINDOW_S=0.5)
    launch.ready(front)
    assert [launch.get(front).status for _ in range(2)] == [502, 502]
    wait_for("failures leaving the window", lambda: launch.state(front)["failures_in_window"],
             lambda n: n == 0, within_s=2)
    assert [launch.get(front).status for _ in range(2)] == [502, 502]
    state = launch.state(front)
    assert (state["state"], state["failures_in_window"]) == ("closed", 2)
    assert launch.get(front).status == 502
    assert launch.state(front)["state"] == "open"


def test_no_window_counts_failures_older_than_the_window(launch: Breaker) -> None:
    """The same calls as above: a count that never forgets opens at the 3rd."""
    front = launch.start("front", DEP_URL=f"http://127.0.0.1:{free_port()}", VARIANT="no-window",
                         FAILURE_THRESHOLD=3, WINDOW_S=0.5)
    launch.ready(front)
    assert [launch.get(front).status for _ in range(2)] == [502, 502]
    time.sleep(0.7)  # pacing: the failures are older than the window now
    assert launch.get(front).status == 502
    state = launch.state(front)
    assert (state["state"], state["failures_in_window"], state["opened"]) == ("open", 3, 1)
    assert launch.get(front).status == 503


def test_opens_early_opens_on_the_first_failure(launch: Breaker) -> None:
    front = launch.start("front", DEP_URL=f"http://127.0.0.1:{free_port()}", VARIANT="opens-early")
    launch.ready(front)
    assert [launch.get(front).status for _ in range(3)] == [502, 503, 503]
    state = launch.state(front)
    assert (state["state"], state["calls"], state["opened"]) == ("open", 1, 1)
    assert state["transitions"][0]["reason"].startswith("1 failures")


def test_half_open_flood_lets_every_waiting_call_through(launch: Breaker) -> None:
    """The burst that the correct breaker answers with 2 probes and 8 fast-fails
    (above) all goes to the paused dep, and 5 of them must fail to reopen it."""
    open_s, threshold = 1.0, SPEC["failure_threshold"]
    front, dep = launch.pair("half-open-flood", OPEN_S=open_s)
    trip_with_paused_dep(launch, front, dep)
    wait_for("half_open", lambda: launch.state(front)["state"], lambda s: s == "half_open", within_s=open_s + 1)
    replies = launch.burst(front, 10)
    assert sorted(r.status for r in replies) == [504] * 10
    state = launch.state(front)
    assert (state["state"], state["opened"], state["calls"]) == ("open", 2, threshold + 10)
    assert state["transitions"][-1]["reason"] == f"{threshold} half-open calls failed"
    dep.signal(signal.SIGCONT)
    wait_for("the calls that reached dep", lambda: launch.arrivals(dep)["count"],
             lambda n: n == threshold + 10, within_s=2)


def test_no_breaker_calls_dep_every_time(launch: Breaker) -> None:
    front = launch.start("front", DEP_URL=f"http://127.0.0.1:{free_port()}", VARIANT="no-breaker")
    launch.ready(front)
    n = 3 * SPEC["failure_threshold"]
    assert {launch.get(front).status for _ in range(n)} == {502}
    state = launch.state(front)
    assert state | {"state": "closed", "opened": 0, "calls": n, "fast_failed": 0,
                    "failures_in_window": n, "transitions": []} == state


def test_never_closes_keeps_failing_fast_after_dep_recovers(launch: Breaker) -> None:
    open_s = 0.5
    front, dep = launch.pair("never-closes", OPEN_S=open_s)
    opened_at = trip_with_paused_dep(launch, front, dep)
    dep.signal(signal.SIGCONT)
    wait_for("the paused calls reaching dep", lambda: launch.arrivals(dep)["count"],
             lambda n: n == SPEC["failure_threshold"], within_s=2)
    statuses = set()
    while time.monotonic() - opened_at < 3 * open_s:  # watch well past open_s
        statuses.add(launch.get(front).status)
        time.sleep(0.02)  # poll
    assert statuses == {503}
    state = launch.state(front)
    assert (state["state"], state["opened"]) == ("open", 1)
    assert [(t["from"], t["to"]) for t in state["transitions"]] == [("closed", "open")]
    assert launch.arrivals(dep)["count"] == SPEC["failure_threshold"]


@pytest.mark.parametrize("key, value", [
    ("FAILURE_THRESHOLD", "abc"), ("WINDOW_S", "-1"), ("OPEN_S", "soon"),
    ("HALF_OPEN_PROBES", "0"), ("FAST_FAIL_STATUS", "200"), ("CALL_TIMEOUT_MS", "1.5"),
    ("VARIANT", "bogus"), ("DEP_URL", ""),
])
def test_bad_env_exits_2_naming_the_variable(launch: Breaker, key: str, value: str) -> None:
    env = {"DEP_URL": "http://127.0.0.1:9", key: value}
    proc = launch.start("front", **env)
    assert proc.popen.wait(timeout=10) == 2
    assert key in proc.log_text()


def test_dep_bad_port_exits_2(launch: Breaker) -> None:
    proc = launch.start("dep", PORT="http")
    assert proc.popen.wait(timeout=10) == 2
    assert "PORT" in proc.log_text()
