"""One topology deployed on a backend: the runtime every experiment sees.

The deployment owns what both runtimes share: the instances of every
service, one Toxiproxy proxy per link and server instance, the variables
that point clients at those proxies, scaling, the lifecycle listeners, and
taking it all down in order (proxies first, while their servers still
answer; then services, clients before the servers they call). What runs an
instance is the backend's business (backend.py).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from ..errors import FaultError, ServiceError
from ..topology import Service, Topology
from ..toxiproxy import ToxiproxyClient
from . import teardown, wiring
from .backend import HOST, Backend, Instance, InstanceState, NetworkBackend
from .base import LifecycleListener, LinkProxy
from .labels import label_env


class Deployment:
    """Stands a topology (with its variant applied) up on a backend; a context manager."""

    def __init__(self, *, topology: Topology, backend: Backend, toxiproxy: ToxiproxyClient, run_id: str,
                 log_dir: Path, prefix: str = "t", grace_s: float = 3.0) -> None:
        self.topology, self.backend, self.toxiproxy = topology, backend, toxiproxy
        self.run_id, self.log_dir, self.prefix, self.grace_s = run_id, Path(log_dir), prefix, grace_s
        self.instances: dict[str, list[Instance]] = {}
        self.proxies: dict[str, list[LinkProxy]] = {}
        self._listeners: list[LifecycleListener] = []
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        return self.backend.name

    # -- the whole topology ---------------------------------------------------------------

    def up(self) -> None:
        """Creates every instance and proxy, starts every service, waits until all are healthy."""
        teardown.register(self)
        try:
            self.backend.prepare(self.topology)
            for svc in self.topology.services.values():
                self.instances[svc.name] = [self._create(svc, i) for i in range(svc.instances)]
            for link in self.topology.links:
                self.proxies[link.name] = [self._proxy(link.name, inst) for inst in self.instances[link.server]]
            everyone = [inst for insts in self.instances.values() for inst in insts]
            for inst in everyone:
                self._spawn(inst)
            for inst in everyone:
                self._wait(inst)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Deletes the proxies, then removes every instance, clients first; safe to call twice.
        One failed removal does not stop the others; the first is raised at the end.

        Proxies go first: Toxiproxy dials an upstream inside the proxy's accept loop and
        deleting a proxy waits for that loop under its global lock, so a client still
        reconnecting to a server that is gone would hold up every later API call."""
        failed: list[Exception] = []
        with self._lock:
            for proxies in self.proxies.values():
                for p in proxies:
                    try:
                        self.toxiproxy.delete_proxy(p.proxy)
                    except Exception:
                        pass  # the run's Toxiproxy may be gone already
            self.proxies.clear()
            for service in wiring.stop_order(self.topology):
                for inst in self.instances.get(service, []):
                    try:
                        self.backend.remove(inst)
                    except Exception as exc:
                        failed.append(exc)
        teardown.unregister(self)
        if failed:
            raise failed[0]  # what a runtime could not remove, the run's own teardown sweeps by label

    def __enter__(self) -> "Deployment":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- one instance -------------------------------------------------------------------------

    def kill(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        self.backend.kill(inst)
        inst.paused = False
        self._emit(inst, "kill", "SIGKILL")

    def stop(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        code = self.backend.stop(inst, grace_s=self.grace_s)
        inst.paused = False
        self._emit(inst, "stop", f"exit code {code}")

    def start(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if self.backend.running(inst):
            raise ServiceError(f"service {inst.label} is already running ({inst.name})")
        self._spawn(inst)
        self._wait(inst)

    def pause(self, service: str, instance: int = 0) -> None:
        inst = self._running(service, instance)
        self.backend.pause(inst)
        inst.paused = True
        self._emit(inst, "pause", self.backend.pause_detail)

    def resume(self, service: str, instance: int = 0) -> None:
        """Recorded as it starts: the service may run (and read its backlog)
        before the backend's answer comes back."""
        inst = self._running(service, instance)
        self._emit(inst, "resume", self.backend.resume_detail)
        self.backend.resume(inst)
        inst.paused = False

    def restart(self, service: str, instance: int = 0) -> None:
        if self.is_running(service, instance):
            self.stop(service, instance)
        self.start(service, instance)

    def instance_state(self, service: str, instance: int = 0) -> InstanceState:
        """What the kernel or engine says of the instance: fault evidence the service cannot fake."""
        return self.backend.state(self._instance(service, instance))

    def is_running(self, service: str, instance: int = 0) -> bool:
        return self.backend.running(self._instance(service, instance))

    def scale(self, service: str, count: int) -> None:
        """Adds or removes instances (the highest index goes first), with their proxies."""
        svc = self.topology.service(service)
        if count < 1:
            raise ServiceError(f"scale {service} to {count}: keep at least 1 instance (stop it to take it out)")
        servers = [link.name for link in self.topology.links if link.server == service]
        with self._lock:
            insts = self.instances[service]
            while len(insts) < count:
                inst = self._create(svc, len(insts))
                insts.append(inst)
                for link in servers:
                    self.proxies[link].append(self._proxy(link, inst))
                self._spawn(inst)
                self._wait(inst)
            while len(insts) > count:
                inst = insts.pop()
                self.backend.remove(inst)
                self._emit(inst, "scale-in", "removed")
                for link in servers:
                    self.toxiproxy.delete_proxy(self.proxies[link].pop().proxy)

    # -- partitions: only where the backend has a network -----------------------------------

    def partition(self, service: str, instance: int = 0) -> None:
        """Cuts the instance off its network: nothing reaches it and it reaches nothing."""
        net, inst = self._networked(service, instance)
        net.disconnect(inst)
        self._emit(inst, "partition", f"disconnected from {net.network}")

    def heal(self, service: str, instance: int = 0) -> None:
        """Connects it again and points its proxies at the address it got."""
        net, inst = self._networked(service, instance)
        net.reconnect(inst)
        upstream = net.address(inst)
        for link in self.topology.links:
            if link.server == service:
                old = self.proxies[link.name][instance]
                if old.upstream != upstream:
                    self.toxiproxy.set_upstream(old.proxy, upstream)
                    self.proxies[link.name][instance] = replace(old, upstream=upstream)
        self._emit(inst, "heal", f"connected to {net.network} as {upstream}")

    # -- addresses -----------------------------------------------------------------------------

    def url(self, service: str, instance: int = 0) -> str:
        return f"http://{HOST}:{self._instance(service, instance).port}"

    def entry_url(self) -> str:
        return self.url(self.topology.entry)

    def link_proxies(self, link: str) -> list[LinkProxy]:
        self.topology.link(link)  # names the known links when unknown
        return list(self.proxies.get(link, []))

    def addresses(self) -> dict[str, list[str]]:
        """Services at their ports on 127.0.0.1; links at their proxies' addresses as clients dial them."""
        out = {s: [f"{HOST}:{i.port}" for i in insts] for s, insts in self.instances.items()}
        out.update({f"link {l}": [p.listen for p in ps] for l, ps in self.proxies.items()})
        return out

    def logs(self, service: str, instance: int = 0) -> str:
        return self.backend.logs(self._instance(service, instance))

    def add_listener(self, listener: LifecycleListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: LifecycleListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- internals ---------------------------------------------------------------------------

    def _instance(self, service: str, index: int) -> Instance:
        self.topology.service(service)
        insts = self.instances.get(service, [])
        if not 0 <= index < len(insts):
            raise ServiceError(f"service {service} has no instance {index} (it has {len(insts)})")
        return insts[index]

    def _running(self, service: str, index: int) -> Instance:
        inst = self._instance(service, index)
        if not self.backend.running(inst):
            raise ServiceError(f"service {inst.label} is not running ({inst.name})")
        return inst

    def _networked(self, service: str, index: int) -> tuple[NetworkBackend, Instance]:
        if not isinstance(self.backend, NetworkBackend):
            raise FaultError(f"partition of {service}[{index}]: the {self.name} runtime has no networks to cut; "
                             "use --runtime docker (or link_down on each of the service's links)")
        return self.backend, self._instance(service, index)

    def _create(self, svc: Service, index: int) -> Instance:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.backend.create(svc, index, log_path=self.log_dir / f"{svc.name}-{index}.log", prefix=self.prefix)

    def _proxy(self, link: str, server: Instance) -> LinkProxy:
        name = f"{self.prefix}.{link.replace('->', '_to_').replace(':', '.')}.{server.index}"
        upstream = self.backend.address(server)
        info = self.toxiproxy.create_proxy(name, upstream=upstream, listen=self.toxiproxy.new_listen())
        listen = self.toxiproxy.reachable_at(info["listen"])
        return LinkProxy(link=link, instance=server.index, proxy=name, listen=listen, upstream=upstream)

    def _spawn(self, inst: Instance) -> None:
        svc = self.topology.service(inst.service)
        listens = {link: [p.listen for p in ps] for link, ps in self.proxies.items()}
        direct = {link: [p.upstream for p in ps] for link, ps in self.proxies.items()}
        env = wiring.instance_env(svc, inst, wiring.link_env(self.topology, svc.name, listens, direct),
                                  label_env(self.run_id))
        detail = self.backend.spawn(inst, command=wiring.command(svc, inst, self.topology.source), env=env)
        inst.paused = False
        self._emit(inst, "start", detail)

    def _wait(self, inst: Instance) -> None:
        svc = self.topology.service(inst.service)
        waited = self.backend.wait(inst, health=svc.health, timeout_s=svc.ready_timeout_s)
        self._emit(inst, "ready", f"after {waited * 1000:.0f} ms")

    def _emit(self, inst: Instance, action: str, detail: str) -> None:
        for listener in list(self._listeners):
            listener(inst.service, inst.index, action, detail)
