"""Process groups of the local runtime: signals, and the sweep of what dead
runs left behind (found by their run labels in /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ..labels import OWNER_ENV, RUN_ENV, process_labels


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state letter) of every process, from /proc."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields start after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _below(pid: int, table: dict[int, tuple[int, int, str]]) -> list[int]:
    """Every process below pid in the table, parents before children."""
    children: dict[int, list[int]] = {}
    for p, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(p)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below pid, parents before children, from /proc."""
    return _below(pid, _proc_table())


def process_states(pid: int) -> dict[int, str]:
    """The state letter (/proc/<pid>/stat: R, S, T, Z, ...) of pid, of every process
    in its group and of every descendant: what the kernel says of an instance."""
    table = _proc_table()
    members = {p for p, (_, pgrp, _) in table.items() if pgrp == pid or p == pid} | set(_below(pid, table))
    return {p: table[p][2] for p in sorted(members)}


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
