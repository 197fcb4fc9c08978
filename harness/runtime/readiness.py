"""Waiting for a service to be ready: polled with a deadline, never slept for."""

from __future__ import annotations

import socket
import time
from typing import Callable

import httpx

from ..errors import ReadinessTimeout, ServiceError


def probe_once(host: str, port: int, health: str) -> tuple[bool, str]:
    """One health probe: (ready, what was seen)."""
    if health == "tcp":
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True, "tcp connect ok"
        except OSError as exc:
            return False, f"tcp connect: {exc}"
    try:
        r = httpx.get(f"http://{host}:{port}{health}", timeout=1.0)
    except httpx.HTTPError as exc:
        return False, f"GET {health}: {type(exc).__name__}: {exc}"
    return r.status_code < 400, f"GET {health}: {r.status_code} {r.text[:200]!r}"


def wait_ready(
    *,
    service: str,
    host: str,
    port: int,
    health: str,
    timeout_s: float,
    exited: Callable[[], int | None],
    log_tail: Callable[[], str],
    interval_s: float = 0.05,
) -> float:
    """Polls until healthy; returns seconds waited. The error names the
    service, the address, the last health response and the log's tail."""
    start = time.monotonic()
    deadline = start + timeout_s
    last = "no probe yet"
    while True:
        code = exited()
        if code is not None:
            raise ServiceError(
                f"service {service} exited with code {code} before it was healthy on {host}:{port} "
                f"(last health: {last}). Log tail:\n{log_tail()}"
            )
        ok, last = probe_once(host, port, health)
        if ok:
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise ReadinessTimeout(
                f"service {service} not healthy on {host}:{port} after {timeout_s:.1f}s "
                f"(last health: {last}). Check its command and health path, or raise "
                f"ready_timeout_s in the topology. Log tail:\n{log_tail()}"
            )
        time.sleep(interval_s)  # poll
