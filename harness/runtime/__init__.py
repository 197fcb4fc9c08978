"""Runtimes run a topology's services: ``local`` (subprocesses, the default)
and ``docker`` (containers on the run's own network)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pathlib import Path

from ..errors import SetupError
from ..topology import Topology
from .base import Runtime

if TYPE_CHECKING:  # the toxiproxy module imports runtime.labels
    from ..toxiproxy import ToxiproxyClient

RUNTIMES = ("local", "docker")


class ToxiproxyHost(Protocol):
    """Where a run's Toxiproxy lives: a process on 127.0.0.1, or a container on the run's network."""

    def start(self) -> "ToxiproxyClient": ...
    def stop(self) -> None: ...
    def down(self) -> None: ...


def make_runtime(name: str, topology: Topology, *, run_id: str, toxiproxy: ToxiproxyClient, log_dir: Path, prefix: str) -> Runtime:
    """Builds (does not start) the named runtime for a topology."""
    if name == "local":
        from .local import LocalRuntime

        return LocalRuntime(topology=topology, run_id=run_id, toxiproxy=toxiproxy, log_dir=log_dir, prefix=prefix)
    if name == "docker":
        from .docker import DockerRuntime

        return DockerRuntime(topology=topology, run_id=run_id, toxiproxy=toxiproxy, log_dir=log_dir, prefix=prefix)
    raise SetupError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")


def make_toxiproxy(name: str, *, run_id: str, log_path: Path) -> ToxiproxyHost:
    """The Toxiproxy a run of the named runtime needs (not started). The docker
    one also owns the run's network and sweeps what dead docker runs left."""
    if name == "docker":
        from .run_network import RunNetwork

        return RunNetwork(run_id=run_id, log_path=log_path)
    if name == "local":
        from ..toxiproxy import ToxiproxyServer

        return ToxiproxyServer(run_id=run_id, log_path=log_path)
    raise SetupError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")


__all__ = ["RUNTIMES", "Runtime", "ToxiproxyHost", "make_runtime", "make_toxiproxy"]
