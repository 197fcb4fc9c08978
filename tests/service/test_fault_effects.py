"""The harness sees, on its own, whether each fault took effect, on both backends.

front -> back (tests/service/docker_target) with traffic driven through
front while each fault is on: every kind must be seen to land, with its
evidence; the same toxic on a link the client bypasses (it calls back at
its own address) must be seen not to.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Iterator

import httpx
import pytest

from harness.events import FaultEffect
from harness.faults import injected, make_fault
from harness.runtime import Deployment
from harness.topology import Variant, load_topology

from .conftest import PAIR

BYPASS = Variant(name="bypass", description="front calls back at its own address",
                 service_env={"front": {"UPSTREAM_URL": "${BACK_DIRECT_URL}"}})


def pair(variant: str = "correct"):
    topo = load_topology(PAIR)
    return replace(topo, variants={**topo.variants, "bypass": BYPASS}).with_variant(variant)


class Traffic:
    """Requests to front, one after another, while the block runs: the client's own traffic."""

    def __init__(self, rt: Deployment) -> None:
        self.url, self.sent = rt.entry_url() + "/", 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=3.0, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    client.get(self.url)
                except httpx.HTTPError:
                    pass
                self.sent += 1
                self._stop.wait(0.02)  # pacing of the load

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def effect_of(rt: Deployment, fault, *, window_s: float = 1.5) -> FaultEffect:
    """Applies the fault under traffic for window_s, and returns what its watch saw."""
    seen: list[FaultEffect] = []
    with Traffic(rt):
        wait = threading.Event()
        wait.wait(0.5)  # pacing: some traffic before the fault
        with injected(fault, rt, on_effect=seen.append):
            wait.wait(window_s)  # pacing: the fault window
    assert len(seen) == 1
    return seen[0]


@pytest.fixture
def up(deploy) -> Iterator:
    def make(variant: str = "correct") -> Deployment:
        rt = deploy(pair(variant))
        rt.up()
        return rt

    yield make


@pytest.mark.parametrize("kind, params, said", [
    ("latency", {"latency": 300}, "answered 300 ms later"),
    ("reset_peer", {"timeout": 0}, "was reset"),
    ("timeout", {"timeout": 0}, "got no data back"),
    ("link_down", {}, "was refused"),
    ("bandwidth", {"rate": 1}, "is on every proxy"),
])
def test_a_fault_on_the_link_lands_with_traffic_and_a_canary(up, kind, params, said):
    rt = up()
    effect = effect_of(rt, make_fault(kind, "front->back", **params))
    assert effect.landed is True, effect
    assert any(said in line for line in effect.evidence), effect.evidence
    assert effect.figures["client_bytes_before"] + effect.figures["client_bytes_during"] > 0
    assert effect.figures["seen_after_ms"] >= 0
    assert rt.toxiproxy.toxics(rt.link_proxies("front->back")[0].proxy) == []


@pytest.mark.parametrize("kind, params", [("latency", {"latency": 300}), ("link_down", {})])
def test_a_link_its_client_bypasses_is_not_landed(up, kind, params):
    rt = up("bypass")
    effect = effect_of(rt, make_fault(kind, "front->back", **params))
    assert effect.landed is False, effect
    assert "does not use the address the harness gave it" in effect.reason
    assert effect.figures["client_bytes_before"] == 0 and effect.figures["client_bytes_during"] == 0


@pytest.mark.parametrize("kind, said", [
    ("pause", "processes stopped"), ("crash", "ended"), ("stop", "ended"), ("restart", "new start"),
])
def test_a_fault_on_an_instance_is_seen_by_the_kernel_or_the_engine(up, kind, said):
    rt = up()
    effect = effect_of(rt, make_fault(kind, "back"), window_s=1.0)
    assert effect.landed is True, effect
    assert any(said in line for line in effect.evidence), effect.evidence
    assert rt.is_running("back")


def test_scale_out_lands_when_the_new_instance_answers_health(up):
    rt = up()
    effect = effect_of(rt, make_fault("scale_out", "back"), window_s=0.5)
    assert effect.landed is True, effect
    assert effect.figures["new_answered"] == [1]


def test_a_partition_is_seen_from_the_run_network(up, host):
    if host[0] != "docker":
        pytest.skip("only the docker backend has networks to cut")
    rt = up()
    effect = effect_of(rt, make_fault("partition", "back"), window_s=1.0)
    assert effect.landed is True, effect
    assert any("off the network" in line for line in effect.evidence), effect.evidence


def test_a_service_call_without_a_way_to_verify_it_is_not_verified(up):
    rt = up()
    fault = make_fault("service_call", "back", apply_path="/health", revert_path="/health", method="GET")
    effect = effect_of(rt, fault, window_s=0.2)
    assert effect.landed is None and "declares no verify_path" in effect.reason


def test_the_connections_a_client_opens_through_a_link_are_seen_in_toxiproxys_log(up):
    # back crashed: its proxy accepts each of front's calls and closes it at once, so neither the
    # kernel's socket table nor the byte metrics keep them; the log does, on both backends
    from harness.probes import proxy_connections_probe
    from harness.wait import wait_until

    rt = up()
    [probe] = proxy_connections_probe(rt, "front->back")
    seen: list[dict] = []
    try:
        with injected(make_fault("crash", "back"), rt):
            with Traffic(rt) as traffic:
                wait_until(lambda: seen.extend(probe.sample()["events"]) or len(seen) >= 3, timeout_s=10,
                           what="3 connections through front->back seen in Toxiproxy's log")
            assert traffic.sent >= 1
    finally:
        probe.close()
    assert all(e["event"] == "connection" and e["client"] for e in seen), seen
    assert all(abs(e["t_ns"] - seen[0]["t_ns"]) < 30e9 for e in seen)
