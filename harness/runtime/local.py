"""The local runtime: every instance a subprocess on 127.0.0.1.

Each instance runs in its own process group (so SIGSTOP, SIGKILL and
teardown reach its children too), on a port the kernel chose, logging to a
file in the run's folder, labelled with the run id. Every link gets one
Toxiproxy proxy per server instance, so any fault can be put on any edge.
"""

from __future__ import annotations

import os
import signal
import string
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ServiceError
from ..topology import Service, Topology
from ..toxiproxy import ToxiproxyClient, free_port
from . import teardown
from . import kit
from .base import LifecycleListener, LinkProxy
from .labels import label_env
from .processes import end_group, kill_group, signal_group
from .readiness import wait_ready

HOST = "127.0.0.1"


@dataclass
class Instance:
    service: str
    index: int
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def data_dir(self) -> Path:
        """The instance's own folder for files that must outlive a restart (a database's)."""
        return self.log_path.with_suffix(".data")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalRuntime:
    """Runs one topology (with its variant applied) as local processes."""

    topology: Topology
    run_id: str
    toxiproxy: ToxiproxyClient
    log_dir: Path
    prefix: str = "t"
    grace_s: float = 3.0
    name: str = "local"
    instances: dict[str, list[Instance]] = field(default_factory=dict)
    proxies: dict[str, list[LinkProxy]] = field(default_factory=dict)
    _listeners: list[LifecycleListener] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- lifecycle of the whole topology -------------------------------------------

    def up(self) -> None:
        """Creates the proxies, starts every instance, waits until all are healthy."""
        teardown.register(self)
        try:
            for svc in self.topology.services.values():
                self.instances[svc.name] = [self._new_instance(svc, i) for i in range(svc.instances)]
            for link in self.topology.links:
                self.proxies[link.name] = [self._create_proxy(link.name, inst) for inst in self.instances[link.server]]
            for svc in self.topology.services.values():
                for inst in self.instances[svc.name]:
                    self._spawn(inst)
            for svc in self.topology.services.values():
                for inst in self.instances[svc.name]:
                    self._wait(inst)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Ends every instance and deletes every proxy; safe to call twice."""
        with self._lock:
            for insts in self.instances.values():
                for inst in insts:
                    if inst.process is not None and inst.process.poll() is None:
                        end_group(inst.process, grace_s=self.grace_s)
            for proxies in self.proxies.values():
                for p in proxies:
                    try:
                        self.toxiproxy.delete_proxy(p.proxy)
                    except Exception:
                        pass  # the server may be gone already; it is the run's own
            self.proxies.clear()
        teardown.unregister(self)

    def __enter__(self) -> "LocalRuntime":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- operations on one instance ---------------------------------------------------

    def kill(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if inst.process is not None:
            kill_group(inst.process)
        inst.paused = False
        self._emit(inst, "kill", "SIGKILL")

    def stop(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        code = end_group(inst.process, grace_s=self.grace_s) if inst.process is not None else None
        inst.paused = False
        self._emit(inst, "stop", f"exit code {code}")

    def start(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        if inst.running:
            raise ServiceError(f"service {service}[{instance}] is already running (pid {inst.process.pid})")
        self._spawn(inst)
        self._wait(inst)

    def pause(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        self._require_running(inst)
        signal_group(inst.process, signal.SIGSTOP)
        inst.paused = True
        self._emit(inst, "pause", "SIGSTOP")

    def resume(self, service: str, instance: int = 0) -> None:
        inst = self._instance(service, instance)
        self._require_running(inst)
        signal_group(inst.process, signal.SIGCONT)
        inst.paused = False
        self._emit(inst, "resume", "SIGCONT")

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
            if inst.process is not None:
                end_group(inst.process, grace_s=self.grace_s)
            self._emit(inst, "scale-in", "removed")
            for link in self.topology.links:
                if link.server == service:
                    gone = self.proxies[link.name].pop()
                    self.toxiproxy.delete_proxy(gone.proxy)

    # -- addresses ------------------------------------------------------------------------

    def url(self, service: str, instance: int = 0) -> str:
        return f"http://{HOST}:{self._instance(service, instance).port}"

    def entry_url(self) -> str:
        return self.url(self.topology.entry)

    def link_proxies(self, link: str) -> list[LinkProxy]:
        self.topology.link(link)  # names the known links when unknown
        return list(self.proxies.get(link, []))

    def addresses(self) -> dict[str, list[str]]:
        out = {s: [f"{HOST}:{i.port}" for i in insts] for s, insts in self.instances.items()}
        out.update({f"link {l}": [p.listen for p in ps] for l, ps in self.proxies.items()})
        return out

    def logs(self, service: str, instance: int = 0) -> str:
        path = self._instance(service, instance).log_path
        return path.read_text(errors="replace") if path.exists() else ""

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

    def _require_running(self, inst: Instance) -> None:
        if not inst.running:
            raise ServiceError(f"service {inst.service}[{inst.index}] is not running")

    def _new_instance(self, svc: Service, index: int) -> Instance:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return Instance(svc.name, index, free_port(), self.log_dir / f"{svc.name}-{index}.log")

    def _create_proxy(self, link: str, server: Instance) -> LinkProxy:
        name = f"{self.prefix}.{link.replace('->', '_to_').replace(':', '.')}.{server.index}"
        upstream = f"{HOST}:{server.port}"
        info = self.toxiproxy.create_proxy(name, upstream=upstream)
        return LinkProxy(link=link, instance=server.index, proxy=name, listen=info["listen"], upstream=upstream)

    def _env(self, svc: Service, inst: Instance) -> dict[str, str]:
        links: dict[str, str] = {}
        for link in self.topology.links_from(svc.name):
            key = link.env_key
            listens = [p.listen for p in self.proxies[link.name]]
            links[f"{key}_ADDR"] = listens[0]
            links[f"{key}_URL"] = f"http://{listens[0]}"
            links[f"{key}_URLS"] = ",".join(f"http://{l}" for l in listens)
        base = {"PORT": str(inst.port), "SERVICE_NAME": svc.name, "INSTANCE": str(inst.index),
                "DATA_DIR": str(inst.data_dir), **links}
        own = {k: string.Template(v).safe_substitute(base) for k, v in svc.env.items()}
        kit_path = {"PYTHONPATH": kit.python_path(own.get("PYTHONPATH", os.environ.get("PYTHONPATH")))}
        return {**os.environ, "PYTHONUNBUFFERED": "1", **base, **own, **kit_path, **label_env(self.run_id)}

    def _command(self, svc: Service, inst: Instance) -> list[str]:
        values = {"python": sys.executable, "target": str(self.topology.folder or "."), "port": str(inst.port),
                  "data": str(inst.data_dir)}
        try:
            return [part.format(**values) for part in svc.command]
        except (KeyError, IndexError) as exc:
            raise ServiceError(
                f"{self.topology.source}: services.{svc.name}.command has an unknown placeholder {exc}; "
                "known: {python}, {target}, {port}, {data}"
            ) from None

    def _spawn(self, inst: Instance) -> None:
        svc = self.topology.service(inst.service)
        cmd = self._command(svc, inst)
        inst.data_dir.mkdir(parents=True, exist_ok=True)
        with inst.log_path.open("ab") as log:
            try:
                inst.process = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self._env(svc, inst), start_new_session=True, cwd=str(self.topology.folder or "."),
                )
            except OSError as exc:
                raise ServiceError(
                    f"service {svc.name}: cannot run {cmd[0]!r} ({exc.strerror}); check services.{svc.name}.command in {self.topology.source}"
                ) from None
        inst.paused = False
        self._emit(inst, "start", f"pid {inst.process.pid} port {inst.port}")

    def _wait(self, inst: Instance) -> None:
        svc = self.topology.service(inst.service)
        proc = inst.process
        waited = wait_ready(
            service=f"{svc.name}[{inst.index}]", host=HOST, port=inst.port, health=svc.health,
            timeout_s=svc.ready_timeout_s, exited=proc.poll,
            log_tail=lambda: "\n".join(inst.log_path.read_text(errors="replace").splitlines()[-20:]),
        )
        self._emit(inst, "ready", f"after {waited * 1000:.0f} ms")

    def _emit(self, inst: Instance, action: str, detail: str) -> None:
        for listener in list(self._listeners):
            listener(inst.service, inst.index, action, detail)
