"""The docker runtime against a real engine: images, wiring, operations,
partitions, sweeps, and that nothing labelled with a run is left behind.

Set-up (`make docker-engine`, part of `make test`) installs docker.io and
starts dockerd when no engine answers; these tests skip only when none
does. The first run also builds the base image (debootstrap, ~80 s).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from harness.errors import FaultError, ReadinessTimeout, ServiceError, SetupError
from harness.faults import injected, make_fault
from harness.runtime import engine
from harness.runtime.base import Runtime
from harness.runtime.containers import OWNER_PID, OWNER_START, RUN, run_labels, sweep_dead_runs
from harness.runtime.docker import DockerRuntime
from harness.runtime.images import BaseRecipe, ensure_base_image
from harness.runtime.labels import new_run_id
from harness.runtime.run_network import NetworkToxiproxy, RunNetwork
from harness.topology import Service, Topology, load

TARGET = Path(__file__).parent / "docker_target"
BULKHEAD = Path(__file__).resolve().parents[2] / "targets" / "bulkhead"
up_engine, why = engine.available()
needs_engine = pytest.mark.skipif(not up_engine, reason=f"no Docker engine: {why}")


def labelled(run_id: str) -> list[str]:
    """Containers and networks of a run still known to the engine."""
    c = engine.client()
    found = [f"container {x.name}" for x in c.containers.list(all=True, filters={"label": f"{RUN}={run_id}"})]
    return found + [f"network {n.name}" for n in c.networks.list(filters={"label": f"{RUN}={run_id}"})]


@pytest.fixture(scope="module")
def run_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunNetwork]:
    """One run network and Toxiproxy container for the module; nothing may outlive it."""
    rn = RunNetwork(run_id=new_run_id(), log_path=tmp_path_factory.mktemp("run") / "toxiproxy.log")
    with rn:
        yield rn
    assert labelled(rn.run_id) == []


@pytest.fixture
def network(run_network: RunNetwork) -> NetworkToxiproxy:
    return run_network.client


def make(topology: Topology, run_network: RunNetwork, tmp_path: Path, prefix: str) -> DockerRuntime:
    return DockerRuntime(topology=topology, run_id=run_network.run_id, toxiproxy=run_network.client,
                         log_dir=tmp_path / "logs", prefix=f"{run_network.run_id}.{prefix}")


@pytest.fixture
def runtime(run_network: RunNetwork, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DockerRuntime]:
    rt = make(load(TARGET), run_network, tmp_path, request.node.name[5:25].replace("_", "-"))
    try:
        yield rt
    finally:
        rt.down()
        services = [x for x in labelled(rt.run_id) if x.startswith("container") and "toxiproxy" not in x]
        assert services == [], "containers of the test's runtime are still there"


def get(url: str, *, timeout_s: float = 3.0) -> tuple[int, dict]:
    r = httpx.get(url, timeout=timeout_s)
    return r.status_code, r.json()


def wait_for(predicate, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)  # poll


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


@needs_engine
def test_satisfies_the_runtime_protocol(runtime):
    assert isinstance(runtime, Runtime) and runtime.name == "docker"


@needs_engine
def test_up_wires_links_through_the_toxiproxy_container_and_down_removes_it(runtime, network):
    events: list[tuple[str, int, str]] = []
    runtime.add_listener(lambda s, i, a, d: events.append((s, i, a)))
    runtime.up()
    assert get(runtime.entry_url()) == (200, {"service": "front", "path": ["front", "back"]})
    (proxy,) = runtime.link_proxies("front->back")
    assert proxy.listen.startswith("toxiproxy:") and proxy.upstream == f"{runtime.instances['back'][0].address(network.network)}:8000"
    env = runtime.instances["front"][0].container.attrs["Config"]["Env"]
    assert f"BACK_URL=http://{proxy.listen}" in env and "BIND_HOST=0.0.0.0" in env
    assert ("back", 0, "ready") in events and ("front", 0, "ready") in events
    labels = runtime.instances["back"][0].container.labels
    assert labels[RUN] == runtime.run_id and labels["harness.service"] == "back"
    ports = runtime.instances["back"][0].holder.attrs["HostConfig"]["PortBindings"]["8000/tcp"]
    assert [p["HostIp"] for p in ports] == ["127.0.0.1"]  # published on loopback only
    runtime.down()
    assert network.proxies() == {}
    assert runtime.logs("back").count("listening") == 1  # kept in the run folder after removal


@needs_engine
def test_kill_start_stop_restart_pause_resume(runtime):
    runtime.up()
    port = runtime.instances["back"][0].host_port
    runtime.kill("back")
    assert not runtime.is_running("back")
    t0 = time.monotonic()
    status, body = get(runtime.entry_url())
    assert status == 503 and "ConnectError" not in body["error"]  # front is alive, its dependency is not
    assert time.monotonic() - t0 < 0.5  # refused at once: the address stays while the service is dead
    runtime.start("back")
    assert runtime.instances["back"][0].host_port == port and get(runtime.url("back"))[0] == 200
    runtime.pause("back")
    assert runtime.is_running("back")
    with pytest.raises(httpx.TimeoutException):
        httpx.get(runtime.url("back") + "/health", timeout=0.5)  # accepted, never answered
    runtime.resume("back")
    assert get(runtime.url("back") + "/health")[0] == 200
    runtime.restart("back")
    assert get(runtime.entry_url())[0] == 200
    runtime.stop("back")
    assert not runtime.is_running("back")
    runtime.restart("back")  # a stopped instance just starts
    assert runtime.logs("back").count("listening") == 4  # one log across the container's starts


@needs_engine
def test_scale_out_and_in_adds_and_removes_containers_and_proxies(runtime, network):
    runtime.up()
    runtime.scale("back", 3)
    assert [p.instance for p in runtime.link_proxies("front->back")] == [0, 1, 2]
    assert all(get(runtime.url("back", i) + "/health")[0] == 200 for i in range(3))
    env = runtime.instances["front"][0].container.attrs["Config"]["Env"]
    assert sum(1 for line in env if line.startswith("BACK_URLS=")) == 1
    runtime.scale("back", 1)
    assert len(network.proxies()) == 1 and len(runtime.instances["back"]) == 1
    assert len([x for x in labelled(runtime.run_id) if "-back-" in x]) == 2  # its holder and its container


@needs_engine
def test_partition_cuts_an_instance_off_and_revert_heals_it(runtime):
    runtime.up()
    fault = make_fault("partition", "back")
    with injected(fault, runtime):
        assert get(runtime.entry_url())[0] == 503  # Toxiproxy cannot reach back
        with pytest.raises(httpx.TransportError):
            httpx.get(runtime.url("back") + "/health", timeout=1.0)  # nor can the harness
        assert runtime.is_running("back")  # cut off, not dead
    wait_for(lambda: answers(runtime.entry_url()), timeout_s=10, what="healed chain answers")
    assert get(runtime.url("back") + "/health")[0] == 200  # the same published port again


def test_partition_on_the_local_runtime_is_refused():
    class Local:
        name = "local"

    with pytest.raises(FaultError, match="no networks to cut"):
        make_fault("partition", "c").apply(Local())


def test_a_host_toxiproxy_is_refused_with_what_to_do(tmp_path):
    from harness.toxiproxy import ToxiproxyClient

    with pytest.raises(SetupError, match="needs the run's Toxiproxy container"):
        DockerRuntime(topology=load(TARGET), run_id="x", toxiproxy=ToxiproxyClient("127.0.0.1", 1), log_dir=tmp_path)


@needs_engine
def test_latency_toxic_on_a_link_inside_the_network(runtime):
    runtime.up()
    get(runtime.entry_url())  # warm
    with injected(make_fault("latency", "front->back", latency=300), runtime):
        t0 = time.monotonic()
        assert get(runtime.entry_url())[0] == 200
        assert time.monotonic() - t0 >= 0.3
    assert runtime.toxiproxy.toxics(runtime.link_proxies("front->back")[0].proxy) == []


@needs_engine
def test_never_healthy_names_service_address_and_log_and_cleans_up(run_network, network, tmp_path):
    base = ensure_base_image(engine.client())
    topo = Topology(name="sick", entry="x", services={"x": Service(
        "x", image=base, command=("python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0"),
        health="/nope", ready_timeout_s=2.0)})
    rt = make(topo, run_network, tmp_path, "sick")
    with pytest.raises(ReadinessTimeout) as err:
        rt.up()
    text = str(err.value)
    assert "service x[0] not healthy on 127.0.0.1:" in text and "404" in text and "Log tail" in text
    assert rt.instances["x"][0].container is None and network.proxies() == {}


@needs_engine
def test_tcp_health_waits_for_a_listener_behind_the_published_port(run_network, tmp_path):
    base = ensure_base_image(engine.client())
    late = "import time, socket; time.sleep(1.5); s = socket.socket(); s.bind(('0.0.0.0', 8000)); s.listen(); time.sleep(60)"
    topo = Topology(name="late", entry="x", services={"x": Service("x", image=base, command=("python3", "-c", late), health="tcp")})
    with make(topo, run_network, tmp_path, "late") as rt:
        events: list[str] = []
        rt.add_listener(lambda s, i, a, d: events.append(f"{a} {d}"))
        rt.restart("x")
        ready = [e for e in events if e.startswith("ready")][0]
        assert int(ready.split()[2]) >= 1400, ready  # the userland proxy's accept did not count


@needs_engine
def test_missing_image_and_early_exit_are_named(run_network, tmp_path):
    missing = Topology(name="m", entry="x", services={"x": Service("x", image="no-such/image:1")})
    with pytest.raises(SetupError, match="no such image"):
        make(missing, run_network, tmp_path, "m").up()
    base = ensure_base_image(engine.client())
    exits = Topology(name="e", entry="x", services={"x": Service("x", image=base, command=("sh", "-c", "echo boom; exit 3"))})
    with pytest.raises(ServiceError, match=r"(?s)exited with code 3.*boom"):
        make(exits, run_network, tmp_path, "e").up()


@needs_engine
def test_sweep_removes_what_dead_runs_left_and_keeps_live_runs():
    c = engine.client()
    base = ensure_base_image(c)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    dead_labels = {**run_labels("dead-run"), OWNER_PID: str(dead.pid)}
    live_labels = run_labels("live-run")
    made = []
    try:
        for labels, name in ((dead_labels, "h-dead-run"), (live_labels, "h-live-run")):
            made.append(c.networks.create(name, labels=labels, check_duplicate=True))
            made.append(c.containers.create(base, ["sleep", "60"], name=f"{name}-x", labels=labels, network=name))
        reused = {**run_labels("reused-run"), OWNER_START: "1"}  # our pid, another process's start time
        made.append(c.containers.create(base, ["sleep", "60"], name="h-reused-run-x", labels=reused))
        removed = sweep_dead_runs(c)
        assert set(removed) >= {"container h-dead-run-x", "network h-dead-run", "container h-reused-run-x"}
        assert labelled("live-run") == ["container h-live-run-x", "network h-live-run"]
    finally:
        for thing in reversed(made):
            try:
                thing.remove(force=True) if hasattr(thing, "start") else thing.remove()
            except Exception:
                pass


@needs_engine
def test_experiment_through_the_harness_run_records_lifecycle_and_leaves_nothing(tmp_path):
    from harness.experiment import Phases
    from harness.load import LoadSpec
    from harness.session import HarnessRun

    run = HarnessRun(reports_dir=tmp_path, runtime="docker").open()
    try:
        result = run.experiment(TARGET, name="crash-back", fault=make_fault("crash", "back"),
                                load=LoadSpec(users=2, rate_per_s=20, timeout_s=5.0),
                                phases=Phases(baseline_s=1.0, fault_s=1.0, recovery_s=2.0))
    finally:
        run.close()
    lifecycle = result.frames.lifecycle
    assert {"kill", "start", "ready"} <= set(lifecycle[lifecycle["service"] == "back"]["action"])
    requests = result.frames.requests
    assert len(requests) > 20 and requests["ok"].sum() > 10
    assert result.frames.meta["runtime"] == "docker"
    assert (run.folder / "toxiproxy.log").read_text().count("Started proxy") >= 1
    assert (result.folder / "logs" / "back-0.log").read_text().count("listening") == 2  # before and after the crash
    assert labelled(run.run_id) == []


@needs_engine
def test_base_image_is_reused_while_its_recipe_is_unchanged(monkeypatch):
    from harness.runtime import images

    tag = ensure_base_image(engine.client())
    monkeypatch.setattr(images, "build_base_image", lambda *a, **k: pytest.fail("built the base image again"))
    assert ensure_base_image(engine.client()) == tag == BaseRecipe().tag
    assert engine.client().images.get(tag).labels["harness.recipe"] == BaseRecipe().digest


@needs_engine
def test_toxiproxy_api_and_network_belong_to_the_run(run_network):
    c = engine.client()
    (tp,) = c.containers.list(filters={"label": [f"{RUN}={run_network.run_id}", "harness.role=toxiproxy"]})
    assert [b["HostIp"] for b in tp.attrs["HostConfig"]["PortBindings"]["8474/tcp"]] == ["127.0.0.1"]
    net = c.networks.get(run_network.network)
    assert net.attrs["Labels"][RUN] == run_network.run_id
    assert net.attrs["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"


@needs_engine
def test_bulkhead_database_in_a_container_answers_both_links_and_outlives_a_kill(run_network, tmp_path):
    """The one target with Debian packages in its image: PostgreSQL from ARG DEBS, run by
    postgres.py as the image's postgres user on 0.0.0.0, reached from the run's network
    through both links, with its cluster in the bind-mounted /data across a SIGKILL; and
    a stop is postgres's fast shutdown (STOPSIGNAL SIGINT), not a grace run-out."""
    rt = make(load("bulkhead"), run_network, tmp_path, "bulkhead")
    try:
        rt.up()
        app = rt.url("app")
        assert get(app + "/checkout")[0] == 200
        status, report = get(app + "/report")
        assert status == 200 and report["orders"] >= 1
        assert "as postgres on 0.0.0.0:8000" in rt.logs("db")
        rt.kill("db")
        rt.start("db")
        wait_for(lambda: answers(app + "/report"), timeout_s=15, what="a report after the database's restart")
        assert get(app + "/report")[1]["orders"] == report["orders"]  # the same cluster, crash-recovered
        started = time.monotonic()
        rt.stop("db")  # the app holds pooled sessions open: smart shutdown would wait for them
        assert rt.instances["db"][0].exit_code() == 0 and time.monotonic() - started < rt.grace_s
    finally:
        rt.down()
