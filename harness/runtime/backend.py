"""What a deployment asks of whatever runs its instances: the backend protocol.

A ``Deployment`` (deployment.py) owns everything the runtimes share:
instances, proxies, listeners, link environment, scaling and the stop
order. A backend only runs one instance at a time: it gives the instance an
address, spawns it, waits for its health, signals it and removes it. Two
backends exist, ``local`` (processes) and ``docker`` (containers); a third
(Kubernetes pods, say) implements the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..topology import Service, Topology

HOST = "127.0.0.1"  # where the harness reaches every instance: load, probes, readiness


@dataclass
class Instance:
    """One instance of a service, whatever runs it."""

    service: str
    index: int
    name: str  # unique in the run (a container's name, a pod's)
    port: int  # the instance's port on 127.0.0.1, for the harness
    log_path: Path
    places: dict[str, str] = field(default_factory=dict)  # what {python} {target} {port} {data} mean for it
    env: dict[str, str] = field(default_factory=dict)  # the backend's own variables (BIND_HOST, say)
    handle: Any = None  # the backend's: a process, a pod
    paused: bool = False

    @property
    def data_dir(self) -> Path:
        """The instance's own folder for files that must outlive a restart (a database's)."""
        return self.log_path.with_suffix(".data")

    @property
    def label(self) -> str:
        return f"{self.service}[{self.index}]"


@dataclass(frozen=True)
class InstanceState:
    """What the kernel or the engine says of an instance, read by the harness itself:
    the evidence that a pause stopped it or a crash ended it. `ident` tells one
    start from the next (a pid, a container's start time)."""

    alive: int  # processes (or containers) that still run, stopped ones included
    stopped: int  # of those, how many are stopped (state T) or frozen (paused)
    ident: str  # the running start's identity; "" when nothing runs
    source: str  # where it was read: "/proc/<pid>/stat of 3 processes", "docker inspect"
    network: str | None = None  # the instance's address on its network, where it has one

    def to_json(self) -> dict[str, object]:
        return {"alive": self.alive, "stopped": self.stopped, "ident": self.ident, "source": self.source,
                **({"network": self.network} if self.network is not None else {})}


@runtime_checkable
class Backend(Protocol):
    """Runs instances. Every method acts on one instance and names it in its errors."""

    name: str
    pause_detail: str  # what pause and resume do, as the lifecycle events say it
    resume_detail: str

    def prepare(self, topology: Topology) -> None:
        """Everything the topology's instances need before one is created (images, say)."""
        ...

    def create(self, service: Service, index: int, *, log_path: Path, prefix: str) -> Instance:
        """A new instance with its address; nothing of the service runs yet."""
        ...

    def address(self, inst: Instance) -> str:
        """host:port where the run's Toxiproxy reaches the instance."""
        ...

    def spawn(self, inst: Instance, *, command: list[str] | None, env: dict[str, str]) -> str:
        """Starts the service (None: the image's own command); returns what the start event says."""
        ...

    def wait(self, inst: Instance, *, health: str, timeout_s: float) -> float:
        """Polls until healthy; seconds waited. Errors name the instance, its address, the last answer and its log."""
        ...

    def running(self, inst: Instance) -> bool:
        """Alive (a paused instance is alive)."""
        ...

    def kill(self, inst: Instance) -> None:
        """SIGKILL, when it runs."""
        ...

    def stop(self, inst: Instance, *, grace_s: float) -> int | None:
        """SIGTERM, then SIGKILL after grace_s; the exit code."""
        ...

    def state(self, inst: Instance) -> InstanceState:
        """What the OS or engine says of the instance now (fault evidence; never from the service)."""
        ...

    def pause(self, inst: Instance) -> None: ...

    def resume(self, inst: Instance) -> None: ...

    def remove(self, inst: Instance) -> None:
        """Ends the instance for good and frees what it held; its log stays readable."""
        ...

    def logs(self, inst: Instance) -> str: ...


@runtime_checkable
class NetworkBackend(Backend, Protocol):
    """A backend whose instances sit on a network of their own, so one can be cut off (a partition)."""

    network: str

    def disconnect(self, inst: Instance) -> None: ...

    def reconnect(self, inst: Instance) -> None:
        """Connects it again under its own name; a no-op when connected."""
        ...
