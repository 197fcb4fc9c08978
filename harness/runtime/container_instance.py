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

import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ServiceError
from ..topology import Service
from .docker_errors import translated

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

HOST = "127.0.0.1"
CONTAINER_PORT = 8000
# What a topology's command placeholders mean inside a container (see the target Dockerfiles).
PLACES = {"python": "python3", "target": "/target", "port": str(CONTAINER_PORT), "data": "/data"}


@dataclass
class Instance:
    service: str
    index: int
    name: str  # the holder's name and DNS name on the run's network; the service container is <name>-app
    host_port: int  # CONTAINER_PORT published on 127.0.0.1
    log_path: Path
    holder: "Container | None" = None
    container: "Container | None" = None  # the service's own
    paused: bool = False

    @property
    def data_dir(self) -> Path:
        """Mounted at /data: a database's files outlive a restart, as on the local runtime."""
        return self.log_path.with_suffix(".data")

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

    def hold(self, docker: "docker.DockerClient", *, image: str, labels: dict[str, str], network: str) -> None:
        """Starts the holder: the instance's name, address and published port."""
        with translated(f"start the network holder {self.name} of service {self.service}"):
            self.holder = docker.containers.run(
                image, ["sleep", "infinity"], name=self.name, hostname=self.name, labels=labels, init=True,
                detach=True, network=network, ports={f"{CONTAINER_PORT}/tcp": (HOST, self.host_port)},
                networking_config={network: docker.api.create_endpoint_config(aliases=[self.name])},
            )

    def create(self, docker: "docker.DockerClient", *, image: str, command: list[str] | None,
               env: dict[str, str], labels: dict[str, str]) -> None:
        """Creates (does not start) the service container in the holder's network namespace."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with translated(f"create container {self.name}-app for service {self.service} from image {image}"):
            self.container = docker.containers.create(
                image, command, name=f"{self.name}-app", environment=env, labels=labels, init=True,
                network_mode=f"container:{self.holder.id}",
                volumes={str(self.data_dir.resolve()): {"bind": PLACES["data"], "mode": "rw"}},
            )

    def log(self) -> str:
        """The service container's whole log (every start), or the saved one once it is removed."""
        if self.container is not None:
            with translated(f"logs of {self.name}-app", gone_ok=True):
                return self.container.logs().decode(errors="replace")
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def remove(self) -> None:
        """Keeps the log in the run folder, then removes both containers (SIGKILL if they run)."""
        if self.container is not None:
            try:
                self.log_path.write_bytes(self.container.logs())
            except Exception:
                pass  # a log we cannot read must not keep a container alive
            with translated(f"remove container {self.name}-app", gone_ok=True):
                self.container.remove(force=True)
            self.container = None
        if self.holder is not None:
            with translated(f"remove container {self.name}", gone_ok=True):
                self.holder.remove(force=True)
            self.holder = None


def command(svc: Service, source: str) -> list[str] | None:
    """The topology's command with placeholders filled for a container; None keeps the image's."""
    try:
        return [part.format(**PLACES) for part in svc.command] or None
    except (KeyError, IndexError) as exc:
        raise ServiceError(f"{source}: services.{svc.name}.command has an unknown placeholder {exc}; "
                           "known: {python}, {target}, {port}, {data}") from None


def environment(svc: Service, index: int, links: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    """PORT, BIND_HOST (0.0.0.0: reachable through the network), the links' variables, then the service's own."""
    base = {"PORT": str(CONTAINER_PORT), "BIND_HOST": "0.0.0.0", "SERVICE_NAME": svc.name,
            "INSTANCE": str(index), "DATA_DIR": PLACES["data"], **links}
    own = {k: string.Template(v).safe_substitute(base) for k, v in svc.env.items()}
    return {"PYTHONUNBUFFERED": "1", **base, **own, **labels}
