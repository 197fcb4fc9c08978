"""Faults against a real Toxiproxy and real processes: applied, recorded,
and always reverted, also when the block fails."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.errors import FaultError, ToxiproxyError
from harness.faults import FaultWindow, Schedule, injected, make_fault
from harness.runtime import make_runtime
from harness.topology import Link, Service, Topology
from harness.wait import wait_until

WEB = ("{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1")
PAIR = Topology(
    name="pair",
    services={"web": Service("web", command=WEB, health="/"), "db": Service("db", command=WEB, health="/")},
    links=(Link("web", "db"),),
    entry="web",
)


@pytest.fixture
def rt(run_id, toxiproxy, tmp_path):
    with make_runtime("local", PAIR, run_id=run_id, toxiproxy=toxiproxy, log_dir=tmp_path / "logs") as runtime:
        yield runtime


def via_link(rt) -> str:
    return f"http://{rt.link_proxies('web->db')[0].listen}/"


def timed_get(url: str) -> tuple[float, int]:
    start = time.monotonic()
    status = httpx.get(url, timeout=5).status_code
    return (time.monotonic() - start) * 1000, status


def test_latency_is_applied_and_reverted(rt):
    records = []
    with injected(make_fault("latency", "web->db", latency=300), rt, listener=lambda d, e, err: records.append((d.kind, e, err))):
        slow_ms, status = timed_get(via_link(rt))
        assert status == 200 and slow_ms >= 290
    fast_ms, _ = timed_get(via_link(rt))
    assert fast_ms < 250
    assert records == [("latency", "start", None), ("latency", "end", None)]
    assert rt.toxiproxy.toxics(rt.link_proxies("web->db")[0].proxy) == []


def test_revert_runs_when_the_block_fails(rt):
    with pytest.raises(RuntimeError, match="check failed"):
        with injected(make_fault("link_down", "web->db"), rt):
            with pytest.raises(httpx.ConnectError):
                httpx.get(via_link(rt), timeout=2)
            raise RuntimeError("check failed")
    assert timed_get(via_link(rt))[1] == 200


def test_fault_on_unknown_link_or_service_is_named(rt):
    with pytest.raises(FaultError, match=r"no link 'db->web'.*links: web->db"):
        with injected(make_fault("latency", "db->web"), rt):
            pass
    with pytest.raises(FaultError, match=r"'cache' is not a service .*web, db"):
        with injected(make_fault("crash", "cache"), rt):
            pass


def test_crash_and_pause_are_undone(rt):
    with injected(make_fault("crash", "db"), rt):
        assert not rt.is_running("db")
    assert timed_get(via_link(rt))[1] == 200
    with injected(make_fault("pause", "db"), rt):
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(rt.url("db"), timeout=0.3)
    assert timed_get(rt.url("db"))[1] == 200


def test_schedule_applies_at_t_for_d_and_stops_early_with_revert(rt):
    windows = [FaultWindow(make_fault("link_down", "web->db"), at_s=0.2, duration_s=30.0)]
    seen = []
    with Schedule(windows, rt, listener=lambda d, e, err: seen.append(e)):
        wait_until(lambda: seen == ["start"], what="the window's start", timeout_s=5, interval_s=0.01)
    assert seen == ["start", "end"]  # leaving the block reverted a 30 s window at once
    assert timed_get(via_link(rt))[1] == 200


def test_client_talks_only_to_its_own_server(toxiproxy, tmp_path, run_id):
    from harness.runtime.toxiproxy_hosts import LocalToxiproxy

    with LocalToxiproxy(run_id=run_id, log_path=tmp_path / "other.log") as other:
        toxiproxy.create_proxy("mine", upstream="127.0.0.1:9")
        assert "mine" in toxiproxy.proxies() and "mine" not in other.proxies()
        with pytest.raises(ToxiproxyError, match=r"create proxy mine .*ProxyExists"):
            toxiproxy.create_proxy("mine", upstream="127.0.0.1:9")
        toxiproxy.delete_proxy("mine")


def test_service_call_calls_the_instance_and_names_a_refusal(rt):
    ok = make_fault("service_call", "web", apply_path="/", revert_path="/", method="GET")
    with injected(ok, rt):
        pass  # http.server answers GET /: applied and reverted without error
    refused = make_fault("service_call", "web", apply_path="/admin/switch", revert_path="/admin/switch")
    with pytest.raises(FaultError, match=r"service_call: POST http://127\.0\.0\.1:\d+/admin/switch on web failed"):
        with injected(refused, rt):
            pass
    with pytest.raises(FaultError, match="apply_path must be a path"):
        make_fault("service_call", "web", apply_path="admin", revert_path="/")
