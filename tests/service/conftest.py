"""Fixtures of the harness's own tests: a real Toxiproxy server, a run id
whose processes must all be gone when a test ends, and a launcher of target
programs that ends them all."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from harness.runtime import Deployment, make_runtime
from harness.runtime.docker import engine
from harness.runtime.labels import new_run_id
from harness.runtime.toxiproxy_hosts import LocalToxiproxy, make_toxiproxy
from harness.topology import Topology
from harness.toxiproxy import ToxiproxyClient

from .launcher import Launcher, labelled_pids

PAIR = Path(__file__).parent / "docker_target"  # front -> back; runs as a process or in the target image
up_engine, why = engine.available()


@pytest.fixture
def run_id() -> Iterator[str]:
    rid = new_run_id()
    yield rid
    assert labelled_pids(rid) == [], "processes of the test's run are still alive"


@pytest.fixture
def toxiproxy(tmp_path: Path, run_id: str) -> Iterator[ToxiproxyClient]:
    with LocalToxiproxy(run_id=run_id, log_path=tmp_path / "toxiproxy.log") as client:
        yield client


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """Starts target programs; at teardown, also after a failure, every one is stopped."""
    with Launcher(tmp_path) as started:
        yield started


@pytest.fixture(scope="module", params=["local", "docker"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ToxiproxyClient, str]]:
    """One run's Toxiproxy per backend for the module: a process, or a container on the run's network."""
    if request.param == "docker" and not up_engine:
        pytest.skip(f"no Docker engine: {why}")
    run_id = new_run_id()
    server = make_toxiproxy(request.param, run_id=run_id, log_path=tmp_path_factory.mktemp("run") / "toxiproxy.log")
    with server as client:
        yield request.param, client, run_id
    assert labelled_pids(run_id) == []


@pytest.fixture
def deploy(host, tmp_path: Path) -> Iterator:
    """Makes deployments of a topology on the module's backend; takes each down and checks it left nothing."""
    name, client, run_id = host
    made: list[Deployment] = []

    def make(topology: Topology) -> Deployment:
        rt = make_runtime(name, topology, run_id=run_id, toxiproxy=client, log_dir=tmp_path / f"logs{len(made)}",
                          prefix=f"{run_id}.{len(made)}")
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.down()
        assert client.proxies() == {}
        assert all(not rt.backend.running(i) for insts in rt.instances.values() for i in insts)
