"""The chained target's reference services, run for real as A -> B -> C subprocesses.

No Toxiproxy here: faults are put on the leaf process itself (SIGSTOP, SIGKILL),
which is enough to show the hop naming, deadline propagation and each variant.
"""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .launcher import Launcher, Proc

BUDGET_MS = 800


class Chain:
    """A -> B -> C and other shapes of the chained service, on the shared launcher."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher, self.http = launcher, launcher.http

    def start(self, name: str, port: int | None = None, downstream: Proc | None = None, **env: Any) -> Proc:
        if downstream:
            env |= {"DOWNSTREAM_URL": downstream.url, "DOWNSTREAM_NAME": downstream.name}
        return self.launcher.program("chained", "service.py", name, port=port,
                                     **{"SERVICE_NAME": name, "BUDGET_MS": BUDGET_MS, **env})

    def ready(self, *procs: Proc) -> None:
        self.launcher.healthy(*procs)

    def chain(self, variant: str = "correct", **c_env: Any) -> tuple[Proc, Proc, Proc]:
        c = self.start("c", VARIANT=variant, **c_env)
        b = self.start("b", downstream=c, VARIANT=variant)
        a = self.start("a", downstream=b, VARIANT=variant)
        self.ready(c, b, a)
        return a, b, c

    def get(self, proc: Proc, path: str = "/", **headers: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        resp = self.http.get(f"{proc.url}{path}", headers=headers)
        return resp, (time.monotonic() - started) * 1000

    def stop(self, proc: Proc) -> int:
        return self.launcher.stop(proc)


@pytest.fixture
def launch(launcher: Launcher) -> Chain:
    return Chain(launcher)


def test_chain_answers_with_full_path_and_exits_cleanly(launch: Chain) -> None:
    a, b, c = launch.chain()
    resp, _ = launch.get(a)
    assert resp.status_code == 200
    assert resp.json() == {"service": "a", "path": ["a", "b", "c"]}
    assert launch.get(b, "/health")[0].json() == {"ok": True, "service": "b"}
    state = launch.get(b, "/admin/state")[0].json()
    assert state | {"requests": 1, "ok": 1, "errors": 0, "in_flight": 0,
                    "variant": "correct", "downstream_dead": False} == state
    assert [launch.stop(p) for p in (a, b, c)] == [0, 0, 0]


def test_paused_leaf_times_out_naming_hop_then_recovers(launch: Chain) -> None:
    a, _, c = launch.chain()
    c.signal(signal.SIGSTOP)
    resp, elapsed_ms = launch.get(a)
    assert resp.status_code == 504, resp.text
    assert resp.json()["hop"] == "b->c"
    assert resp.headers["content-type"] == "application/json"
    assert elapsed_ms < BUDGET_MS + 300
    c.signal(signal.SIGCONT)
    resp, _ = launch.get(a)
    assert resp.status_code == 200, resp.text


def test_killed_leaf_is_unavailable_fast(launch: Chain) -> None:
    a, _, c = launch.chain()
    c.signal(signal.SIGKILL)
    c.popen.wait()
    resp, elapsed_ms = launch.get(a)
    assert resp.status_code == 503, resp.text
    assert resp.json()["hop"] == "b->c"
    assert resp.json()["error"] == "unavailable"
    assert elapsed_ms < 300


def test_deadline_is_propagated_not_restarted(launch: Chain) -> None:
    a, _, _ = launch.chain(WORK_MS=400)
    resp, elapsed_ms = launch.get(a, **{"X-Deadline-Ms": "200"})
    assert resp.status_code == 504, resp.text
    assert resp.json()["hop"] == "b->c"
    assert elapsed_ms < 350
    resp, _ = launch.get(a, **{"X-Deadline-Ms": "0"})
    assert resp.status_code == 504
    assert resp.json()["hop"] == "client->a"


def test_sticky_failure_never_recovers(launch: Chain) -> None:
    a, b, c = launch.chain("sticky-failure")
    assert launch.get(a)[0].status_code == 200
    c.signal(signal.SIGKILL)
    c.popen.wait()
    assert launch.get(a)[0].status_code == 503
    c2 = launch.start("c", port=c.port)
    launch.ready(c2)
    resp, _ = launch.get(a)
    assert resp.status_code == 503
    assert resp.json() | {"error": "marked dead", "hop": "b->c"} == resp.json()
    state = launch.get(b, "/admin/state")[0].json()
    assert state["downstream_dead"] is True
    assert state["downstream_calls"] == 2  # the marked-dead answer made no call


def test_fixed_timeouts_fail_latency_that_fits_the_budget(launch: Chain) -> None:
    c = launch.start("c", WORK_MS=150)
    b_ok = launch.start("b", downstream=c)
    a_ok = launch.start("a", downstream=b_ok)
    b_fixed = launch.start("b", downstream=c, VARIANT="fixed-timeouts")
    a_fixed = launch.start("a", downstream=b_fixed, VARIANT="fixed-timeouts")
    launch.ready(c, b_ok, a_ok, b_fixed, a_fixed)
    assert launch.get(a_ok)[0].status_code == 200
    resp, _ = launch.get(a_fixed)
    assert resp.status_code == 504
    assert resp.json()["hop"] in {"a->b", "b->c"}


def test_no_timeouts_waits_as_long_as_its_dependency(launch: Chain) -> None:
    a, _, c = launch.chain("no-timeouts")
    c.signal(signal.SIGSTOP)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pending = pool.submit(launch.get, a)
            with pytest.raises(TimeoutError):
                pending.result(timeout=(BUDGET_MS + 400) / 1000)
        finally:
            c.signal(signal.SIGCONT)
        resp, elapsed_ms = pending.result(timeout=5)
    assert resp.status_code == 200
    assert elapsed_ms > BUDGET_MS + 400


def test_unknown_variant_exits_2(launch: Chain) -> None:
    proc = launch.start("a", VARIANT="bogus")
    assert proc.popen.wait(timeout=10) == 2
    assert "unknown VARIANT" in proc.log_text()


class ResettingLeaf:
    """A stand-in for C that reads each request, notes its X-Request-Id, and
    resets the connection without answering: every call to it fails, so every
    retry shows up here."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.seen: Counter[str] = Counter()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._reset, args=(conn,), daemon=True).start()

    def _reset(self, conn: socket.socket) -> None:
        head = b""
        with conn:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("x-request-id:"):
                    self.seen[line.split(":", 1)[1].strip()] += 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def resetting_leaf() -> Iterator[ResettingLeaf]:
    leaf = ResettingLeaf()
    yield leaf
    leaf.close()


@pytest.mark.parametrize("variant, a_retries, b_retries, calls", [
    ("correct", 1, 0, 2),           # as the topology runs it: one retry, at the edge only
    ("retry-every-hop", 2, 2, 9),   # 3 attempts at A, each making 3 at B
])
def test_retries_reach_the_leaf_as_configured(launch: Chain, resetting_leaf: ResettingLeaf, variant: str,
                                              a_retries: int, b_retries: int, calls: int) -> None:
    b = launch.start("b", VARIANT=variant, RETRIES=b_retries, DOWNSTREAM_CONNECTIONS="per-call",
                     DOWNSTREAM_URL=f"http://127.0.0.1:{resetting_leaf.port}", DOWNSTREAM_NAME="c")
    a = launch.start("a", downstream=b, VARIANT=variant, RETRIES=a_retries)
    launch.ready(b, a)
    resp, elapsed_ms = launch.get(a, **{"X-Request-Id": "req-1"})
    assert resp.status_code == 503, resp.text
    assert resp.json() | {"error": "unavailable", "hop": "b->c"} == resp.json()
    assert elapsed_ms < BUDGET_MS
    assert resetting_leaf.seen == {"req-1": calls}
    assert launch.get(a, "/admin/state")[0].json()["retries"] == a_retries


def test_leaf_records_each_arrival_with_its_request_id(launch: Chain) -> None:
    a, _, c = launch.chain()
    assert launch.get(a, **{"X-Request-Id": "req-7"})[0].status_code == 200
    assert launch.get(a)[0].status_code == 200
    record = launch.get(c, "/admin/arrivals")[0].json()
    assert record["count"] == 2 and [r["request_id"] for r in record["arrivals"]] == ["req-7", None]
    later = launch.get(c, f"/admin/arrivals?since_ns={record['arrivals'][0]['t_ns']}")[0].json()
    assert [r["request_id"] for r in later["arrivals"]] == [None]
    assert launch.get(c, "/admin/arrivals?since_ns=x")[0].status_code == 400
