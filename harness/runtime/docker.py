"""The docker runtime: every instance a container on the run's own network.

Mirrors the local runtime: the same operations, instance names, lifecycle
events and link wiring. Each instance is a pod (container_instance.py): a
holder container named (and known on the network as)
``h-<prefix>-<service>-<i>`` that keeps the address, and the service's
container ``…-app`` in its network namespace, listening on $BIND_HOST
(0.0.0.0) and $PORT (8000), published on 127.0.0.1 at a port chosen here,
which the harness (load, probes, readiness) uses. Every link gets one proxy
per server instance in the run's Toxiproxy container, pointed at the
holder's address; clients get ``<SERVER>_URL=http://toxiproxy:<port>``.
kill is SIGKILL, pause is ``docker pause`` (the cgroup freezer: sockets
stay, nothing answers), and a killed or stopped service container is
started again as the same container, at the same address.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ServiceError
from ..topology import Service, Topology
from ..toxiproxy import ToxiproxyClient, free_port
from . import engine, teardown
from .base import LifecycleListener, LinkProxy
from .builds import target_image
from .container_instance import CONTAINER_PORT, HOST, Instance, command, environment
from .containers import INSTANCE, ROLE, SERVICE, run_labels
from .docker_errors import translated
from .images import ensure_base_image
from .labels import label_env
from .published import wait_published
from .run_network import require


@dataclass
class DockerRuntime:
    """Runs one topology (with its variant applied) as containers."""

    topology: Topology
    run_id: str
    toxiproxy: ToxiproxyClient
    log_dir: Path
    prefix: str = "t"
    grace_s: float = 3.0
    name: str = "docker"
    instances: dict[str, list[Instance]] = field(default_factory=dict)
    proxies: dict[str, list[LinkProxy]] = field(default_factory=dict)
    _listeners: list[LifecycleListener] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _images: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.network = require(self.toxiproxy)
        self.docker = engine.client()

    # -- lifecycle of the whole topology -------------------------------------------

    def up(self) -> None:
        """Builds missing images, creates the proxies, starts every container, waits until all are healthy."""
        teardown.register(self)
        try:
            for svc in self.topology.services.values():
                self._image(svc)
                self.instances[svc.name] = []
                for i in range(svc.instances):
                    self.instances[svc.name].append(self._new_instance(svc, i))
            for link in self.topology.links:
                self.proxies[link.name] = [self._create_proxy(link.name, inst) for inst in self.instances[link.server]]
            for insts in self.instances.values():
                for inst in insts:
                    self._spawn(inst)
            for insts in self.instances.values():
                for inst in insts:
                    self._wait(inst)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Removes the proxies, then saves every container's log and removes the containers,
        clients before servers; safe to call twice. One failed removal does not stop the
        others; it is raised last.

        Proxies go first, while their servers still answer. Toxiproxy dials the upstream
        inside a proxy's accept loop, and deleting a proxy waits for that loop under the
        server's global lock: a client still reconnecting through a proxy whose server
        container is gone makes each dial wait out an unanswered ARP (about 3 s), and the
        next experiment's API calls then time out behind the lock.
        """
        failed: list[Exception] = []
        with self._lock:
            for proxies in self.proxies.values():
                for p in proxies:
                    try:
                        self.toxiproxy.delete_proxy(p.proxy)
                    except Exception:
                        pass  # the Toxiproxy container may be gone already; it is the run's own
            self.proxies.clear()
            for insts in reversed(list(self.instances.values())):  # the entry and clients first
                for inst in insts:
                    try:
                        inst.remove()
                    except Exception as exc:
                        failed.append(exc)
        teardown.unregister(self)
        if failed:
            raise failed[0]  # the run's own teardown (RunNetwork.stop) still removes it by label

    def __enter__(self) -> "DockerRuntime":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- operations on one instance ---------------------------------------------------

    def kill(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if inst.running:
            with translated(f"kill {inst.name}", gone_ok=True):
                inst.container.kill(signal="SIGKILL")
        inst.paused = False
        self._emit(inst, "kill", "SIGKILL")

    def stop(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if inst.running:
            if inst.state().get("Paused"):
                with translated(f"unpause {inst.name}", gone_ok=True):
                    inst.container.unpause()  # so it can act on SIGTERM
            with translated(f"stop {inst.name}", gone_ok=True):
                inst.container.stop(timeout=int(max(1, self.grace_s)))
        inst.paused = False
        self._emit(inst, "stop", f"exit code {inst.state().get('ExitCode')}")

    def start(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if inst.running:
            raise ServiceError(f"service {service}[{instance}] is already running (container {inst.name})")
        self._spawn(inst)
        self._wait(inst)

    def pause(self, service: str, instance: int = 0) -> None:
        inst = self._running(service, instance)
        with translated(f"pause {inst.name}"):
            inst.container.pause()
        inst.paused = True
        self._emit(inst, "pause", "docker pause")

    def resume(self, service: str, instance: int = 0) -> None:
        """Recorded as it starts: the service may run (and read its backlog)
        before the engine's answer comes back, tens of ms later."""
        inst = self._running(service, instance)
        self._emit(inst, "resume", "docker unpause")
        if inst.state().get("Paused"):
            with translated(f"unpause {inst.name}"):
                inst.container.unpause()
        inst.paused = False

    def restart(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if inst.running:
            self.stop(service, instance)
        self.start(service, instance)

    def is_running(self, service: str, instance: int = 0) -> bool:
        return self._instance(service, instance).running

    def scale(self, service: str, count: int) -> None:
        """Adds or removes instances (the highest index goes first)."""
        svc = self.topology.service(service)
        if count < 1:
            raise ServiceError(f"scale {service} to {count}: keep at least 1 instance (stop it to take it out)")
        insts = self.instances[service]
        while len(insts) < count:
            inst = self._new_instance(svc, len(insts))
            insts.append(inst)
            for link in self.topology.links:
                if link.server == service:
                    self.proxies[link.name].append(self._create_proxy(link.name, inst))
            self._spawn(inst)
            self._wait(inst)
        while len(insts) > count:
            inst = insts.pop()
            inst.remove()
            self._emit(inst, "scale-in", "removed")
            for link in self.topology.links:
                if link.server == service:
                    self.toxiproxy.delete_proxy(self.proxies[link.name].pop().proxy)

    # -- partitions (an optional capability: faults.partition) ------------------------

    def partition(self, service: str, instance: int = 0) -> None:
        """Disconnects the instance from the run's network: no proxy, no peer and no
        published port reach it, and it reaches nothing (Toxiproxy's dials fail after ARP gives up)."""
        inst = self._instance(service, instance)
        with translated(f"disconnect {inst.name} from {self.network.network}"):
            self.docker.networks.get(self.network.network).disconnect(inst.holder, force=True)
        self._emit(inst, "partition", f"disconnected from {self.network.network}")

    def heal(self, service: str, instance: int = 0) -> None:
        """Connects it again under its own name (a no-op when connected) and points
        its proxies at the address it got."""
        inst = self._instance(service, instance)
        net = self.network.network
        if inst.address(net) is None:
            with translated(f"connect {inst.name} to {net}"):
                self.docker.networks.get(net).connect(inst.holder, aliases=[inst.name])
        upstream = f"{inst.address(net)}:{CONTAINER_PORT}"
        for link in self.topology.links:
            if link.server == service:
                old = self.proxies[link.name][instance]
                if old.upstream != upstream:
                    self.toxiproxy.set_upstream(old.proxy, upstream)
                    self.proxies[link.name][instance] = replace(old, upstream=upstream)
        self._emit(inst, "heal", f"connected to {net} as {upstream}")

    # -- addresses ------------------------------------------------------------------------

    def url(self, service: str, instance: int = 0) -> str:
        return f"http://{HOST}:{self._instance(service, instance).host_port}"

    def entry_url(self) -> str:
        return self.url(self.topology.entry)

    def link_proxies(self, link: str) -> list[LinkProxy]:
        self.topology.link(link)  # names the known links when unknown
        return list(self.proxies.get(link, []))

    def addresses(self) -> dict[str, list[str]]:
        """Services at their published 127.0.0.1 ports; links at their proxies' addresses inside the run's network."""
        out = {s: [f"{HOST}:{i.host_port}" for i in insts] for s, insts in self.instances.items()}
        out.update({f"link {l}": [p.listen for p in ps] for l, ps in self.proxies.items()})
        return out

    def logs(self, service: str, instance: int = 0) -> str:
        return self._instance(service, instance).log()

    def add_listener(self, listener: LifecycleListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: LifecycleListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- internals ----------------------------------------------------------------------------

    def _instance(self, service: str, index: int) -> Instance:
        self.topology.service(service)
        insts = self.instances.get(service, [])
        if not 0 <= index < len(insts):
            raise ServiceError(f"service {service} has no instance {index} (it has {len(insts)})")
        return insts[index]

    def _running(self, service: str, index: int) -> Instance:
        inst = self._instance(service, index)
        if not inst.running:
            raise ServiceError(f"service {inst.service}[{inst.index}] is not running (container {inst.name})")
        return inst

    def _image(self, svc: Service) -> str:
        if svc.image:
            return svc.image
        folder = self.topology.folder
        key = str(folder)
        if key not in self._images:
            if folder is None:
                raise ServiceError(f"{self.topology.source}: service {svc.name} names no image, and the target has no folder with a Dockerfile")
            self._images[key] = target_image(self.docker, folder, base=ensure_base_image(self.docker))
        return self._images[key]

    def _new_instance(self, svc: Service, index: int) -> Instance:
        """An instance with its holder running: its name, address and published port exist from here on."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = f"h-{self.prefix.replace('.', '-')}-{svc.name}-{index}".replace("_", "-")
        inst = Instance(svc.name, index, name, free_port(), self.log_dir / f"{svc.name}-{index}.log")
        labels = run_labels(self.run_id, **{ROLE: "holder", SERVICE: svc.name, INSTANCE: str(index)})
        inst.hold(self.docker, image=ensure_base_image(self.docker), labels=labels, network=self.network.network)
        return inst

    def _create_proxy(self, link: str, server: Instance) -> LinkProxy:
        name = f"{self.prefix}.{link.replace('->', '_to_').replace(':', '.')}.{server.index}"
        upstream = f"{server.address(self.network.network)}:{CONTAINER_PORT}"  # an address: no DNS lookup per dial
        info = self.toxiproxy.create_proxy(name, upstream=upstream, listen=self.network.next_listen())
        port = info["listen"].rsplit(":", 1)[1]
        return LinkProxy(link=link, instance=server.index, proxy=name, listen=f"{self.network.alias}:{port}", upstream=upstream)

    def _links_env(self, svc: Service) -> dict[str, str]:
        links: dict[str, str] = {}
        for link in self.topology.links_from(svc.name):
            listens = [p.listen for p in self.proxies[link.name]]
            links[f"{link.env_key}_ADDR"] = listens[0]
            links[f"{link.env_key}_URL"] = f"http://{listens[0]}"
            links[f"{link.env_key}_URLS"] = ",".join(f"http://{l}" for l in listens)
        return links

    def _spawn(self, inst: Instance) -> None:
        svc = self.topology.service(inst.service)
        if inst.container is None:
            labels = run_labels(self.run_id, **{ROLE: "service", SERVICE: svc.name, INSTANCE: str(inst.index)})
            env = environment(svc, inst.index, self._links_env(svc), label_env(self.run_id))
            inst.create(self.docker, image=self._image(svc), command=command(svc, self.topology.source), env=env,
                        labels=labels)
        with translated(f"start container {inst.name} of service {svc.name}"):
            inst.container.start()
        inst.paused = False
        self._emit(inst, "start", f"container {inst.container.short_id} port {inst.host_port}")

    def _wait(self, inst: Instance) -> None:
        svc = self.topology.service(inst.service)

        def tail() -> str:
            return "\n".join(self.logs(inst.service, inst.index).splitlines()[-20:])

        waited = wait_published(service=f"{svc.name}[{inst.index}]", host=HOST, port=inst.host_port, health=svc.health,
                                timeout_s=svc.ready_timeout_s, exited=inst.exit_code, log_tail=tail)
        self._emit(inst, "ready", f"after {waited * 1000:.0f} ms")

    def _emit(self, inst: Instance, action: str, detail: str) -> None:
        for listener in list(self._listeners):
            listener(inst.service, inst.index, action, detail)
