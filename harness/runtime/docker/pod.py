"""One service instance as a pod of two containers, and their own operations.

A *holder* container (the base image, ``sleep infinity``) owns the
instance's network namespace: its name and address on the run's network
and its port published on 127.0.0.1. The *service* container joins that
namespace. So when the service is killed or stopped, its address stays and
a connection to it is refused at once, as on the local runtime (a removed
container's address would instead leave callers waiting for ARP, and its
name would be looked up in vain, up to 20 s). A partition disconnects the
holder; everything else acts on the service container.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import translated

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

CONTAINER_PORT = 8000
# What a topology's command placeholders mean inside a container (see the target Dockerfiles).
PLACES = {"python": "python3", "target": "/target", "port": str(CONTAINER_PORT), "data": "/data"}


@dataclass
class Pod:
    """The holder and the service container of one instance; `name` is the holder's
    name and DNS name on the run's network, the service container is <name>-app."""

    name: str
    holder: "Container | None" = None
    container: "Container | None" = None

    def hold(self, client: "docker.DockerClient", *, image: str, labels: dict[str, str], network: str,
             host_port: int) -> None:
        """Starts the holder: the instance's name, address and published port."""
        with translated(f"start the network holder {self.name}"):
            self.holder = client.containers.run(
                image, ["sleep", "infinity"], name=self.name, hostname=self.name, labels=labels, init=True,
                detach=True, network=network, ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", host_port)},
                networking_config={network: client.api.create_endpoint_config(aliases=[self.name])},
            )

    def create(self, client: "docker.DockerClient", *, image: str, command: list[str] | None,
               env: dict[str, str], labels: dict[str, str], data_dir: Path) -> None:
        """Creates (does not start) the service container in the holder's network namespace."""
        data_dir.mkdir(parents=True, exist_ok=True)
        with translated(f"create container {self.name}-app from image {image}"):
            self.container = client.containers.create(
                image, command, name=f"{self.name}-app", environment=env, labels=labels, init=True,
                network_mode=f"container:{self.holder.id}",
                volumes={str(data_dir.resolve()): {"bind": PLACES["data"], "mode": "rw"}},
            )

    def state(self) -> dict[str, Any]:
        if self.container is None:
            return {}
        with translated(f"inspect container {self.name}-app"):
            self.container.reload()
        return self.container.attrs.get("State", {})

    @property
    def running(self) -> bool:
        """Running or paused (a paused process is alive, as on the local runtime)."""
        return self.state().get("Status") in ("running", "paused", "restarting")

    def exit_code(self) -> int | None:
        state = self.state()
        return state.get("ExitCode") if state.get("Status") in ("exited", "dead") else None

    def address(self, network: str) -> str | None:
        """The holder's IP on the network (None while partitioned)."""
        with translated(f"inspect container {self.name}"):
            self.holder.reload()
        net = self.holder.attrs["NetworkSettings"]["Networks"].get(network)
        return net["IPAddress"] if net and net.get("IPAddress") else None

    def log(self, saved: Path) -> str:
        """The service container's whole log (every start), or the saved one once it is removed."""
        if self.container is not None:
            with translated(f"logs of {self.name}-app", gone_ok=True):
                return self.container.logs().decode(errors="replace")
        return saved.read_text(errors="replace") if saved.exists() else ""

    def remove(self, saved: Path) -> None:
        """Keeps the log in `saved`, then removes both containers (SIGKILL if they run)."""
        if self.container is not None:
            try:
                saved.write_bytes(self.container.logs())
            except Exception:
                pass  # a log we cannot read must not keep a container alive
            with translated(f"remove container {self.name}-app", gone_ok=True):
                self.container.remove(force=True)
            self.container = None
        if self.holder is not None:
            with translated(f"remove container {self.name}", gone_ok=True):
                self.holder.remove(force=True)
            self.holder = None
