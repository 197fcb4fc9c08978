"""examples/gobreaker, the Go breaker, run for real: what its [spec] says of it
holds (the size of dep's answer, the fast-fail a refusal is), so the
experiments judge it from figures that are true of it."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from harness.runtime.ports import free_port
from harness.topology import load_topology

from .launcher import Launcher

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "gobreaker"
BINARY = FOLDER / "bin" / "service"
TOPOLOGY = load_topology(FOLDER)
SPEC = TOPOLOGY.spec



@pytest.fixture(autouse=True)
def built() -> None:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is not built: run `make examples` (make setup and make test do)")


def test_deps_answer_on_the_wire_is_the_size_the_spec_gives(launcher: Launcher) -> None:
    dep = launcher.command("dep", [str(BINARY)], ROLE="dep", SERVICE_NAME="dep")
    launcher.healthy(dep)
    with socket.create_connection(("127.0.0.1", dep.port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: dep\r\n\r\n")
        raw = b""
        while b"\r\n\r\n" not in raw or len(raw) < raw.index(b"\r\n\r\n") + 4 + int(
                raw.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
            chunk = conn.recv(4096)
            assert chunk, raw
            raw += chunk
    assert len(raw) == SPEC["answer_bytes"], raw


def test_after_five_failures_in_a_row_front_refuses_fast_with_the_specs_status(launcher: Launcher) -> None:
    """dep at a closed port: each call fails at once (502), the 5th opens the breaker, the 6th is refused."""
    env = TOPOLOGY.services["front"].env
    front = launcher.command("front", [str(BINARY)], **{**env, "DEP_URL": f"http://127.0.0.1:{free_port()}",
                                                        "SERVICE_NAME": "front", "VARIANT": "correct"})
    launcher.healthy(front)
    statuses = [launcher.http.get(front.url + "/").status_code for _ in range(SPEC["failure_threshold"])]
    assert statuses == [502] * SPEC["failure_threshold"]
    started = time.monotonic()
    refused = launcher.http.get(front.url + "/")
    took_ms = (time.monotonic() - started) * 1000
    assert refused.status_code == SPEC["fast_fail_status"] and took_ms < SPEC["fast_fail_p99_ms"], (refused, took_ms)
    assert refused.json() == {"message": "circuit breaker is open"}
