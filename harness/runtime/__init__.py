"""Runtimes run a topology's services: ``local`` (subprocesses, the default)
and ``docker`` (containers on the run's own network). Both are one
``Deployment`` (deployment.py) over a backend (local/, docker/)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SetupError
from ..topology import Topology
from ..toxiproxy import ToxiproxyClient
from .base import Runtime
from .deployment import Deployment
from .toxiproxy_hosts import RUNTIMES, ToxiproxyHost, make_toxiproxy, network_of


def make_runtime(name: str, topology: Topology, *, run_id: str, toxiproxy: ToxiproxyClient, log_dir: Path,
                 prefix: str = "t") -> Deployment:
    """Builds (does not start) the named runtime for a topology."""
    if name == "local":
        from .local import LocalBackend

        backend = LocalBackend(folder=topology.folder, source=topology.source)
    elif name == "docker":
        from .docker.backend import DockerBackend

        backend = DockerBackend(network=network_of(toxiproxy), run_id=run_id)
    else:
        raise SetupError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    return Deployment(topology=topology, backend=backend, toxiproxy=toxiproxy, run_id=run_id, log_dir=log_dir,
                      prefix=prefix)


__all__ = ["RUNTIMES", "Deployment", "Runtime", "ToxiproxyHost", "make_runtime", "make_toxiproxy"]
