"""Runtimes run a topology's services: ``local`` (subprocesses, the default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path

from ..errors import SetupError
from ..topology import Topology
from .base import Runtime

if TYPE_CHECKING:  # the toxiproxy module imports runtime.labels
    from ..toxiproxy import ToxiproxyClient

RUNTIMES = ("local", "docker")


def make_runtime(name: str, topology: Topology, *, run_id: str, toxiproxy: ToxiproxyClient, log_dir: Path, prefix: str) -> Runtime:
    """Builds (does not start) the named runtime for a topology."""
    if name == "local":
        from .local import LocalRuntime

        return LocalRuntime(topology=topology, run_id=run_id, toxiproxy=toxiproxy, log_dir=log_dir, prefix=prefix)
    if name == "docker":
        raise SetupError("the docker runtime is not available yet; use --runtime local")
    raise SetupError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")


__all__ = ["RUNTIMES", "Runtime", "make_runtime"]
