"""Process groups of the local runtime: signals, and the sweep of what dead
runs left behind (found by their run labels in /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ..labels import OWNER_ENV, RUN_ENV, process_labels


def descendants(pid: int) -> list[int]:
    """Every live process below pid, parents before children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields start after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> bool:
    """Sends sig to the process's group and to every descendant that left it.

    The group alone is not enough: PostgreSQL's backends, for one, call
    setsid(), so a SIGSTOP of the group would pause the postmaster while
    open connections kept answering. Returns False if the process is gone.
    """
    tree = descendants(proc.pid)
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    for pid in tree:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # ended meanwhile
    return True


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
    signal_group(proc, signal.SIGKILL)  # also children left in the group, or outside it
    return proc.wait(timeout=10)


def kill_group(proc: subprocess.Popen[bytes]) -> int | None:
    signal_group(proc, signal.SIGKILL)
    return proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def sweep_dead_processes(*, keep_run: str | None = None) -> list[int]:
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
