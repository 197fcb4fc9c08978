"""Toxiproxy's own log, read while the server runs.

Toxiproxy logs one JSON object per line, among them one "Accepted client" per
connection a proxy accepts. That line is written also for a connection the
proxy closes at once because its upstream is down: too short-lived for any
sample of the kernel's socket table, and never counted in the byte metrics
(which count only what reached the upstream). So it is the harness's record
of the calls a client attempted through a link.

A local server writes its log to a file of the run; a container's log is
read from the engine, with the engine's nanosecond timestamp of each line.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .filetail import FileTail

# (t_ns, entry): when the line was written (or, for a file, first read), and its JSON object
LogLine = tuple[int, dict[str, Any]]


class LogFollower(Protocol):
    def new(self) -> list[LogLine]: ...
    def close(self) -> None: ...


class ServerLog(Protocol):
    def follow(self) -> LogFollower:
        """The lines written from now on, each handed over once by ``new()``."""
        ...


def _entry(line: bytes | str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


class FileLog:
    """The log file a local toxiproxy-server writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def follow(self) -> LogFollower:
        return _FileFollower(self.path)


class _FileFollower:
    def __init__(self, path: Path) -> None:
        self.tail = FileTail(path)

    def new(self) -> list[LogLine]:
        now_ns = time.time_ns()  # the file's lines carry whole seconds only: stamped when read
        return [(now_ns, entry) for entry in map(_entry, self.tail.new_lines()) if entry is not None]

    def close(self) -> None:
        self.tail.close()


class ContainerLog:
    """The log of the run's Toxiproxy container, through the engine's API."""

    def __init__(self, docker: Any, container: str) -> None:
        self.docker, self.container = docker, container

    def follow(self) -> LogFollower:
        return _ContainerFollower(self.docker.containers.get(self.container))


class _ContainerFollower:
    def __init__(self, container: Any) -> None:
        self.container = container
        self.last_ns = time.time_ns()

    def new(self) -> list[LogLine]:
        # the engine keeps lines at or after `since`; a millisecond early, then drop what was handed over
        raw = self.container.logs(stdout=True, stderr=True, timestamps=True, since=(self.last_ns / 1e9) - 0.001)
        out: list[LogLine] = []
        for line in raw.decode(errors="replace").splitlines():
            stamp, _, text = line.partition(" ")
            t_ns, entry = engine_time_ns(stamp), _entry(text)
            if t_ns is None or entry is None or t_ns <= self.last_ns:
                continue
            out.append((t_ns, entry))
        if out:
            self.last_ns = max(t for t, _ in out)
        return out

    def close(self) -> None:
        pass


def engine_time_ns(stamp: str) -> int | None:
    """Nanoseconds since the epoch of the engine's RFC 3339 stamp ("2026-12-02T11:24:34.123456789Z")."""
    if not stamp.endswith("Z"):
        return None
    whole, _, fraction = stamp[:-1].partition(".")
    try:
        seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        return int(seconds) * 10**9 + int((fraction or "0").ljust(9, "0")[:9])
    except ValueError:
        return None


__all__ = ["ContainerLog", "FileLog", "LogFollower", "LogLine", "ServerLog", "engine_time_ns"]
