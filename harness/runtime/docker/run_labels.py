"""Labels on everything a docker run creates, and the sweep of what dead
runs left (the job Testcontainers gives Ryuk, done at start instead).

A run's containers and networks carry ``harness.run=<run id>`` and their
owner: the harness process's pid, its start time (so a reused pid does not
pass for the owner) and the host name (so a shared engine's sweep leaves
other hosts' runs alone). A run is dead when that owner process is gone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

RUN = "harness.run"
OWNER_PID = "harness.owner_pid"
OWNER_START = "harness.owner_start"
OWNER_HOST = "harness.owner_host"
ROLE = "harness.role"
SERVICE = "harness.service"
INSTANCE = "harness.instance"


def process_start(pid: int) -> str:
    """Start time of a process in clock ticks since boot ('' when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def run_labels(run_id: str, **extra: str) -> dict[str, str]:
    """The labels of anything this process creates for run_id."""
    pid = os.getpid()
    owner = {RUN: run_id, OWNER_PID: str(pid), OWNER_START: process_start(pid), OWNER_HOST: socket.gethostname()}
    return {**owner, **extra}


def owner_alive(labels: dict[str, str]) -> bool:
    """True when the process that created a labelled object still runs here,
    or when it ran on another host (not ours to judge)."""
    if labels.get(OWNER_HOST, socket.gethostname()) != socket.gethostname():
        return True
    pid = labels.get(OWNER_PID, "")
    if not pid.isdigit():
        return False
    start = process_start(int(pid))
    return bool(start) and start == labels.get(OWNER_START, start)


def remove_run(client: "docker.DockerClient", run_id: str) -> list[str]:
    """Removes every container, then every network, labelled with run_id."""
    return _remove(client, lambda labels: labels.get(RUN) == run_id)


def sweep_dead_containers(client: "docker.DockerClient", *, keep_run: str | None = None) -> list[str]:
    """Removes what runs whose owner is gone left; returns what was removed."""
    return _remove(client, lambda labels: labels.get(RUN) != keep_run and not owner_alive(labels))


def _remove(client: "docker.DockerClient", doomed: Any) -> list[str]:
    from docker.errors import NotFound

    removed: list[str] = []
    for c in client.containers.list(all=True, filters={"label": RUN}):
        if doomed(c.labels):
            try:
                c.remove(force=True)
                removed.append(f"container {c.name}")
            except NotFound:
                pass  # gone meanwhile: what we wanted
    for n in client.networks.list(filters={"label": RUN}):
        if doomed(n.attrs.get("Labels") or {}):
            try:
                n.remove()
                removed.append(f"network {n.name}")
            except NotFound:
                pass
    return removed
