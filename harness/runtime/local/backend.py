"""The local backend: every instance a subprocess on 127.0.0.1.

Each instance runs in its own process group (so SIGSTOP, SIGKILL and
teardown reach its children too; descendants that left the group are found
in /proc), on a port the kernel chose, logging to a file in the run's
folder, labelled with the run id. Services get the target kit's folder on
PYTHONPATH (kit.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ...errors import ServiceError
from ...topology import Service, Topology
from .. import kit
from ..backend import HOST, Instance, InstanceState
from ..health import wait_healthy
from ..ports import free_port
from .processes import end_group, kill_group, process_states, signal_group


class LocalBackend:
    """Processes on this host; `folder` is the target's (commands run there, {target} names it)."""

    name = "local"
    pause_detail = "SIGSTOP"
    resume_detail = "SIGCONT"

    def __init__(self, *, folder: Path | None, source: str) -> None:
        self.folder, self.source = folder, source

    def prepare(self, topology: Topology) -> None:
        """Nothing to build: commands run as they are."""

    def create(self, service: Service, index: int, *, log_path: Path, prefix: str) -> Instance:
        port = free_port()
        places = {"python": sys.executable, "target": str(self.folder or "."), "port": str(port),
                  "data": str(log_path.with_suffix(".data"))}
        return Instance(service.name, index, f"{service.name}-{index}", port, log_path, places=places)

    def address(self, inst: Instance) -> str:
        return f"{HOST}:{inst.port}"

    def spawn(self, inst: Instance, *, command: list[str] | None, env: dict[str, str]) -> str:
        if not command:
            raise ServiceError(f"service {inst.service}: the local runtime needs a 'command' "
                               f"(services.{inst.service} in {self.source} names only an image)")
        full = {**os.environ, **env, "PYTHONPATH": kit.python_path(env.get("PYTHONPATH", os.environ.get("PYTHONPATH")))}
        inst.data_dir.mkdir(parents=True, exist_ok=True)
        with inst.log_path.open("ab") as log:
            try:
                inst.handle = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               env=full, start_new_session=True, cwd=str(self.folder or "."))
            except OSError as exc:
                raise ServiceError(f"service {inst.service}: cannot run {command[0]!r} ({exc.strerror}); "
                                   f"check services.{inst.service}.command in {self.source}") from None
        return f"pid {inst.handle.pid} port {inst.port}"

    def wait(self, inst: Instance, *, health: str, timeout_s: float) -> float:
        proc: subprocess.Popen[bytes] = inst.handle
        return wait_healthy(service=inst.label, host=HOST, port=inst.port, health=health, timeout_s=timeout_s,
                            exited=proc.poll, log_tail=lambda: self.logs(inst))

    def running(self, inst: Instance) -> bool:
        return inst.handle is not None and inst.handle.poll() is None

    def kill(self, inst: Instance) -> None:
        if inst.handle is not None:
            kill_group(inst.handle)

    def stop(self, inst: Instance, *, grace_s: float) -> int | None:
        return end_group(inst.handle, grace_s=grace_s) if inst.handle is not None else None

    def state(self, inst: Instance) -> InstanceState:
        proc = inst.handle
        states = process_states(proc.pid) if proc is not None and proc.poll() is None else {}
        alive = {pid: st for pid, st in states.items() if st not in ("Z", "X")}
        return InstanceState(alive=len(alive), stopped=sum(1 for st in alive.values() if st in ("T", "t")),
                             ident=f"pid {proc.pid}" if alive else "",
                             source=f"/proc/<pid>/stat of {len(states)} process(es) in its group and below")

    def pause(self, inst: Instance) -> None:
        signal_group(inst.handle, signal.SIGSTOP)

    def resume(self, inst: Instance) -> None:
        signal_group(inst.handle, signal.SIGCONT)

    def remove(self, inst: Instance, *, grace_s: float = 3.0) -> None:
        if self.running(inst):
            end_group(inst.handle, grace_s=grace_s)

    def logs(self, inst: Instance) -> str:
        return inst.log_path.read_text(errors="replace") if inst.log_path.exists() else ""
