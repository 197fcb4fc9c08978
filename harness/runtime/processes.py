"""Process groups of the local runtime: signals, and the sweep of what dead
runs left behind (found by their run labels in /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .labels import OWNER_ENV, RUN_ENV, process_labels


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> bool:
    """Sends sig to the process's group; False if it is already gone."""
    try:
        os.killpg(proc.pid, sig)
        return True
    except ProcessLookupError:
        return False


def end_group(proc: subprocess.Popen[bytes], *, grace_s: float) -> int | None:
    """SIGTERM (after SIGCONT, so a paused process can act on it), then
    SIGKILL when the grace period runs out. Returns the exit code."""
    if proc.poll() is None:
        signal_group(proc, signal.SIGCONT)
        signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    signal_group(proc, signal.SIGKILL)  # also children left in the group
    return proc.wait(timeout=10)


def kill_group(proc: subprocess.Popen[bytes]) -> int | None:
    signal_group(proc, signal.SIGKILL)
    return proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def sweep_dead_runs(*, keep_run: str | None = None) -> list[int]:
    """Kills every labelled process whose owning harness process is gone.

    Returns the pids killed. A process of a live run (its owner still
    running) is left alone, so concurrent runs do not hurt each other.
    """
    killed: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        labels = process_labels(pid)
        if not labels or labels.get(RUN_ENV) == keep_run:
            continue
        owner = labels.get(OWNER_ENV, "")
        if owner.isdigit() and _alive(int(owner)) and int(owner) != pid:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return killed
