"""The same protocol test against both backends: whatever runs the
instances (processes, containers), a deployment wires links through
proxies, signals instances the same way, scales, names what went wrong and
leaves nothing behind.

The docker cases skip only when no engine answers (`make docker-engine`,
part of `make test`, starts one).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from harness.errors import ReadinessTimeout, ServiceError
from harness.faults import injected, make_fault
from harness.runtime import Deployment, Runtime
from harness.runtime.backend import Backend, Instance
from harness.topology import Service, Topology, load_topology

from .conftest import PAIR


def env_of(rt: Deployment, service: str, index: int = 0) -> dict[str, str]:
    """The environment an instance really got, read back from the process or the container."""
    inst = rt.instances[service][index]
    if rt.name == "docker":
        raw = inst.handle.container.attrs["Config"]["Env"]
    else:
        raw = Path(f"/proc/{inst.handle.pid}/environ").read_bytes().decode().split("\0")
    return dict(line.split("=", 1) for line in raw if "=" in line)


def get(url: str, *, timeout_s: float = 3.0) -> tuple[int, dict]:
    r = httpx.get(url, timeout=timeout_s, trust_env=False)
    return r.status_code, r.json()


def sick(rt_name: str, **service: object) -> Topology:
    """One service that runs Python's own http.server (or `command`), on either backend
    (in a container: the pair's image)."""
    bind = "0.0.0.0" if rt_name == "docker" else "127.0.0.1"
    command = service.pop("command", ("{python}", "-m", "http.server", "{port}", "--bind", bind))
    return Topology(name="one", entry="x", services={"x": Service("x", command=command, **service)}, folder=PAIR)


def test_a_backend_runs_one_instance_through_the_protocol(deploy):
    """The backend's own methods, without the deployment's bookkeeping."""
    rt = deploy(load_topology(PAIR))
    backend = rt.backend
    assert isinstance(backend, Backend)
    backend.prepare(rt.topology)
    svc = rt.topology.service("back")
    inst = backend.create(svc, 0, log_path=rt.log_dir / "solo.log", prefix=f"{rt.prefix}.solo")
    assert isinstance(inst, Instance) and not backend.running(inst)
    try:
        env = {"PORT": inst.places["port"], **inst.env, "SERVICE_NAME": "back"}
        command = [p.format(**inst.places) for p in svc.command]
        assert "port" in backend.spawn(inst, command=command, env=env)
        assert backend.wait(inst, health="/health", timeout_s=20) >= 0
        assert backend.running(inst) and ":" in backend.address(inst)
        backend.pause(inst)
        with pytest.raises(httpx.TimeoutException):
            httpx.get(f"http://127.0.0.1:{inst.port}/health", timeout=0.5, trust_env=False)
        backend.resume(inst)
        assert get(f"http://127.0.0.1:{inst.port}/health")[0] == 200
        backend.kill(inst)
        assert not backend.running(inst)
        backend.spawn(inst, command=command, env=env)
        backend.wait(inst, health="/health", timeout_s=20)
        assert backend.stop(inst, grace_s=3) is not None and not backend.running(inst)
        assert backend.logs(inst).count("listening") == 2
    finally:
        backend.remove(inst)
    assert not backend.running(inst) and backend.logs(inst).count("listening") == 2  # the log outlives the instance


def test_up_wires_links_through_proxies_and_down_removes_everything(deploy, host):
    rt = deploy(load_topology(PAIR))
    events: list[tuple[str, int, str]] = []
    rt.add_listener(lambda s, i, a, d: events.append((s, i, a)))
    rt.up()
    assert isinstance(rt, Runtime) and rt.name == host[0]
    assert get(rt.entry_url()) == (200, {"service": "front", "path": ["front", "back"]})
    (proxy,) = rt.link_proxies("front->back")
    assert proxy.upstream == rt.backend.address(rt.instances["back"][0])
    env = env_of(rt, "front")
    assert env["BACK_URL"] == f"http://{proxy.listen}" and env["BACK_URLS"] == f"http://{proxy.listen}"
    assert env["UPSTREAM_URL"] == env["BACK_URL"]  # ${BACK_URL} in the topology's env, filled in
    assert env["SERVICE_NAME"] == "front" and env["INSTANCE"] == "0" and env["HARNESS_RUN"] == rt.run_id
    assert {("back", 0, "start"), ("back", 0, "ready"), ("front", 0, "ready")} <= set(events)
    rt.down()
    assert rt.toxiproxy.proxies() == {}
    assert rt.logs("back").count("listening") == 1  # kept after the instance is gone


def test_kill_start_stop_restart_pause_resume(deploy):
    rt = deploy(load_topology(PAIR))
    rt.up()
    port = rt.instances["back"][0].port
    rt.kill("back")
    assert not rt.is_running("back")
    started = time.monotonic()
    assert get(rt.entry_url())[0] == 503  # front is alive, its dependency is not
    assert time.monotonic() - started < 0.5  # refused at once: the address stays while the service is dead
    rt.start("back")
    assert rt.instances["back"][0].port == port and get(rt.url("back"))[0] == 200
    with pytest.raises(ServiceError, match=r"back\[0\] is already running"):
        rt.start("back")
    rt.pause("back")
    assert rt.is_running("back")
    with pytest.raises(httpx.TimeoutException):
        httpx.get(rt.url("back") + "/health", timeout=0.5, trust_env=False)  # accepted, never answered
    rt.resume("back")
    assert get(rt.url("back") + "/health")[0] == 200
    rt.restart("back")
    assert get(rt.entry_url())[0] == 200
    rt.stop("back")
    assert not rt.is_running("back")
    with pytest.raises(ServiceError, match=r"back\[0\] is not running"):
        rt.pause("back")
    rt.restart("back")  # a stopped instance just starts
    assert rt.logs("back").count("listening") == 4  # one log across the instance's starts


def test_scale_out_and_in_adds_and_removes_instances_and_proxies(deploy):
    rt = deploy(load_topology(PAIR))
    rt.up()
    rt.scale("back", 3)
    assert [p.instance for p in rt.link_proxies("front->back")] == [0, 1, 2]
    assert len(rt.toxiproxy.proxies()) == 3
    assert all(get(rt.url("back", i) + "/health")[0] == 200 for i in range(3))
    rt.scale("back", 1)
    assert len(rt.toxiproxy.proxies()) == 1 and len(rt.instances["back"]) == 1
    with pytest.raises(ServiceError, match="keep at least 1"):
        rt.scale("back", 0)


def test_latency_toxic_on_a_link(deploy):
    rt = deploy(load_topology(PAIR))
    rt.up()
    get(rt.entry_url())  # warm
    with injected(make_fault("latency", "front->back", latency=300), rt):
        started = time.monotonic()
        assert get(rt.entry_url())[0] == 200
        assert time.monotonic() - started >= 0.3
    assert rt.toxiproxy.toxics(rt.link_proxies("front->back")[0].proxy) == []


def test_never_healthy_names_service_address_and_log_and_cleans_up(deploy, host):
    rt = deploy(sick(host[0], health="/nope", ready_timeout_s=2.0))
    with pytest.raises(ReadinessTimeout) as err:
        rt.up()
    text = str(err.value)
    assert "service x[0] not healthy on 127.0.0.1:" in text and "404" in text and "Log tail" in text
    assert rt.toxiproxy.proxies() == {} and not rt.backend.running(rt.instances["x"][0])


def test_early_exit_is_named_with_its_code_and_log(deploy, host):
    rt = deploy(sick(host[0], command=("{python}", "-c", "import sys; print('boom'); sys.exit(3)")))
    with pytest.raises(ServiceError, match=r"(?s)x\[0\] exited with code 3.*boom"):
        rt.up()
