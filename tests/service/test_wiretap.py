"""The harness records, from the wire, the HTTP calls a client makes on a link: on both backends,
with no help from either service, also while the server is down; its canaries are left out."""

from __future__ import annotations

import shutil

import httpx
import pytest

from harness.faults import injected, make_fault
from harness.landing.canary import send_canary
from harness.topology import load_topology
from harness.wait import wait_until
from harness.wiretap import http_calls_probe

from .conftest import PAIR

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup installs it)")


def test_every_call_on_a_link_is_recorded_with_its_answer_also_when_the_server_is_down(deploy, tmp_path):
    rt = deploy(load_topology(PAIR).with_variant("correct"))
    rt.up()
    [probe] = http_calls_probe(rt, "front->back", folder=tmp_path / "taps")
    events: list[dict] = []

    def calls(n: int) -> bool:
        events.extend(probe.sample()["events"])
        return sum(e["event"] == "arrival" for e in events) >= n

    try:
        with httpx.Client(timeout=3.0, trust_env=False) as client:
            for _ in range(3):
                client.get(rt.entry_url() + "/")
            send_canary(rt.toxiproxy.canary_address(rt.link_proxies("front->back")[0].listen))
            wait_until(lambda: calls(3), timeout_s=10, what="3 calls through front->back on the wire")
            with injected(make_fault("crash", "back"), rt):
                client.get(rt.entry_url() + "/")  # front's call reaches the proxy; back is gone
                wait_until(lambda: calls(4), timeout_s=10, what="the call made while back was down")
    finally:
        probe.close()
    arrivals = [e for e in events if e["event"] == "arrival"]
    answers = [e for e in events if e["event"] == "answer"]
    assert len(arrivals) == 4 and all(e["method"] == "GET" and e["path"] for e in arrivals), arrivals
    assert [e["status"] for e in answers[:3]] == [200, 200, 200], answers
    assert len(answers) == 3  # the proxy closed the last one unanswered
    assert all(e["duration_ms"] >= 0 for e in answers[:3])
    assert arrivals == sorted(arrivals, key=lambda e: e["t_ns"])
