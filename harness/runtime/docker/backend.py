"""The docker backend: every instance a pod (pod.py) on the run's own network.

The pod's holder is named ``h-<prefix>-<service>-<i>`` and known by that
name on the network; the service's container ``…-app`` listens on
$BIND_HOST (0.0.0.0) and $PORT (8000) in the holder's namespace, published
on 127.0.0.1 at a port chosen here for the harness (load, probes,
readiness). Proxies in the run's Toxiproxy container dial the holder's
address; clients reach them as ``toxiproxy:<port>``. kill is SIGKILL, pause
is ``docker pause`` (the cgroup freezer: sockets stay, nothing answers),
and a killed or stopped service container is started again as the same
container, at the same address.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ServiceError
from ...topology import Service, Topology
from ..backend import HOST, Instance, InstanceState
from ..health import probe_published, wait_healthy
from ..ports import free_port
from . import engine
from .builds import target_image
from .errors import translated
from .images import ensure_base_image
from .pod import CONTAINER_PORT, PLACES, Pod
from .run_labels import INSTANCE, ROLE, SERVICE, run_labels

HINT = ("In a container a service must listen on $BIND_HOST (0.0.0.0) and $PORT; check its command, "
        "health path and image, or raise ready_timeout_s.")


class DockerBackend:
    """Containers on the run's network `network`."""

    name = "docker"
    pause_detail = "docker pause"
    resume_detail = "docker unpause"

    def __init__(self, *, network: str, run_id: str) -> None:
        self.network, self.run_id = network, run_id
        self.docker = engine.client()
        self._images: dict[str, str] = {}  # service -> image

    def prepare(self, topology: Topology) -> None:
        """Every service's image: its own, or the target's, built from the target's Dockerfile when missing."""
        built: str | None = None
        for svc in topology.services.values():
            if svc.image:
                self._images[svc.name] = svc.image
                continue
            if topology.folder is None:
                raise ServiceError(f"{topology.source}: service {svc.name} names no image, and the target has no "
                                   "folder with a Dockerfile")
            built = built or target_image(self.docker, topology.folder, base=ensure_base_image(self.docker))
            self._images[svc.name] = built

    def create(self, service: Service, index: int, *, log_path: Path, prefix: str) -> Instance:
        """An instance with its holder running: its name, address and published port exist from here on."""
        name = f"h-{prefix.replace('.', '-')}-{service.name}-{index}".replace("_", "-")
        inst = Instance(service.name, index, name, free_port(), log_path, places=dict(PLACES),
                        env={"BIND_HOST": "0.0.0.0"}, handle=Pod(name))
        labels = run_labels(self.run_id, **{ROLE: "holder", SERVICE: service.name, INSTANCE: str(index)})
        inst.handle.hold(self.docker, image=ensure_base_image(self.docker), labels=labels, network=self.network,
                         host_port=inst.port)
        return inst

    def address(self, inst: Instance) -> str:
        """The holder's address, not its name: no DNS lookup per dial."""
        return f"{inst.handle.address(self.network)}:{CONTAINER_PORT}"

    def spawn(self, inst: Instance, *, command: list[str] | None, env: dict[str, str]) -> str:
        pod: Pod = inst.handle
        if pod.container is None:
            labels = run_labels(self.run_id, **{ROLE: "service", SERVICE: inst.service, INSTANCE: str(inst.index)})
            pod.create(self.docker, image=self._images[inst.service], command=command, env=env, labels=labels,
                       data_dir=inst.data_dir)
        with translated(f"start container {inst.name} of service {inst.service}"):
            pod.container.start()
        return f"container {pod.container.short_id} port {inst.port}"

    def wait(self, inst: Instance, *, health: str, timeout_s: float) -> float:
        return wait_healthy(service=inst.label, host=HOST, port=inst.port, health=health, timeout_s=timeout_s,
                            exited=inst.handle.exit_code, log_tail=lambda: self.logs(inst), probe=probe_published,
                            hint=HINT)

    def running(self, inst: Instance) -> bool:
        return inst.handle.running

    def kill(self, inst: Instance) -> None:
        if self.running(inst):
            with translated(f"kill {inst.name}", gone_ok=True):
                inst.handle.container.kill(signal="SIGKILL")

    def stop(self, inst: Instance, *, grace_s: float) -> int | None:
        pod: Pod = inst.handle
        if pod.running:
            if pod.state().get("Paused"):
                with translated(f"unpause {inst.name}", gone_ok=True):
                    pod.container.unpause()  # so it can act on SIGTERM
            with translated(f"stop {inst.name}", gone_ok=True):
                pod.container.stop(timeout=int(max(1, grace_s)))
        return pod.state().get("ExitCode")

    def state(self, inst: Instance) -> InstanceState:
        pod: Pod = inst.handle
        state = pod.state()
        alive = state.get("Status") in ("running", "paused", "restarting")
        return InstanceState(alive=int(alive), stopped=int(bool(alive and state.get("Paused"))),
                             ident=str(state.get("StartedAt", "")) if alive else "",
                             source=f"docker inspect {inst.name}-app: {state.get('Status')}",
                             network=pod.address(self.network) or "")

    def pause(self, inst: Instance) -> None:
        with translated(f"pause {inst.name}"):
            inst.handle.container.pause()

    def resume(self, inst: Instance) -> None:
        if inst.handle.state().get("Paused"):
            with translated(f"unpause {inst.name}"):
                inst.handle.container.unpause()

    def remove(self, inst: Instance) -> None:
        inst.handle.remove(inst.log_path)

    def logs(self, inst: Instance) -> str:
        return inst.handle.log(inst.log_path)

    # -- partitions ------------------------------------------------------------------------

    def disconnect(self, inst: Instance) -> None:
        """Off the run's network: no proxy, no peer and no published port reach it, and it
        reaches nothing (Toxiproxy's dials fail after ARP gives up)."""
        with translated(f"disconnect {inst.name} from {self.network}"):
            self.docker.networks.get(self.network).disconnect(inst.handle.holder, force=True)

    def reconnect(self, inst: Instance) -> None:
        if inst.handle.address(self.network) is None:
            with translated(f"connect {inst.name} to {self.network}"):
                self.docker.networks.get(self.network).connect(inst.handle.holder, aliases=[inst.name])
