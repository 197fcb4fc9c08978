"""What only the docker backend does, against a real engine: pods, partitions,
published ports, images, sweeps, and that nothing labelled with a run is
left behind. What both backends share is tests/service/test_runtimes.py.

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

from harness.errors import FaultError, ServiceError, SetupError
from harness.faults import injected, make_fault
from harness.runtime import Deployment, make_runtime
from harness.runtime.docker import engine
from harness.runtime.docker.images import BaseRecipe, ensure_base_image
from harness.runtime.docker.run_labels import OWNER_PID, OWNER_START, RUN, run_labels, sweep_dead_containers
from harness.runtime.labels import new_run_id
from harness.runtime.toxiproxy_hosts import DockerToxiproxy, NetworkToxiproxy
from harness.topology import Service, Topology, load_topology
from harness.wait import wait_until

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
def run_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerToxiproxy]:
    """One run network and Toxiproxy container for the module; nothing may outlive it."""
    rn = DockerToxiproxy(run_id=new_run_id(), log_path=tmp_path_factory.mktemp("run") / "toxiproxy.log")
    with rn:
        yield rn
    assert labelled(rn.run_id) == []


@pytest.fixture
def network(run_network: DockerToxiproxy) -> NetworkToxiproxy:
    return run_network.client


def make(topology: Topology, run_network: DockerToxiproxy, tmp_path: Path, prefix: str) -> Deployment:
    return make_runtime("docker", topology, run_id=run_network.run_id, toxiproxy=run_network.client,
                        log_dir=tmp_path / "logs", prefix=f"{run_network.run_id}.{prefix}")


@pytest.fixture
def runtime(run_network: DockerToxiproxy, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    rt = make(load_topology(TARGET), run_network, tmp_path, request.node.name[5:25].replace("_", "-"))
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
    wait_until(predicate, what=what, timeout_s=timeout_s)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


@needs_engine
def test_a_pod_holds_the_address_and_a_loopback_port_and_carries_the_run_labels(runtime, network):
    runtime.up()
    (proxy,) = runtime.link_proxies("front->back")
    pod = runtime.instances["back"][0].handle
    assert proxy.listen.startswith("toxiproxy:") and proxy.upstream == f"{pod.address(network.network)}:8000"
    assert "BIND_HOST=0.0.0.0" in runtime.instances["front"][0].handle.container.attrs["Config"]["Env"]
    assert pod.container.labels[RUN] == runtime.run_id and pod.container.labels["harness.service"] == "back"
    assert pod.container.attrs["HostConfig"]["NetworkMode"] == f"container:{pod.holder.id}"
    ports = pod.holder.attrs["HostConfig"]["PortBindings"]["8000/tcp"]
    assert [p["HostIp"] for p in ports] == ["127.0.0.1"]  # published on loopback only
    runtime.down()
    assert labelled(runtime.run_id) == [f"container h-{runtime.run_id}-toxiproxy", f"network h-{runtime.run_id}"]


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
        make_runtime("docker", load_topology(TARGET), run_id="x", toxiproxy=ToxiproxyClient("127.0.0.1", 1), log_dir=tmp_path)


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
        removed = sweep_dead_containers(c)
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
    from harness.runtime.docker import images

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
    rt = make(load_topology("bulkhead"), run_network, tmp_path, "bulkhead")
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
        assert rt.instances["db"][0].handle.exit_code() == 0 and time.monotonic() - started < rt.grace_s
    finally:
        rt.down()
