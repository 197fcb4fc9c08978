"""Target programs run for real by the service tests: each in its own
process group, polled until healthy, and always stopped, also when paused.

Shared so that every target's tests start, wait for and end their
processes the same way (readiness with a deadline, never a sleep).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def signal(self, sig: signal.Signals) -> None:
        os.killpg(self.popen.pid, sig)


def wait_healthy(http: httpx.Client, procs: Iterable[Proc], *, within_s: float = 10.0) -> None:
    """Poll /health until every service answers; fail naming the one that did not, or its exit and log."""
    deadline = time.monotonic() + within_s
    for proc in procs:
        last: object = None
        while True:
            if proc.popen.poll() is not None:
                pytest.fail(f"{proc.name} exited {proc.popen.returncode}: {proc.log.read_text()}")
            try:
                resp = http.get(f"{proc.url}/health", timeout=0.5)
                if resp.status_code == 200:
                    break
                last = resp.text
            except httpx.TransportError as exc:
                last = exc
            if time.monotonic() > deadline:
                pytest.fail(f"{proc.name} at {proc.url} not healthy; last: {last!r}")
            time.sleep(0.02)  # poll


def stop(proc: Proc) -> int:
    """SIGTERM (after SIGCONT, as a stopped process would not see it), then SIGKILL."""
    if proc.popen.poll() is None:
        proc.signal(signal.SIGCONT)
        proc.signal(signal.SIGTERM)
        try:
            return proc.popen.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.signal(signal.SIGKILL)
    return proc.popen.wait()
