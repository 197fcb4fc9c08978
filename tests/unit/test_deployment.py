"""The deployment's own bookkeeping, over a backend that only records what it
is asked (the real backends run in tests/service/test_runtimes.py): the
order things are taken down in, and what a scale adds and removes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import FaultError
from harness.runtime.backend import Instance
from harness.runtime.deployment import Deployment
from harness.topology import Link, Service, Topology


class Recording:
    """A backend whose instances are entries in a list of calls."""

    name = "recording"
    pause_detail, resume_detail = "paused", "resumed"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.alive: set[str] = set()

    def prepare(self, topology: Topology) -> None:
        self.calls.append(("prepare", topology.name))

    def create(self, service: Service, index: int, *, log_path: Path, prefix: str) -> Instance:
        return Instance(service.name, index, f"{service.name}-{index}", 9000 + index, log_path,
                        places={"python": "py", "target": ".", "port": "8000", "data": "/d"})

    def address(self, inst: Instance) -> str:
        return f"10.0.0.1:{inst.port}"

    def spawn(self, inst: Instance, *, command: list[str] | None, env: dict[str, str]) -> str:
        self.calls.append(("spawn", inst.name))
        self.alive.add(inst.name)
        return "started"

    def wait(self, inst: Instance, *, health: str, timeout_s: float) -> float:
        return 0.0

    def running(self, inst: Instance) -> bool:
        return inst.name in self.alive

    def remove(self, inst: Instance) -> None:
        self.calls.append(("remove", inst.name))
        self.alive.discard(inst.name)

    def __getattr__(self, name: str) -> Any:  # kill, stop, pause, resume, logs: recorded
        if name not in ("kill", "stop", "pause", "resume", "logs"):
            raise AttributeError(name)
        return lambda inst, **kw: self.calls.append((name, inst.name))


class Proxies:
    """The few Toxiproxy calls a deployment makes, kept in a dict."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}

    def new_listen(self) -> str:
        return "127.0.0.1:0"

    def reachable_at(self, listen: str) -> str:
        return listen

    def create_proxy(self, name: str, *, upstream: str, listen: str) -> dict[str, str]:
        self.made[name] = upstream
        return {"listen": f"127.0.0.1:{20000 + len(self.made)}"}

    def delete_proxy(self, name: str) -> None:
        self.made.pop(name)


def deployment() -> tuple[Deployment, Recording, Proxies]:
    topo = Topology(name="shop", entry="web", services={
        "db": Service("db", command=("db",)), "api": Service("api", command=("api",), instances=2),
        "web": Service("web", command=("web",))}, links=(Link("web", "api"), Link("api", "db")))
    backend, proxies = Recording(), Proxies()
    return Deployment(topology=topo, backend=backend, toxiproxy=proxies, run_id="r", log_dir=Path("/tmp/shop")), \
        backend, proxies


def test_down_deletes_proxies_first_then_removes_clients_before_their_servers():
    rt, backend, proxies = deployment()
    rt.up()
    assert len(proxies.made) == 3  # web->api twice (one per api instance), api->db once
    rt.down()
    removed = [name for call, name in backend.calls if call == "remove"]
    assert removed == ["web-0", "api-0", "api-1", "db-0"] and proxies.made == {}


def test_scale_adds_and_removes_instances_with_their_proxies_and_events():
    rt, backend, proxies = deployment()
    events: list[tuple[str, int, str]] = []
    rt.add_listener(lambda s, i, a, d: events.append((s, i, a)))
    rt.up()
    rt.scale("db", 2)
    assert [p.upstream for p in rt.link_proxies("api->db")] == ["10.0.0.1:9000", "10.0.0.1:9001"]
    rt.scale("db", 1)
    assert ("db", 1, "scale-in") in events and len(proxies.made) == 3
    assert ("remove", "db-1") in backend.calls


def test_resume_is_recorded_before_the_backend_is_asked():
    rt, backend, _ = deployment()
    rt.up()
    seen: list[str] = []
    rt.add_listener(lambda s, i, a, d: seen.append(f"{a} {d} after {len(backend.calls)} calls"))
    rt.pause("db")
    calls_before = len(backend.calls)
    rt.resume("db")
    assert seen == [f"pause paused after {calls_before} calls", f"resume resumed after {calls_before} calls"]


def test_a_partition_needs_a_backend_with_a_network():
    rt, _, _ = deployment()
    rt.up()
    with pytest.raises(FaultError, match="the recording runtime has no networks to cut"):
        rt.partition("db")
